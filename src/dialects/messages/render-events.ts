// Canonical parts → Anthropic Messages stream events (message_start, content_block_*,
// message_delta, message_stop) and the buffered Message they add up to.
//
// Anthropic streams one content block at a time; canonical parts may interleave blocks (two tool
// calls whose argument fragments alternate). The renderer streams the oldest open block live and
// buffers the others, releasing each in order once the blocks before it have stopped.

import { GatewayError } from '../../core/errors.js';
import type { FinishReason, StreamPart, Usage } from '../../core/types.js';
import { addUsage, emptyUsage } from '../../core/types.js';
import { anthropicErrorBody } from './errors.js';
import type { FallbackPart, MessagesPart } from './fallbacks.js';

export interface MessageEvent {
  event: string;
  data: Record<string, unknown>;
}

/**
 * The event's data as JSON text, what JSON.stringify(event.data) gives. A content_block_delta, the
 * event of nearly every token, is written from a template: stringifying its nested object was the
 * largest share of the Messages route's own CPU per streamed token.
 */
export function eventJson(event: MessageEvent): string {
  const data = event.data;
  if (data.type !== 'content_block_delta') return JSON.stringify(data);
  const delta = data.delta as { type: string; text?: unknown };
  const deltaJson = delta.type === 'text_delta' ? `{"type":"text_delta","text":${JSON.stringify(delta.text)}}` : JSON.stringify(delta);
  return `{"type":"content_block_delta","index":${data.index as number},"delta":${deltaJson}}`;
}

export interface MessageMeta {
  id: string;
  model: string;
  /** thinking.display 'omitted': thinking blocks carry their signature but no text. */
  omitThinking: boolean;
}

export type AnthropicStopReason = 'end_turn' | 'max_tokens' | 'model_context_window_exceeded' | 'stop_sequence' | 'tool_use' | 'pause_turn' | 'refusal' | 'compaction';

/** `stopSequence`: set when one of the request's stop sequences ended the message (see the finish part). */
export function mapStopReason(reason: FinishReason, stopSequence?: string | null, contextFull = false): AnthropicStopReason {
  if (reason === 'stop' && stopSequence !== undefined) return 'stop_sequence';
  switch (reason) {
    case 'length':
      // The context filled before max_tokens did: clients compact the conversation, not raise max_tokens.
      return contextFull ? 'model_context_window_exceeded' : 'max_tokens';
    case 'tool-calls':
      return 'tool_use';
    case 'content-filter':
      return 'refusal';
    case 'pause':
      return 'pause_turn';
    default:
      return 'end_turn';
  }
}

/** Anthropic's Usage, every field its SDK's types require (null where the gateway cannot say). */
export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number | null;
  cache_read_input_tokens: number | null;
  /** Cache writes by TTL, where the provider said (Anthropic). */
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number } | null;
  inference_geo: null;
  output_tokens_details: { thinking_tokens: number } | null;
  /** Requests of Anthropic's server tools (web search…), when any ran. */
  server_tool_use: Record<string, number> | null;
  service_tier: 'standard';
  speed: null;
}

/** Anthropic's input_tokens leave out cache reads and writes; the canonical count includes them. */
export function renderUsage(usage: Usage): AnthropicUsage {
  const cacheRead = usage.cacheReadTokens;
  const cacheWrite = usage.cacheWriteTokens;
  return {
    input_tokens: Math.max(0, usage.inputTokens - (cacheRead ?? 0) - (cacheWrite ?? 0)),
    output_tokens: usage.outputTokens,
    cache_creation_input_tokens: cacheWrite ?? null,
    cache_read_input_tokens: cacheRead ?? null,
    cache_creation:
      cacheWrite !== undefined && usage.cacheWrite1hTokens !== undefined
        ? { ephemeral_5m_input_tokens: cacheWrite - usage.cacheWrite1hTokens, ephemeral_1h_input_tokens: usage.cacheWrite1hTokens }
        : null,
    inference_geo: null,
    output_tokens_details: usage.reasoningTokens !== undefined ? { thinking_tokens: usage.reasoningTokens } : null,
    // Both counts, as the type has them (the provider reports only those that ran).
    server_tool_use: usage.serverToolUse ? { web_search_requests: 0, web_fetch_requests: 0, ...usage.serverToolUse } : null,
    service_tier: 'standard',
    speed: null,
  };
}

