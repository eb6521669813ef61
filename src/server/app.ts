// Builds the HTTP server: Fastify, the store, the core, and every dialect as its own plugin
// (each with its own error shape).

import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from '../core/config.js';
import { Gateway } from '../core/gateway.js';
import { newRequestId } from '../core/gateway.js';
import { GatewayError, toGatewayError } from '../core/errors.js';
import type { ProviderFactory } from '../core/provider.js';
import { providerFactories } from '../providers/index.js';
import { dialects } from '../dialects/index.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/store.js';
import { Authenticator } from './auth.js';
import { addClientConstraint } from './client-constraint.js';
import { allowsEveryOrigin, registerCors } from './cors.js';
import { rateLimitHeaders, type Dialect, type ServerContext } from './context.js';
import { registerOperationalRoutes } from './operational.js';
import { registerRouterStatusRoute } from './router-status.js';
import { attachMetrics } from './metrics.js';
import { installOperations } from './admin/index.js';

export interface ServerOptions {
  config: Config;
  store?: Store;
  logger?: Logger;
  providers?: Record<string, ProviderFactory>;
  env?: NodeJS.ProcessEnv;
}

export interface SwitchboardServer {
  app: FastifyInstance;
  context: ServerContext;
  /** Starts listening; resolves with the bound URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const DEFAULT_RETRY_AFTER_SECONDS = 1;

function errorReply(dialect: Dialect, error: GatewayError, request: Parameters<Dialect['renderError']>[1]) {
  const rendered = dialect.renderError(error, request);
  const headers: Record<string, string> = { ...(rendered.headers ?? {}) };
  // Every 429/503 tells the client when to come back, even when the upstream did not say.
  const retryAfter = error.retryAfter ?? (error.status === 429 || error.status === 503 ? DEFAULT_RETRY_AFTER_SECONDS : undefined);
  if (retryAfter !== undefined) headers['retry-after'] = String(Math.max(0, Math.ceil(retryAfter)));
  // A refusal by a rate limit says which, as an admitted call's answer does (context.ts).
  if (error.rateLimit) Object.assign(headers, rateLimitHeaders(error.rateLimit, dialect.name === 'messages' ? 'anthropic' : 'openai'));
  return { ...rendered, headers };
}

export async function createServer(options: ServerOptions): Promise<SwitchboardServer> {
  const { config } = options;
  const env = options.env ?? process.env;
  const logger = options.logger ?? pino({ level: config.server.logLevel, base: { service: 'switchboard' } });
  const dataDir = path.resolve(config.server.dataDir);
  const store = options.store ?? (await openStore(config, dataDir, { serving: true, env }));
  for (const step of store.migrated ?? []) logger.info({ store: store.kind, version: step.version, description: step.description }, 'store schema migrated');
  const gateway = new Gateway(config, store, logger, options.providers ?? providerFactories, dataDir, env);
  const auth = new Authenticator(store, env[config.server.adminKeyEnv]);
  const context: ServerContext = { config, gateway, store, auth, logger, services: {}, env };
  attachMetrics(gateway);

  const app = Fastify({
    logger: false,
    bodyLimit: config.server.bodyLimit,
    genReqId: () => newRequestId(),
    requestIdHeader: false,
    // Long generations: never cut a request for being slow.
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
  });
  app.decorateRequest('auth', undefined);
  app.decorateRequest('arrivedAt', 0);
  app.addHook('onRequest', async (request, reply) => {
    request.arrivedAt = performance.now();
    reply.header('x-request-id', request.id);
  });
  await registerCors(app, config);
  // Route catalog (/openapi.json), limits and budgets, admin/usage API, the per-request log line.
  installOperations(app, context);

  registerOperationalRoutes(app, context);
  registerRouterStatusRoute(app, context);

  // GET /v1/models answers the Anthropic SDK in its own shape (client-constraint.ts).
  addClientConstraint(app);
  for (const dialect of dialects) {
    await app.register(async (scope) => {
      scope.setErrorHandler(async (err, request, reply) => {
        const error = toGatewayError(err);
        if (error.kind === 'internal') logger.error({ err, reqId: request.id }, 'unhandled error');
        const { status, body, headers } = errorReply(dialect, error, request);
        return reply.status(status).headers(headers).send(body);
      });
      await dialect.register(scope, context);
    });
  }

  app.setNotFoundHandler(async (request, reply) => {
    const message = `Unknown route ${request.method} ${request.url.split('?')[0]}`;
    // The Anthropic SDK (it sends anthropic-version) reads Anthropic's error shape; everyone else gets OpenAI's.
    if (request.headers['anthropic-version'] !== undefined) {
      return reply.status(404).header('request-id', request.id).send({ type: 'error', error: { type: 'not_found_error', message }, request_id: request.id });
    }
    return reply.status(404).send({ error: { message, type: 'invalid_request_error', param: null, code: 'unknown_route' } });
  });
  app.setErrorHandler(async (err, request, reply) => {
    const error = toGatewayError(err);
    if (error.kind === 'internal') logger.error({ err, reqId: request.id }, 'unhandled error');
    return reply.status(error.status).send({ error: { message: error.message, type: error.kind, param: error.param ?? null, code: error.code } });
  });

  return {
    app,
    context,
    async listen() {
      const { host, port } = config.server;
      const open = !(await auth.hasKeys());
      if (open && !isLoopbackHost(host)) {
        throw new Error(
          `Refusing to listen on ${host}: no API key exists, so the server would be open to the network. Create one with 'switchboard keys create --org ORG' or listen on 127.0.0.1.`,
        );
      }
      if (open && allowsEveryOrigin(config)) {
        throw new Error(
          "Refusing to start: no API key exists and server.cors.origins allows '*', so any web page the user opens could call this open server. Create a key with 'switchboard keys create --org ORG', or list the origins allowed.",
        );
      }
      const url = await app.listen({ host, port });
      if (open) logger.warn({ host }, 'no API keys configured: running OPEN (no authentication), bound to loopback only');
      return url;
    },
    async close() {
      await app.close();
      await gateway.close();
      if (!options.store) await store.close();
    },
  };
}
