// What a dialect gets from the server: the core, the store, auth, and per-request plumbing.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { Gateway, RequestContext } from '../core/gateway.js';
import type { GatewayError } from '../core/errors.js';
import type { RateHeadroom } from '../core/limits/admission.js';
import { Cancellation } from '../core/router/cancellation.js';
import type { Store } from '../store/store.js';
import type { AuthContext, Authenticator } from './auth.js';
import type { InFlightRequests } from './shutdown.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Chat requests being served, for a graceful shutdown (src/server/shutdown.ts). */
    inFlight: InFlightRequests;
    /** How long a stream waits for a client that stopped reading (server.streamStallSeconds; 0: for ever), and where that is told (sse.ts). */
    streamStall: { ms: number; logger: Logger };
  }
  interface FastifyRequest {
    auth?: AuthContext;
    /** performance.now() at arrival. */
    arrivedAt: number;
  }
}

export interface ServerContext {
  config: Config;
  gateway: Gateway;
  store: Store;
  auth: Authenticator;
  logger: Logger;
  /** Shared services later features hang here (tools, async runs, limits…). */
  services: Record<string, unknown>;
  /** The environment the server was started with (secrets named by env-var in config). */
  env?: NodeJS.ProcessEnv;
}

export interface Dialect {
  name: string;
  /**
   * Path prefixes of this dialect's routes: an error raised before any route is matched (an
   * unknown path, a URL that cannot be decoded) under one of them comes in this dialect's shape.
   */
  pathPrefixes: readonly string[];
  /** Renders any error in this dialect's JSON shape. */
  renderError(error: GatewayError, request: FastifyRequest): { status: number; body: unknown; headers?: Record<string, string> };
  register(app: FastifyInstance, context: ServerContext): void | Promise<void>;
}

/**
 * The core's request context as the server builds it. The client going away fires `cancellation`,
 * which the router listens to; the AbortSignal form is built only when something reads `signal`
 * (tools, MCP): a plain chat request reads none, and on Node 20 every AbortSignal is kept by the
 * young-generation GC past its use (src/core/router/cancellation.ts). A class, not an object
 * literal with a getter: the literal's accessor made each context survive scavenges too
 * (promoted bytes per scavenge doubled instead of falling).
 */
class ServerRequestContext implements RequestContext {
  readonly requestId: string;
  readonly organisation: string;
  readonly keyId?: string;
  readonly dialect: string;
  readonly route: string;
  readonly correlationId?: string;
  readonly stream: boolean;
  readonly startedAt: number;
  readonly cancellation = new Cancellation();
  #controller?: AbortController;

  constructor(request: FastifyRequest, fields: RequestContextFields) {
    this.requestId = String(request.id);
    this.organisation = fields.organisation ?? request.auth?.organisation ?? 'default';
    this.keyId = request.auth?.key?.id;
    this.dialect = fields.dialect;
    this.route = fields.route;
    this.correlationId = fields.correlationId;
    this.stream = fields.stream;
    this.startedAt = request.arrivedAt;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = new AbortController();
      // The reason, when there is one, is the server's (a shutdown); a client gone has none.
      if (this.cancellation.aborted) controller.abort(this.cancellation.reason);
      else this.cancellation.addEventListener('abort', () => controller.abort(this.cancellation.reason));
      this.#controller = controller;
    }
    return this.#controller.signal;
  }
}

interface RequestContextFields {
  dialect: string;
  route: string;
  stream: boolean;
  organisation?: string;
  correlationId?: string;
}

/** The request context for a route: it is cancelled when the client goes away before the response is complete. */
export function requestContext(request: FastifyRequest, reply: FastifyReply, fields: RequestContextFields): RequestContext {
  const context = new ServerRequestContext(request, fields);
  request.server.inFlight.track(context.cancellation, reply, () => {
    if (!reply.raw.writableFinished) context.cancellation.abort(undefined);
  });
  return context;
}

/**
 * Response headers that say who served the request (every dialect sends them), and what the
 * caller's rate limits have left, under the names its SDK knows: OpenAI's `x-ratelimit-*` (also
 * for the organisation and Eden routes) or Anthropic's `anthropic-ratelimit-*`.
 */
export function servedByHeaders(
  result: { provider: string; model: { id: string }; deployment: { name: string }; attempts: number; upstreamMs?: () => number; limits?: RateHeadroom },
  arrivedAt: number,
  ttftMs: number,
  upstreamMs?: number,
  rateLimitStyle: 'openai' | 'anthropic' = 'openai',
): Record<string, string> {
  // Overhead = time since arrival minus the time spent waiting on upstreams (router-measured).
  const waited = upstreamMs ?? result.upstreamMs?.();
  const overhead = waited === undefined ? undefined : Math.max(0, performance.now() - arrivedAt - waited);
  const headers: Record<string, string> = {
    'x-switchboard-provider': result.provider,
    'x-switchboard-model': result.model.id,
    'x-switchboard-deployment': result.deployment.name,
    'x-switchboard-attempts': String(result.attempts),
    'x-switchboard-ttft-ms': ttftMs.toFixed(1),
  };
  if (overhead !== undefined) headers['x-switchboard-overhead-ms'] = overhead.toFixed(2);
  if (result.limits) Object.assign(headers, rateLimitHeaders(result.limits, rateLimitStyle));
  return headers;
}

/** OpenAI's duration format for resets: `20ms`, `1.5s`, `1m0s`. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(3))}s`;
  return `${Math.floor(ms / 60_000)}m${Number(((ms % 60_000) / 1000).toFixed(3))}s`;
}

export function rateLimitHeaders(limits: RateHeadroom, style: 'openai' | 'anthropic'): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [dimension, headroom] of [['requests', limits.requests], ['tokens', limits.tokens]] as const) {
    if (!headroom) continue;
    if (style === 'openai') {
      headers[`x-ratelimit-limit-${dimension}`] = String(headroom.limit);
      headers[`x-ratelimit-remaining-${dimension}`] = String(headroom.remaining);
      headers[`x-ratelimit-reset-${dimension}`] = duration(headroom.resetMs);
    } else {
      headers[`anthropic-ratelimit-${dimension}-limit`] = String(headroom.limit);
      headers[`anthropic-ratelimit-${dimension}-remaining`] = String(headroom.remaining);
      // RFC 3339, to the second, as Anthropic sends it.
      headers[`anthropic-ratelimit-${dimension}-reset`] = new Date(Math.ceil((Date.now() + headroom.resetMs) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    }
  }
  return headers;
}
