// Anthropic server-sent events → canonical stream parts, one event at a time.
//
// Shaped like a TransformStream: `transform(event, emit)` for each parsed event, `flush(emit)`
// when the body ends. A small tracker per content block index remembers what the block is
// (text, thinking, tool input, the emulated JSON answer) and what it has accumulated.
//
//   message_start                     → start (model, responseId); usage so far
//   content_block_start text          → text-start            (id = text-<block index>)
//   content_block_start thinking      → reasoning-start       (id = reasoning-<block index>)
//   content_block_start redacted_thinking → reasoning-start {redactedData}
//   content_block_start tool_use      → tool-input-start      (id = tool_use id)
//   text_delta / thinking_delta / input_json_delta → text- / reasoning- / tool-input-delta
//   signature_delta                   → kept, emitted on reasoning-end.signature
//   content_block_stop                → text-end / reasoning-end / tool-input-end
//   message_delta                     → stop_reason, cumulative usage
//   message_stop                      → finish (the stream is complete)
//   ping                              → nothing
//   error                             → thrown GatewayError (mapped by error type)
// A body that ends before message_stop is an `upstream_invalid` error, never a silent finish.

import { GatewayError, unreadableUpstreamEvent } from '../../core/errors.js';
import type { StreamPart } from '../../core/types.js';
import type { AnthropicContentBlockStart, AnthropicStreamEvent, AnthropicUsage } from './api.js';
import { anthropicError } from './errors.js';
import type { JsonResponseTool } from './prepare-tools.js';
import { convertAnthropicUsage, mergeAnthropicUsage } from './convert-usage.js';
import { mapAnthropicFinishReason } from './map-finish-reason.js';

type Emit = (part: StreamPart) => void;

type BlockState =
  | { kind: 'text'; id: string }
  | { kind: 'reasoning'; id: string; signature?: string }
  | { kind: 'tool'; id: string; args: string; initialInput?: unknown }
  | { kind: 'json'; id: string; args: string; wrapped: boolean; initialInput?: unknown }
  /** A server tool's call or result (or a block type this converter does not know): passed on whole. */
  | { kind: 'server'; block: Record<string, unknown>; args: string }
  | { kind: 'ignored' };

export interface AnthropicStreamOptions {
  /** The emulated structured-output tool, when responseFormat json is emulated. */
  jsonTool?: JsonResponseTool;
  /** reasoning.exclude: the model thinks, the caller gets no reasoning parts. */
  excludeReasoning?: boolean;
}

function nonEmptyInput(input: unknown): boolean {
  return input !== undefined && input !== null && !(typeof input === 'object' && Object.keys(input as object).length === 0);
}

export class AnthropicStreamConverter {
  private readonly blocks = new Map<number, BlockState>();
  private usage: AnthropicUsage = {};
  private stopReason: string | null | undefined;
  private stopSequence: string | null = null;
  private stopDetails: Record<string, unknown> | undefined;
  private userToolCalls = 0;
  private jsonAnswered = false;
  private started = false;
  private done = false;

  constructor(private readonly options: AnthropicStreamOptions = {}) {}

  /** True once message_stop has been seen and `finish` emitted. */
  get finished(): boolean {
    return this.done;
  }

  transform(event: AnthropicStreamEvent, emit: Emit): void {
    if (this.done) return;
    try {
      this.transformEvent(event, emit);
    } catch (err) {
      throw unreadableUpstreamEvent(err, 'anthropic', `Anthropic's ${typeof event?.type === 'string' ? event.type : 'untyped'} event`);
    }
  }

