// ConverseStream events → canonical stream parts, one event at a time (transform / flush).
//
//   messageStart                         → start
//   contentBlockStart {toolUse}          → tool-input-start (id = toolUseId)
//   contentBlockDelta {text}             → text-start (first time at this index) + text-delta
//   contentBlockDelta {toolUse.input}    → tool-input-delta
//   contentBlockDelta {reasoningContent} → reasoning-start (first time) + reasoning-delta;
//                                          signature kept for reasoning-end.signature;
//                                          redactedContent → reasoning-start.redactedData (base64)
//   contentBlockStop                     → text-end / reasoning-end / tool-input-end
//   messageStop                          → stop reason kept; NO finish yet
//   metadata (after messageStop)         → usage; then finish
// Real Bedrock sends `metadata` after `messageStop`, so `finish` is emitted only once both are in
// (or when the stream ends after messageStop). A stream that ends before messageStop is an
// `upstream_invalid` error.

import { GatewayError, unreadableUpstreamEvent } from '../../core/errors.js';
import type { StreamPart } from '../../core/types.js';
import type { ConverseStreamOutput, TokenUsage } from './api.js';
import type { JsonResponseTool } from './prepare-tools.js';
import { convertBedrockUsage } from './convert-usage.js';
import { mapBedrockFinishReason } from './map-finish-reason.js';

type Emit = (part: StreamPart) => void;

type BlockState =
  | { kind: 'text'; id: string }
  | { kind: 'reasoning'; id: string; signature?: string }
  | { kind: 'tool'; id: string; args: string }
  | { kind: 'json'; id: string; args: string; wrapped: boolean }
  | { kind: 'ignored' };

export interface BedrockStreamOptions {
  model?: string;
  responseId?: string;
  jsonTool?: JsonResponseTool;
  /** reasoning.exclude: the model reasons, the caller gets no reasoning parts. */
  excludeReasoning?: boolean;
  /** The request's stop sequences: when only one was sent, a `stop_sequence` stop names it. */
  stopSequences?: string[];
}

/**
 * Which stop sequence ended the message: Claude reports it in the additional response fields
 * (asked for with `/delta/stop_sequence`, which nests it under `delta`).
 */
