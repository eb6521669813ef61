// OpenAI wire request → canonical ChatRequest.

import { badRequest } from '../../core/errors.js';
import { firstRepeat } from '../../core/validation.js';
import { imageFromBytes, parseDataUri } from '../../core/media.js';
import type { ChatRequest, ContentPart, Message, ReasoningConfig, ToolChoice } from '../../core/types.js';
import { unansweredToolResult } from '../../core/types.js';
import { UNSUPPORTED_FIELDS, type ChatCompletionMessage, type ChatCompletionRequest } from './schema.js';

type Cacheable = { cache_control?: Record<string, unknown>; prompt_cache_breakpoint?: { mode: 'explicit' } };
type TextLike = string | Array<({ type: 'text'; text: string } & Cacheable) | { type: 'refusal'; refusal: string }> | null | undefined;

/** The breakpoints that came from `prompt_cache_breakpoint` (only the latest four are kept). */
const fromBreakpoint = new WeakSet<object>();
/** OpenAI writes at most the latest four explicit breakpoints, and Anthropic takes at most four. */
const MAX_BREAKPOINTS = 4;

/**
 * A part's cache breakpoint: its `cache_control`, else OpenAI's `prompt_cache_breakpoint`, which
 * lives at least 30 minutes (`prompt_cache_options.ttl`), so it becomes Anthropic's and Bedrock's
 * 1-hour breakpoint rather than their 5-minute default.
 */
function cacheControlOf(part: Cacheable): { cacheControl?: Record<string, unknown> } {
  if (part.cache_control) return { cacheControl: part.cache_control };
  if (!part.prompt_cache_breakpoint) return {};
  const cacheControl = { type: 'ephemeral', ttl: '1h' };
  fromBreakpoint.add(cacheControl);
  return { cacheControl };
}

/** Drops all but the latest MAX_BREAKPOINTS breakpoints that `prompt_cache_breakpoint` set. */
function keepLatestBreakpoints(messages: Message[]): void {
  const marked: Array<{ cacheControl?: Record<string, unknown> }> = [];
  const visit = (part: { cacheControl?: Record<string, unknown> }) => {
    if (part.cacheControl && fromBreakpoint.has(part.cacheControl)) marked.push(part);
  };
  for (const message of messages) {
    for (const part of message.content) {
      if ('cacheControl' in part) visit(part);
      if (part.type === 'tool-result') part.content.forEach(visit);
    }
  }
  for (const part of marked.slice(0, -MAX_BREAKPOINTS)) delete part.cacheControl;
}

function textParts(content: TextLike): ContentPart[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return content.length ? [{ type: 'text', text: content }] : [];
  return content.map((p) => (p.type === 'text' ? textPart(p) : { type: 'text', text: p.refusal }));
}

function textPart(part: { text: string } & Cacheable): ContentPart {
  return { type: 'text', text: part.text, ...cacheControlOf(part) };
}

