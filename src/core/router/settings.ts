// Router settings: the top-level `router:` block holds the defaults, each model's `routing:`
// overrides them. Both are validated here (config.ts leaves them untyped for us).

import { z } from 'zod';
import type { ErrorKind } from '../errors.js';

export const STRATEGIES = ['ordered', 'weighted', 'least-busy', 'lowest-latency'] as const;
export type Strategy = (typeof STRATEGIES)[number];

const RETRYABLE = ['rate_limit', 'timeout', 'upstream_5xx', 'upstream_invalid', 'unavailable'] as const;
/** Connection failures arrive as upstream_5xx (code upstream_connection_failed). */
export const DEFAULT_RETRY_ON: ErrorKind[] = ['rate_limit', 'timeout', 'upstream_5xx', 'unavailable'];

const partialSchema = z
  .object({
    strategy: z.enum(STRATEGIES).optional(),
    /** Retries after the first attempt, within one model (each may land on another deployment). */
    retries: z.number().int().min(0).max(10).optional(),
    /** Error kinds that are retried. bad_request and auth never are: they are not in the enum. */
    retryOn: z.array(z.enum(RETRYABLE)).optional(),
    backoff: z
      .object({
        baseMs: z.number().nonnegative().optional(),
        maxMs: z.number().nonnegative().optional(),
        /** Longest Retry-After the router waits out; a longer one ends the retries. */
        maxRetryAfterMs: z.number().nonnegative().optional(),
      })
      .strict()
      .optional(),
    /** Models tried in order once retries are used up. */
    fallbacks: z.array(z.string()).optional(),
    /** Models tried (in order) when the prompt does not fit: usually bigger ones. */
    contextWindowFallbacks: z.array(z.string()).optional(),
    /** Models tried when the upstream refuses on content policy; empty (off) by default. */
    contentPolicyFallbacks: z.array(z.string()).optional(),
    timeouts: z
      .object({
        /** Whole request, retries and streaming included (0 = none). */
        totalMs: z.number().nonnegative().optional(),
        /** From the start of an attempt to its first content part (0 = none). */
        ttftMs: z.number().nonnegative().optional(),
        /** Longest silence between two parts of a stream (0 = none). */
        idleMs: z.number().nonnegative().optional(),
      })
      .strict()
      .optional(),
    breaker: z
      .object({
        /** Consecutive failures that open a deployment's circuit (0 = never). */
        failureThreshold: z.number().int().nonnegative().optional(),
        /** How long an open circuit stays open before one trial request (half-open). */
        coolOffMs: z.number().nonnegative().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type PartialRouteSettings = z.infer<typeof partialSchema>;

export interface RouteSettings {
  strategy: Strategy;
  retries: number;
  retryOn: ErrorKind[];
  backoff: { baseMs: number; maxMs: number; maxRetryAfterMs: number };
  fallbacks: string[];
  contextWindowFallbacks: string[];
  contentPolicyFallbacks: string[];
  timeouts: { totalMs: number; ttftMs: number; idleMs: number };
  breaker: { failureThreshold: number; coolOffMs: number };
}

export const DEFAULT_SETTINGS: RouteSettings = {
  strategy: 'ordered',
  retries: 2,
  retryOn: DEFAULT_RETRY_ON,
  backoff: { baseMs: 200, maxMs: 5_000, maxRetryAfterMs: 5_000 },
  fallbacks: [],
  contextWindowFallbacks: [],
  contentPolicyFallbacks: [],
  timeouts: { totalMs: 600_000, ttftMs: 120_000, idleMs: 120_000 },
  breaker: { failureThreshold: 5, coolOffMs: 30_000 },
};

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

export function parsePartialSettings(raw: unknown, where: string): PartialRouteSettings {
  const parsed = partialSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new Error(`Invalid config in ${where}: ${describe(parsed.error)}`);
  return parsed.data;
}

/** Later layers win; nested objects merge field by field. */
export function mergeSettings(base: RouteSettings, ...layers: PartialRouteSettings[]): RouteSettings {
  let out = base;
  for (const layer of layers) {
    out = {
      strategy: layer.strategy ?? out.strategy,
      retries: layer.retries ?? out.retries,
      retryOn: layer.retryOn ?? out.retryOn,
      backoff: { ...out.backoff, ...stripUndefined(layer.backoff) },
      fallbacks: layer.fallbacks ?? out.fallbacks,
      contextWindowFallbacks: layer.contextWindowFallbacks ?? out.contextWindowFallbacks,
      contentPolicyFallbacks: layer.contentPolicyFallbacks ?? out.contentPolicyFallbacks,
      timeouts: { ...out.timeouts, ...stripUndefined(layer.timeouts) },
      breaker: { ...out.breaker, ...stripUndefined(layer.breaker) },
    };
  }
  return out;
}

function stripUndefined<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
