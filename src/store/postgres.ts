// The scale-out store: PostgreSQL shared by several gateway processes. Same tables and row
// encodings as the SQLite file (src/store/rows.ts); what differs is what sharing needs —
// migrations under an advisory lock, a queue claimed with SKIP LOCKED, leases instead of "every
// other owner is dead" (src/store/postgres-async-runs.ts).

import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Message } from '../core/types.js';
import { DEFAULT_LEASE_MS, POSTGRES_ASYNC_RUNS_SCHEMA, PostgresAsyncRunStore } from './postgres-async-runs.js';
import { inTransaction, openPool, type PostgresOptions } from './postgres-pool.js';
import { POSTGRES_TENANCY_SCHEMA, PostgresTenancyStore } from './postgres-tenancy.js';
import { ReadCache, readThrough, type Reads } from './read-cache.js';
import { POSTGRES_TOOL_EXECUTIONS_SCHEMA, PostgresToolExecutionStore } from './postgres-tool-executions.js';
import { LOG_COLUMNS, keyFromRow, logFromRow, logValues, newKeyValues, type KeyRow, type LogRow } from './rows.js';
import type { RedisCoordination } from './redis-coordination.js';
import { migratePostgres, type Migration } from './migrations.js';
import { messagesFromJson, messagesToJson } from './serialize.js';
import type { ApiKeyRecord, NewApiKey, RequestLogEntry, RequestLogQuery, Store } from './store.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  organisation TEXT NOT NULL,
  name TEXT,
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT,
  expires_at BIGINT,
  allowed_models TEXT,
  limits TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
  seq BIGSERIAL PRIMARY KEY,
  organisation TEXT NOT NULL,
  session_id TEXT NOT NULL,
  messages TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_id ON sessions (organisation, session_id, seq);
