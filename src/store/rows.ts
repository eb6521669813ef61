// Rows of the tables every SQL store shares (api_keys, request_log), as the drivers return them,
// and their records. Column names and encodings are the same in SQLite and PostgreSQL.

import type { ApiKeyRecord, RequestLogEntry } from './store.js';

export interface KeyRow {
  id: string;
  organisation: string;
  name: string | null;
  hash: string;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
  expires_at: number | null;
  allowed_models: string | null;
  limits: string | null;
}

export function keyFromRow(row: KeyRow): ApiKeyRecord {
  return {
    id: row.id,
    organisation: row.organisation,
    name: row.name ?? undefined,
    hash: row.hash,
    prefix: row.prefix,
    createdAt: row.created_at,
    revokedAt: row.revoked_at ?? undefined,
    expiresAt: row.expires_at ?? undefined,
    allowedModels: row.allowed_models ? (JSON.parse(row.allowed_models) as string[]) : undefined,
    limits: row.limits ? (JSON.parse(row.limits) as Record<string, unknown>) : undefined,
  };
}

export interface LogRow {
  id: string;
  created_at: number;
  organisation: string;
  key_id: string | null;
  correlation_id: string | null;
  dialect: string;
  route: string;
  model: string | null;
  provider: string | null;
  deployment: string | null;
  attempts: number;
  status: number;
  error_kind: string | null;
  latency_ms: number;
  ttft_ms: number | null;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cost: number;
  stream: number;
  body: string | null;
}

export function logFromRow(r: LogRow): RequestLogEntry {
  return {
    id: r.id,
    createdAt: r.created_at,
    organisation: r.organisation,
    keyId: r.key_id ?? undefined,
    correlationId: r.correlation_id ?? undefined,
    dialect: r.dialect,
    route: r.route,
    model: r.model ?? undefined,
    provider: r.provider ?? undefined,
    deployment: r.deployment ?? undefined,
    attempts: r.attempts,
    status: r.status,
    errorKind: r.error_kind ?? undefined,
    latencyMs: r.latency_ms,
    ttftMs: r.ttft_ms ?? undefined,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    totalTokens: r.total_tokens,
    cost: r.cost,
    stream: r.stream === 1,
    body: r.body ?? undefined,
  };
}