/** An entry of usage.iterations: one model's part of a response a fallback served, or a compaction. */
function iteration(type: 'message' | 'fallback_message' | 'compaction', model: string | undefined, usage: Usage): Record<string, unknown> {
  const rendered = renderUsage(usage);
  return {
    type,
    ...(model === undefined ? {} : { model }),
    input_tokens: rendered.input_tokens,
    output_tokens: rendered.output_tokens,
    cache_creation_input_tokens: rendered.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: rendered.cache_read_input_tokens ?? 0,
    cache_creation: null,
  };
}

type BlockKind = 'text' | 'thinking' | 'redacted_thinking' | 'tool_use' | 'mcp_tool_use' | 'mcp_tool_result' | 'server' | 'compaction';

interface Block {
  kind: BlockKind;
  id: string;
  name?: string;
  serverName?: string;
  text: string;
  signature?: string;
  redactedData?: string;
  result?: { value: unknown; isError?: boolean };
  toolUseId?: string;
  /** Sources a text block cites (citations_delta). */
  citations?: Array<Record<string, unknown>>;
  /** A compaction's summary (null: none was produced). */
  summary?: string | null;
  /** A server tool's block (server_tool_use, web_search_tool_result…), sent whole as the provider gave it. */
  serverBlock?: Record<string, unknown>;
  /** Deltas not yet sent because an earlier block is still streaming. */
  pending: Record<string, unknown>[];
  ended: boolean;
  index?: number;
  stopped: boolean;
}

function parseInput(json: string): unknown {
  if (!json.trim()) return {};
  try {
    return JSON.parse(json);
  } catch {
    return {};
  }
}

/**
 * A tool_use block's input is a JSON object (Anthropic's guarantee, which clients rely on): an
 * upstream's call whose arguments are not one is the upstream's fault, a 502 or an in-stream
 * error, never a call with different input.
 */
function checkToolInput(block: Block): void {
  if (!block.text.trim()) return;
  let input: unknown;
  try {
    input = JSON.parse(block.text);
  } catch {
    input = undefined;
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new GatewayError('upstream_invalid', `The model's call of the tool '${block.name}' has arguments that are not a JSON object: ${JSON.stringify(block.text.slice(0, 200))}`, { code: 'invalid_tool_arguments' });
  }
}

/** A server-run tool's result as mcp_tool_result content: its text when it has one, else JSON. */
function resultContent(value: unknown): Array<{ type: 'text'; text: string }> {
  if (typeof value === 'string') return [{ type: 'text', text: value }];
  const record = value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  if (record && Object.keys(record).length === 1 && typeof (record.text ?? record.error) === 'string') {
    return [{ type: 'text', text: String(record.text ?? record.error) }];
  }
  if (Array.isArray(value) && value.every((v) => v && typeof v === 'object' && (v as { type?: unknown }).type === 'text')) {
    return value as Array<{ type: 'text'; text: string }>;
  }
  return [{ type: 'text', text: JSON.stringify(value) }];
}

export class MessageEventRenderer {
  private readonly blocks: Block[] = [];
  private readonly byId = new Map<string, Block>();
  /** Index in `blocks` of the block streaming now. */
  private cursor = 0;
  private nextIndex = 0;
  private usage: Usage = emptyUsage();
  private finishReason: FinishReason | undefined;
  private stopSequence: string | null | undefined;
  private stopDetails: Record<string, unknown> | undefined;
  private contextFull = false;
  private ended = false;
  /** The model serving now: the requested one, or the fallback that took over. */
  private model: string;
  /** The response is a compaction (compaction.ts): its stop_reason says so. */
  private compacted = false;
  /** Models that declined before the one serving now, with what they used. */
  private readonly declined: Array<{ model: string; usage: Usage }> = [];
  private declinedUsage: Usage = emptyUsage();
  /** What an autocompact's summary call used (the answer's usage is `usage`). */
  private compactionUsage?: Usage;

