// The admin API (admin key only): keys, organisation limits and settings, the request log.

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '../../core/errors.js';
import { generateApiKey, hashApiKey, keyPrefix } from '../../core/keys.js';
import { limitsConfigOf } from '../../core/limits/spec.js';
import { parseBody } from '../../core/validation.js';
import type { TenancyStore } from '../../store/tenancy.js';
import type { ServerContext } from '../context.js';
import { requireAdmin } from './admin-auth.js';
import { keyState, limitsOf, renderKey, renderLogEntry } from './render.js';
import {
  apiKeyListSchema,
  apiKeySchema,
  createKeyBodySchema,
  keyListQuerySchema,
  organisationListSchema,
  organisationSchema,
  requestLogListSchema,
  requestLogQuerySchema,
  toEpochMs,
  updateKeyBodySchema,
  updateOrganisationBodySchema,
} from './schemas.js';

const DURATION_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

function durationMs(text: string): number {
  const match = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim())!;
  return Number(match[1]) * DURATION_MS[match[2] as keyof typeof DURATION_MS];
}

function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.infer<T> {
  return parseBody(schema, query ?? {});
}

function tenancyOf(context: ServerContext): TenancyStore {
  const tenancy = context.store.tenancy;
  if (!tenancy) throw new GatewayError('unavailable', `The ${context.store.kind} store does not support organisations and limits`, { code: 'tenancy_unsupported' });
  return tenancy;
}

const keyIdParams = z.object({ id: z.string() });
const organisationParams = z.object({ organisation: z.string() });

/** A key limited to a model this server does not serve could never be used for it: refused, named. */
function checkAllowedModels(context: ServerContext, models: string[] | null | undefined): void {
  const unknown = (models ?? []).findIndex((m) => !context.gateway.registry.find(m));
  if (unknown >= 0) {
    throw new GatewayError('bad_request', `allowed_models names '${models![unknown]}', which is no model id or alias of this server`, { param: `allowed_models[${unknown}]`, code: 'model_not_found' });
  }
}

