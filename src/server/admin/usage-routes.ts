// GET /v1/usage: an organisation's own usage (its keys), or everyone's with the admin key.

import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../core/errors.js';
import { parseBody } from '../../core/validation.js';
import type { ServerContext } from '../context.js';
import { toEpochMs, usageQuerySchema, usageReportSchema } from './schemas.js';
import { usageReport } from './usage-report.js';

export function registerUsageRoutes(app: FastifyInstance, context: ServerContext): void {
  app.get(
    '/v1/usage',
    {
      config: {
        openapi: {
          summary: 'Usage and cost by day, model, key and provider: requests, tokens, cost, errors, p50/p95 latency',
          description: 'An API key sees its own organisation; the admin key sees every organisation (or one, with ?organisation=).',
          tags: ['usage'],
          security: 'key',
          query: usageQuerySchema,
          response: usageReportSchema,
        },
      },
    },
    async (request) => {
      const auth = await context.auth.authenticate(request);
      request.auth = auth;
      const q = parseBody(usageQuerySchema, request.query ?? {});
      let organisation = q.organisation;
      if (auth.mode !== 'admin') {
        if (organisation !== undefined && organisation !== auth.organisation) {
          throw new GatewayError('permission', 'An API key sees only its own organisation', { param: 'organisation', code: 'wrong_organisation' });
        }
        organisation = auth.organisation;
      }
      const tenancy = context.store.tenancy;
      if (!tenancy) throw new GatewayError('unavailable', `The ${context.store.kind} store does not keep usage`, { code: 'tenancy_unsupported' });
      const since = toEpochMs(q.since);
      const until = toEpochMs(q.until);
      // Rows name the model's id: an alias (default, gpt-4o…) asks for the model it names.
      const model = q.model === undefined ? undefined : (context.gateway.registry.find(q.model)?.id ?? q.model);
      const samples = await tenancy.usageSamples({ organisation, keyId: q.key_id, model, since, until });
      return usageReport(samples, { organisation, since, until });
    },
  );
}