  private transformEvent(event: AnthropicStreamEvent, emit: Emit): void {
    switch (event.type) {
      case 'message_start': {
        this.usage = mergeAnthropicUsage(this.usage, event.message.usage);
        if (!this.started) {
          this.started = true;
          emit({ type: 'start', model: event.message.model, responseId: event.message.id, usage: convertAnthropicUsage(this.usage) });
        }
        break;
      }
      case 'content_block_start':
        this.startBlock(event.index, event.content_block, emit);
        break;
      case 'content_block_delta':
        this.delta(event, emit);
        break;
      case 'content_block_stop':
        this.stopBlock(event.index, emit);
        break;
      case 'message_delta':
        if (event.delta.stop_reason !== undefined) this.stopReason = event.delta.stop_reason;
        if (typeof event.delta.stop_sequence === 'string') this.stopSequence = event.delta.stop_sequence;
        if (event.delta.stop_details && typeof event.delta.stop_details === 'object') this.stopDetails = event.delta.stop_details;
        this.usage = mergeAnthropicUsage(this.usage, event.usage);
        break;
      case 'message_stop':
        for (const index of [...this.blocks.keys()]) this.stopBlock(index, emit);
        this.done = true;
        emit({
          type: 'finish',
          finishReason: mapAnthropicFinishReason(this.stopReason, { jsonAnswered: this.jsonAnswered && this.userToolCalls === 0 }),
          usage: convertAnthropicUsage(this.usage),
          ...(this.stopReason === 'stop_sequence' ? { stopSequence: this.stopSequence } : {}),
          ...(this.stopDetails ? { stopDetails: this.stopDetails } : {}),
          ...(this.stopReason === 'model_context_window_exceeded' ? { contextFull: true } : {}),
        });
        break;
      case 'error':
        throw anthropicError(event.error?.type, event.error?.message ?? 'unknown error');
      case 'ping':
      default:
        break;
    }
  }

  /** The body ended. Without message_stop the response is incomplete: that is an error. */
  flush(): void {
    if (this.done) return;
    throw new GatewayError('upstream_invalid', 'The Anthropic stream ended before message_stop (truncated response)', {
      provider: 'anthropic',
      code: 'upstream_truncated',
      retryable: true,
    });
  }

  private startBlock(index: number, block: AnthropicContentBlockStart, emit: Emit): void {
    if (this.blocks.has(index)) return;
    const textId = `text-${index}`;
    const reasoningId = `reasoning-${index}`;
    switch (block.type) {
      case 'text': {
        if (this.options.jsonTool) {
          // Emulated JSON: the answer is the tool input; free text around it is not the answer.
          this.blocks.set(index, { kind: 'ignored' });
          return;
        }
        this.blocks.set(index, { kind: 'text', id: textId });
        emit({ type: 'text-start', id: textId });
        const text = (block as { text?: string }).text;
        if (text) emit({ type: 'text-delta', id: textId, delta: text });
        return;
      }
      case 'thinking': {
        if (this.options.excludeReasoning) {
          this.blocks.set(index, { kind: 'ignored' });
          return;
        }
        const b = block as { thinking?: string; signature?: string };
        this.blocks.set(index, { kind: 'reasoning', id: reasoningId, signature: b.signature || undefined });
        emit({ type: 'reasoning-start', id: reasoningId });
        if (b.thinking) emit({ type: 'reasoning-delta', id: reasoningId, delta: b.thinking });
        return;
      }
      case 'redacted_thinking': {
        if (this.options.excludeReasoning) {
          this.blocks.set(index, { kind: 'ignored' });
          return;
        }
        this.blocks.set(index, { kind: 'reasoning', id: reasoningId });
        emit({ type: 'reasoning-start', id: reasoningId, redactedData: (block as { data: string }).data });
        return;
      }
      case 'tool_use': {
        const b = block as { id: string; name: string; input?: unknown };
        const jsonTool = this.options.jsonTool;
        if (jsonTool && b.name === jsonTool.name) {
          this.jsonAnswered = true;
          this.blocks.set(index, { kind: 'json', id: textId, args: '', wrapped: jsonTool.wrapped, initialInput: b.input });
          emit({ type: 'text-start', id: textId });
          return;
        }
        this.userToolCalls++;
        this.blocks.set(index, { kind: 'tool', id: b.id, args: '', initialInput: b.input });
        emit({ type: 'tool-input-start', id: b.id, toolName: b.name });
        return;
      }
      default:
        // server_tool_use, web_search_tool_result…: Anthropic's own tools, run upstream.
        this.blocks.set(index, { kind: 'server', block: { ...block }, args: '' });
    }
  }

