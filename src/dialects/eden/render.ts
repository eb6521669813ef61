// Per-provider results in Eden's shape, and the two reshaping flags of seed 002:
// response_as_dict (object keyed by provider, or a list) and attributes_as_list (the `message`
// items as one list per attribute).

import type { GatewayError } from '../../core/errors.js';
import type { CollectedResponse } from '../../core/stream.js';
import type { FinishReason, Usage } from '../../core/types.js';
import { edenErrorObject } from './errors.js';

export type EdenResult = Record<string, unknown>;

export function renderUsage(usage: Usage): Record<string, number> {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
    ...(usage.reasoningTokens !== undefined ? { reasoning_tokens: usage.reasoningTokens } : {}),
    ...(usage.cacheReadTokens !== undefined ? { cached_tokens: usage.cacheReadTokens } : {}),
  };
}

export interface SuccessInput {
  provider: string;
  model: string;
  history: Array<Record<string, unknown>>;
  collected: CollectedResponse;
  cost: number;
  showOriginal: boolean;
}

/** Eden reports OpenAI's finish reasons (stop, length, tool_calls, content_filter). */
function edenFinishReason(reason: FinishReason): string {
  return { stop: 'stop', length: 'length', 'tool-calls': 'tool_calls', 'content-filter': 'content_filter', pause: 'stop', error: 'error', other: 'stop' }[reason];
}

export function renderSuccess(input: SuccessInput): EdenResult {
  const choice = input.collected.choices[0]!;
  const toolCalls = choice.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
  const assistant = { role: 'assistant', message: choice.text, tools: null, tool_calls: toolCalls.length ? toolCalls : null };
  const result: EdenResult = {
    status: 'success',
    provider: input.provider,
    model: input.model,
    generated_text: choice.text,
    message: [...input.history, assistant],
    ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
    finish_reason: edenFinishReason(choice.finishReason),
    usage: renderUsage(input.collected.usage),
    cost: input.cost,
  };
  if (input.showOriginal) {
    // The upstream's own body where the provider keeps it; else the canonical response it became.
    result.original_response = choice.rawResponse ?? {
      model: input.collected.model ?? input.model,
      id: input.collected.responseId ?? null,
      text: choice.text,
      reasoning: choice.reasoning || null,
      tool_calls: toolCalls,
      finish_reason: edenFinishReason(choice.finishReason),
      usage: input.collected.usage,
    };
  }
  return result;
}

export function renderFailure(provider: string, error: GatewayError, showOriginal: boolean): EdenResult {
  return {
    status: 'fail',
    provider,
    generated_text: '',
    message: [],
    cost: 0,
    error: edenErrorObject(error),
    provider_status_code: error.status,
    ...(showOriginal ? { original_response: null } : {}),
  };
}

/** `message: [{role, message…}…]` → `message: {role: [...], message: [...], …}`. */
export function attributesAsList(result: EdenResult): EdenResult {
  const items = result.message as Array<Record<string, unknown>>;
  const keys = [...new Set(items.flatMap((item) => Object.keys(item)))];
  const lists: Record<string, unknown[]> = Object.fromEntries(keys.map((k) => [k, items.map((item) => item[k] ?? null)]));
  return { ...result, message: lists };
}

export function shapeResponse(results: Array<{ name: string; result: EdenResult }>, asDict: boolean, asList: boolean): unknown {
  const shaped = results.map(({ name, result }) => ({ name, result: asList ? attributesAsList(result) : result }));
  if (asDict) return Object.fromEntries(shaped.map(({ name, result }) => [name, result]));
  return shaped.map(({ name, result }) => ({ ...result, requested_provider: name }));
}
