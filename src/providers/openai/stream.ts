// OpenAI stream chunks → canonical stream parts. A small tracker per choice turns the flat
// deltas into start/delta/end triples; `end` closes what is open and emits the `finish` parts,
// which wait for the usage chunk that follows the finish_reason chunk.

import { randomUUID } from 'node:crypto';
import type { FinishReason, StreamPart, TokenLogprob, Usage } from '../../core/types.js';
import { emptyUsage } from '../../core/types.js';
import type { OpenAIChatChunk, OpenAIChunkChoice, OpenAITokenLogprob, OpenAIToolCallDelta } from './api.js';
import { convertUsage } from './convert-usage.js';
import { unreadableUpstreamEvent } from '../../core/errors.js';
import { invalidUpstream } from './errors.js';
import { mapFinishReason } from './map-finish-reason.js';

interface ToolCallState {
  id?: string;
  name?: string;
  started: boolean;
  /** Argument fragments that came before the function name (then tool-input-start cannot be sent yet). */
  pending: string;
}

interface ChoiceState {
  index: number;
  /** Id of the open text block, if any. */
  text?: string;
  /** The open text block carries the refusal, not the answer. */
  textIsRefusal?: boolean;
  reasoning?: string;
  blockCount: number;
  tools: Map<number, ToolCallState>;
  finishReason?: FinishReason;
  probabilitySum: number;
  tokenCount: number;
}

export interface ConverterOptions {
  /** n > 1: every part carries its `choice`. */
  tagChoices: boolean;
  /** reasoning.exclude: the upstream reasons, the client does not see it. */
  excludeReasoning: boolean;
  /** The client asked for token logprobs: carry the upstream's on the text deltas. */
  logprobs?: boolean;
}

export class ChunkConverter {
  private started = false;
  private usage?: Usage;
  private readonly choices = new Map<number, ChoiceState>();

  constructor(private readonly options: ConverterOptions) {}

  push(chunk: OpenAIChatChunk, out: StreamPart[]): void {
    try {
      this.pushChunk(chunk, out);
    } catch (err) {
      throw unreadableUpstreamEvent(err, 'openai', 'A chunk of the upstream stream');
    }
  }

  private pushChunk(chunk: OpenAIChatChunk, out: StreamPart[]): void {
    if (!this.started) {
      this.started = true;
      out.push({ type: 'start', ...(chunk.model ? { model: chunk.model } : {}), ...(chunk.id ? { responseId: chunk.id } : {}) });
    }
    const usage = chunk.usage ?? chunk.x_groq?.usage;
    if (usage) this.usage = convertUsage(usage);
    const choices = chunk.choices ?? [];
    for (let i = 0; i < choices.length; i++) this.pushChoice(choices[i]!, i, out);
  }

  /**
   * Called when the body ends. `sawDone`: the upstream sent `[DONE]`. Without it, every choice
   * must have finished, or the stream was cut and that is an error, never a quiet finish.
   */
  end(sawDone: boolean, out: StreamPart[]): void {
    const states = [...this.choices.values()].sort((a, b) => a.index - b.index);
    if (states.length === 0) throw invalidUpstream(sawDone ? 'The upstream stream contained no choices' : 'The upstream stream ended early');
    for (const state of states) {
      if (state.finishReason) continue;
      if (!sawDone) throw invalidUpstream('The upstream stream ended early (no finish_reason and no [DONE])');
      this.finishChoice(state, undefined, out);
    }
    const usage = this.usage ?? emptyUsage();
    states.forEach((state, position) => {
      out.push({
        type: 'finish',
        finishReason: state.finishReason!,
        // OpenAI reports one usage for all choices: the first carries it, the others only the
        // shared prompt, so summing choices (as the core does) counts everything once.
        usage: position === 0 ? usage : { inputTokens: usage.inputTokens, outputTokens: 0, totalTokens: usage.inputTokens },
        ...(state.tokenCount > 0 ? { meanTokenProbability: state.probabilitySum / state.tokenCount } : {}),
        ...this.tag(state),
      });
    });
  }

  private tag(state: ChoiceState): { choice?: number } {
    return this.options.tagChoices ? { choice: state.index } : {};
  }

  private state(index: number): ChoiceState {
    let state = this.choices.get(index);
    if (!state) {
      state = { index, blockCount: 0, tools: new Map(), probabilitySum: 0, tokenCount: 0 };
      this.choices.set(index, state);
    }
    return state;
  }

  private pushChoice(choice: OpenAIChunkChoice, position: number, out: StreamPart[]): void {
    const state = this.state(choice.index ?? position);
    const delta = choice.delta;
    const logprobs = choice.logprobs;
    if (delta) {
      // Text fields that are not strings are not text: skipped rather than passed on to clients.
      const reasoning = delta.reasoning_content ?? delta.reasoning;
      if (typeof reasoning === 'string' && reasoning && !this.options.excludeReasoning) this.reasoningDelta(state, reasoning, out);
      if (typeof delta.content === 'string' && delta.content) this.textDelta(state, delta.content, out, this.tokenLogprobs(logprobs?.content));
      if (typeof delta.refusal === 'string' && delta.refusal) this.textDelta(state, delta.refusal, out, this.tokenLogprobs(logprobs?.refusal), true);
      const calls = delta.tool_calls ?? [];
      for (let i = 0; i < calls.length; i++) this.toolDelta(state, calls[i]!, i, out);
    }
    for (const token of logprobs?.content ?? []) {
      if (typeof token?.logprob !== 'number') continue;
      state.probabilitySum += Math.exp(token.logprob);
      state.tokenCount++;
    }
    // Some servers repeat finish_reason on the usage chunk: the first one counts.
    if (choice.finish_reason && !state.finishReason) this.finishChoice(state, choice.finish_reason, out);
  }

