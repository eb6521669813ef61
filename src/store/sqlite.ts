// The embedded default store: one SQLite file in the data directory.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';
import type { Message } from '../core/types.js';
import { makeDir } from '../core/make-dir.js';
import { messagesFromJson, messagesToJson } from './serialize.js';
import { SqliteAsyncRunStore } from './sqlite-async-runs.js';
import { LOG_COLUMNS, keyFromRow, logFromRow, logValues, newKeyValues, type KeyRow, type LogRow } from './rows.js';
import type { ApiKeyRecord, NewApiKey, RequestLogEntry, RequestLogQuery, Store } from './store.js';
import { SqliteTenancyStore } from './sqlite-tenancy.js';
import { statementCache, type StatementCache } from './sqlite-statements.js';
import { SqliteToolExecutionStore } from './sqlite-tool-executions.js';
import { migrateSqlite, type Migration } from './migrations.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  organisation TEXT NOT NULL,
  name TEXT,
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  expires_at INTEGER,
  allowed_models TEXT,
  limits TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
  organisation TEXT NOT NULL,
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  messages TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (organisation, session_id, seq)
);
CREATE TABLE IF NOT EXISTS request_log (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
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
  latency_ms REAL NOT NULL,
  ttft_ms REAL,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  total_tokens INTEGER NOT NULL,
  cost REAL NOT NULL,
  stream INTEGER NOT NULL,
  body TEXT
);
CREATE INDEX IF NOT EXISTS request_log_org_time ON request_log (organisation, created_at);
`;

const INSERT_LOG = `INSERT INTO request_log (${LOG_COLUMNS.join(', ')}) VALUES (${LOG_COLUMNS.map(() => '?').join(', ')})`;

/** How long a request-log row may wait for the batch it is written with. */
const REQUEST_LOG_FLUSH_MS = 10;

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly db: Database.Database;
  readonly asyncRuns: SqliteAsyncRunStore;
  readonly tenancy: SqliteTenancyStore;
  readonly toolExecutions: SqliteToolExecutionStore;
  /** Schema steps this open applied (src/store/migrations.ts); empty when the file was up to date. */
  readonly migrated: readonly Migration[];

  /**
   * `backgroundCheckpoints`: a long-running server's connection never checkpoints the WAL; a
   * worker thread does (src/store/sqlite-checkpointer.ts). One-shot CLI commands keep SQLite's
   * automatic checkpoints rather than pay for starting a worker.
   */
  constructor(file: string, options: { backgroundCheckpoints?: boolean } = {}) {
    if (file !== ':memory:') {
      const dir = path.dirname(file);
      // mkdir's own EEXIST would not say which setting is wrong.
      if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new Error(`The data directory ${dir} is a file, not a directory (--data-dir, SWITCHBOARD_DATA_DIR, server.dataDir)`);
      try {
        makeDir(dir);
      } catch (err) {
        throw new Error(`Cannot create the data directory ${dir} (--data-dir, SWITCHBOARD_DATA_DIR, server.dataDir): ${(err as Error).message}`);
      }
    }
    this.db = new Database(file);
    try {
      // The first statement reads the file: a damaged one fails here, named.
      this.db.pragma('journal_mode = WAL');
    } catch (err) {
      this.db.close();
      throw new Error(`Cannot open the SQLite store ${file}: ${(err as Error).message} (restore it from a backup, or move it aside to start empty)`);
    }
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    if (options.backgroundCheckpoints && file !== ':memory:') {
      // Checkpoints (copy + fsync) run in a worker, never on the thread that serves requests.
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = startCheckpointer(file);
    }
    this.db.exec(SCHEMA);
    this.asyncRuns = new SqliteAsyncRunStore(this.db);
    this.tenancy = new SqliteTenancyStore(this.db, () => this.flushRequestLog());
    this.toolExecutions = new SqliteToolExecutionStore(this.db);
    // After every baseline table exists: a step may change any of them.
    this.migrated = migrateSqlite(this.db, file === ':memory:' ? 'The in-memory database' : `The SQLite file ${file}`);
  }

  private statements?: StatementCache;
  private readonly checkpointer?: Checkpointer;
  private pendingLog: RequestLogEntry[] = [];
  private flushTimer?: NodeJS.Timeout;

  private stmt(sql: string): Database.Statement {
    this.statements ??= statementCache(this.db);
    return this.statements(sql);
  }

  static inDataDir(dataDir: string, options: { backgroundCheckpoints?: boolean; existing?: boolean } = {}): SqliteStore {
    const file = path.join(dataDir, 'switchboard.db');
    // A command that only reads (usage, keys list) on a mistyped folder would report "nothing" from a store it just made.
    if (options.existing && !fs.existsSync(file)) {
      throw new Error(`No Switchboard store in ${dataDir}: give the server's data directory (--data-dir, SWITCHBOARD_DATA_DIR or server.dataDir)`);
    }
    return new SqliteStore(file, options);
  }

  async createKey(key: NewApiKey): Promise<ApiKeyRecord> {
    const record: ApiKeyRecord = { id: `key_${randomBytes(9).toString('base64url')}`, createdAt: Date.now(), ...key };
    this
      .stmt(
        `INSERT INTO api_keys (id, organisation, name, hash, prefix, created_at, expires_at, allowed_models, limits)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...newKeyValues(record));
    return record;
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const row = this.stmt('SELECT * FROM api_keys WHERE hash = ?').get(hash) as KeyRow | undefined;
    return row ? keyFromRow(row) : undefined;
  }

  async listKeys(organisation?: string): Promise<ApiKeyRecord[]> {
    const rows = (
      organisation
        ? this.stmt('SELECT * FROM api_keys WHERE organisation = ? ORDER BY created_at').all(organisation)
        : this.stmt('SELECT * FROM api_keys ORDER BY created_at').all()
    ) as KeyRow[];
    return rows.map(keyFromRow);
  }

  async revokeKey(id: string): Promise<boolean> {
    const result = this.stmt('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(Date.now(), id);
    return result.changes > 0;
  }

  async countActiveKeys(): Promise<number> {
    const row = this
      .stmt('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)')
      .get(Date.now()) as { n: number };
    return row.n;
  }

  async appendSession(organisation: string, sessionId: string, messages: Message[]): Promise<void> {
    const append = this.db.transaction(() => {
      const row = this
        .stmt('SELECT COALESCE(MAX(seq), -1) AS seq FROM sessions WHERE organisation = ? AND session_id = ?')
        .get(organisation, sessionId) as { seq: number };
      this
        .stmt('INSERT INTO sessions (organisation, session_id, seq, messages, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(organisation, sessionId, row.seq + 1, messagesToJson(messages), Date.now());
    });
    append();
  }

  async readSession(organisation: string, sessionId: string): Promise<Message[] | undefined> {
    const rows = this
      .stmt('SELECT messages FROM sessions WHERE organisation = ? AND session_id = ? ORDER BY seq')
      .all(organisation, sessionId) as Array<{ messages: string }>;
    if (rows.length === 0) return undefined;
    return rows.flatMap((r) => messagesFromJson(r.messages));
  }

  /**
   * Request-log rows are queued and written in one transaction at most every
   * REQUEST_LOG_FLUSH_MS: one INSERT transaction per request was the largest single cost of a
   * proxied request, and one per event-loop turn still wrote a WAL page or two per request. Every
   * read of the log flushes first, so readers never miss a row; a crash loses at most the last
   * few milliseconds of rows.
   */
  async logRequest(e: RequestLogEntry): Promise<void> {
    this.pendingLog.push(e);
    this.flushTimer ??= setTimeout(() => this.flushRequestLog(), REQUEST_LOG_FLUSH_MS).unref();
  }

  flushRequestLog(): void {
    // A reader that flushes early also cancels the pending timer.
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.pendingLog;
    if (batch.length === 0 || !this.db.open) return;
    this.pendingLog = [];
    const insert = this.stmt(INSERT_LOG);
    try {
      this.db.transaction(() => {
        for (const e of batch) {
          insert.run(...logValues(e));
        }
      })();
    } catch (err) {
      // A failed log write must not take the server down with it.
      process.emitWarning(`request log write failed (${batch.length} rows): ${(err as Error).message}`);
    }
  }

  async queryRequests(q: RequestLogQuery): Promise<RequestLogEntry[]> {
    this.flushRequestLog();
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.organisation) (where.push('organisation = ?'), args.push(q.organisation));
    if (q.keyId) (where.push('key_id = ?'), args.push(q.keyId));
    if (q.model) (where.push('model = ?'), args.push(q.model));
    if (q.since !== undefined) (where.push('created_at >= ?'), args.push(q.since));
    if (q.until !== undefined) (where.push('created_at < ?'), args.push(q.until));
    const sql = `SELECT * FROM request_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC LIMIT ?`;
    args.push(q.limit ?? 1000);
    return (this.stmt(sql).all(...args) as LogRow[]).map(logFromRow);
  }

  async pruneRequests(before: number): Promise<number> {
    this.flushRequestLog();
    return this.stmt('DELETE FROM request_log WHERE created_at < ?').run(before).changes;
  }

  async ping(): Promise<void> {
    this.stmt('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.flushRequestLog();
    await this.checkpointer?.stop();
    // The last connection to close checkpoints what is left.
    if (this.db.open) this.db.close();
  }
}
