// What a dialect gets from the server: the core, the store, auth, and per-request plumbing.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { Gateway, RequestContext } from '../core/gateway.js';
import type { GatewayError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { AuthContext, Authenticator } from './auth.js';

declare module 'fastify' {
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
  /** Renders any error in this dialect's JSON shape. */
  renderError(error: GatewayError, request: FastifyRequest): { status: number; body: unknown; headers?: Record<string, string> };
  register(app: FastifyInstance, context: ServerContext): void | Promise<void>;
}

/**
 * Builds the core's request context: an AbortSignal that fires when the client goes away before
 * the response is complete, so upstream work stops with it.
 */
export function requestContext(
  request: FastifyRequest,
  reply: FastifyReply,
  fields: { dialect: string; route: string; stream: boolean; organisation?: string; correlationId?: string },
): RequestContext {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return {
    requestId: String(request.id),
    organisation: fields.organisation ?? request.auth?.organisation ?? 'default',
    keyId: request.auth?.key?.id,
    dialect: fields.dialect,
    route: fields.route,
    correlationId: fields.correlationId,
    stream: fields.stream,
    signal: controller.signal,
    startedAt: request.arrivedAt,
  };
}

/** Response headers that say who served the request (every dialect sends them). */
export function servedByHeaders(
  result: { provider: string; model: { id: string }; deployment: { name: string }; attempts: number; upstreamMs?: () => number },
  arrivedAt: number,
  ttftMs: number,
  upstreamMs?: number,
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
  return headers;
}