function reportedStopSequence(fields: unknown): string | undefined {
  if (!fields || typeof fields !== 'object') return undefined;
  const record = fields as { stop_sequence?: unknown; delta?: { stop_sequence?: unknown } };
  const value = record.delta?.stop_sequence ?? record.stop_sequence;
  return typeof value === 'string' ? value : undefined;
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export class BedrockStreamConverter {
  private readonly blocks = new Map<number, BlockState>();
  private stopReason: string | undefined;
  private stopSequence: string | undefined;
  private usage: TokenUsage | undefined;
  private stopped = false;
  private done = false;
  private started = false;
  private userToolCalls = 0;
  private jsonAnswered = false;

  constructor(private readonly options: BedrockStreamOptions = {}) {}

  /** True once `finish` has been emitted (messageStop and metadata both seen). */
  get finished(): boolean {
    return this.done;
  }

  transform(event: ConverseStreamOutput, emit: Emit): void {
    if (this.done) return;
    try {
      this.transformEvent(event, emit);
    } catch (err) {
      throw unreadableUpstreamEvent(err, 'bedrock', `Bedrock's ${Object.keys(event ?? {})[0] ?? 'empty'} event`);
    }
  }

  private transformEvent(event: ConverseStreamOutput, emit: Emit): void {
    if (event.messageStart) {
      this.start(emit);
    } else if (event.contentBlockStart) {
      const { contentBlockIndex = 0, start } = event.contentBlockStart;
      if (start?.toolUse && !this.blocks.has(contentBlockIndex)) {
        this.start(emit);
        const { toolUseId = `tool-${contentBlockIndex}`, name = '' } = start.toolUse;
        const jsonTool = this.options.jsonTool;
        if (jsonTool && name === jsonTool.name) {
          this.jsonAnswered = true;
          const id = `text-${contentBlockIndex}`;
          this.blocks.set(contentBlockIndex, { kind: 'json', id, args: '', wrapped: jsonTool.wrapped });
          emit({ type: 'text-start', id });
        } else {
          this.userToolCalls++;
          this.blocks.set(contentBlockIndex, { kind: 'tool', id: toolUseId, args: '' });
          emit({ type: 'tool-input-start', id: toolUseId, toolName: name });
        }
      }
    } else if (event.contentBlockDelta) {
      this.delta(event.contentBlockDelta.contentBlockIndex ?? 0, event.contentBlockDelta.delta, emit);
    } else if (event.contentBlockStop) {
      this.stopBlock(event.contentBlockStop.contentBlockIndex ?? 0, emit);
    } else if (event.messageStop) {
      for (const index of [...this.blocks.keys()]) this.stopBlock(index, emit);
      this.stopReason = event.messageStop.stopReason;
      this.stopSequence = reportedStopSequence(event.messageStop.additionalModelResponseFields);
      this.stopped = true;
      if (this.usage) this.finish(emit);
    } else if (event.metadata) {
      this.usage = event.metadata.usage ?? { inputTokens: 0, outputTokens: 0, totalTokens: 0 };
      if (this.stopped) this.finish(emit);
    }
    // Exception members are thrown by the SDK before they reach here; unknown members are skipped.
  }

  /** The stream ended. After messageStop it finishes (with whatever usage came); before, it is an error. */
  flush(emit: Emit): void {
    if (this.done) return;
    if (this.stopped) {
      this.finish(emit);
      return;
    }
    throw new GatewayError('upstream_invalid', 'The Bedrock stream ended before messageStop (truncated response)', {
      provider: 'bedrock',
      code: 'upstream_truncated',
      retryable: true,
    });
  }

  private start(emit: Emit): void {
    if (this.started) return;
    this.started = true;
    const part: StreamPart = { type: 'start' };
    if (this.options.model) part.model = this.options.model;
    if (this.options.responseId) part.responseId = this.options.responseId;
    emit(part);
  }

  private finish(emit: Emit): void {
    this.done = true;
    emit({
      type: 'finish',
      finishReason: mapBedrockFinishReason(this.stopReason, { jsonAnswered: this.jsonAnswered && this.userToolCalls === 0 }),
      usage: convertBedrockUsage(this.usage),
      ...(this.stopReason === 'stop_sequence' ? { stopSequence: this.stopSequence ?? this.onlyStopSequence() } : {}),
    });
  }

  private onlyStopSequence(): string | null {
    const stops = this.options.stopSequences ?? [];
    return stops.length === 1 ? stops[0]! : null;
  }

  private delta(index: number, delta: NonNullable<ConverseStreamOutput['contentBlockDelta']>['delta'], emit: Emit): void {
    if (!delta) return;
    this.start(emit);
    let state = this.blocks.get(index);
    const textId = `text-${index}`;
    const id = `reasoning-${index}`;
    if (delta.text !== undefined) {
      if (!state) {
        state = this.options.jsonTool ? { kind: 'ignored' } : { kind: 'text', id: textId };
        this.blocks.set(index, state);
        if (state.kind === 'text') emit({ type: 'text-start', id: textId });
      }
      if (state.kind === 'text' && delta.text) emit({ type: 'text-delta', id: textId, delta: delta.text });
      return;
    }
    if (delta.toolUse) {
      const fragment = delta.toolUse.input ?? '';
      if (!fragment || !state) return;
      if (state.kind === 'tool') {
        state.args += fragment;
        emit({ type: 'tool-input-delta', id: state.id, delta: fragment });
      } else if (state.kind === 'json') {
        state.args += fragment;
        if (!state.wrapped) emit({ type: 'text-delta', id: state.id, delta: fragment });
      }
      return;
    }
    if (delta.reasoningContent) {
      const r = delta.reasoningContent;
      if (!state && this.options.excludeReasoning) {
        this.blocks.set(index, { kind: 'ignored' });
        return;
      }
      if (!state) {
        if (r.redactedContent !== undefined) {
          state = { kind: 'reasoning', id };
          this.blocks.set(index, state);
          emit({ type: 'reasoning-start', id, redactedData: toBase64(r.redactedContent) });
          return;
        }
        state = { kind: 'reasoning', id };
        this.blocks.set(index, state);
        emit({ type: 'reasoning-start', id });
      }
      if (state.kind !== 'reasoning') return;
      if (r.text) emit({ type: 'reasoning-delta', id, delta: r.text });
      if (r.signature !== undefined) state.signature = (state.signature ?? '') + r.signature;
    }
    // citation, image and toolResult deltas are not part of the canonical stream.
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
        if (state.args.trim() === '') emit({ type: 'tool-input-delta', id: state.id, delta: '{}' });
        emit({ type: 'tool-input-end', id: state.id });
        break;
      case 'json': {
        let text = state.args.trim() === '' ? '{}' : state.args;
        if (state.wrapped) {
          try {
            text = JSON.stringify((JSON.parse(text) as { value?: unknown }).value ?? null);
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
      case 'ignored':
        break;
    }
  }
}