  private closeText(state: ChoiceState, out: StreamPart[]): void {
    if (state.text === undefined) return;
    out.push({ type: 'text-end', id: state.text, ...this.tag(state) });
    state.text = undefined;
  }

  private closeReasoning(state: ChoiceState, out: StreamPart[]): void {
    if (state.reasoning === undefined) return;
    out.push({ type: 'reasoning-end', id: state.reasoning, ...this.tag(state) });
    state.reasoning = undefined;
  }

  private textDelta(state: ChoiceState, delta: string, out: StreamPart[], logprobs?: TokenLogprob[], refusal = false): void {
    this.closeReasoning(state, out);
    // The refusal is a block of its own, so the client's `refusal` field gets it and `content` does not.
    if (state.text !== undefined && state.textIsRefusal !== refusal) this.closeText(state, out);
    if (state.text === undefined) {
      state.text = `text-${state.blockCount++}`;
      state.textIsRefusal = refusal;
      out.push({ type: 'text-start', id: state.text, ...this.tag(state), ...(refusal && { refusal: true }) });
    }
    const part: StreamPart = { type: 'text-delta', id: state.text, delta, ...this.tag(state) };
    if (logprobs) part.logprobs = logprobs;
    out.push(part);
  }

  /** The upstream's token logprobs, when the client asked for them (and the upstream sent them). */
  private tokenLogprobs(tokens: OpenAITokenLogprob[] | null | undefined): TokenLogprob[] | undefined {
    if (!this.options.logprobs || !Array.isArray(tokens) || tokens.length === 0) return undefined;
    return tokens.filter((t) => typeof t?.logprob === 'number').map((t) => ({
      token: String(t.token ?? ''),
      logprob: t.logprob,
      bytes: Array.isArray(t.bytes) ? t.bytes : null,
      top: (t.top_logprobs ?? []).map((alt) => ({ token: String(alt.token ?? ''), logprob: alt.logprob, bytes: Array.isArray(alt.bytes) ? alt.bytes : null })),
    }));
  }

  private reasoningDelta(state: ChoiceState, delta: string, out: StreamPart[]): void {
    this.closeText(state, out);
    if (state.reasoning === undefined) {
      state.reasoning = `reasoning-${state.blockCount++}`;
      out.push({ type: 'reasoning-start', id: state.reasoning, ...this.tag(state) });
    }
    out.push({ type: 'reasoning-delta', id: state.reasoning, delta, ...this.tag(state) });
  }

  /** id and name come in the first delta of an index; arguments may be split over many. */
  private toolDelta(state: ChoiceState, delta: OpenAIToolCallDelta, position: number, out: StreamPart[]): void {
    const key = delta.index ?? position;
    let call = state.tools.get(key);
    if (!call) {
      call = { started: false, pending: '' };
      state.tools.set(key, call);
    }
    if (!call.id && delta.id) call.id = delta.id;
    if (!call.name && delta.function?.name) call.name = delta.function.name;
    const args = delta.function?.arguments;
    const fragment = typeof args === 'string' ? args : args ? JSON.stringify(args) : '';
    if (!call.started && call.name) {
      this.closeReasoning(state, out);
      this.closeText(state, out);
      // Some local servers send no id; the client still needs one to answer the call.
      call.id ??= `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
      call.started = true;
      out.push({ type: 'tool-input-start', id: call.id, toolName: call.name, ...this.tag(state) });
      if (call.pending) out.push({ type: 'tool-input-delta', id: call.id, delta: call.pending, ...this.tag(state) });
      call.pending = '';
    }
    if (!fragment) return;
    if (call.started) out.push({ type: 'tool-input-delta', id: call.id!, delta: fragment, ...this.tag(state) });
    else call.pending += fragment;
  }

  private finishChoice(state: ChoiceState, reason: string | undefined, out: StreamPart[]): void {
    this.closeReasoning(state, out);
    this.closeText(state, out);
    for (const call of state.tools.values()) {
      if (!call.started) throw invalidUpstream('The upstream streamed a tool call without a function name');
      out.push({ type: 'tool-input-end', id: call.id!, ...this.tag(state) });
    }
    let finishReason = mapFinishReason(reason);
    // vLLM and Ollama say "stop" after tool calls; callers decide on 'tool-calls' to run them.
    if (state.tools.size > 0 && (finishReason === 'stop' || finishReason === 'other')) finishReason = 'tool-calls';
    state.finishReason = finishReason;
    state.tools.clear();
  }
}

export function parseChunk(data: string): OpenAIChatChunk {
  try {
    const value = JSON.parse(data) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as OpenAIChatChunk;
  } catch (err) {
    throw invalidUpstream(`The upstream sent an SSE event that is not JSON: ${data.slice(0, 200)}`, err);
  }
  throw invalidUpstream(`The upstream sent an SSE event that is not a JSON object: ${data.slice(0, 200)}`);
}
