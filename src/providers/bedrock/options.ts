// Deployment options the Bedrock provider reads from `deployment.options`, with defaults.
//
// Credentials: the AWS SDK default chain (environment, shared config/SSO, web identity, ECS/EC2
// roles), unless `accessKeyId` + `secretAccessKeyEnv` (the NAME of the variable holding the
// secret; `sessionTokenEnv` likewise) are set, or the deployment has an API key (`apiKeyEnv`),
// which is sent as a Bedrock API key (Bearer).

import type { ReasoningEffort } from '../../core/types.js';
import type { BedrockModelFamily } from './api.js';
import { detectFamily } from './api.js';

export interface BedrockDeploymentOptions {
  family: BedrockModelFamily;
  /** inferenceConfig.maxTokens when the request names none (unset: the model's default). */
  maxTokens?: number;
  /** Milliseconds to connect; on Bedrock it bounds, with firstByteTimeoutMs, the wait for the response headers. */
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  /** Longest silence between two stream events. */
  idleTimeoutMs: number;
  /** Dotted path inside additionalModelRequestFields where top_k goes; undefined: top_k refused. */
  topKField?: string;
  accessKeyId?: string;
  secretAccessKeyEnv?: string;
  sessionTokenEnv?: string;
  /** SDK attempts per call; 1 by default, so retries and fallbacks stay with the gateway's router. */
  maxAttempts: number;
  defaultThinkingBudget: number;
  /**
   * HTTP/1.1 instead of the SDK's HTTP/2: for networks that break HTTP/2 (TLS-inspecting
   * middleboxes) and plain-http endpoints that speak only HTTP/1.1 (mocks, some API gateways).
   */
  http1: boolean;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function bedrockOptions(model: string, options: Record<string, unknown>): BedrockDeploymentOptions {
  const family = detectFamily(model, options.family);
  // top_k: `topK: true` picks the family's field; a string names the field path itself.
  let topKField: string | undefined;
  if (typeof options.topK === 'string') topKField = options.topK;
  else if (options.topK === true) topKField = family === 'nova' ? 'inferenceConfig.topK' : 'top_k';
  return {
    family,
    maxTokens: num(options.maxTokens),
    connectTimeoutMs: num(options.connectTimeoutMs) ?? 10_000,
    firstByteTimeoutMs: num(options.firstByteTimeoutMs) ?? 300_000,
    idleTimeoutMs: num(options.idleTimeoutMs) ?? 300_000,
    topKField,
    accessKeyId: str(options.accessKeyId),
    secretAccessKeyEnv: str(options.secretAccessKeyEnv),
    sessionTokenEnv: str(options.sessionTokenEnv),
    maxAttempts: num(options.maxAttempts) ?? 1,
    defaultThinkingBudget: num(options.defaultThinkingBudget) ?? 4096,
    http1: options.http1 === true,
  };
}

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

/** Nova's three effort levels. */
export function novaEffort(effort: ReasoningEffort | undefined, budgetTokens: number | undefined): 'low' | 'medium' | 'high' {
  if (effort === 'minimal' || effort === 'low') return 'low';
  if (effort === 'medium') return 'medium';
  if (effort === 'high' || effort === 'xhigh' || effort === 'max') return 'high';
  if (budgetTokens !== undefined) return budgetTokens < 4096 ? 'low' : budgetTokens < 16384 ? 'medium' : 'high';
  return 'medium';
}
