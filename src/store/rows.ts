// Rows of the tables every SQL store has, as the drivers return them, and their records; and the
// request-log filter both build their queries with. Column names and encodings are the same in
// SQLite and PostgreSQL (booleans aside), so each mapping is written once.

import type { AsyncRunRecord, AsyncRunStatus, MessagesRequestMetadata } from './async-runs.js';
import type { ApiKeyRecord, RequestLogEntry } from './store.js';
import type { RequestLogFilter, UsageSample } from './tenancy.js';
import type { ToolExecutionRecord, ToolExecutionStatus } from './tool-executions.js';

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

/** A new key's api_keys values, in the order (id, organisation, name, hash, prefix, created_at, expires_at, allowed_models, limits). */
export function newKeyValues(record: ApiKeyRecord): unknown[] {
  return [
    record.id,
    record.organisation,
    record.name ?? null,
    record.hash,
    record.prefix,
    record.createdAt,
    record.expiresAt ?? null,
    record.allowedModels ? JSON.stringify(record.allowedModels) : null,
    record.limits ? JSON.stringify(record.limits) : null,
  ];
}

/** request_log's columns, in the order logValues gives their values. */
export const LOG_COLUMNS = [
  'id', 'created_at', 'organisation', 'key_id', 'correlation_id', 'dialect', 'route', 'model', 'provider', 'deployment',
  'attempts', 'status', 'error_kind', 'latency_ms', 'ttft_ms', 'input_tokens', 'output_tokens', 'total_tokens', 'cost', 'stream', 'body',
  'cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens', 'server_tool_use',
];

export function logValues(e: RequestLogEntry): unknown[] {
  return [
    e.id, e.createdAt, e.organisation, e.keyId ?? null, e.correlationId ?? null, e.dialect, e.route, e.model ?? null,
    e.provider ?? null, e.deployment ?? null, e.attempts, e.status, e.errorKind ?? null, e.latencyMs, e.ttftMs ?? null,
    e.inputTokens, e.outputTokens, e.totalTokens, e.cost, e.stream ? 1 : 0, e.body ?? null,
    e.cacheReadTokens ?? 0, e.cacheWriteTokens ?? 0, e.reasoningTokens ?? 0, serverToolUseValue(e.serverToolUse),
  ];
}

function serverToolUseValue(counts: Record<string, number> | undefined): string | null {
  return counts && Object.keys(counts).length ? JSON.stringify(counts) : null;
}

function serverToolUseFromValue(value: string | null): Record<string, number> | undefined {
  return value ? (JSON.parse(value) as Record<string, number>) : undefined;
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
  cache_read_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  server_tool_use: string | null;
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
    cacheReadTokens: r.cache_read_tokens,
    cacheWriteTokens: r.cache_write_tokens,
    reasoningTokens: r.reasoning_tokens,
    serverToolUse: serverToolUseFromValue(r.server_tool_use),
  };
}

export interface RunRow {
  seq: number;
  organisation: string;
  id: string;
  kind: string;
  status: AsyncRunStatus;
  priority: number;
  model: string;
  request: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  usage: string | null;
  error: string | null;
  result: string | null;
  event_count: number;
  owner: string | null;
  user_id: string | null;
  correlation_id: string | null;
  key_id: string | null;
}

export function runFromRow(r: RunRow): AsyncRunRecord {
  return {
    organisation: r.organisation,
    id: r.id,
    kind: r.kind,
    status: r.status,
    priority: r.priority,
    model: r.model,
    request: r.request,
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    finishedAt: r.finished_at ?? undefined,
    usage: r.usage ? JSON.parse(r.usage) : undefined,
    error: r.error ? JSON.parse(r.error) : undefined,
    result: r.result ? JSON.parse(r.result) : undefined,
    eventCount: r.event_count,
    owner: r.owner ?? undefined,
    userId: r.user_id ?? undefined,
    correlationId: r.correlation_id ?? undefined,
    keyId: r.key_id ?? undefined,
  };
}

export interface ExecutionRow {
  id: string;
  organisation: string;
  request_id: string;
  tool_use_id: string;
  tool_name: string;
  input: string;
  status: ToolExecutionStatus;
  result: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

export function executionFromRow(row: ExecutionRow): ToolExecutionRecord {
  return {
    id: row.id,
    organisation: row.organisation,
    requestId: row.request_id,
    toolUseId: row.tool_use_id,
    toolName: row.tool_name,
    input: JSON.parse(row.input) as unknown,
    status: row.status,
    result: row.result ? (JSON.parse(row.result) as Record<string, unknown>) : undefined,
    error: row.error ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** WHERE clause and arguments for request-log filters; `placeholder(n)` spells the n-th parameter ('?' or '$n'). */
export function requestLogWhere(filter: RequestLogFilter, placeholder: (n: number) => string): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    args.push(value);
    where.push(clause.replace('?', placeholder(args.length)));
  };
  const eq = (column: string, value: unknown) => {
    if (value !== undefined) add(`${column} = ?`, value);
  };
  eq('organisation', filter.organisation);
  eq('key_id', filter.keyId);
  eq('model', filter.model);
  eq('provider', filter.provider);
  eq('dialect', filter.dialect);
  eq('status', filter.status);
  eq('error_kind', filter.errorKind);
  eq('correlation_id', filter.correlationId);
  if (filter.since !== undefined) add('created_at >= ?', filter.since);
  if (filter.until !== undefined) add('created_at < ?', filter.until);
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}

export type UsageSampleRow = Pick<
  LogRow,
  | 'created_at' | 'organisation' | 'key_id' | 'model' | 'provider' | 'status' | 'latency_ms' | 'input_tokens' | 'output_tokens' | 'cost'
  | 'cache_read_tokens' | 'cache_write_tokens' | 'reasoning_tokens' | 'server_tool_use'
>;

/** The columns of UsageSampleRow, for the SELECT that reads them. */
export const USAGE_SAMPLE_COLUMNS =
  'created_at, organisation, key_id, model, provider, status, latency_ms, input_tokens, output_tokens, cost, ' +
  'cache_read_tokens, cache_write_tokens, reasoning_tokens, server_tool_use';

export function usageSampleFromRow(r: UsageSampleRow): UsageSample {
  return {
    createdAt: r.created_at,
    organisation: r.organisation,
    keyId: r.key_id ?? undefined,
    model: r.model ?? undefined,
    provider: r.provider ?? undefined,
    status: r.status,
    latencyMs: r.latency_ms,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    cost: r.cost,
    cacheReadTokens: r.cache_read_tokens,
    cacheWriteTokens: r.cache_write_tokens,
    reasoningTokens: r.reasoning_tokens,
    serverToolUse: serverToolUseFromValue(r.server_tool_use),
  };
}

export interface MessagesRequestRow {
  request_id: string;
  organisation: string;
  created_at: number;
  user_id: string | null;
  service_tier: string | null;
  inference_geo: string | null;
  correlation_id: string | null;
  priority: number | null;
}

export function messagesRequestFromRow(r: MessagesRequestRow): MessagesRequestMetadata {
  return {
    requestId: r.request_id,
    organisation: r.organisation,
    createdAt: r.created_at,
    userId: r.user_id ?? undefined,
    serviceTier: r.service_tier ?? undefined,
    inferenceGeo: r.inference_geo ?? undefined,
    correlationId: r.correlation_id ?? undefined,
    priority: r.priority ?? undefined,
  };
}
