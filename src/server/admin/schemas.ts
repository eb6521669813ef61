// Wire schemas of the admin API and GET /v1/usage. The routes validate with these and
// /openapi.json is generated from them.

import { z } from 'zod';
import { limitSpecSchema } from '../../core/limits/spec.js';
import { OPEN_ORGANISATION } from '../auth.js';

export const organisationName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be 1-128 characters of letters, digits, dot, dash and underscore');
/**
 * An organisation a new key may belong to: 'default' is where the admin key's and open mode's
 * sessions, runs and usage are kept, so a tenant given it would see them.
 */
export const keyOrganisationName = organisationName.refine((name) => name !== OPEN_ORGANISATION, {
  message: `'${OPEN_ORGANISATION}' is reserved: it holds the admin key's and open mode's sessions, runs and usage`,
});
/** A time: ISO 8601 text or milliseconds since the epoch. */
const instant = z.union([z.iso.datetime({ offset: true }), z.iso.date(), z.number().int().nonnegative()]);
export const queryInstant = z.union([z.iso.datetime({ offset: true }), z.iso.date(), z.string().regex(/^\d+$/, 'must be ISO 8601 or epoch milliseconds')]);

export const limitsBodySchema = limitSpecSchema;

export const createKeyBodySchema = z
  .object({
    organisation: keyOrganisationName,
    name: z.string().max(200).optional(),
    allowed_models: z.array(z.string().min(1)).optional(),
    expires_at: instant.optional(),
    /** Duration from now, e.g. 30d, 12h, 15m, 45s. */
    expires_in: z.string().regex(/^0*[1-9]\d*\s*(s|m|h|d)$/, 'must be a duration above zero, like 30d, 12h, 15m or 45s').optional(),
    limits: limitSpecSchema.optional(),
  })
  .strict();

export const updateKeyBodySchema = z
  .object({
    name: z.string().max(200).nullable().optional(),
    allowed_models: z.array(z.string().min(1)).nullable().optional(),
    expires_at: instant.nullable().optional(),
    limits: limitSpecSchema.nullable().optional(),
  })
  .strict();

export const updateOrganisationBodySchema = z
  .object({
    limits: limitSpecSchema.nullable().optional(),
    /** Log request bodies (secrets redacted) for this organisation. */
    log_bodies: z.boolean().nullable().optional(),
  })
  .strict();

export const keyListQuerySchema = z.object({ organisation: organisationName.optional() }).strict();

export const requestLogQuerySchema = z
  .object({
    organisation: z.string().optional(),
    key_id: z.string().optional(),
    model: z.string().optional(),
    provider: z.string().optional(),
    dialect: z.string().optional(),
    status: z.coerce.number().int().min(100).max(599).optional(),
    error_kind: z.string().optional(),
    correlation_id: z.string().optional(),
    since: queryInstant.optional(),
    until: queryInstant.optional(),
    limit: z.coerce.number().int().min(1).max(10_000).optional(),
  })
  .strict();

export const usageQuerySchema = z
  .object({
    /** Admin only: one organisation (default: all). */
    organisation: z.string().optional(),
    key_id: z.string().optional(),
    model: z.string().optional(),
    since: queryInstant.optional(),
    until: queryInstant.optional(),
  })
  .strict();

export const apiKeySchema = z.object({
  id: z.string(),
  object: z.literal('api_key'),
  organisation: z.string(),
  name: z.string().nullable(),
  prefix: z.string(),
  state: z.enum(['active', 'revoked', 'expired']),
  created_at: z.string(),
  revoked_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  allowed_models: z.array(z.string()).nullable(),
  limits: limitSpecSchema.nullable(),
  /** The raw key: only in the answer to the create call, never again. */
  key: z.string().optional(),
});

export const apiKeyListSchema = z.object({ object: z.literal('list'), data: z.array(apiKeySchema) });

export const organisationSchema = z.object({
  object: z.literal('organisation'),
  organisation: z.string(),
  active_keys: z.number().int(),
  limits: limitSpecSchema.nullable(),
  limits_source: z.enum(['admin', 'config', 'none']),
  log_bodies: z.boolean(),
});

export const organisationListSchema = z.object({ object: z.literal('list'), data: z.array(organisationSchema) });

export const requestLogEntrySchema = z.object({
  id: z.string(),
  created_at: z.string(),
  organisation: z.string(),
  key_id: z.string().nullable(),
  correlation_id: z.string().nullable(),
  dialect: z.string(),
  route: z.string(),
  model: z.string().nullable(),
  provider: z.string().nullable(),
  deployment: z.string().nullable(),
  attempts: z.number().int(),
  status: z.number().int(),
  error_kind: z.string().nullable(),
  latency_ms: z.number(),
  ttft_ms: z.number().nullable(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  /** Parts of input_tokens read from / written to a prompt cache. */
  cache_read_tokens: z.number().int(),
  cache_write_tokens: z.number().int(),
  /** Part of output_tokens spent thinking. */
  reasoning_tokens: z.number().int(),
  /** Requests of tools the provider ran itself, by kind (`web_search_requests`…); {} when none. */
  server_tool_use: z.record(z.string(), z.number().int()),
  cost: z.number(),
  stream: z.boolean(),
  body: z.string().nullable(),
});

export const requestLogListSchema = z.object({ object: z.literal('list'), data: z.array(requestLogEntrySchema) });

const usageNumbers = {
  requests: z.number().int(),
  errors: z.number().int(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cache_read_tokens: z.number().int(),
  cache_write_tokens: z.number().int(),
  reasoning_tokens: z.number().int(),
  server_tool_use: z.record(z.string(), z.number().int()),
  cost: z.number(),
  latency_p50_ms: z.number().nullable(),
  latency_p95_ms: z.number().nullable(),
};

export const usageRowSchema = z.object({
  day: z.string(),
  organisation: z.string(),
  key_id: z.string().nullable(),
  model: z.string().nullable(),
  provider: z.string().nullable(),
  ...usageNumbers,
});

export const usageReportSchema = z.object({
  object: z.literal('usage'),
  organisation: z.string().nullable(),
  since: z.string().nullable(),
  until: z.string().nullable(),
  data: z.array(usageRowSchema),
  totals: z.object(usageNumbers),
});

export type UsageRow = z.infer<typeof usageRowSchema>;
export type UsageReport = z.infer<typeof usageReportSchema>;

/** ISO text, a date, or epoch-ms digits → epoch ms. */
export function toEpochMs(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return value;
  if (/^\d+$/.test(value)) return Number(value);
  return Date.parse(value);
}
