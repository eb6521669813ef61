// Canonical parts → OpenAI chat.completion / chat.completion.chunk objects.

import type { CollectedChoice, CollectedResponse } from '../../core/stream.js';
import type { FinishReason, StreamPart, TokenLogprob, Usage } from '../../core/types.js';

export type OpenAIFinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export function mapFinishReason(reason: FinishReason): OpenAIFinishReason {
  switch (reason) {
    case 'length':
      return 'length';
    case 'tool-calls':
      return 'tool_calls';
    case 'content-filter':
      return 'content_filter';
    default:
      return 'stop';
  }
}

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
  completion_tokens_details?: { reasoning_tokens: number };
  /** USD, computed from the model's price table. */
  cost?: number;
}

export function renderUsage(usage: Usage, cost?: number): OpenAIUsage {
  const out: OpenAIUsage = {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
  };
  if (usage.cacheReadTokens !== undefined) out.prompt_tokens_details = { cached_tokens: usage.cacheReadTokens };
  if (usage.reasoningTokens !== undefined) out.completion_tokens_details = { reasoning_tokens: usage.reasoningTokens };
  if (cost !== undefined) out.cost = cost;
  return out;
}

/** seed 004: mean probability of the generated tokens × 100. */
export function confidenceScore(meanProbability: number | undefined): number | undefined {
  return meanProbability === undefined ? undefined : Math.round(meanProbability * 100 * 10000) / 10000;
}

/**
 * OpenRouter's `reasoning_details`: the reasoning blocks a later turn must send back verbatim
 * (Anthropic's and Bedrock Claude's signed thinking, redacted thinking). Only present when some
 * block carries a signature or redacted data; plain reasoning text is in `reasoning` alone.
 */
export type ReasoningDetail =
  | { type: 'reasoning.text'; text: string; signature: string | null; index: number }
  | { type: 'reasoning.encrypted'; data: string; index: number };

export interface ReasoningBlock {
  text: string;
  signature?: string;
  redactedData?: string;
}

export function reasoningDetails(blocks: ReasoningBlock[]): ReasoningDetail[] | undefined {
  if (!blocks.some((b) => b.signature !== undefined || b.redactedData !== undefined)) return undefined;
  return blocks.map((b, index) =>
    b.redactedData !== undefined
      ? { type: 'reasoning.encrypted', data: b.redactedData, index }
      : { type: 'reasoning.text', text: b.text, signature: b.signature ?? null, index },
  );
}

export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
  /** Send reasoning text to the client (false when reasoning.exclude). */
  includeReasoning: boolean;
  /** The request asked for token logprobs: choices carry a logprobs object, not null. */
  logprobs?: boolean;
}

/** OpenAI's ChatCompletionTokenLogprob. */
function renderTokenLogprob(t: TokenLogprob) {
  return { token: t.token, logprob: t.logprob, bytes: t.bytes, top_logprobs: t.top.map((alt) => ({ token: alt.token, logprob: alt.logprob, bytes: alt.bytes })) };
}

/** A choice's (or a chunk's) logprobs: content tokens only; refusals are rendered as content here. */
export function renderLogprobs(tokens: TokenLogprob[] | undefined) {
  return { content: (tokens ?? []).map(renderTokenLogprob), refusal: null };
}

/** The choice's text without its refusal blocks. */
function answerText(choice: CollectedChoice): string {
  return choice.blocks.map((b) => (b.type === 'text' && !b.refusal ? b.text : '')).join('');
}

export function renderCompletion(response: CollectedResponse, meta: CompletionMeta, cost: number): Record<string, unknown> {
  const probabilities: number[] = [];
  const choices = response.choices.map((choice) => {
    if (choice.meanTokenProbability !== undefined) probabilities.push(choice.meanTokenProbability);
    // A refusal (from an OpenAI upstream) is `refusal`, with no content, as OpenAI answers it.
    const text = choice.refusal ? answerText(choice) : choice.text;
    const message: Record<string, unknown> = {
      role: 'assistant',
      content: text.length > 0 || (choice.toolCalls.length === 0 && !choice.refusal) ? text : null,
      refusal: choice.refusal ?? null,
    };
    if (meta.includeReasoning && choice.reasoning) message.reasoning = choice.reasoning;
    const details = meta.includeReasoning ? reasoningDetails(choice.blocks.flatMap((b) => (b.type === 'reasoning' ? [b] : []))) : undefined;
    if (details) message.reasoning_details = details;
    const clientCalls = choice.toolCalls.filter((c) => !c.serverExecuted);
    if (clientCalls.length) {
      message.tool_calls = clientCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    }
    const logprobs = meta.logprobs ? renderLogprobs(choice.logprobs) : null;
    return { index: choice.index, message, logprobs, finish_reason: mapFinishReason(choice.finishReason) };
  });
  const body: Record<string, unknown> = {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices,
    usage: renderUsage(response.usage, cost),
  };
  const confidence = confidenceScore(probabilities.length ? probabilities.reduce((a, b) => a + b, 0) / probabilities.length : undefined);
  if (confidence !== undefined) body.confidence_score = confidence;
  return body;
}

/**
 * Stateful chunk renderer: tracks the first delta of each choice (role) and each choice's tool
 * call indexes, so tool_calls deltas carry index/id/name first and then argument fragments.
 * Reasoning text streams in `delta.reasoning`; signed or redacted reasoning blocks are collected
 * and sent once, complete, as `delta.reasoning_details` on the choice's finish chunk (the
 * official client keeps the last value of a field it does not know, so one delta carries all).
 */
