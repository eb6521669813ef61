// The canonical request and stream parts. Every dialect parses into ChatRequest and renders
// StreamPart sequences; every provider consumes ChatRequest and produces StreamPart sequences.
// Neither side knows the other exists.

export type JsonSchema = Record<string, unknown>;

export type MediaKind = 'image' | 'video' | 'document';

export interface TextPart {
  type: 'text';
  text: string;
  /** Anthropic-style prompt caching hint, passed through where a provider supports it. */
  cacheControl?: Record<string, unknown>;
  /** Sources the text cites (Anthropic citations, as returned), sent back where the provider takes them. */
  citations?: Array<Record<string, unknown>>;
  /** The block the part was read from, which that provider takes back as it was (see NativeBlock). */
  nativeBlock?: NativeBlock;
}

/**
 * A client's block in one provider's own format that the part renders for every other provider:
 * an Anthropic `search_result`, or a document asking for citations, reaches Anthropic as written
 * (so its answer can cite it) and other providers as the part's text or bytes.
 */
export interface NativeBlock {
  provider: string;
  block: Record<string, unknown>;
}

/** Image, video or document bytes (or an image URL the provider fetches itself). */
export interface MediaPart {
  type: MediaKind;
  /** IANA media type checked from the bytes, e.g. image/png, application/pdf. */
  mediaType: string;
  /** Raw bytes; absent only for remote image URLs. */
  data?: Uint8Array;
  url?: string;
  /** Optional label/file name (documents). */
  name?: string;
  /** OpenAI's image `detail` (its resolution, and so its token cost); other providers have none. */
  detail?: 'auto' | 'low' | 'high';
  cacheControl?: Record<string, unknown>;
  nativeBlock?: NativeBlock;
}

export interface ReasoningPart {
  type: 'reasoning';
  text: string;
  /** Provider signature proving the reasoning is unmodified (Anthropic thinking). */
  signature?: string;
  /** Opaque redacted reasoning payload, sent back unchanged. */
  redactedData?: string;
}

export interface ToolCallPart {
  type: 'tool-call';
  id: string;
  name: string;
  /** JSON text of the arguments object. */
  arguments: string;
  /** Set when the gateway itself executed the call (server tools, MCP). */
  serverExecuted?: { serverName?: string };
  cacheControl?: Record<string, unknown>;
}

export interface ToolResultPart {
  type: 'tool-result';
  toolCallId: string;
  name?: string;
  content: Array<TextPart | MediaPart>;
  isError?: boolean;
  cacheControl?: Record<string, unknown>;
}

/**
 * A block only one provider understands, kept verbatim both ways: Anthropic's server tool calls
 * and their results (web search, web fetch, code execution). The core refuses it for a model
 * that provider does not serve alone.
 */
export interface ProviderBlockPart {
  type: 'provider-block';
  provider: string;
  block: Record<string, unknown>;
}

export type ContentPart = TextPart | MediaPart | ReasoningPart | ToolCallPart | ToolResultPart | ProviderBlockPart;

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface Message {
  role: Role;
  content: ContentPart[];
  /** Author name (OpenAI `name`). */
  name?: string;
}

export interface ToolDefinition {
  name: string;
  description?: string;
  parameters: JsonSchema;
  /** Prompt caching hint: a breakpoint after this tool's definition (Anthropic, Bedrock). */
  cacheControl?: Record<string, unknown>;
  /** Fields of the tool only one provider reads, by provider name (Anthropic's defer_loading…); others offer the tool without them. */
  providerFields?: Record<string, Record<string, unknown>>;
}

export type ToolChoice =
  | { type: 'auto' }
  | { type: 'none' }
  | { type: 'required' }
  | { type: 'tool'; name: string };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json'; schema?: JsonSchema; name?: string; description?: string };

export type ReasoningEffort = 'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh' | 'max';

export interface ReasoningConfig {
  enabled: boolean;
  effort?: ReasoningEffort;
  budgetTokens?: number;
  /** Reason, but do not return the reasoning text to the client. */
  exclude?: boolean;
  /**
   * The client takes reasoning blocks with their signatures but without their text (Anthropic's
   * display "omitted"): a provider that can sign a block it sends no text for is asked to.
   */
  omitText?: boolean;
}

