// Request-log retention: rows older than `limits.requestLog.retentionDays` are deleted at start
// and then every hour.

import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';

const PRUNE_EVERY_MS = 3_600_000;

export function attachRetention(app: FastifyInstance, context: ServerContext, retentionDays: number): void {
  if (retentionDays <= 0) return;
  const prune = async () => {
    try {
      const removed = await context.store.pruneRequests(Date.now() - retentionDays * 86_400_000);
      if (removed > 0) context.logger.info({ removed, retentionDays }, 'request log pruned');
    } catch (err) {
      context.logger.error({ err }, 'request log pruning failed');
    }
  };
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    await prune();
    timer = setInterval(() => void prune(), PRUNE_EVERY_MS);
    timer.unref();
  });
  app.addHook('onClose', async () => clearInterval(timer));
}
