// Deployment options the Anthropic provider reads from `deployment.options`, with defaults.

import type { ReasoningEffort } from '../../core/types.js';

export interface AnthropicDeploymentOptions {
  /** max_tokens when the request names none (the API requires it). */
  maxTokens: number;
  /** Milliseconds to open the TCP/TLS connection. */
  connectTimeoutMs: number;
  /** Milliseconds from sending the request to the response headers. */
  firstByteTimeoutMs: number;
  /** Longest silence between two chunks of the streamed body. */
  idleTimeoutMs: number;
  /** `anthropic-version` header. */
  anthropicVersion: string;
  /** Values of the `anthropic-beta` header. */
  betas: string[];
  /** Thinking budget when reasoning is enabled with neither budgetTokens nor effort. */
  defaultThinkingBudget: number;
}

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

export function anthropicOptions(options: Record<string, unknown>): AnthropicDeploymentOptions {
  const betas = options.betas;
  return {
    maxTokens: num(options.maxTokens, 4096),
    connectTimeoutMs: num(options.connectTimeoutMs, 10_000),
    firstByteTimeoutMs: num(options.firstByteTimeoutMs, 300_000),
    idleTimeoutMs: num(options.idleTimeoutMs, 300_000),
    anthropicVersion: typeof options.anthropicVersion === 'string' ? options.anthropicVersion : '2023-06-01',
    betas: Array.isArray(betas) ? betas.filter((b): b is string => typeof b === 'string') : typeof betas === 'string' ? [betas] : [],
    defaultThinkingBudget: num(options.defaultThinkingBudget, 4096),
  };
}

/** Thinking budget for an effort level; Anthropic's minimum budget is 1024 tokens. */
export const THINKING_BUDGET_BY_EFFORT: Record<Exclude<ReasoningEffort, 'none'>, number> = {
  minimal: 1024,
  low: 2048,
  medium: 8192,
  high: 16384,
  xhigh: 32768,
  // No larger: the budget is added to max_tokens, and Claude's output limits are 32k-128k.
  max: 32768,
};

export const MIN_THINKING_BUDGET = 1024;
