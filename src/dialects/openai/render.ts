// Canonical parts → OpenAI chat.completion / chat.completion.chunk objects.

import type { CollectedResponse } from '../../core/stream.js';
import type { FinishReason, StreamPart, Usage } from '../../core/types.js';

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

export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
  /** Send reasoning text to the client (false when reasoning.exclude). */
  includeReasoning: boolean;
}

export function renderCompletion(response: CollectedResponse, meta: CompletionMeta, cost: number): Record<string, unknown> {
  const probabilities: number[] = [];
  const choices = response.choices.map((choice) => {
    if (choice.meanTokenProbability !== undefined) probabilities.push(choice.meanTokenProbability);
    const message: Record<string, unknown> = {
      role: 'assistant',
      content: choice.text.length > 0 || choice.toolCalls.length === 0 ? choice.text : null,
      refusal: null,
    };
    if (meta.includeReasoning && choice.reasoning) message.reasoning = choice.reasoning;
    const clientCalls = choice.toolCalls.filter((c) => !c.serverExecuted);
    if (clientCalls.length) {
      message.tool_calls = clientCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    }
    return { index: choice.index, message, logprobs: null, finish_reason: mapFinishReason(choice.finishReason) };
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
 */
export class ChunkRenderer {
  private readonly started = new Set<number>();
  private readonly toolIndexes = new Map<string, number>();
  private readonly toolCounts = new Map<number, number>();
  private readonly serverTools = new Set<string>();
  private readonly probabilities: number[] = [];

  constructor(private readonly meta: CompletionMeta) {}

  private chunk(choices: unknown[], extra?: Record<string, unknown>): Record<string, unknown> {
    return { id: this.meta.id, object: 'chat.completion.chunk', created: this.meta.created, model: this.meta.model, choices, ...extra };
  }

  private delta(choice: number, delta: Record<string, unknown>, finishReason: OpenAIFinishReason | null = null): Record<string, unknown> {
    if (!this.started.has(choice)) {
      this.started.add(choice);
      delta = { role: 'assistant', ...delta };
    }
    return this.chunk([{ index: choice, delta, logprobs: null, finish_reason: finishReason }]);
  }

  /** Chunks for one part (often none). */
  render(part: StreamPart): Record<string, unknown>[] {
    const choice = part.choice ?? 0;
    switch (part.type) {
      case 'text-start':
        return this.started.has(choice) ? [] : [this.delta(choice, { content: '' })];
      case 'text-delta':
        return part.delta ? [this.delta(choice, { content: part.delta })] : [];
      case 'reasoning-delta':
        return this.meta.includeReasoning && part.delta ? [this.delta(choice, { reasoning: part.delta })] : [];
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
        return [this.delta(choice, {}, mapFinishReason(part.finishReason))];
      default:
        return [];
    }
  }

  /** The closing usage chunk (choices: []), sent at the end of every stream. */
  usageChunk(usage: Usage, cost: number): Record<string, unknown> {
    const extra: Record<string, unknown> = { usage: renderUsage(usage, cost) };
    const confidence = confidenceScore(
      this.probabilities.length ? this.probabilities.reduce((a, b) => a + b, 0) / this.probabilities.length : undefined,
    );
    if (confidence !== undefined) extra.confidence_score = confidence;
    return this.chunk([], extra);
  }
}