  constructor(private readonly meta: MessageMeta) {
    this.model = meta.model;
  }

  /**
   * message_start (empty content, the usage known at the start: the prompt's tokens where the
   * provider knows them then) and a ping, as Anthropic opens every stream.
   */
  begin(usage: Usage = emptyUsage()): MessageEvent[] {
    return [
      {
        event: 'message_start',
        data: {
          type: 'message_start',
          message: {
            id: this.meta.id,
            type: 'message',
            role: 'assistant',
            model: this.meta.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            stop_details: null,
            container: null,
            diagnostics: null,
            usage: renderUsage(usage),
          },
        },
      },
      { event: 'ping', data: { type: 'ping' } },
    ];
  }

  push(part: MessagesPart): MessageEvent[] {
    const out: MessageEvent[] = [];
    switch (part.type) {
      case 'fallback':
        this.handOver(part, out);
        break;
      case 'compaction': {
        // Start, one delta with the final value (as Anthropic's compaction_delta carries it), stop.
        // An autocompact's answer follows: its stop_reason stands, the summary's usage is apart.
        if (part.continues) this.compactionUsage = part.continues.usage;
        else this.compacted = true;
        const block = this.open({ kind: 'compaction', id: `compaction:${this.blocks.length}` }, out);
        this.delta(block, { type: 'compaction_delta', content: part.summary, encrypted_content: null }, out, (b) => (b.summary = part.summary));
        this.endBlock(block.id, out);
        break;
      }
      case 'text-start':
        this.open({ kind: 'text', id: `text:${part.id}` }, out);
        break;
      case 'text-delta':
        if (!part.delta) break;
        this.delta(this.ensure('text', `text:${part.id}`, out), { type: 'text_delta', text: part.delta }, out, (b) => (b.text += part.delta));
        break;
      case 'text-end':
        this.endBlock(`text:${part.id}`, out);
        break;
      case 'text-citation': {
        const block = this.ensure('text', `text:${part.id}`, out);
        this.delta(block, { type: 'citations_delta', citation: part.citation }, out, (b) => (b.citations ??= []).push(part.citation));
        break;
      }
      case 'provider-block': {
        if (part.provider !== 'anthropic') break;
        const id = `server:${this.blocks.length}`;
        this.open({ kind: 'server', id, serverBlock: part.block }, out);
        this.endBlock(id, out);
        break;
      }
      case 'reasoning-start':
        if (part.redactedData !== undefined) this.open({ kind: 'redacted_thinking', id: `reasoning:${part.id}`, redactedData: part.redactedData }, out);
        else this.open({ kind: 'thinking', id: `reasoning:${part.id}` }, out);
        break;
      case 'reasoning-delta': {
        const block = this.ensure('thinking', `reasoning:${part.id}`, out);
        if (block.kind !== 'thinking' || !part.delta) break;
        if (this.meta.omitThinking) block.text += part.delta;
        else this.delta(block, { type: 'thinking_delta', thinking: part.delta }, out, (b) => (b.text += part.delta));
        break;
      }
      case 'reasoning-end': {
        const block = this.byId.get(`reasoning:${part.id}`);
        if (block?.kind === 'thinking' && part.signature) {
          this.delta(block, { type: 'signature_delta', signature: part.signature }, out, (b) => (b.signature = part.signature));
        }
        this.endBlock(`reasoning:${part.id}`, out);
        break;
      }
      case 'tool-input-start':
        this.open(
          part.serverExecuted
            ? { kind: 'mcp_tool_use', id: `tool:${part.id}`, name: part.toolName, serverName: part.serverExecuted.serverName ?? '' }
            : { kind: 'tool_use', id: `tool:${part.id}`, name: part.toolName },
          out,
        );
        break;
      case 'tool-input-delta': {
        const block = this.byId.get(`tool:${part.id}`);
        if (!block || !part.delta) break;
        // MCP tool use is sent whole (input in content_block_start), as Anthropic does.
        if (block.kind === 'mcp_tool_use') block.text += part.delta;
        else this.delta(block, { type: 'input_json_delta', partial_json: part.delta }, out, (b) => (b.text += part.delta));
        break;
      }
      case 'tool-input-end': {
        const block = this.byId.get(`tool:${part.id}`);
        if (block?.kind === 'tool_use') checkToolInput(block);
        this.endBlock(`tool:${part.id}`, out);
        break;
      }
      case 'tool-result': {
        const id = `result:${this.blocks.length}`;
        this.open({ kind: 'mcp_tool_result', id, toolUseId: part.toolCallId, result: { value: part.result, isError: part.isError } }, out);
        this.endBlock(id, out);
        break;
      }
      case 'finish':
        this.finishReason = part.finishReason;
        this.stopSequence = part.stopSequence;
        this.contextFull = part.contextFull === true;
        this.stopDetails = part.stopDetails;
        this.usage = addUsage(this.usage, part.usage);
        break;
      default:
        break;
    }
    return out;
  }