export interface ChatRequest {
  /** The model id or alias as the client wrote it. */
  model: string;
  messages: Message[];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  stop?: string[];
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  /** Number of independent choices (OpenAI `n`). */
  n?: number;
  tools?: ToolDefinition[];
  /**
   * Tools a provider defines or runs itself (Anthropic's `web_search_…`, `code_execution_…`),
   * sent verbatim to that provider only; the core refuses them for a model it does not serve alone.
   */
  providerTools?: Array<{ provider: string; definition: Record<string, unknown> }>;
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  reasoning?: ReasoningConfig;
  /** OpenAI's `logit_bias`: token id (the model's own tokenizer) → bias added to its logit, -100 (ban) to 100. */
  logitBias?: Record<string, number>;
  /** How long an answer to write (OpenAI's GPT-5 control): sent where the provider takes it. */
  verbosity?: 'low' | 'medium' | 'high';
  /**
   * Return each answer token's log-probability and the `top` most likely alternatives at its
   * position (OpenAI's `logprobs` / `top_logprobs`), on the text deltas.
   */
  logprobs?: { top: number };
  /**
   * The dialect reports the answer's mean token probability (seed 004's `confidence_score`). A
   * provider that pays for it per token (the local one, at temperature 0) computes it only then.
   */
  confidence?: boolean;
  /**
   * Anthropic beta flags the client asked for (its `anthropic-beta` header): sent by the providers
   * that serve Claude (Anthropic's header, Bedrock's `anthropic_beta`); others have no such flags.
   */
  anthropicBetas?: string[];
  /** Free-form, provider-specific pass-through options keyed by provider name. */
  providerOptions?: Record<string, Record<string, unknown>>;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  /** Of cacheWriteTokens, those written to a 1-hour cache (Anthropic bills them at 2× input, not 1.25×). */
  cacheWrite1hTokens?: number;
  reasoningTokens?: number;
  /** Requests of tools the provider ran itself, by kind (Anthropic's `web_search_requests`…). */
  serverToolUse?: Record<string, number>;
}

/** One generated token's log-probability, with the most likely tokens at its position. */
export interface TokenLogprob {
  token: string;
  /** Natural log of its probability; -9999 where it is too unlikely to say (OpenAI's convention). */
  logprob: number;
  /** The token's UTF-8 bytes; null where they are not known (a token holding part of a character). */
  bytes: number[] | null;
  /** Most likely first; may hold fewer than asked for. */
  top: Array<{ token: string; logprob: number; bytes: number[] | null }>;
}

/** 'pause': the provider paused a long turn of its own tools; send the answer back to go on (Anthropic pause_turn). */
export type FinishReason = 'stop' | 'length' | 'tool-calls' | 'content-filter' | 'pause' | 'error' | 'other';

/**
 * Typed stream parts. Text, reasoning and tool input come as start/delta/end triples keyed by
 * `id`, so renderers can translate partial tool arguments without guessing. `choice` is the
 * index of the completion when n > 1 (absent means 0).
 */
export type StreamPart =
  // `usage`: what is known when the response starts (the prompt's tokens), where the provider
  // knows it then; the finish part's usage is the total either way.
  | { type: 'start'; model?: string; responseId?: string; choice?: number; usage?: Usage }
  // `refusal`: the block is the model's refusal (OpenAI's `refusal` field), not its answer.
  | { type: 'text-start'; id: string; choice?: number; refusal?: boolean }
  // `logprobs`: the tokens whose text this delta (first) carries, when the request asked for them.
  | { type: 'text-delta'; id: string; delta: string; choice?: number; logprobs?: TokenLogprob[] }
  | { type: 'text-end'; id: string; choice?: number }
  /** A source the open text block `id` cites (an Anthropic citation object, as the provider sent it). */
  | { type: 'text-citation'; id: string; citation: Record<string, unknown>; choice?: number }
  /** A whole provider-only block (see ProviderBlockPart), emitted when it is complete. */
  | { type: 'provider-block'; provider: string; block: Record<string, unknown>; choice?: number }
  | { type: 'reasoning-start'; id: string; choice?: number; redactedData?: string }
  | { type: 'reasoning-delta'; id: string; delta: string; choice?: number }
  | { type: 'reasoning-end'; id: string; signature?: string; choice?: number }
  | { type: 'tool-input-start'; id: string; toolName: string; choice?: number; serverExecuted?: { serverName?: string } }
  | { type: 'tool-input-delta'; id: string; delta: string; choice?: number }
  | { type: 'tool-input-end'; id: string; choice?: number }
  /** Result of a tool the gateway executed itself (auto-execute, MCP). */
  | { type: 'tool-result'; toolCallId: string; toolName: string; result: unknown; isError?: boolean; choice?: number; extra?: Record<string, unknown> }
  | {
      type: 'finish';
      finishReason: FinishReason;
      usage: Usage;
      /** Mean probability (0..1) of the generated tokens, when the provider exposes it. */
      meanTokenProbability?: number;
      /**
       * The request's stop sequence that ended this choice (finishReason 'stop'); null when one
       * did but the upstream did not say which. Absent when no stop sequence ended it.
       */
      stopSequence?: string | null;
      /** Why the provider stopped, in its own terms (Anthropic's `stop_details` of a refusal). */
      stopDetails?: Record<string, unknown>;
      /** finishReason 'length' because the model's context filled, not max_tokens (Anthropic tells them apart). */
      contextFull?: boolean;
      choice?: number;
      /** Raw upstream response, for dialects that can show it (Eden show_original_response). */
      rawResponse?: unknown;
    }
  // `usage`: what the failed call was billed, when it is known (an answer refused after it finished).
  | { type: 'error'; error: unknown; choice?: number; usage?: Usage };

