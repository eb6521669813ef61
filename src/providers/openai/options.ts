// The deployment options this provider understands (deployment.options in the config), read
// once per call with their defaults. Unknown keys are left for other features.

import { GatewayError } from '../../core/errors.js';
import type { ResolvedDeployment } from '../../core/models.js';

export const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAIDeploymentOptions {
  // undici enforces the first-byte and idle limits with coarse timers (about ±1 s): ample for
  // limits in seconds, and its idle timer rightly pauses while a slow client applies backpressure.
  /** TCP/TLS connect limit. */
  connectTimeoutMs: number;
  /** From the request being sent to the response headers (OpenAI can take long before the first token). */
  firstByteTimeoutMs: number;
  /** Longest silence between two body chunks. */
  idleTimeoutMs: number;
  /** A buffered call (the client did not ask for a stream): from sending to the whole answer's headers. */
  bufferedTimeoutMs: number;
  /** Send `max_completion_tokens` instead of `max_tokens` (OpenAI o-series and later). */
  maxCompletionTokens: boolean;
  /** Send OpenRouter's `reasoning` object instead of `reasoning_effort`. */
  reasoningObject: boolean;
  /** The upstream accepts top_k, min_p and repetition_penalty (vLLM, llama.cpp server). */
  extendedSampling: boolean;
  /** Connections per upstream origin; 0 means no limit. */
  maxConnections: number;
}

function number(options: Record<string, unknown>, key: string, fallback: number, deployment: string): number {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    // A config mistake: fail loudly rather than run with a surprising limit.
    throw new GatewayError('internal', `Deployment '${deployment}': option '${key}' must be a non-negative number`);
  }
  return value;
}

export function readOptions(deployment: ResolvedDeployment): OpenAIDeploymentOptions {
  const o = deployment.options;
  const name = deployment.name;
  return {
    connectTimeoutMs: number(o, 'connectTimeoutMs', 10_000, name),
    firstByteTimeoutMs: number(o, 'firstByteTimeoutMs', 60_000, name),
    idleTimeoutMs: number(o, 'idleTimeoutMs', 60_000, name),
    bufferedTimeoutMs: number(o, 'bufferedTimeoutMs', 600_000, name),
    maxCompletionTokens: o.maxCompletionTokens === true,
    reasoningObject: o.reasoningObject === true,
    extendedSampling: o.extendedSampling === true,
    maxConnections: number(o, 'maxConnections', 0, name),
  };
}
