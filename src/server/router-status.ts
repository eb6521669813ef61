// GET /v1/router/status (admin key only): each model's routing settings and, per deployment,
// requests in flight, latency average, failures and circuit-breaker state.

import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../core/errors.js';
import type { ServerContext } from './context.js';

export function registerRouterStatusRoute(app: FastifyInstance, context: ServerContext): void {
  app.get('/v1/router/status', async (request) => {
    request.auth = await context.auth.authenticate(request);
    if (request.auth.mode !== 'admin') {
      throw new GatewayError('permission', 'The router status needs the admin key', { code: 'admin_required' });
    }
    return { object: 'router.status', time: new Date().toISOString(), ...context.gateway.router.status() };
  });
}