CREATE TABLE IF NOT EXISTS request_log (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  organisation TEXT NOT NULL,
  key_id TEXT,
  correlation_id TEXT,
  dialect TEXT NOT NULL,
  route TEXT NOT NULL,
  model TEXT,
  provider TEXT,
  deployment TEXT,
  attempts INTEGER NOT NULL,
  status INTEGER NOT NULL,
  error_kind TEXT,
  latency_ms DOUBLE PRECISION NOT NULL,
  ttft_ms DOUBLE PRECISION,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  total_tokens INTEGER NOT NULL,
  cost DOUBLE PRECISION NOT NULL,
  stream INTEGER NOT NULL,
  body TEXT
);
CREATE INDEX IF NOT EXISTS request_log_org_time ON request_log (organisation, created_at);
`;

/** How long a request-log row may wait for the batch it is written with (as in SQLite). */
const REQUEST_LOG_FLUSH_MS = 10;
/** Rows per INSERT: LOG_COLUMNS.length (25) parameters each, under PostgreSQL's 65535. */
const LOG_ROWS_PER_INSERT = 1000;
/** Migrations of every process take this advisory lock: concurrent CREATE IF NOT EXISTS can collide. */
const MIGRATION_LOCK = 0x5bd0b0a1;
/** The signal that keys or organisation settings changed (every process drops its copies). */
const STORE_CHANGED = 'store-changed';

export interface PostgresStoreOptions extends PostgresOptions {
  /** How long a process's claim on its async runs outlives its last heartbeat. */
  leaseMs?: number;
  /** Shared rate limits and signals (Redis); closed with the store. */
  coordination?: RedisCoordination;
}

export class PostgresStore implements Store {
  /** 'postgres', or 'postgres+redis' with shared rate limits and signals. */
  readonly kind: string;
  readonly shared = true;
  readonly asyncRuns: PostgresAsyncRunStore;
  readonly tenancy: PostgresTenancyStore;
  readonly toolExecutions: PostgresToolExecutionStore;
  readonly coordination?: RedisCoordination;
  /** Copies of keys and settings only with Redis: its signal is what keeps every process's copies true. */
  private readonly reads: Reads;
  private pendingLog: RequestLogEntry[] = [];
  private flushTimer?: NodeJS.Timeout;
  private logWrites: Promise<void> = Promise.resolve();
  /** This process, as the owner of the tool executions it starts (leased like its async runs). */
  private readonly toolOwner = `tools-${randomUUID()}`;

  private constructor(
    readonly pool: pg.Pool,
    options: PostgresStoreOptions,
    /** Schema steps this open applied (src/store/migrations.ts); empty when the database was up to date. */
    readonly migrated: readonly Migration[],
  ) {
    this.asyncRuns = new PostgresAsyncRunStore(pool, { leaseMs: options.leaseMs });
    this.toolExecutions = new PostgresToolExecutionStore(pool, { owner: this.toolOwner, leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS });
    this.asyncRuns.onHeartbeat(() => this.toolExecutions.recoverGone());
    const reads = (this.reads = options.coordination ? new ReadCache() : readThrough);
    options.coordination?.subscribe(STORE_CHANGED, () => reads.clear());
    this.tenancy = new PostgresTenancyStore(pool, () => this.flushRequestLog(), { reads, changed: () => this.changed() });
    this.coordination = options.coordination;
    this.kind = options.coordination ? 'postgres+redis' : 'postgres';
  }

  /** Connects and brings the tables up to date (idempotent; safe with processes starting together). */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = openPool(url, options);
    // An idle connection that the server drops must not crash the process.
    pool.on('error', (err) => process.emitWarning(`PostgreSQL pool: ${err.message}`));
    let migrated: Migration[];
    try {
      migrated = await inTransaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        if (options.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
        await client.query(SCHEMA + POSTGRES_TENANCY_SCHEMA + POSTGRES_TOOL_EXECUTIONS_SCHEMA + POSTGRES_ASYNC_RUNS_SCHEMA);
        return migratePostgres(client, `The PostgreSQL database${options.schema ? ` (schema ${options.schema})` : ''}`);
      });
    } catch (err) {
      await pool.end().catch(() => undefined);
      await options.coordination?.close();
      throw err;
    }
    const store = new PostgresStore(pool, options, migrated);
    await store.asyncRuns.holdLease(store.toolOwner);
    return store;
  }

  /**
   * After a write to keys or organisation settings. The write's answer waits for the signal to have
   * left Redis, so that a request the caller then sends to another process meets a cleared copy.
   */
  private async changed(): Promise<void> {
    this.reads.clear();
    await this.coordination?.publish(STORE_CHANGED, '');
  }

  async createKey(key: NewApiKey): Promise<ApiKeyRecord> {
    const record: ApiKeyRecord = { id: `key_${randomBytes(9).toString('base64url')}`, createdAt: Date.now(), ...key };
    await this.pool.query(
      `INSERT INTO api_keys (id, organisation, name, hash, prefix, created_at, expires_at, allowed_models, limits)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      newKeyValues(record),
    );
    await this.changed();
    return record;
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const load = async () => {
      const { rows } = await this.pool.query<KeyRow>('SELECT * FROM api_keys WHERE hash = $1', [hash]);
      return rows[0] ? keyFromRow(rows[0]) : undefined;
    };
    return this.reads.get(`hash:${hash}`, load);
  }

  async listKeys(organisation?: string): Promise<ApiKeyRecord[]> {
    const { rows } = organisation
      ? await this.pool.query<KeyRow>('SELECT * FROM api_keys WHERE organisation = $1 ORDER BY created_at, id', [organisation])
      : await this.pool.query<KeyRow>('SELECT * FROM api_keys ORDER BY created_at, id');
    return rows.map(keyFromRow);
  }

  async revokeKey(id: string): Promise<boolean> {
    const result = await this.pool.query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [Date.now(), id]);
    await this.changed();
    return (result.rowCount ?? 0) > 0;
  }

  async countActiveKeys(): Promise<number> {
    const load = async () => {
      const { rows } = await this.pool.query<{ n: number }>(
        'SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)',
        [Date.now()],
      );
      return rows[0]!.n;
    };
    return this.reads.get('active-keys', load);
  }

  async appendSession(organisation: string, sessionId: string, messages: Message[]): Promise<void> {
    // A global sequence orders turns: appends from two processes never compete for a number.
    await this.pool.query('INSERT INTO sessions (organisation, session_id, messages, created_at) VALUES ($1, $2, $3, $4)', [
      organisation,
      sessionId,
      messagesToJson(messages),
      Date.now(),
    ]);
  }

  async readSession(organisation: string, sessionId: string): Promise<Message[] | undefined> {
    const { rows } = await this.pool.query<{ messages: string }>(
      'SELECT messages FROM sessions WHERE organisation = $1 AND session_id = $2 ORDER BY seq',
      [organisation, sessionId],
    );
    if (rows.length === 0) return undefined;
    return rows.flatMap((r) => messagesFromJson(r.messages));
  }

  /** Queued and written in batches, as in SQLite: one round trip per request would be its largest cost. */
  async logRequest(e: RequestLogEntry): Promise<void> {
    this.pendingLog.push(e);
    this.flushTimer ??= setTimeout(() => void this.flushRequestLog(), REQUEST_LOG_FLUSH_MS).unref();
  }

  /** Writes the queued rows; resolves when they (and every earlier batch) are in the table. */
  flushRequestLog(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.pendingLog;
    if (batch.length > 0) {
      this.pendingLog = [];
      this.logWrites = this.logWrites.then(() => this.writeLog(batch));
    }
    return this.logWrites;
  }

  private async writeLog(batch: RequestLogEntry[]): Promise<void> {
    try {
      for (let start = 0; start < batch.length; start += LOG_ROWS_PER_INSERT) {
        const rows = batch.slice(start, start + LOG_ROWS_PER_INSERT);
        const args: unknown[] = [];
        const tuples = rows.map((e) => {
          const first = args.length;
          args.push(...logValues(e));
          return `(${LOG_COLUMNS.map((_, i) => `$${first + i + 1}`).join(', ')})`;
        });
        await this.pool.query(`INSERT INTO request_log (${LOG_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (id) DO NOTHING`, args);
      }
    } catch (err) {
      // A failed log write must not take the server down with it.
      process.emitWarning(`request log write failed (${batch.length} rows): ${(err as Error).message}`);
    }
  }

  async queryRequests(q: RequestLogQuery): Promise<RequestLogEntry[]> {
    await this.flushRequestLog();
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      args.push(value);
      where.push(`${clause} $${args.length}`);
    };
    if (q.organisation) add('organisation =', q.organisation);
    if (q.keyId) add('key_id =', q.keyId);
    if (q.model) add('model =', q.model);
    if (q.since !== undefined) add('created_at >=', q.since);
    if (q.until !== undefined) add('created_at <', q.until);
    args.push(q.limit ?? 1000);
    const { rows } = await this.pool.query<LogRow>(
      `SELECT * FROM request_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC LIMIT $${args.length}`,
      args,
    );
    return rows.map(logFromRow);
  }

  async pruneRequests(before: number): Promise<number> {
    await this.flushRequestLog();
    const result = await this.pool.query('DELETE FROM request_log WHERE created_at < $1', [before]);
    return result.rowCount ?? 0;
  }

  async ping(): Promise<void> {
    await Promise.all([this.pool.query('SELECT 1'), this.coordination?.ping()]);
  }

  async close(): Promise<void> {
    await this.flushRequestLog();
    await this.asyncRuns.close();
    await this.coordination?.close();
    await this.pool.end();
  }
}
