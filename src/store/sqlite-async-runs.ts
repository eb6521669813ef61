// Async runs and their events in the embedded SQLite file. better-sqlite3 is synchronous, so an
// appended event is on disk (WAL) before the call returns — before anyone is told about it.

import type Database from 'better-sqlite3';
import {
  RunNotRunningError,
  type AsyncRunFinish,
  type AsyncRunRecord,
  type AsyncRunStatus,
  type AsyncRunStore,
  type MessagesRequestMetadata,
  type NewAsyncRun,
  type RecoveredRuns,
} from './async-runs.js';
import { statementCache, type StatementCache } from './sqlite-statements.js';
import { messagesRequestFromRow, runFromRow, type MessagesRequestRow, type RunRow } from './rows.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS async_runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  organisation TEXT NOT NULL,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  priority INTEGER NOT NULL,
  model TEXT NOT NULL,
  request TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  usage TEXT,
  error TEXT,
  result TEXT,
  event_count INTEGER NOT NULL DEFAULT 0,
  owner TEXT,
  user_id TEXT,
  correlation_id TEXT,
  key_id TEXT,
  UNIQUE (organisation, id)
);
CREATE INDEX IF NOT EXISTS async_runs_queue ON async_runs (status, priority DESC, seq);
CREATE INDEX IF NOT EXISTS async_runs_finished ON async_runs (finished_at);
CREATE TABLE IF NOT EXISTS async_run_events (
  organisation TEXT NOT NULL,
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event TEXT NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (organisation, run_id, seq)
);
CREATE TABLE IF NOT EXISTS messages_request_meta (
  request_id TEXT PRIMARY KEY,
  organisation TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  user_id TEXT,
  service_tier TEXT,
  inference_geo TEXT,
  correlation_id TEXT,
  priority INTEGER
);
`;

export class SqliteAsyncRunStore implements AsyncRunStore {
  private readonly stmt: StatementCache;

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
    this.stmt = statementCache(db);
  }

  async create(run: NewAsyncRun): Promise<boolean> {
    const result = this
      .stmt(
        `INSERT OR IGNORE INTO async_runs (organisation, id, kind, status, priority, model, request, created_at, user_id, correlation_id, key_id)
         VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(run.organisation, run.id, run.kind, run.priority, run.model, run.request, Date.now(), run.userId ?? null, run.correlationId ?? null, run.keyId ?? null);
    return result.changes > 0;
  }

  private row(organisation: string, id: string): RunRow | undefined {
    return this.stmt('SELECT * FROM async_runs WHERE organisation = ? AND id = ?').get(organisation, id) as RunRow | undefined;
  }

  async get(organisation: string, id: string): Promise<AsyncRunRecord | undefined> {
    const row = this.row(organisation, id);
    return row ? runFromRow(row) : undefined;
  }

  async queuePosition(organisation: string, id: string): Promise<number | undefined> {
    const row = this.row(organisation, id);
    if (!row || row.status !== 'pending') return undefined;
    const ahead = this
      .stmt(`SELECT COUNT(*) AS n FROM async_runs WHERE status = 'pending' AND (priority > ? OR (priority = ? AND seq < ?))`)
      .get(row.priority, row.priority, row.seq) as { n: number };
    return ahead.n + 1;
  }

  async claimNext(owner: string): Promise<AsyncRunRecord | undefined> {
    const claim = this.db.transaction(() => {
      const row = this
        .stmt(`SELECT * FROM async_runs WHERE status = 'pending' ORDER BY priority DESC, seq LIMIT 1`)
        .get() as RunRow | undefined;
      if (!row) return undefined;
      const now = Date.now();
      this.stmt(`UPDATE async_runs SET status = 'running', started_at = ?, owner = ? WHERE seq = ?`).run(now, owner, row.seq);
      return runFromRow({ ...row, status: 'running', started_at: now, owner });
    });
    return claim.immediate();
  }

  async countPending(): Promise<number> {
    return (this.stmt(`SELECT COUNT(*) AS n FROM async_runs WHERE status = 'pending'`).get() as { n: number }).n;
  }

  async setModel(organisation: string, id: string, model: string): Promise<void> {
    this.stmt('UPDATE async_runs SET model = ? WHERE organisation = ? AND id = ?').run(model, organisation, id);
  }

  /** `runningOnly`: the run's own events, which may not follow its end (a final event may). */
  private append(organisation: string, id: string, event: string, data: string, runningOnly = false): number {
    const row = this
      .stmt(
        `UPDATE async_runs SET event_count = event_count + 1 WHERE organisation = ? AND id = ?${runningOnly ? ` AND status = 'running'` : ''} RETURNING event_count`,
      )
      .get(organisation, id) as { event_count: number } | undefined;
    if (!row) {
      if (runningOnly && this.row(organisation, id)) throw new RunNotRunningError(id);
      throw new Error(`No async run '${id}'`);
    }
    this.stmt('INSERT INTO async_run_events (organisation, run_id, seq, event, data) VALUES (?, ?, ?, ?, ?)').run(organisation, id, row.event_count, event, data);
    return row.event_count;
  }

  async appendEvent(organisation: string, id: string, event: string, data: string): Promise<number> {
    return this.db.transaction(() => this.append(organisation, id, event, data, true)).immediate();
  }

  async readEvents(organisation: string, id: string, after: number, limit: number) {
    return this
      .stmt('SELECT seq, event, data FROM async_run_events WHERE organisation = ? AND run_id = ? AND seq > ? ORDER BY seq LIMIT ?')
      .all(organisation, id, after, limit) as Array<{ seq: number; event: string; data: string }>;
  }

  private finishNow(organisation: string, id: string, from: AsyncRunStatus[], finish: AsyncRunFinish): boolean {
    const row = this.row(organisation, id);
    if (!row || !from.includes(row.status)) return false;
    if (finish.finalEvent) this.append(organisation, id, finish.finalEvent.event, finish.finalEvent.data);
    this
      .stmt(
        `UPDATE async_runs SET status = ?, finished_at = ?, usage = COALESCE(?, usage), error = ?, result = ?, model = COALESCE(?, model)
         WHERE organisation = ? AND id = ?`,
      )
      .run(
        finish.status,
        Date.now(),
        finish.usage ? JSON.stringify(finish.usage) : null,
        finish.error ? JSON.stringify(finish.error) : null,
        finish.result === undefined ? null : JSON.stringify(finish.result),
        finish.model ?? null,
        organisation,
        id,
      );
    return true;
  }

  async finish(organisation: string, id: string, from: AsyncRunStatus[], finish: AsyncRunFinish): Promise<boolean> {
    return this.db.transaction(() => this.finishNow(organisation, id, from, finish)).immediate();
  }

  async recoverOrphans(owner: string, failure: (run: AsyncRunRecord) => AsyncRunFinish): Promise<RecoveredRuns> {
    const recover = this.db.transaction(() => {
      const rows = this
        .stmt(`SELECT * FROM async_runs WHERE status = 'running' AND (owner IS NULL OR owner != ?)`)
        .all(owner) as RunRow[];
      const out: RecoveredRuns = { failed: [], requeued: [] };
      for (const row of rows) {
        const ref = { organisation: row.organisation, id: row.id };
        if (row.event_count === 0) {
          this.stmt(`UPDATE async_runs SET status = 'pending', started_at = NULL, owner = NULL WHERE seq = ?`).run(row.seq);
          out.requeued.push(ref);
        } else {
          this.finishNow(row.organisation, row.id, ['running'], failure(runFromRow(row)));
          out.failed.push(ref);
        }
      }
      return out;
    });
    return recover.immediate();
  }

  async prune(before: number): Promise<number> {
    const prune = this.db.transaction(() => {
      const rows = this.stmt('SELECT organisation, id FROM async_runs WHERE finished_at IS NOT NULL AND finished_at < ?').all(before) as Array<{
        organisation: string;
        id: string;
      }>;
      const deleteEvents = this.stmt('DELETE FROM async_run_events WHERE organisation = ? AND run_id = ?');
      const deleteRun = this.stmt('DELETE FROM async_runs WHERE organisation = ? AND id = ?');
      for (const r of rows) {
        deleteEvents.run(r.organisation, r.id);
        deleteRun.run(r.organisation, r.id);
      }
      this.stmt('DELETE FROM messages_request_meta WHERE created_at < ?').run(before);
      return rows.length;
    });
    return prune.immediate();
  }

  async recordMessagesRequest(e: MessagesRequestMetadata): Promise<void> {
    this
      .stmt(
        `INSERT OR REPLACE INTO messages_request_meta (request_id, organisation, created_at, user_id, service_tier, inference_geo, correlation_id, priority)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(e.requestId, e.organisation, e.createdAt, e.userId ?? null, e.serviceTier ?? null, e.inferenceGeo ?? null, e.correlationId ?? null, e.priority ?? null);
  }

  async readMessagesRequest(organisation: string, requestId: string): Promise<MessagesRequestMetadata | undefined> {
    const r = this.stmt('SELECT * FROM messages_request_meta WHERE organisation = ? AND request_id = ?').get(organisation, requestId) as
      | MessagesRequestRow
      | undefined;
    return r ? messagesRequestFromRow(r) : undefined;
  }
}
