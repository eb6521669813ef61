// Health, readiness and metrics routes.

import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.js';
import { metricsRegistry } from './metrics.js';

export function registerOperationalRoutes(app: FastifyInstance, context: ServerContext): void {
  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/health/ready', async (_request, reply) => {
    const checks: Record<string, string> = {};
    let ready = true;
    try {
      await context.store.ping();
      checks.store = 'ok';
    } catch (err) {
      ready = false;
      checks.store = `error: ${(err as Error).message}`;
    }
    try {
      await context.gateway.warmUp();
      checks.defaultModel = 'ok';
    } catch (err) {
      ready = false;
      checks.defaultModel = `error: ${(err as Error).message}`;
    }
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await metricsRegistry.metrics();
    return reply.header('content-type', metricsRegistry.contentType).send(body);
  });
}
