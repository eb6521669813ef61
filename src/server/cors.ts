// Browser access (CORS), off unless `server.cors.origins` lists the web origins allowed. The
// preflight allows whatever request headers the page asks for (authorization, x-api-key,
// anthropic-version, x-session-id…); the gateway's own response headers are exposed to scripts.

import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../core/config.js';

/** Response headers a page may read (its SDK reads request ids and retry-after; rate-limit headers). */
const EXPOSED_HEADERS = [
  'x-request-id',
  'request-id',
  'retry-after',
  'x-correlation-id',
  'x-switchboard-provider',
  'x-switchboard-model',
  'x-switchboard-deployment',
  'x-switchboard-attempts',
  'x-switchboard-ttft-ms',
  'x-switchboard-overhead-ms',
  'x-switchboard-token-count',
  ...['requests', 'tokens'].flatMap((d) => [`x-ratelimit-limit-${d}`, `x-ratelimit-remaining-${d}`, `x-ratelimit-reset-${d}`]),
  ...['requests', 'tokens'].flatMap((d) => [`anthropic-ratelimit-${d}-limit`, `anthropic-ratelimit-${d}-remaining`, `anthropic-ratelimit-${d}-reset`]),
];

export function allowsEveryOrigin(config: Config): boolean {
  return config.server.cors?.origins.includes('*') === true;
}

export async function registerCors(app: FastifyInstance, config: Config): Promise<void> {
  const origins = config.server.cors?.origins;
  if (!origins) return;
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}