  /**
   * The declining model's blocks end where it stopped; a `fallback` block (start and stop, no
   * deltas, as Anthropic streams it) marks the boundary; what follows is the next model's.
   */
  private handOver(part: FallbackPart, out: MessageEvent[]): void {
    for (const block of this.blocks) block.ended = true;
    this.advance(out);
    this.declined.push({ model: part.from, usage: part.refusedUsage });
    this.declinedUsage = addUsage(this.declinedUsage, part.refusedUsage);
    const id = `fallback:${this.blocks.length}`;
    const boundary = { type: 'fallback', from: { model: part.from }, to: { model: part.to }, trigger: { type: 'refusal', category: part.category ?? null } };
    this.open({ kind: 'server', id, serverBlock: boundary }, out);
    this.endBlock(id, out);
    // The next model's part ids may repeat the last one's: its blocks are new ones.
    this.byId.clear();
    this.model = part.to;
    this.usage = emptyUsage();
    this.finishReason = undefined;
    this.stopSequence = undefined;
    this.stopDetails = undefined;
    this.contextFull = false;
  }

  /** Anthropic's usage; with a fallback, the serving model's, and every model's in `iterations`. */
  private renderedUsage(): Record<string, unknown> {
    const usage: Record<string, unknown> = { ...renderUsage(this.usage) };
    if (this.compacted) usage.iterations = [iteration('compaction', undefined, this.usage)];
    if (this.compactionUsage) usage.iterations = [iteration('compaction', undefined, this.compactionUsage), iteration('message', this.model, this.usage)];
    if (this.declined.length) {
      usage.iterations = [...this.declined.map((d) => iteration('message', d.model, d.usage)), iteration('fallback_message', this.model, this.usage)];
    }
    return usage;
  }

  /** Closes what is open, then message_delta (stop_reason, usage) and message_stop. */
  end(): MessageEvent[] {
    const events: MessageEvent[] = [];
    if (this.ended) return events;
    this.ended = true;
    for (const block of this.blocks) block.ended = true;
    this.advance(events);
    events.push({
      event: 'message_delta',
      data: {
        type: 'message_delta',
        delta: {
          stop_reason: this.stopReason(),
          stop_sequence: this.stopSequence ?? null,
          stop_details: this.stopDetails ?? null,
          container: null,
        },
        usage: this.renderedUsage(),
      },
    });
    events.push({ event: 'message_stop', data: { type: 'message_stop' } });
    return events;
  }

  /** The in-stream error event a failure after the first byte ends with. */
  fail(error: GatewayError, requestId?: string): MessageEvent[] {
    this.ended = true;
    return [{ event: 'error', data: anthropicErrorBody(error, requestId) as unknown as Record<string, unknown> }];
  }

  /** Every model's usage together (a fallback's included): what the response cost. */
  get totalUsage(): Usage {
    return addUsage(addUsage(this.declinedUsage, this.compactionUsage ?? emptyUsage()), this.usage);
  }

  /** The buffered Message these parts add up to. */
  message(): Record<string, unknown> {
    const content = this.blocks.map((b) => this.blockObject(b, true)).filter((b): b is Record<string, unknown> => b !== undefined);
    return {
      id: this.meta.id,
      type: 'message',
      role: 'assistant',
      model: this.model,
      content,
      stop_reason: this.stopReason(),
      stop_sequence: this.stopSequence ?? null,
      stop_details: this.stopDetails ?? null,
      container: null,
      diagnostics: null,
      usage: this.renderedUsage(),
    };
  }