export class ChunkRenderer {
  private readonly started = new Set<number>();
  private readonly toolIndexes = new Map<string, number>();
  private readonly toolCounts = new Map<number, number>();
  private readonly serverTools = new Set<string>();
  private readonly probabilities: number[] = [];
  private readonly reasoningBlocks = new Map<number, ReasoningBlock[]>();
  private readonly openReasoning = new Map<string, ReasoningBlock>();
  /** `choice:id` of text blocks that are a refusal: their deltas go in `delta.refusal`. */
  private readonly refusals = new Set<string>();

  constructor(private readonly meta: CompletionMeta) {}

  private reasoningBlock(choice: number, id: string, redactedData?: string): ReasoningBlock {
    let block = this.openReasoning.get(`${choice}:${id}`);
    if (!block) {
      block = { text: '', ...(redactedData !== undefined ? { redactedData } : {}) };
      this.openReasoning.set(`${choice}:${id}`, block);
      const blocks = this.reasoningBlocks.get(choice) ?? [];
      blocks.push(block);
      this.reasoningBlocks.set(choice, blocks);
    }
    return block;
  }

  /** `{"id":…,"object":…,"created":…,"model":…,"choices":` — the same for every chunk, serialised once. */
  private prefix?: string;

  private chunkPrefix(): string {
    return `${JSON.stringify({ id: this.meta.id, object: 'chat.completion.chunk', created: this.meta.created, model: this.meta.model }).slice(0, -1)},"choices":`;
  }

  /** A chunk's JSON text: what JSON.stringify of {id, object, created, model, choices, ...extra} gives. */
  private chunk(choices: unknown[], extra?: Record<string, unknown>): string {
    this.prefix ??= this.chunkPrefix();
    const rest = extra && Object.keys(extra).length ? `,${JSON.stringify(extra).slice(1, -1)}` : '';
    return `${this.prefix}${JSON.stringify(choices)}${rest}}`;
  }

  private textChunk(choice: number, text: string): string {
    this.prefix ??= this.chunkPrefix();
    return `${this.prefix}[{"index":${choice},"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}`;
  }

  private delta(choice: number, delta: Record<string, unknown>, finishReason: OpenAIFinishReason | null = null): string {
    return this.chunk([{ index: choice, delta: this.firstDelta(choice, delta), logprobs: null, finish_reason: finishReason }]);
  }

  /** The role goes in a choice's first delta. */
  private firstDelta(choice: number, delta: Record<string, unknown>): Record<string, unknown> {
    if (this.started.has(choice)) return delta;
    this.started.add(choice);
    return { role: 'assistant', ...delta };
  }

  /** Chunks for one part (often none). */
  render(part: StreamPart): string[] {
    const choice = part.choice ?? 0;
    switch (part.type) {
      case 'text-start':
        if (part.refusal) {
          this.refusals.add(`${choice}:${part.id}`);
          return this.started.has(choice) ? [] : [this.delta(choice, { refusal: '' })];
        }
        return this.started.has(choice) ? [] : [this.delta(choice, { content: '' })];
      case 'text-delta':
        if (!part.delta) return [];
        if (this.refusals.has(`${choice}:${part.id}`)) return [this.delta(choice, { refusal: part.delta })];
        if (this.meta.logprobs) return [this.chunk([{ index: choice, delta: this.firstDelta(choice, { content: part.delta }), logprobs: renderLogprobs(part.logprobs), finish_reason: null }])];
        // The most frequent chunk by far: written from a template, as JSON.stringify would.
        if (this.started.has(choice)) return [this.textChunk(choice, part.delta)];
        return [this.delta(choice, { content: part.delta })];
      case 'reasoning-start':
        this.reasoningBlock(choice, part.id, part.redactedData);
        return [];
      case 'reasoning-delta':
        this.reasoningBlock(choice, part.id).text += part.delta;
        return this.meta.includeReasoning && part.delta ? [this.delta(choice, { reasoning: part.delta })] : [];
      case 'reasoning-end':
        if (part.signature !== undefined) this.reasoningBlock(choice, part.id).signature = part.signature;
        return [];
      case 'tool-input-start': {
        if (part.serverExecuted) {
          this.serverTools.add(`${choice}:${part.id}`);
          return [];
        }
        const index = this.toolCounts.get(choice) ?? 0;
        this.toolCounts.set(choice, index + 1);
        this.toolIndexes.set(`${choice}:${part.id}`, index);
        return [this.delta(choice, { tool_calls: [{ index, id: part.id, type: 'function', function: { name: part.toolName, arguments: '' } }] })];
      }
      case 'tool-input-delta': {
        const index = this.toolIndexes.get(`${choice}:${part.id}`);
        if (index === undefined || !part.delta) return [];
        return [this.delta(choice, { tool_calls: [{ index, function: { arguments: part.delta } }] })];
      }
      case 'finish':
        if (part.meanTokenProbability !== undefined) this.probabilities.push(part.meanTokenProbability);
        const details = this.meta.includeReasoning ? reasoningDetails(this.reasoningBlocks.get(choice) ?? []) : undefined;
        return [this.delta(choice, details ? { reasoning_details: details } : {}, mapFinishReason(part.finishReason))];
      default:
        return [];
    }
  }

  /** The closing usage chunk (choices: []), sent at the end of every stream. */
  usageChunk(usage: Usage, cost: number): string {
    const extra: Record<string, unknown> = { usage: renderUsage(usage, cost) };
    const confidence = confidenceScore(
      this.probabilities.length ? this.probabilities.reduce((a, b) => a + b, 0) / this.probabilities.length : undefined,
    );
    if (confidence !== undefined) extra.confidence_score = confidence;
    return this.chunk([], extra);
  }
}
