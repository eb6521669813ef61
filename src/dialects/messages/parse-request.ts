// Messages wire request → canonical ChatRequest. Provider-dependent fields (container,
// cache_control, service_tier…) are settled afterwards in field-policy.ts.

import { badRequest } from '../../core/errors.js';
import { firstRepeat } from '../../core/validation.js';
import { decodeBase64, imageFromBytes, mediaKindOf, normaliseMediaType, sniffMediaType } from '../../core/media.js';
import type { ChatRequest, ContentPart, Message, ReasoningConfig, ReasoningEffort, ResponseFormat, TextPart, ToolChoice } from '../../core/types.js';
import { unansweredToolResult } from '../../core/types.js';
import { compactionNote } from './compaction.js';
import type { MessagesContentBlock, MessagesRequest } from './schema.js';
import { ANTHROPIC_TOOL_FIELDS, isCustomTool, isServerBlockType, isServerTool, toolSchema, type CustomToolParam } from './schema.js';

type Block = MessagesContentBlock;

function textPart(block: { text: string; cache_control?: Record<string, unknown> | null; citations?: unknown[] | null }): TextPart {
  const part: TextPart = { type: 'text', text: block.text };
  if (block.cache_control) part.cacheControl = block.cache_control;
  // Sources an earlier answer cited: Anthropic takes them back with the text, others read the text alone.
  const citations = block.citations?.filter((c): c is Record<string, unknown> => !!c && typeof c === 'object');
  if (citations?.length) part.citations = citations;
  return part;
}

/**
 * A search result as text for every provider (title, source, then its passages); Anthropic gets
 * the block itself, so its answer can cite the passages (search_result_location citations).
 */
function searchResultPart(block: Extract<Block, { type: 'search_result' }>): TextPart {
  const passages = block.content.map((c) => c.text).join('\n\n');
  return { type: 'text', text: `${block.title}\n${block.source}\n\n${passages}`, nativeBlock: { provider: 'anthropic', block }, ...cacheControlOf(block) };
}

function fileSourceRefused(param: string): Error {
  return badRequest("File ids (Anthropic's Files API) are not resolved by this gateway; send the file's bytes as base64", `${param}.source`, 'unsupported_document_source');
}

/**
 * Tool search's tool_reference and a browser toolset's browser_state, in a tool result: blocks of
 * Anthropic's own tools, which it reads as written; any other provider gets them as text.
 */
function anthropicOnlyResultPart(block: { type: 'tool_reference'; tool_name: string } | { type: 'browser_state'; tabs: unknown[] }): TextPart {
  const text = block.type === 'tool_reference' ? `Tool available: ${block.tool_name}` : `Browser tabs: ${JSON.stringify(block.tabs)}`;
  return { type: 'text', text, nativeBlock: { provider: 'anthropic', block } };
}

async function imagePart(block: Extract<Block, { type: 'image' }>, param: string): Promise<ContentPart> {
  if (block.source.type === 'file') throw fileSourceRefused(param);
  // With transformations, Anthropic gets the block as written; other providers never resize.
  const native = block.transformations && Object.keys(block.transformations).length ? { nativeBlock: { provider: 'anthropic', block } } : {};
  if (block.source.type === 'url') return { type: 'image', mediaType: 'image/*', url: block.source.url, ...cacheControlOf(block), ...native };
  const part = await imageFromBytes(decodeBase64(block.source.data, `${param}.source.data`), block.source.media_type, `${param}.source`);
  if (block.cache_control) part.cacheControl = block.cache_control;
  return { ...part, ...native };
}