async function userParts(message: Extract<ChatCompletionMessage, { role: 'user' }>, index: number): Promise<ContentPart[]> {
  if (typeof message.content === 'string') return textParts(message.content);
  const parts: ContentPart[] = [];
  for (const [i, part] of message.content.entries()) {
    const param = `messages[${index}].content[${i}]`;
    if (part.type === 'text') parts.push(textPart(part));
    else if (part.type === 'image_url') {
      const url = part.image_url.url;
      const data = parseDataUri(url, `${param}.image_url.url`);
      const detail = part.image_url.detail ? { detail: part.image_url.detail } : {};
      if (data) parts.push({ ...(await imageFromBytes(data.data, data.mediaType, `${param}.image_url.url`)), ...detail, ...cacheControlOf(part) });
      else if (/^https?:\/\//i.test(url)) parts.push({ type: 'image', mediaType: 'image/*', url, ...detail, ...cacheControlOf(part) });
      else throw badRequest('image_url.url must be an http(s) URL or a base64 data URI', `${param}.image_url.url`, 'invalid_image_url');
    } else if (part.type === 'input_audio') {
      throw badRequest('Audio input is not supported', `${param}`, 'unsupported_modality');
    } else {
      throw badRequest('File content parts are not supported on this route; use the organisation chat API for documents', `${param}`, 'unsupported_modality');
    }
  }
  return parts;
}

/**
 * Reasoning sent back in an assistant turn: `reasoning_details` (signed and redacted blocks kept
 * as they were, in index order) when given, else the plain `reasoning` text.
 */
function reasoningParts(message: Extract<ChatCompletionMessage, { role: 'assistant' }>): ContentPart[] {
  const details = message.reasoning_details ?? [];
  if (details.length === 0) return message.reasoning ? [{ type: 'reasoning', text: message.reasoning }] : [];
  const ordered = details.map((d, i) => ({ d, at: d.index ?? i })).sort((a, b) => a.at - b.at);
  return ordered.map(({ d }): ContentPart => {
    switch (d.type) {
      case 'reasoning.text':
        return { type: 'reasoning', text: d.text, ...(d.signature ? { signature: d.signature } : {}) };
      case 'reasoning.encrypted':
        return { type: 'reasoning', text: '', redactedData: d.data };
      case 'reasoning.summary':
        return { type: 'reasoning', text: d.summary };
    }
  });
}

async function convertMessage(message: ChatCompletionMessage, index: number): Promise<Message> {
  switch (message.role) {
    case 'system':
    case 'developer':
      return { role: 'system', content: textParts(message.content), name: message.name };
    case 'user':
      return { role: 'user', content: await userParts(message, index), name: message.name };
    case 'assistant': {
      const param = `messages[${index}]`;
      if (message.audio) throw badRequest("Assistant audio (OpenAI's stored audio output) is not supported; send its transcript as content", `${param}.audio`, 'unsupported_parameter');
      if (message.function_call) throw badRequest('The deprecated function_call is not supported; send tool_calls', `${param}.function_call`, 'unsupported_parameter');
      const content: ContentPart[] = [];
      content.push(...reasoningParts(message));
      content.push(...textParts(message.content));
      for (const [i, call] of (message.tool_calls ?? []).entries()) {
        if (call.type === 'custom') throw badRequest('Custom tool calls are not supported; send function tool calls', `${param}.tool_calls[${i}]`, 'unsupported_parameter');
        content.push({ type: 'tool-call', id: call.id, name: call.function.name, arguments: call.function.arguments });
      }
      return { role: 'assistant', content, name: message.name };
    }
    case 'tool':
      return {
        role: 'tool',
        content: [{ type: 'tool-result', toolCallId: message.tool_call_id, content: textParts(message.content).filter((p) => p.type === 'text') }],
      };
    case 'function':
      throw badRequest('Function messages (the deprecated functions API) are not supported; send tool messages answering tool_calls', `messages[${index}]`, 'unsupported_parameter');
  }
}

type FunctionTool = Extract<NonNullable<ChatCompletionRequest['tools']>[number], { type: 'function' }>;

/** The request's function tools; OpenAI's custom tools are refused with a reason. */
function functionTools(tools: ChatCompletionRequest['tools']): FunctionTool[] | undefined {
  const custom = tools?.findIndex((t) => t.type === 'custom') ?? -1;
  if (custom >= 0) throw badRequest('Custom tools (free-form input) are not supported; send function tools', `tools[${custom}]`, 'unsupported_parameter');
  return tools as FunctionTool[] | undefined;
}

/**
 * A function's parameters are an object schema, as OpenAI requires (its 400 for anything else,
 * word for word); omitted, the function takes none.
 */
function functionParameters(parameters: Record<string, unknown> | undefined, name: string, index: number): Record<string, unknown> {
  if (!parameters) return { type: 'object', properties: {} };
  if (parameters.type !== undefined && parameters.type !== 'object') {
    const got = typeof parameters.type === 'string' ? parameters.type : JSON.stringify(parameters.type);
    throw badRequest(`Invalid schema for function '${name}': schema must be a JSON Schema of 'type: "object"', got 'type: "${got}"'.`, `tools[${index}].function.parameters`, 'invalid_function_parameters');
  }
  return parameters;
}

/** Strict OpenAI-compatible APIs (DeepSeek's, Anthropic's) refuse two tools of one name in these words: a model could not tell them apart. */
function checkToolNamesUnique(tools: FunctionTool[] | undefined): void {
  if (firstRepeat((tools ?? []).map((t) => t.function.name)) >= 0) throw badRequest('Tool names must be unique.', 'tools');
}

/** The canonical tool choice, and for `allowed_tools` the names of the tools the model may call. */
function toolChoice(choice: ChatCompletionRequest['tool_choice'], tools: FunctionTool[] | undefined): { choice?: ToolChoice; allowed?: Set<string> } {
  if (choice === undefined) return {};
  if (typeof choice === 'string') {
    if (choice !== 'none' && !tools?.length) throw badRequest(`tool_choice '${choice}' needs tools`, 'tool_choice');
    return { choice: { type: choice } };
  }
  switch (choice.type) {
    case 'custom':
      throw badRequest('Custom tools are not supported; name a function tool', 'tool_choice', 'unsupported_parameter');
    case 'allowed_tools': {
      if (!tools?.length) throw badRequest("tool_choice 'allowed_tools' needs tools", 'tool_choice');
      const allowed = new Set<string>();
      for (const [i, entry] of choice.allowed_tools.tools.entries()) {
        const param = `tool_choice.allowed_tools.tools[${i}]`;
        const name = entry.type === 'function' ? (entry.function as { name?: unknown } | undefined)?.name : undefined;
        if (typeof name !== 'string') throw badRequest('allowed_tools lists function tools: {"type": "function", "function": {"name": ...}}', param);
        if (!tools.some((t) => t.function.name === name)) throw badRequest(`allowed_tools names '${name}', which is not in tools`, param);
        allowed.add(name);
      }
      return { choice: { type: choice.allowed_tools.mode }, allowed };
    }
    case 'function':
      if (!tools?.some((t) => t.function.name === choice.function.name)) {
        throw badRequest(`tool_choice names '${choice.function.name}', which is not in tools`, 'tool_choice');
      }
      return { choice: { type: 'tool', name: choice.function.name } };
  }
}

/**
 * The canonical maxTokens is the answer's cap, the reasoning budget apart (as Anthropic's
 * providers need it); OpenAI's max_tokens, as OpenRouter's with reasoning.max_tokens, covers both.
 */
function answerTokens(body: ChatCompletionRequest): number | undefined {
  const total = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const budget = body.reasoning?.enabled === false ? undefined : body.reasoning?.max_tokens;
  if (total === undefined || budget == null) return total;
  if (budget >= total) {
    throw badRequest(`reasoning.max_tokens (${budget}) must be less than max_tokens (${total}), which includes it`, 'reasoning.max_tokens');
  }
  return total - budget;
}

function reasoningConfig(body: ChatCompletionRequest): ReasoningConfig | undefined {
  const r = body.reasoning;
  if (r) {
    // Both forms at once: one effort, named once or the same in each (as max_tokens' pair is).
    if (body.reasoning_effort && r.effort && r.effort !== body.reasoning_effort) {
      throw badRequest(`reasoning.effort '${r.effort}' and reasoning_effort '${body.reasoning_effort}' disagree; send one`, 'reasoning_effort');
    }
    const effort = r.effort ?? body.reasoning_effort ?? undefined;
    const enabled = r.enabled ?? (effort !== 'none');
    return { enabled: enabled && effort !== 'none', effort, budgetTokens: r.max_tokens, exclude: r.exclude };
  }
  if (body.reasoning_effort) return { enabled: body.reasoning_effort !== 'none', effort: body.reasoning_effort };
  return undefined;
}

/**
 * Checks that every tool message answers a tool call made earlier in the conversation, which
 * includes a session's stored turns (`earlier`, placed before the request's own messages).
 */
function checkToolRoundTrips(messages: Message[], earlier: Message[]): void {
  const orphan = unansweredToolResult([...earlier, ...messages]);
  if (orphan) {
    const index = orphan.index - earlier.length;
    throw badRequest(`messages[${index}].tool_call_id '${orphan.toolCallId}' does not answer any earlier tool call`, `messages[${index}].tool_call_id`);
  }
}

/** OpenAI fields accepted only with the value Switchboard can honour. */
function refuseUnsupported(body: ChatCompletionRequest): void {
  for (const field of Object.keys(UNSUPPORTED_FIELDS) as Array<keyof typeof UNSUPPORTED_FIELDS>) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (field === 'modalities' && Array.isArray(value) && value.every((m) => m === 'text')) continue;
    // In-memory is every provider's retention, and OpenAI's default (spelt both ways across its SDK versions).
    if (field === 'prompt_cache_retention' && (value === 'in_memory' || value === 'in-memory')) continue;
    throw badRequest(`${field}: ${UNSUPPORTED_FIELDS[field]}`, field, 'unsupported_parameter');
  }
  if (body.store === true) throw badRequest('store: stored completions are not supported (Switchboard keeps its own request log)', 'store', 'unsupported_parameter');
  if (body.service_tier != null && body.service_tier !== 'auto' && body.service_tier !== 'default') {
    throw badRequest(`service_tier '${body.service_tier}' is not supported: Switchboard has one tier (send auto or default)`, 'service_tier', 'unsupported_parameter');
  }
}

