// The Messages dialect (seed 003): Anthropic's /v1/messages and the async runs built on it.

import type { FastifyInstance } from 'fastify';
import { parseAsyncConfig } from '../../core/async/config.js';
import { configSource } from '../../core/config.js';
import { AsyncRunner } from '../../core/async/runner.js';
import type { Dialect, ServerContext } from '../../server/context.js';
import { MESSAGES_RUN_KIND, messagesRunKind } from './async-run-kind.js';
import { registerAsyncRoutes } from './async-routes.js';
import { parseMessagesConfig } from './config.js';
import { anthropicErrorBody } from './errors.js';
import { registerModelsRoutes } from './models-routes.js';
import { registerMessagesRoutes } from './routes.js';

async function register(app: FastifyInstance, context: ServerContext): Promise<void> {
  app.addHook('preHandler', async (request) => {
    request.auth = await context.auth.authenticate(request);
  });
  const deps = { context, config: parseMessagesConfig(context.config.messages, configSource(context.config)) };
  registerMessagesRoutes(app, deps);
  registerModelsRoutes(app, context);

  const store = context.store.asyncRuns;
  if (!store) {
    context.logger.warn({ store: context.store.kind }, 'this store keeps no async runs: /v1/messages/async is off');
    return;
  }
  const runner = new AsyncRunner(store, parseAsyncConfig(context.config.async, configSource(context.config)), context.logger.child({ component: 'async-runs' }), {
    [MESSAGES_RUN_KIND]: messagesRunKind(deps),
  }, context.store.coordination);
  context.services.asyncRunner = runner;
  context.services.asyncQueueDepth = () => runner.pendingCount;
  registerAsyncRoutes(app, deps, runner);
  // A shutdown lets the runs in progress finish within the grace period, as requests in flight
  // do. Not awaited in preClose, so the listener closes at once; the server then waits for the
  // observers' open streams, which end when their runs do (src/server/shutdown.ts).
  let draining: Promise<void> | undefined;
  app.addHook('preClose', async () => {
    draining = runner.drain(context.config.server.shutdownGraceSeconds * 1000);
  });
  app.addHook('onClose', async () => {
    await draining;
    await runner.stop();
  });
  await runner.start();
}

export const messagesDialect: Dialect = {
  name: 'messages',
  pathPrefixes: ['/v1/messages'],
  renderError: (error, request) => ({
    status: error.status,
    body: anthropicErrorBody(error, String(request.id)),
    headers: { 'request-id': String(request.id) },
  }),
  register,
};