async function documentParts(block: Extract<Block, { type: 'document' }>, param: string): Promise<ContentPart[]> {
  const source = block.source;
  const label = block.title ?? undefined;
  const cache = block.cache_control ?? undefined;
  // A document that asks for citations goes to Anthropic as written, so the answer can cite it.
  const native = block.citations?.enabled ? { nativeBlock: { provider: 'anthropic', block } } : {};
  switch (source.type) {
    case 'text':
      return [{ type: 'text', text: label ? `${label}\n\n${source.data}` : source.data, ...(cache ? { cacheControl: cache } : {}), ...native }];
    case 'content': {
      if (typeof source.content === 'string') return [{ type: 'text', text: source.content }];
      const parts: ContentPart[] = [];
      for (const [i, inner] of source.content.entries()) {
        parts.push(inner.type === 'text' ? textPart(inner) : await imagePart(inner, `${param}.source.content[${i}]`));
      }
      return parts;
    }
    case 'url':
      throw badRequest('Document URLs are not fetched by this gateway; send the document as base64', `${param}.source.url`, 'unsupported_document_source');
    case 'file':
      throw fileSourceRefused(param);
    case 'base64': {
      const data = decodeBase64(source.data, `${param}.source.data`);
      const sniffed = await sniffMediaType(data);
      const declared = normaliseMediaType(source.media_type);
      // Text formats (CSV, plain text) have no magic bytes: trust the label only for those.
      const mediaType = sniffed ?? declared;
      if (sniffed && sniffed !== declared && mediaKindOf(declared) === 'document' && declared !== 'application/octet-stream') {
        throw badRequest(`The document is declared as ${declared} but its bytes are ${sniffed}`, `${param}.source.media_type`, 'media_type_mismatch');
      }
      return [{ type: mediaKindOf(mediaType), mediaType, data, ...(label ? { name: label } : {}), ...(cache ? { cacheControl: cache } : {}), ...native }];
    }
  }
}

/** The tool's fields only Anthropic reads, kept for an Anthropic upstream. */
function anthropicFieldsOf(tool: CustomToolParam): { providerFields?: Record<string, Record<string, unknown>> } {
  const fields = Object.fromEntries(ANTHROPIC_TOOL_FIELDS.filter((key) => tool[key] != null).map((key) => [key, tool[key]]));
  return Object.keys(fields).length ? { providerFields: { anthropic: fields } } : {};
}

/** A block's `cache_control` as the canonical part's `cacheControl` (a prompt-cache breakpoint after it). */
function cacheControlOf(block: { cache_control?: Record<string, unknown> | null }): { cacheControl?: Record<string, unknown> } {
  return block.cache_control ? { cacheControl: block.cache_control } : {};
}

type ToolResultContent = Extract<ContentPart, { type: 'tool-result' }>['content'];

function toolResultContent(parts: ContentPart[]): ToolResultContent {
  return parts.filter((p): p is TextPart | Extract<ContentPart, { type: 'image' | 'video' | 'document' }> =>
    p.type === 'text' || p.type === 'image' || p.type === 'video' || p.type === 'document',
  );
}

/**
 * One wire message becomes one or more canonical messages: Anthropic puts tool results inside
 * user turns and MCP results inside assistant turns, the canonical form keeps them in `tool`
 * messages of their own, in the order they came.
 */