export type StreamPartType = StreamPart['type'];

/**
 * A token count from an upstream's answer, or undefined when it is not one (a string, a negative
 * or fractional number…): providers read counts through this, so a malformed usage object costs
 * the request its counts, never the accounting (metrics, cost, the request log) its numbers.
 */
export function tokenCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

export function emptyUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, totalTokens: 0 };
}

export function addUsage(a: Usage, b: Usage): Usage {
  const sum = (x?: number, y?: number) => (x === undefined && y === undefined ? undefined : (x ?? 0) + (y ?? 0));
  const out: Usage = {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
  const cacheRead = sum(a.cacheReadTokens, b.cacheReadTokens);
  const cacheWrite = sum(a.cacheWriteTokens, b.cacheWriteTokens);
  const cacheWrite1h = sum(a.cacheWrite1hTokens, b.cacheWrite1hTokens);
  const reasoning = sum(a.reasoningTokens, b.reasoningTokens);
  if (cacheRead !== undefined) out.cacheReadTokens = cacheRead;
  if (cacheWrite !== undefined) out.cacheWriteTokens = cacheWrite;
  if (cacheWrite1h !== undefined) out.cacheWrite1hTokens = cacheWrite1h;
  if (reasoning !== undefined) out.reasoningTokens = reasoning;
  if (a.serverToolUse || b.serverToolUse) out.serverToolUse = addCounts({ ...a.serverToolUse }, b.serverToolUse);
  return out;
}

/** Adds counts by kind (server tool requests…) into `into`, which it returns. */
export function addCounts(into: Record<string, number>, counts: Record<string, number> | undefined): Record<string, number> {
  for (const [kind, count] of Object.entries(counts ?? {})) into[kind] = (into[kind] ?? 0) + count;
  return into;
}

/** Adds one choice's usage to a response total: the prompt is shared by all choices, so it counts once. */
export function addChoiceUsage(total: Usage, choice: Usage): Usage {
  const summed = addUsage(total, { ...choice, inputTokens: 0, totalTokens: choice.outputTokens });
  summed.inputTokens = Math.max(total.inputTokens, choice.inputTokens);
  summed.totalTokens = summed.inputTokens + summed.outputTokens;
  return summed;
}

/**
 * The first tool result that answers no earlier tool call, with its message index; each dialect
 * words the refusal in its own terms.
 */
export function unansweredToolResult(messages: Message[]): { index: number; toolCallId: string } | undefined {
  const calls = new Set<string>();
  for (const [index, message] of messages.entries()) {
    for (const part of message.content) {
      if (part.type === 'tool-call') calls.add(part.id);
      if (part.type === 'tool-result' && !calls.has(part.toolCallId)) return { index, toolCallId: part.toolCallId };
    }
  }
  return undefined;
}

/**
 * Whether the caller's tool choice forces a tool (`required`, or a named one) on a request that
 * has tools to force: its own, or `provider`'s server tools. Claude refuses that with thinking on.
 */
export function forcesToolCall(request: ChatRequest, provider: string): boolean {
  const type = request.toolChoice?.type;
  if (type !== 'required' && type !== 'tool') return false;
  return (request.tools?.length ?? 0) > 0 || (request.providerTools ?? []).some((t) => t.provider === provider);
}

/** Stop sequences with a non-whitespace character: Claude refuses the others. */
export function nonBlankStopSequences(stop: string[] | undefined): string[] {
  return (stop ?? []).filter((s) => /\S/.test(s));
}

/** Text of all text parts of a message, joined. */
export function messageText(message: Message): string {
  return message.content
    .filter((p): p is TextPart => p.type === 'text')
    .map((p) => p.text)
    .join('');
}
