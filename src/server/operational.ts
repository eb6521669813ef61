// Health, readiness and metrics routes.

import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.js';
import { metricsRegistry } from './metrics.js';

/** How long readiness waits for the default model before it answers `loading`: probes time out. */
const READINESS_WAIT_MS = 1000;

/** The last failed load of each gateway's default model, until one succeeds. */
const lastLoadError = new WeakMap<ServerContext['gateway'], string>();

/**
 * `ok` once the default model is loaded (the first probe starts the load when the server did not),
 * its load error, or `loading` while a load (a first download, say) takes longer than a probe waits.
 */
async function defaultModelCheck(gateway: ServerContext['gateway']): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  // A probe whose retry of a failed load outlasts its wait reports that failure, not `loading`.
  const waited = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      const failed = lastLoadError.get(gateway);
      resolve(failed ? `error: ${failed}` : 'loading');
    }, READINESS_WAIT_MS).unref();
  });
  const loaded = gateway.warmUp().then(
    () => {
      lastLoadError.delete(gateway);
      return 'ok';
    },
    (err: unknown) => {
      lastLoadError.set(gateway, (err as Error).message);
      return `error: ${(err as Error).message}`;
    },
  );
  try {
    return await Promise.race([loaded, waited]);
  } finally {
    clearTimeout(timer);
  }
}

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
    checks.defaultModel = await defaultModelCheck(context.gateway);
    if (checks.defaultModel !== 'ok') ready = false;
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await metricsRegistry.metrics();
    return reply.header('content-type', metricsRegistry.contentType).send(body);
  });
}