async function convertMessage(message: MessagesRequest['messages'][number], index: number): Promise<Message[]> {
  const role = message.role;
  if (message.content === undefined) return [];
  if (typeof message.content === 'string') return [{ role, content: message.content ? [{ type: 'text', text: message.content }] : [] }];
  const out: Message[] = [];
  const push = (r: Message['role'], part: ContentPart) => {
    const last = out[out.length - 1];
    if (last && last.role === r) last.content.push(part);
    else out.push({ role: r, content: [part] });
  };
  for (const [i, item] of message.content.entries()) {
    const param = `messages[${index}].content[${i}]`;
    const wrongRole = (allowed: string) => badRequest(`A '${item.type}' block is only allowed in ${allowed} messages`, `${param}.type`);
    if (isServerBlockType(item.type)) {
      // An Anthropic server tool's call or result from an earlier answer: only Anthropic takes it back.
      if (role !== 'assistant') throw wrongRole('assistant');
      push(role, { type: 'provider-block', provider: 'anthropic', block: item });
      continue;
    }
    const block = item as Block;
    switch (block.type) {
      case 'text':
        push(role, textPart(block));
        break;
      case 'image':
        if (role === 'system') throw wrongRole('user or assistant');
        push(role, await imagePart(block, param));
        break;
      case 'document':
        if (role === 'system') throw wrongRole('user or assistant');
        for (const part of await documentParts(block, param)) push(role, part);
        break;
      case 'search_result':
        if (role !== 'user') throw wrongRole('user');
        push(role, searchResultPart(block));
        break;
      case 'thinking':
        if (role !== 'assistant') throw wrongRole('assistant');
        push(role, { type: 'reasoning', text: block.thinking, signature: block.signature });
        break;
      case 'redacted_thinking':
        if (role !== 'assistant') throw wrongRole('assistant');
        push(role, { type: 'reasoning', text: '', redactedData: block.data });
        break;
      case 'tool_use':
        if (role !== 'assistant') throw wrongRole('assistant');
        push(role, { type: 'tool-call', id: block.id, name: block.name, arguments: JSON.stringify(block.input ?? {}), ...cacheControlOf(block) });
        break;
      case 'mcp_tool_use':
        if (role !== 'assistant') throw wrongRole('assistant');
        push(role, { type: 'tool-call', id: block.id, name: block.name, arguments: JSON.stringify(block.input ?? {}), serverExecuted: { serverName: block.server_name }, ...cacheControlOf(block) });
        break;
      case 'compaction':
        // A summary of the turns it replaced, given to the model as the user's note: a conversation
        // may be that block alone, and every provider needs a user turn to answer.
        if (role !== 'assistant') throw wrongRole('assistant');
        if (block.content) push('user', { type: 'text', text: compactionNote(block.content) });
        break;
      case 'tool_addition':
      case 'tool_removal':
        // Read apart, in order, by offeredTools: they change the tools, not the prompt's text.
        if (role === 'assistant') throw wrongRole('system or user');
        break;
      case 'fallback':
      case 'mcp_tool_listing':
        // Where one model handed over to another, or what an MCP server listed (the gateway lists
        // it itself): kept by the client in place, not part of the prompt.
        if (role !== 'assistant') throw wrongRole('assistant');
        break;
      case 'tool_result':
      case 'mcp_tool_result': {
        if (block.type === 'tool_result' && role !== 'user') throw wrongRole('user');
        if (block.type === 'mcp_tool_result' && role !== 'assistant') throw wrongRole('assistant');
        const inner: ContentPart[] = [];
        if (typeof block.content === 'string') inner.push({ type: 'text', text: block.content });
        else {
          for (const [j, c] of (block.content ?? []).entries()) {
            const p = `${param}.content[${j}]`;
            if (c.type === 'text') inner.push(textPart(c));
            else if (c.type === 'image') inner.push(await imagePart(c, p));
            else if (c.type === 'search_result') inner.push(searchResultPart(c));
            else if (c.type === 'tool_reference' || c.type === 'browser_state') inner.push(anthropicOnlyResultPart(c));
            else inner.push(...(await documentParts(c, p)));
          }
        }
        push('tool', { type: 'tool-result', toolCallId: block.tool_use_id, content: toolResultContent(inner), isError: block.is_error, ...cacheControlOf(block) });
        break;
      }
    }
  }
  return out;
}

function systemMessages(system: MessagesRequest['system']): Message[] {
  if (system === undefined || system === null) return [];
  const items = typeof system === 'string' ? [system] : Array.isArray(system) ? system : [system];
  const parts = items
    .map((item) => (typeof item === 'string' ? { type: 'text' as const, text: item } : textPart(item)))
    .filter((p) => p.text.length > 0 || p.cacheControl);
  return parts.length ? [{ role: 'system', content: parts }] : [];
}

