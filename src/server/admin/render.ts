// Store records → admin API JSON (snake_case, ISO times). Never the key hash.

import { limitSpecSchema, type LimitSpec } from '../../core/limits/spec.js';
import type { ApiKeyRecord, RequestLogEntry } from '../../store/store.js';
import type { z } from 'zod';
import type { apiKeySchema, requestLogEntrySchema } from './schemas.js';

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function limitsOf(raw: unknown): LimitSpec | null {
  if (raw === undefined || raw === null) return null;
  const parsed = limitSpecSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

export function keyState(key: ApiKeyRecord, now = Date.now()): 'active' | 'revoked' | 'expired' {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt !== undefined && key.expiresAt <= now) return 'expired';
  return 'active';
}

export function renderKey(key: ApiKeyRecord, raw?: string): z.infer<typeof apiKeySchema> {
  return {
    id: key.id,
    object: 'api_key',
    organisation: key.organisation,
    name: key.name ?? null,
    prefix: key.prefix,
    state: keyState(key),
    created_at: new Date(key.createdAt).toISOString(),
    revoked_at: iso(key.revokedAt),
    expires_at: iso(key.expiresAt),
    allowed_models: key.allowedModels ?? null,
    limits: limitsOf(key.limits),
    ...(raw ? { key: raw } : {}),
  };
}

export function renderLogEntry(e: RequestLogEntry): z.infer<typeof requestLogEntrySchema> {
  return {
    id: e.id,
    created_at: new Date(e.createdAt).toISOString(),
    organisation: e.organisation,
    key_id: e.keyId ?? null,
    correlation_id: e.correlationId ?? null,
    dialect: e.dialect,
    route: e.route,
    model: e.model ?? null,
    provider: e.provider ?? null,
    deployment: e.deployment ?? null,
    attempts: e.attempts,
    status: e.status,
    error_kind: e.errorKind ?? null,
    latency_ms: e.latencyMs,
    ttft_ms: e.ttftMs ?? null,
    input_tokens: e.inputTokens,
    output_tokens: e.outputTokens,
    total_tokens: e.totalTokens,
    cache_read_tokens: e.cacheReadTokens ?? 0,
    cache_write_tokens: e.cacheWriteTokens ?? 0,
    reasoning_tokens: e.reasoningTokens ?? 0,
    server_tool_use: e.serverToolUse ?? {},
    cost: e.cost,
    stream: e.stream,
    body: e.body ?? null,
  };
}
