// Builds the HTTP server: Fastify, the store, the core, and every dialect as its own plugin
// (each with its own error shape).

import path from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from '../core/config.js';
import { Gateway } from '../core/gateway.js';
import { newRequestId } from '../core/gateway.js';
import { GatewayError, toGatewayError } from '../core/errors.js';
import { deploymentsOf } from '../core/models.js';
import { checkProxySettings } from '../core/proxy.js';
import type { ProviderFactory } from '../core/provider.js';
import { attemptLogOf } from '../core/router/router.js';
import { providerFactories } from '../providers/index.js';
import { dialects } from '../dialects/index.js';
import { openAIErrorBody } from '../dialects/openai/errors.js';
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
import { drain, InFlightRequests, refuseDuringShutdown } from './shutdown.js';
import { acceptEmptyJsonBodies } from './json-body.js';
import { ClientErrors, unknownRouteError } from './client-errors.js';

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
  /** Stops listening, lets requests in flight finish for up to server.shutdownGraceSeconds, then ends the rest (src/server/shutdown.ts). */
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
  // A request whose every attempt failed says how many there were, as an answered one does.
  const attempts = attemptLogOf(error);
  if (attempts) headers['x-switchboard-attempts'] = String(attempts.length);
  return { ...rendered, headers };
}

const messagesDialect = dialects.find((d) => d.name === 'messages');

/**
 * The dialect a request was meant for when no route of it could be matched (an unknown path, a
 * URL that cannot be decoded): by the path's prefix, else the Anthropic SDK by its header.
 */
function intendedDialect(request: FastifyRequest): Dialect | undefined {
  const byPath = dialects.find((d) => d.pathPrefixes.some((prefix) => request.url.startsWith(prefix)));
  return byPath ?? (request.headers['anthropic-version'] !== undefined ? messagesDialect : undefined);
}

/** The shape of errors outside the dialects (admin, usage, health, unreadable requests): OpenAI's. */
function genericErrorBody(error: GatewayError) {
  return openAIErrorBody(error);
}

/** An error outside every dialect's own handler, in the shape its client reads. */
function unroutedErrorReply(error: GatewayError, request: FastifyRequest, fallback: () => unknown) {
  const dialect = intendedDialect(request);
  return dialect ? errorReply(dialect, error, request) : { status: error.status, body: fallback(), headers: {} };
}

/** Fastify's errors before routing (frameworkErrors): a URL that cannot be decoded, a path parameter too long. */
function frameworkError(err: FastifyError): GatewayError {
  if (err.code === 'FST_ERR_BAD_URL') return new GatewayError('bad_request', 'The URL path is not valid percent-encoding', { code: 'invalid_url', cause: err });
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new GatewayError('bad_request', `A path parameter is longer than ${MAX_PARAM_LENGTH} characters`, { code: 'path_parameter_too_long', status: 414, cause: err });
  }
  return toGatewayError(err);
}

/** Longest path parameter (an id) a route accepts; Fastify's default of 100 is below a session id's 128. */
const MAX_PARAM_LENGTH = 512;

/**
 * Node's limits on receiving a request. It checks them every `connectionsCheckingInterval` (30 s
 * by default), and times the headers apart with `headersTimeout` (60 s), which must not exceed the
 * whole request's: short limits get a tighter check and a headers limit within them.
 */
function requestTimeouts(ms: number): { requestTimeout: number; http?: { headersTimeout: number; connectionsCheckingInterval: number } } {
  if (ms === 0) return { requestTimeout: 0 };
  return { requestTimeout: ms, http: { headersTimeout: Math.min(60_000, ms), connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.round(ms / 10))) } };
}

/** A deployment that names an API key variable which is empty goes without a key: said once, at start. */
function warnAboutEmptyKeyVariables(config: ServerOptions['config'], env: NodeJS.ProcessEnv, logger: Logger): void {
  for (const model of config.models) {
    for (const deployment of deploymentsOf(model)) {
      if (deployment.apiKeyEnv && !env[deployment.apiKeyEnv]) {
        logger.warn({ model: model.id, provider: deployment.provider, variable: deployment.apiKeyEnv }, `the API key variable ${deployment.apiKeyEnv} is empty: model '${model.id}' calls its upstream without a key`);
      }
    }
  }
}

/**
 * A client whose base URL lacks the /v1 its SDK expects (the openai SDK's ends in /v1), or repeats
 * it (the Anthropic SDK adds /v1 itself), misses every route by that much: name the route it meant.
 */
function nearRoute(app: { hasRoute(route: { method: string; url: string }): boolean }, method: string, path: string): string {
  const candidates = [path.startsWith('/v1/') ? undefined : `/v1${path}`, path.startsWith('/v1/v1/') ? path.slice(3) : undefined];
  const near = candidates.find((url) => url !== undefined && app.hasRoute({ method, url }));
  return near ? `; did you mean ${method} ${near}? (check the client's base URL)` : '';
}