/**
 * With `mcp_servers`, the tools they offer are known only once the gateway has listed them: a
 * choice that may concern them is checked then (mcp-servers.ts, checkToolChoice).
 */
function toolChoice(choice: MessagesRequest['tool_choice'], tools: MessagesRequest['tools'], mcpServers: boolean): ToolChoice | undefined {
  if (!choice) return undefined;
  if (choice.type !== 'none' && !tools?.length && !mcpServers) throw badRequest(`tool_choice '${choice.type}' needs tools`, 'tool_choice');
  switch (choice.type) {
    case 'auto':
      return { type: 'auto' };
    case 'none':
      return { type: 'none' };
    case 'any':
      return { type: 'required' };
    case 'tool':
      if (!mcpServers && !tools?.some((t) => 'name' in t && t.name === choice.name)) throw badRequest(`tool_choice names '${choice.name}', which is not in tools`, 'tool_choice.name');
      return { type: 'tool', name: choice.name };
  }
}

const EFFORT: Record<string, ReasoningEffort> = { low: 'low', medium: 'medium', high: 'high', xhigh: 'xhigh', max: 'max' };

/**
 * The beta's system messages: one with clear_at 'next_user_message' is shown only until a user
 * message follows it (then left out), and the output_config.effort of one after the last user
 * message is this turn's. Either field on another role, or a message with neither content nor
 * output_config, is a 400.
 */
function systemMessageSettings(messages: MessagesRequest['messages']): { shown: boolean[]; turnEffort?: string } {
  let lastUser = -1;
  for (const [i, m] of messages.entries()) {
    const param = `messages[${i}]`;
    if (m.role !== 'system' && (m.clear_at != null || m.output_config != null)) {
      throw badRequest(`clear_at and output_config are only permitted on role "system" messages`, m.clear_at != null ? `${param}.clear_at` : `${param}.output_config`);
    }
    if (m.content === undefined && (m.role !== 'system' || m.output_config == null)) throw badRequest('A message needs content (a system message may carry output_config instead)', `${param}.content`);
    if (m.role === 'user') lastUser = i;
  }
  // A compaction block stands in for everything before it (a client may send the whole history
  // back, as after Anthropic's autocompact): the turns before the last one with a summary are left out.
  const compacted = messages.findLastIndex((m) => Array.isArray(m.content) && m.content.some((b) => b.type === 'compaction' && typeof (b as { content?: unknown }).content === 'string'));
  const shown = messages.map((m, i) => i >= compacted && !(m.role === 'system' && m.clear_at === 'next_user_message' && i < lastUser));
  const turn = messages.slice(lastUser + 1).filter((m) => m.role === 'system' && m.output_config?.effort).at(-1);
  return { shown, turnEffort: turn?.output_config?.effort ?? undefined };
}

function reasoningConfig(body: MessagesRequest, turnEffort?: string): ReasoningConfig | undefined {
  const wanted = turnEffort ?? body.output_config?.effort;
  const effort = wanted ? EFFORT[wanted] : undefined;
  const thinking = body.thinking;
  if (!thinking) return effort ? { enabled: true, effort } : undefined;
  // between_tools is thinking off: only Anthropic adds its progress notes (field-policy.ts).
  // Disabled: a model that reasons anyway (an OpenAI-compatible one) has it left out, as
  // Anthropic never answers thinking blocks then. between_tools' notes come back as thinking.
  if (thinking.type === 'disabled') return { enabled: false, exclude: true };
  if (thinking.type === 'between_tools') return { enabled: false };
  // display 'omitted': the blocks still come back, signed, and the renderer leaves their text out.
  const omitText = thinking.display === 'omitted' ? { omitText: true } : {};
  if (thinking.type === 'adaptive') return { enabled: true, effort: effort ?? 'medium', ...omitText };
  if (thinking.budget_tokens >= body.max_tokens) {
    throw badRequest('thinking.budget_tokens must be less than max_tokens', 'thinking.budget_tokens');
  }
  return { enabled: true, budgetTokens: thinking.budget_tokens, ...(effort ? { effort } : {}), ...omitText };
}

