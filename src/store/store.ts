// The one storage interface. SQLite is the embedded default; other back-ends implement the same.

import type { Message } from '../core/types.js';
import type { AsyncRunStore } from './async-runs.js';
import type { Coordination } from './coordination.js';
import type { Migration } from './migrations.js';
import type { TenancyStore } from './tenancy.js';
import type { ToolExecutionStore } from './tool-executions.js';

export interface ApiKeyRecord {
  id: string;
  organisation: string;
  name?: string;
  /** sha256 hex of the raw key; the key itself is never stored. */
  hash: string;
  /** First characters of the key, to recognise it in listings. */
  prefix: string;
  createdAt: number;
  revokedAt?: number;
  expiresAt?: number;
  allowedModels?: string[];
  /** Limits and budgets (owned by the limits feature); stored as given. */
  limits?: Record<string, unknown>;
}

export interface NewApiKey {
  organisation: string;
  name?: string;
  hash: string;
  prefix: string;
  expiresAt?: number;
  allowedModels?: string[];
  limits?: Record<string, unknown>;
}

export interface RequestLogEntry {
  id: string;
  createdAt: number;
  organisation: string;
  keyId?: string;
  correlationId?: string;
  dialect: string;
  route: string;
  model?: string;
  provider?: string;
  deployment?: string;
  attempts: number;
  status: number;
  errorKind?: string;
  latencyMs: number;
  ttftMs?: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cost: number;
  /** Parts of inputTokens read from / written to a prompt cache; 0 when none or not reported. */
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  /** Part of outputTokens spent thinking; 0 when none or not reported. */
  reasoningTokens?: number;
  /** Requests of tools the provider ran itself, by kind (web searches…). */
  serverToolUse?: Record<string, number>;
  stream: boolean;
  /** Request/response bodies, only when enabled for the organisation. */
  body?: string;
}

export interface RequestLogQuery {
  organisation?: string;
  keyId?: string;
  model?: string;
  since?: number;
  until?: number;
  limit?: number;
}

export interface Store {
  readonly kind: string;
  /** True when several gateway processes may share this store (PostgreSQL). */
  readonly shared?: boolean;
  createKey(key: NewApiKey): Promise<ApiKeyRecord>;
  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listKeys(organisation?: string): Promise<ApiKeyRecord[]>;
  revokeKey(id: string): Promise<boolean>;
  /** Keys that are neither revoked nor expired. */
  countActiveKeys(): Promise<number>;

  /** Appends turns to a conversation kept server-side (X-Session-ID). */
  appendSession(organisation: string, sessionId: string, messages: Message[]): Promise<void>;
  readSession(organisation: string, sessionId: string): Promise<Message[] | undefined>;

  logRequest(entry: RequestLogEntry): Promise<void>;
  queryRequests(query: RequestLogQuery): Promise<RequestLogEntry[]>;
  /** Deletes request-log rows older than the given time. */
  pruneRequests(before: number): Promise<number>;

  /** Async tool executions (seed 001); absent on back-ends that do not keep them yet. */
  readonly toolExecutions?: ToolExecutionStore;

  /** Organisations, key limits, spend and usage queries (the limits/usage feature). */
  readonly tenancy?: TenancyStore;

  /** Async runs (seed 003) and their event logs; absent on stores that do not keep them. */
  readonly asyncRuns?: AsyncRunStore;

  /**
   * Present when several processes share this store (src/store/coordination.ts): rate-limit
   * windows and budgets they all count in, and signals that reach every one of them.
   */
  readonly coordination?: Coordination;

  /** Schema steps applied when this store was opened (src/store/migrations.ts). */
  readonly migrated?: readonly Migration[];

  ping(): Promise<void>;
  close(): Promise<void>;
}