export function registerAdminRoutes(app: FastifyInstance, context: ServerContext): void {
  const limitsConfig = limitsConfigOf(context.config);
  app.addHook('preHandler', async (request) => requireAdmin(context, request));
  const tags = ['admin'];
  const security = 'admin' as const;

  app.post('/admin/keys', { config: { openapi: { summary: 'Create an API key (the raw key is in this answer only)', tags, security, body: createKeyBodySchema, response: apiKeySchema, status: 201 } } }, async (request, reply) => {
    const body = parseBody(createKeyBodySchema, request.body);
    if (body.expires_at !== undefined && body.expires_in !== undefined) throw new GatewayError('bad_request', 'Send expires_at or expires_in, not both', { param: 'expires_in' });
    checkAllowedModels(context, body.allowed_models);
    const raw = generateApiKey();
    const record = await context.store.createKey({
      organisation: body.organisation,
      name: body.name,
      hash: hashApiKey(raw),
      prefix: keyPrefix(raw),
      expiresAt: body.expires_in ? Date.now() + durationMs(body.expires_in) : toEpochMs(body.expires_at),
      allowedModels: body.allowed_models,
      limits: body.limits,
    });
    return reply.status(201).send(renderKey(record, raw));
  });

  app.get('/admin/keys', { config: { openapi: { summary: 'List keys (never the keys themselves)', tags, security, query: keyListQuerySchema, response: apiKeyListSchema } } }, async (request) => {
    const query = parseQuery(keyListQuerySchema, request.query);
    const keys = await context.store.listKeys(query.organisation);
    return { object: 'list', data: keys.map((k) => renderKey(k)) };
  });

  app.get('/admin/keys/:id', { config: { openapi: { summary: 'One key', tags, security, response: apiKeySchema } } }, async (request) => {
    const { id } = keyIdParams.parse(request.params);
    const key = await tenancyOf(context).keyById(id);
    if (!key) throw new GatewayError('not_found', `No key '${id}'`, { param: 'id', code: 'key_not_found' });
    return renderKey(key);
  });

  app.patch('/admin/keys/:id', { config: { openapi: { summary: "Set a key's limits, budgets, allowed models, expiry or name (null clears)", tags, security, body: updateKeyBodySchema, response: apiKeySchema } } }, async (request) => {
    const { id } = keyIdParams.parse(request.params);
    const body = parseBody(updateKeyBodySchema, request.body);
    checkAllowedModels(context, body.allowed_models);
    const key = await tenancyOf(context).updateKey(id, {
      name: body.name,
      allowedModels: body.allowed_models,
      limits: body.limits,
      expiresAt: body.expires_at === null ? null : toEpochMs(body.expires_at),
    });
    if (!key) throw new GatewayError('not_found', `No key '${id}'`, { param: 'id', code: 'key_not_found' });
    return renderKey(key);
  });

  app.delete('/admin/keys/:id', { config: { openapi: { summary: 'Revoke a key: refused (401) from the next request on', tags, security, response: apiKeySchema } } }, async (request) => {
    const { id } = keyIdParams.parse(request.params);
    const tenancy = tenancyOf(context);
    const existing = await tenancy.keyById(id);
    if (!existing) throw new GatewayError('not_found', `No key '${id}'`, { param: 'id', code: 'key_not_found' });
    await context.store.revokeKey(id);
    return renderKey((await tenancy.keyById(id))!);
  });

  const describeOrganisation = async (organisation: string) => {
    const tenancy = tenancyOf(context);
    const settings = await tenancy.organisationSettings(organisation);
    const configured = limitsConfig.organisations[organisation];
    const keys = await context.store.listKeys(organisation);
    const { logBodies, ...configuredLimits } = configured ?? {};
    const adminLimits = limitsOf(settings?.limits);
    const fromConfig = configured ? limitsOf(configuredLimits) : null;
    return {
      object: 'organisation' as const,
      organisation,
      active_keys: keys.filter((k) => keyState(k) === 'active').length,
      limits: adminLimits ?? fromConfig,
      limits_source: adminLimits ? ('admin' as const) : fromConfig ? ('config' as const) : ('none' as const),
      log_bodies: settings?.logBodies ?? logBodies ?? false,
    };
  };

  app.get('/admin/organisations', { config: { openapi: { summary: 'List organisations with their limits and settings', tags, security, response: organisationListSchema } } }, async () => {
    const names = new Set([...(await tenancyOf(context).listOrganisations()), ...Object.keys(limitsConfig.organisations)]);
    return { object: 'list', data: await Promise.all([...names].sort().map(describeOrganisation)) };
  });

  app.get('/admin/organisations/:organisation', { config: { openapi: { summary: "An organisation's limits and settings", tags, security, response: organisationSchema } } }, async (request) => {
    const { organisation } = organisationParams.parse(request.params);
    return describeOrganisation(organisation);
  });

  app.patch('/admin/organisations/:organisation', { config: { openapi: { summary: "Set an organisation's limits, budgets and body logging (null returns to the config's)", tags, security, body: updateOrganisationBodySchema, response: organisationSchema } } }, async (request) => {
    const { organisation } = organisationParams.parse(request.params);
    const body = parseBody(updateOrganisationBodySchema, request.body);
    await tenancyOf(context).setOrganisationSettings(organisation, { limits: body.limits, logBodies: body.log_bodies });
    return describeOrganisation(organisation);
  });

  app.get('/admin/requests', { config: { openapi: { summary: 'Query the request log (newest first) with filters and a time range', tags, security, query: requestLogQuerySchema, response: requestLogListSchema } } }, async (request) => {
    const q = parseQuery(requestLogQuerySchema, request.query);
    const rows = await tenancyOf(context).queryRequestLog({
      organisation: q.organisation,
      keyId: q.key_id,
      model: q.model,
      provider: q.provider,
      dialect: q.dialect,
      status: q.status,
      errorKind: q.error_kind,
      correlationId: q.correlation_id,
      since: toEpochMs(q.since),
      until: toEpochMs(q.until),
      limit: q.limit,
    });
    return { object: 'list', data: rows.map(renderLogEntry) };
  });
}