function responseFormat(body: MessagesRequest): ResponseFormat | undefined {
  const fromConfig = body.output_config?.format ? { type: 'json' as const, schema: body.output_config.format.schema } : undefined;
  const fromOutputFormat = body.output_format ? { type: 'json' as const, schema: body.output_format.schema } : undefined;
  const legacy = body.response_format;
  const fromLegacy = !legacy || legacy.type === 'text' ? undefined : legacy.type === 'json_object' ? { type: 'json' as const } : { type: 'json' as const, schema: legacy.schema };
  const given = [fromConfig, fromOutputFormat, fromLegacy].filter((f) => f !== undefined);
  if (given.some((f) => JSON.stringify(f) !== JSON.stringify(given[0]))) {
    const field = fromOutputFormat ? 'output_format' : 'response_format';
    throw badRequest(`output_config.format and the deprecated ${field} disagree; send only output_config.format`, field);
  }
  return given[0];
}

/** Every tool result must answer a tool call made earlier in the conversation. */
function checkToolRoundTrips(messages: Message[]): void {
  const orphan = unansweredToolResult(messages);
  if (orphan) {
    throw badRequest(`tool_result.tool_use_id '${orphan.toolCallId}' does not answer any earlier tool_use block`, 'messages', 'invalid_tool_result');
  }
}

/** Anthropic's own check, word for word: a model could not tell two tools of one name apart. */
function checkToolNamesUnique(tools: MessagesRequest['tools']): void {
  const names = (tools ?? []).flatMap((t) => ('name' in t && typeof t.name === 'string' ? [t.name] : []));
  if (firstRepeat(names) >= 0) throw badRequest('tools: Tool names must be unique.', 'tools');
}

type ToolChangeBlock = Extract<Block, { type: 'tool_addition' | 'tool_removal' }>;

/**
 * The inline-tools beta's tool changes, applied in order to the custom tools: an addition by
 * definition offers a new tool, one by reference offers again a tool withdrawn earlier (a tool of
 * `tools` is offered already), a removal withdraws one. The model sees the tools in effect at the
 * end of the conversation — what the turn being answered can call. MCP tools are chosen with
 * mcp_toolset configs instead (400 here).
 */
function offeredTools(tools: CustomToolParam[], messages: MessagesRequest['messages'], shown: boolean[]): CustomToolParam[] {
  const offered = [...tools];
  const known = new Map(tools.map((t) => [t.name, t]));
  for (const [i, message] of messages.entries()) {
    if (!shown[i] || !Array.isArray(message.content)) continue;
    for (const [j, item] of message.content.entries()) {
      if (item.type !== 'tool_addition' && item.type !== 'tool_removal') continue;
      const { type, tool } = item as ToolChangeBlock;
      const param = `messages[${i}].content[${j}].tool`;
      if (tool.type === 'mcp_tool_reference' || tool.type === 'mcp_toolset_reference') {
        throw badRequest('Tool changes of MCP tools are not supported here; choose them with mcp_toolset configs', param, 'unsupported_parameter');
      }
      if (tool.type === 'tool_definition') {
        const parsed = toolSchema.safeParse(tool.definition);
        if (!parsed.success) throw badRequest('A tool_definition here defines a custom tool: {name, input_schema, description?}', `${param}.definition`);
        if (known.has(parsed.data.name)) throw badRequest('tools: Tool names must be unique.', `${param}.definition.name`);
        known.set(parsed.data.name, parsed.data);
        offered.push(parsed.data);
        continue;
      }
      const named = known.get(tool.name);
      if (!named) throw badRequest(`'${tool.name}' is not a custom tool of this request`, `${param}.name`);
      const at = offered.indexOf(named);
      if (type === 'tool_addition' && at < 0) offered.push(named);
      if (type === 'tool_removal' && at >= 0) offered.splice(at, 1);
    }
  }
  return offered;
}