  private stopReason(): AnthropicStopReason {
    return this.compacted ? 'compaction' : mapStopReason(this.finishReason ?? 'stop', this.stopSequence, this.contextFull);
  }

  private endBlock(id: string, out: MessageEvent[]): void {
    const block = this.byId.get(id);
    if (block) block.ended = true;
    this.advance(out);
  }

  private open(init: Pick<Block, 'kind' | 'id'> & Partial<Block>, out: MessageEvent[]): Block {
    const block: Block = { text: '', pending: [], ended: false, stopped: false, ...init };
    this.blocks.push(block);
    this.byId.set(block.id, block);
    this.advance(out);
    return block;
  }

  /** A delta without its start part still opens a block (some providers skip the start). */
  private ensure(kind: BlockKind, id: string, out: MessageEvent[]): Block {
    return this.byId.get(id) ?? this.open({ kind, id }, out);
  }

  private delta(block: Block, delta: Record<string, unknown>, out: MessageEvent[], apply: (b: Block) => void): void {
    apply(block);
    if (block.index !== undefined) out.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: block.index, delta } });
    else {
      block.pending.push(delta);
      this.advance(out);
    }
  }

  /** Whether a block can be announced now: whole-block kinds wait for their end, text for content. */
  private ready(block: Block): boolean {
    if (block.kind === 'mcp_tool_use') return block.ended;
    if (block.kind === 'text') return block.ended || block.text.length > 0 || block.citations !== undefined;
    return true;
  }

  private advance(out: MessageEvent[]): void {
    while (this.cursor < this.blocks.length) {
      const block = this.blocks[this.cursor]!;
      if (block.index === undefined) {
        if (!this.ready(block)) return;
        if (block.kind === 'text' && block.text.length === 0 && !block.citations) {
          // An empty text block is left out, as Anthropic never sends one.
          block.stopped = true;
          this.cursor++;
          continue;
        }
        block.index = this.nextIndex++;
        out.push({ event: 'content_block_start', data: { type: 'content_block_start', index: block.index, content_block: this.blockObject(block, false) } });
        for (const delta of block.pending) out.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: block.index, delta } });
        block.pending = [];
      }
      if (!block.ended) return;
      block.stopped = true;
      out.push({ event: 'content_block_stop', data: { type: 'content_block_stop', index: block.index } });
      this.cursor++;
    }
  }

  /** The block as content_block_start announces it (`whole` false) or as the final Message holds it. */
  private blockObject(block: Block, whole: boolean): Record<string, unknown> | undefined {
    switch (block.kind) {
      case 'text': {
        if (whole && block.text.length === 0 && !block.citations) return undefined;
        // A citing block starts with `citations: []` and fills it with citations_delta, as Anthropic's do.
        return { type: 'text', text: whole ? block.text : '', citations: block.citations ? (whole ? block.citations : []) : null };
      }
      case 'thinking':
        return { type: 'thinking', thinking: whole && !this.meta.omitThinking ? block.text : '', signature: whole ? (block.signature ?? '') : '' };
      case 'redacted_thinking':
        return { type: 'redacted_thinking', data: block.redactedData ?? '' };
      case 'tool_use':
        // The model's own call (`caller`, which Anthropic's blocks carry).
        return { type: 'tool_use', id: block.id.slice('tool:'.length), name: block.name, input: whole ? parseInput(block.text) : {}, caller: { type: 'direct' } };
      case 'mcp_tool_use':
        return { type: 'mcp_tool_use', id: block.id.slice('tool:'.length), name: block.name, server_name: block.serverName, input: parseInput(block.text) };
      case 'mcp_tool_result': {
        return { type: 'mcp_tool_result', tool_use_id: block.toolUseId, is_error: block.result?.isError ?? false, content: resultContent(block.result?.value) };
      }
      case 'server':
        return block.serverBlock;
      case 'compaction':
        return { type: 'compaction', content: whole ? (block.summary ?? null) : null, encrypted_content: null };
    }
  }
}