/** `earlier`: a session's stored turns, which the request continues. */
export async function parseChatCompletionRequest(body: ChatCompletionRequest, earlier: Message[] = []): Promise<ChatRequest> {
  refuseUnsupported(body);
  const messages = await Promise.all(body.messages.map((m, i) => convertMessage(m, i)));
  keepLatestBreakpoints(messages);
  checkToolRoundTrips(messages, earlier);
  const tools = functionTools(body.tools);
  checkToolNamesUnique(tools);
  // allowed_tools: the others are left out of the request, so no provider can call them (OpenAI
  // keeps them in the prompt, for its cache).
  const { choice, allowed } = toolChoice(body.tool_choice, tools);
  if (body.stream_options != null && body.stream !== true) {
    throw badRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  }
  if (body.max_tokens != null && body.max_completion_tokens != null && body.max_tokens !== body.max_completion_tokens) {
    throw badRequest('max_tokens and max_completion_tokens disagree; send one', 'max_completion_tokens');
  }
  if (body.top_logprobs != null && body.logprobs !== true) {
    throw badRequest('top_logprobs needs logprobs: true', 'top_logprobs');
  }
  const rf = body.response_format;
  const request: ChatRequest = {
    model: body.model,
    messages,
    maxTokens: answerTokens(body),
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    topK: body.top_k ?? undefined,
    minP: body.min_p ?? undefined,
    seed: body.seed ?? undefined,
    stop: body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    repetitionPenalty: body.repetition_penalty ?? undefined,
    logitBias: body.logit_bias && Object.keys(body.logit_bias).length ? body.logit_bias : undefined,
    verbosity: body.verbosity ?? undefined,
    n: body.n ?? undefined,
    tools: tools
      ?.map((t, i) => ({
        name: t.function.name,
        description: t.function.description,
        parameters: functionParameters(t.function.parameters, t.function.name, i),
        // OpenAI's strict mode, for an OpenAI-compatible upstream; the local model's grammar holds every call to its schema.
        ...(t.function.strict != null && { providerFields: { openai: { strict: t.function.strict } } }),
      }))
      .filter((t) => !allowed || allowed.has(t.name)),
    toolChoice: choice,
    parallelToolCalls: body.parallel_tool_calls,
    responseFormat:
      rf === undefined || rf.type === 'text'
        ? undefined
        : rf.type === 'json_object'
          ? { type: 'json' }
          : { type: 'json', schema: rf.json_schema.schema ?? {}, name: rf.json_schema.name, ...(rf.json_schema.description && { description: rf.json_schema.description }) },
    reasoning: reasoningConfig(body),
    logprobs: body.logprobs === true ? { top: body.top_logprobs ?? 0 } : undefined,
    confidence: true,
  };
  return request;
}