/**
 * Anthropic's rule, which every provider here is held to (an upstream given an empty turn answers
 * its own 400 about a conversation the client never sent): content is never empty, except the
 * final assistant message's, and a text block is never empty.
 */
function checkNonEmptyContent(messages: MessagesRequest['messages']): void {
  for (const [i, m] of messages.entries()) {
    if (m.role === 'system' || m.content === undefined || m.content === null) continue;
    const finalAssistant = m.role === 'assistant' && i === messages.length - 1;
    const empty = typeof m.content === 'string' ? m.content === '' : m.content.length === 0;
    if (empty && !finalAssistant) {
      throw badRequest('all messages must have non-empty content except for the optional final assistant message', `messages[${i}].content`);
    }
    if (typeof m.content === 'string') continue;
    const blank = m.content.findIndex((b) => b.type === 'text' && (b as { text?: unknown }).text === '');
    if (blank >= 0) throw badRequest('text content blocks must be non-empty', `messages[${i}].content[${blank}].text`);
  }
}

export async function parseMessagesRequest(body: MessagesRequest): Promise<ChatRequest> {
  checkNonEmptyContent(body.messages);
  const { shown, turnEffort } = systemMessageSettings(body.messages);
  const converted = await Promise.all(body.messages.map((m, i) => (shown[i] ? convertMessage(m, i) : [])));
  const messages = [...systemMessages(body.system), ...converted.flat()];
  checkToolRoundTrips(messages);
  if (!messages.some((m) => m.role !== 'system')) throw badRequest('messages needs at least one user or assistant message', 'messages');
  const reasoning = reasoningConfig(body, turnEffort);
  const budget = reasoning?.enabled ? reasoning.budgetTokens : undefined;
  // Anthropic's own tools (web search…) go to Anthropic as written; the core refuses them elsewhere.
  // MCP toolsets only choose the tools of an `mcp_servers` entry (mcp-servers.ts).
  checkToolNamesUnique(body.tools);
  const customTools = offeredTools((body.tools ?? []).filter(isCustomTool), body.messages, shown);
  const serverTools = (body.tools ?? []).filter(isServerTool);
  const disableParallel = body.tool_choice && 'disable_parallel_tool_use' in body.tool_choice ? body.tool_choice.disable_parallel_tool_use : undefined;
  const request: ChatRequest = {
    model: body.model,
    messages,
    // Anthropic's max_tokens includes the thinking budget; the canonical one is the answer alone.
    maxTokens: budget !== undefined ? body.max_tokens - budget : body.max_tokens,
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    minP: body.min_p,
    seed: body.seed,
    stop: body.stop_sequences?.length ? body.stop_sequences : undefined,
    presencePenalty: body.presence_penalty,
    frequencyPenalty: body.frequency_penalty,
    repetitionPenalty: body.repetition_penalty,
    tools: customTools.length ? customTools.map((t) => ({ name: t.name, description: t.description, parameters: t.input_schema, ...cacheControlOf(t), ...anthropicFieldsOf(t) })) : undefined,
    providerTools: serverTools.length ? serverTools.map((definition) => ({ provider: 'anthropic', definition })) : undefined,
    toolChoice: toolChoice(body.tool_choice, [...customTools, ...(body.tools ?? []).filter((t) => !isCustomTool(t))], Boolean(body.mcp_servers?.length)),
    parallelToolCalls: disableParallel === undefined ? undefined : !disableParallel,
    responseFormat: responseFormat(body),
    reasoning,
  };
  for (const key of Object.keys(request) as Array<keyof ChatRequest>) if (request[key] === undefined) delete request[key];
  return request;
}