export async function createServer(options: ServerOptions): Promise<SwitchboardServer> {
  const { config } = options;
  const env = options.env ?? process.env;
  // The providers read the proxy variables from the process's environment.
  checkProxySettings();
  const logger = options.logger ?? pino({ level: config.server.logLevel, base: { service: 'switchboard' } });
  const dataDir = path.resolve(config.server.dataDir);
  const store = options.store ?? (await openStore(config, dataDir, { serving: true, env }));
  for (const step of store.migrated ?? []) logger.info({ store: store.kind, version: step.version, description: step.description }, 'store schema migrated');
  const gateway = new Gateway(config, store, logger, options.providers ?? providerFactories, dataDir, env);
  warnAboutEmptyKeyVariables(config, env, logger);
  const auth = new Authenticator(store, env[config.server.adminKeyEnv]);
  const context: ServerContext = { config, gateway, store, auth, logger, services: {}, env };
  attachMetrics(gateway);

  // Errors on a connection (a request not received in time): the dialect's shape where a request is known.
  const clientErrors = new ClientErrors((error, request) => {
    if (!request) return { status: error.status, body: genericErrorBody(error), headers: {} };
    const reply = unroutedErrorReply(error, request, () => genericErrorBody(error));
    return { ...reply, headers: { ...reply.headers, 'x-request-id': String(request.id) } };
  }, config.server.requestTimeoutSeconds);
  const app = Fastify({
    logger: false,
    clientErrorHandler: clientErrors.handle,
    bodyLimit: config.server.bodyLimit,
    genReqId: () => newRequestId(),
    requestIdHeader: false,
    // A client slow to *send* its request (a trickled body) is cut; the answer is not timed, so a
    // long generation never is.
    ...requestTimeouts(config.server.requestTimeoutSeconds * 1000),
    keepAliveTimeout: 65_000,
    // refuseDuringShutdown answers instead, in the dialect's error shape.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (err, request, reply: FastifyReply) => {
      const error = frameworkError(err);
      const { status, body, headers } = unroutedErrorReply(error, request, () => genericErrorBody(error));
      void reply.status(status).headers(headers).send(body);
    },
  });
  acceptEmptyJsonBodies(app);
  const inFlight = new InFlightRequests();
  app.decorate('inFlight', inFlight);
  app.decorate('streamStall', { ms: config.server.streamStallSeconds * 1000, logger });
  app.decorateRequest('auth', undefined);
  app.decorateRequest('arrivedAt', 0);
  // Errors of routes outside the dialects (admin, usage, health, router status), and of a body read
  // for a path no route matched. Set before any route: a route keeps the handler it was registered
  // under, and /v1/router/status answered in Fastify's own {statusCode, error} shape.
  app.setErrorHandler(async (err, request, reply) => {
    const error = toGatewayError(err);
    if (error.kind === 'internal') logger.error({ err, reqId: request.id }, 'unhandled error');
    const generic = () => genericErrorBody(error);
    const { status, body, headers } = request.is404 ? unroutedErrorReply(error, request, generic) : { status: error.status, body: generic(), headers: {} };
    return reply.status(status).headers(headers).send(body);
  });
  app.addHook('onRequest', async (request, reply) => {
    request.arrivedAt = performance.now();
    reply.header('x-request-id', request.id);
    clientErrors.received(request);
    // Stamped first: a request refused once the shutdown has begun keeps its arrival time and id.
    if (inFlight.closing) refuseDuringShutdown(reply);
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

  // A path under a dialect's prefixes gets that dialect's shape; any other, OpenAI's.
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const error = unknownRouteError(request.method, path, nearRoute(app, request.method, path));
    const { status, body, headers } = unroutedErrorReply(error, request, () => ({ error: { message: error.message, type: 'invalid_request_error', param: null, code: 'unknown_route' } }));
    return reply.status(status).headers(headers).send(body);
  });

  return {
    app,
    context,
    async listen() {
      const { host, port } = config.server;
      const open = !(await auth.hasKeys());
      const networked = !isLoopbackHost(host);
      const everyOrigin = allowsEveryOrigin(config);
      if (open && networked) {
        throw new Error(
          `Refusing to listen on ${host}: no API key exists, so the server would be open to the network. Create one with 'switchboard keys create --org ORG' or listen on 127.0.0.1.`,
        );
      }
      if (open && everyOrigin) {
        throw new Error(
          "Refusing to start: no API key exists and server.cors.origins allows '*', so any web page the user opens could call this open server. Create a key with 'switchboard keys create --org ORG', or list the origins allowed.",
        );
      }
      // Checked at start, and held: revoking the last key later must not open this server.
      if (networked || everyOrigin) auth.refuseOpenMode();
      const url = await app.listen({ host, port });
      if (open) logger.warn({ host }, 'no API keys configured: running OPEN (no authentication), bound to loopback only');
      return url;
    },
    async close() {
      await drain(app, inFlight, config.server.shutdownGraceSeconds * 1000, (ended) => {
        if (ended > 0) logger.warn({ requests: ended, graceSeconds: config.server.shutdownGraceSeconds }, 'shutdown grace period over: ending the requests still running');
      });
      await gateway.close();
      if (!options.store) await store.close();
    },
  };
}