  private delta(event: Extract<AnthropicStreamEvent, { type: 'content_block_delta' }>, emit: Emit): void {
    const state = this.blocks.get(event.index);
    if (!state || state.kind === 'ignored') return;
    const d = event.delta;
    switch (d.type) {
      case 'text_delta':
        if (state.kind === 'text' && d.text) emit({ type: 'text-delta', id: state.id, delta: d.text });
        break;
      case 'thinking_delta':
        if (state.kind === 'reasoning' && d.thinking) emit({ type: 'reasoning-delta', id: state.id, delta: d.thinking });
        break;
      case 'signature_delta':
        if (state.kind === 'reasoning') state.signature = (state.signature ?? '') + d.signature;
        break;
      case 'input_json_delta':
        if (!d.partial_json) break;
        if (state.kind === 'server') state.args += d.partial_json;
        else if (state.kind === 'tool') {
          state.args += d.partial_json;
          emit({ type: 'tool-input-delta', id: state.id, delta: d.partial_json });
        } else if (state.kind === 'json') {
          state.args += d.partial_json;
          // A wrapped answer ({value: …}) is unwrapped once complete; an object answer streams.
          if (!state.wrapped) emit({ type: 'text-delta', id: state.id, delta: d.partial_json });
        }
        break;
      case 'citations_delta':
        if (state.kind === 'text' && d.citation && typeof d.citation === 'object') {
          emit({ type: 'text-citation', id: state.id, citation: d.citation as Record<string, unknown> });
        }
        break;
      default: {
        // compaction_delta carries its block's final value (summary, encrypted_content): the
        // block is passed on whole at its stop, so the value goes onto it.
        const fields = d as unknown as Record<string, unknown>;
        if (state.kind === 'server' && fields.type === 'compaction_delta') {
          const { type: _type, ...value } = fields;
          Object.assign(state.block, value);
        }
        break;
      }
    }
  }

  private stopBlock(index: number, emit: Emit): void {
    const state = this.blocks.get(index);
    if (!state) return;
    this.blocks.delete(index);
    switch (state.kind) {
      case 'text':
        emit({ type: 'text-end', id: state.id });
        break;
      case 'reasoning':
        emit(state.signature !== undefined ? { type: 'reasoning-end', id: state.id, signature: state.signature } : { type: 'reasoning-end', id: state.id });
        break;
      case 'tool':
        if (state.args.trim() === '') {
          // No input streamed: the input came whole at block start, or the tool takes no arguments.
          emit({ type: 'tool-input-delta', id: state.id, delta: nonEmptyInput(state.initialInput) ? JSON.stringify(state.initialInput) : '{}' });
        }
        emit({ type: 'tool-input-end', id: state.id });
        break;
      case 'json': {
        let text = state.args;
        if (text.trim() === '') text = nonEmptyInput(state.initialInput) ? JSON.stringify(state.initialInput) : '{}';
        if (state.wrapped) {
          try {
            const parsed = JSON.parse(text) as { value?: unknown };
            text = JSON.stringify(parsed.value ?? null);
          } catch {
            // Left as is: the core's schema validation reports it.
          }
          emit({ type: 'text-delta', id: state.id, delta: text });
        } else if (state.args.trim() === '') {
          emit({ type: 'text-delta', id: state.id, delta: text });
        }
        emit({ type: 'text-end', id: state.id });
        break;
      }
      case 'server': {
        const block = state.block;
        if (state.args.trim() !== '') {
          try {
            block.input = JSON.parse(state.args);
          } catch {
            throw new GatewayError('upstream_invalid', `Anthropic sent a ${String(block.type)} block whose input is not JSON`, { provider: 'anthropic' });
          }
        }
        emit({ type: 'provider-block', provider: 'anthropic', block });
        break;
      }
      case 'ignored':
        break;
    }
  }
}
