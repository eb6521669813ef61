// Async runs and their events in PostgreSQL, shared by several gateway processes. The queue is
// claimed with SKIP LOCKED, so processes never take the same run; a run's owner is alive while its
// lease (async_run_owners) is fresh, so recovery leaves other live processes' runs alone.

import type pg from 'pg';
import {
  RunNotRunningError,
  type AsyncRunEvent,
  type AsyncRunFinish,
  type AsyncRunRecord,
  type AsyncRunStatus,
  type AsyncRunStore,
  type MessagesRequestMetadata,
  type NewAsyncRun,
  type RecoveredRuns,
} from './async-runs.js';
import { messagesRequestFromRow, runFromRow, type MessagesRequestRow, type RunRow } from './rows.js';
import { inTransaction, type Queryable } from './postgres-pool.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
export const POSTGRES_ASYNC_RUNS_SCHEMA = `
CREATE TABLE IF NOT EXISTS async_runs (
  seq BIGSERIAL PRIMARY KEY,
  organisation TEXT NOT NULL,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  priority INTEGER NOT NULL,
  model TEXT NOT NULL,
  request TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
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
  created_at BIGINT NOT NULL,
  user_id TEXT,
  service_tier TEXT,
  inference_geo TEXT,
  correlation_id TEXT,
  priority INTEGER
);
CREATE TABLE IF NOT EXISTS async_run_owners (
  owner TEXT PRIMARY KEY,
  seen_at BIGINT NOT NULL
);
`;

/** How long an owner stays alive after its last heartbeat unless the store is told otherwise. */
export const DEFAULT_LEASE_MS = 15_000;

/** Leases are stamped and judged by the database's clock, so the processes' clocks need not agree. */
const DB_NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

/** SQL: the owner in `column` holds no live lease (`leaseParam` is the lease length, in ms). */
export function ownerIsGoneSql(column: string, leaseParam: string): string {
  return `NOT EXISTS (SELECT 1 FROM async_run_owners o WHERE o.owner = ${column} AND o.seen_at > ${DB_NOW_MS} - ${leaseParam})`;
}

type Failure = (run: AsyncRunRecord) => AsyncRunFinish;

/** `runningOnly`: the run's own events, which may not follow its end (a final event may). */
async function append(db: Queryable, organisation: string, id: string, event: string, data: string, runningOnly = false): Promise<number> {
  // The row lock taken by the UPDATE serialises appenders (and finish) until the transaction ends.
  const { rows } = await db.query<{ event_count: number }>(
    `UPDATE async_runs SET event_count = event_count + 1 WHERE organisation = $1 AND id = $2${runningOnly ? ` AND status = 'running'` : ''} RETURNING event_count`,
    [organisation, id],
  );
  const row = rows[0];
  if (!row) {
    if (runningOnly && (await db.query('SELECT 1 FROM async_runs WHERE organisation = $1 AND id = $2', [organisation, id])).rowCount) {
      throw new RunNotRunningError(id);
    }
    throw new Error(`No async run '${id}'`);
  }
  await db.query('INSERT INTO async_run_events (organisation, run_id, seq, event, data) VALUES ($1, $2, $3, $4, $5)', [
    organisation,
    id,
    row.event_count,
    event,
    data,
  ]);
  return row.event_count;
}

async function finishNow(client: pg.PoolClient, organisation: string, id: string, from: AsyncRunStatus[], finish: AsyncRunFinish): Promise<boolean> {
  const { rows } = await client.query<{ status: AsyncRunStatus }>('SELECT status FROM async_runs WHERE organisation = $1 AND id = $2 FOR UPDATE', [
    organisation,
    id,
  ]);
  const row = rows[0];
  if (!row || !from.includes(row.status)) return false;
  if (finish.finalEvent) await append(client, organisation, id, finish.finalEvent.event, finish.finalEvent.data);
  await client.query(
    `UPDATE async_runs SET status = $1, finished_at = $2, usage = COALESCE($3, usage), error = $4, result = $5, model = COALESCE($6, model)
     WHERE organisation = $7 AND id = $8`,
    [
      finish.status,
      Date.now(),
      finish.usage ? JSON.stringify(finish.usage) : null,
      finish.error ? JSON.stringify(finish.error) : null,
      finish.result === undefined ? null : JSON.stringify(finish.result),
      finish.model ?? null,
      organisation,
      id,
    ],
  );
  return true;
}

export class PostgresAsyncRunStore implements AsyncRunStore {
  /** Other processes add runs to the same queue, so the runner polls it. */
  readonly shared = true;
  private readonly leaseMs: number;
  /** Owners this store has claimed or recovered for: it keeps their leases fresh. */
  private readonly owners = new Set<string>();
  /** The last recovery asked for, repeated on every heartbeat so dead processes' runs are picked up. */
  private recovery?: { owner: string; failure: Failure };
  private heartbeat?: NodeJS.Timeout;
  private beating?: Promise<void>;
  /** More recoveries to run on each heartbeat (the tool executions'). */
  private readonly heartbeatWork: Array<() => Promise<unknown>> = [];

  /** `leaseMs` must be the same in every process sharing the database: it is how others judge this one. */
  constructor(
    private readonly pool: pg.Pool,
    options: { leaseMs?: number } = {},
  ) {
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  async create(run: NewAsyncRun): Promise<boolean> {
    const result = await this.pool.query(
      `INSERT INTO async_runs (organisation, id, kind, status, priority, model, request, created_at, user_id, correlation_id, key_id)
       VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (organisation, id) DO NOTHING`,
      [run.organisation, run.id, run.kind, run.priority, run.model, run.request, Date.now(), run.userId ?? null, run.correlationId ?? null, run.keyId ?? null],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async get(organisation: string, id: string): Promise<AsyncRunRecord | undefined> {
    const { rows } = await this.pool.query<RunRow>('SELECT * FROM async_runs WHERE organisation = $1 AND id = $2', [organisation, id]);
    return rows[0] ? runFromRow(rows[0]) : undefined;
  }

  async queuePosition(organisation: string, id: string): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ position: number }>(
      `SELECT 1 + (SELECT COUNT(*) FROM async_runs ahead
                   WHERE ahead.status = 'pending' AND (ahead.priority > r.priority OR (ahead.priority = r.priority AND ahead.seq < r.seq))) AS position
       FROM async_runs r WHERE r.organisation = $1 AND r.id = $2 AND r.status = 'pending'`,
      [organisation, id],
    );
    return rows[0]?.position;
  }

  async claimNext(owner: string): Promise<AsyncRunRecord | undefined> {
    // The lease exists before the run is owned, or another process could recover it at once.
    await this.keepAlive(owner);
    const { rows } = await this.pool.query<RunRow>(
      `UPDATE async_runs SET status = 'running', started_at = $1, owner = $2
       WHERE seq = (SELECT seq FROM async_runs WHERE status = 'pending' ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [Date.now(), owner],
    );
    return rows[0] ? runFromRow(rows[0]) : undefined;
  }

  async countPending(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM async_runs WHERE status = 'pending'`);
    return rows[0]!.n;
  }

  async setModel(organisation: string, id: string, model: string): Promise<void> {
    await this.pool.query('UPDATE async_runs SET model = $1 WHERE organisation = $2 AND id = $3', [model, organisation, id]);
  }

  async appendEvent(organisation: string, id: string, event: string, data: string): Promise<number> {
    return inTransaction(this.pool, (client) => append(client, organisation, id, event, data, true));
  }

  async readEvents(organisation: string, id: string, after: number, limit: number): Promise<AsyncRunEvent[]> {
    const { rows } = await this.pool.query<AsyncRunEvent>(
      'SELECT seq, event, data FROM async_run_events WHERE organisation = $1 AND run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4',
      [organisation, id, after, limit],
    );
    return rows;
  }

  async finish(organisation: string, id: string, from: AsyncRunStatus[], finish: AsyncRunFinish): Promise<boolean> {
    return inTransaction(this.pool, (client) => finishNow(client, organisation, id, from, finish));
  }

  /**
   * Runs left `running` by owners whose lease has lapsed (or by no owner). The recovery is repeated
   * on every heartbeat from now on, so runs of a process that dies later are recovered too.
   */
  async recoverOrphans(owner: string, failure: Failure): Promise<RecoveredRuns> {
    this.recovery = { owner, failure };
    await this.keepAlive(owner);
    return this.recover(owner, failure);
  }

  private recover(owner: string, failure: Failure): Promise<RecoveredRuns> {
    return inTransaction(this.pool, async (client) => {
      // SKIP LOCKED: a run another process is recovering (or appending to) is not ours to handle.
      const { rows } = await client.query<RunRow>(
        `SELECT * FROM async_runs r
         WHERE r.status = 'running' AND (r.owner IS NULL OR (r.owner <> $1 AND ${ownerIsGoneSql('r.owner', '$2')}))
         ORDER BY r.seq
         FOR UPDATE SKIP LOCKED`,
        [owner, this.leaseMs],
      );
      const out: RecoveredRuns = { failed: [], requeued: [] };
      for (const row of rows) {
        const ref = { organisation: row.organisation, id: row.id };
        if (row.event_count === 0) {
          await client.query(`UPDATE async_runs SET status = 'pending', started_at = NULL, owner = NULL WHERE seq = $1`, [row.seq]);
          out.requeued.push(ref);
        } else {
          await finishNow(client, row.organisation, row.id, ['running'], failure(runFromRow(row)));
          out.failed.push(ref);
        }
      }
      return out;
    });
  }

  /** Keeps a lease for `owner` (another store's work, judged alive by the same leases). */
  holdLease(owner: string): Promise<void> {
    return this.keepAlive(owner);
  }

  /** Runs `work` after every heartbeat (its errors are swallowed, like the beat's own). */
  onHeartbeat(work: () => Promise<unknown>): void {
    this.heartbeatWork.push(work);
  }

  /** Renews `owner`'s lease now and, from then on, on every heartbeat. */
  private async keepAlive(owner: string): Promise<void> {
    if (this.owners.has(owner)) return;
    await this.renewLeases([owner]);
    this.owners.add(owner);
    this.heartbeat ??= setInterval(() => this.beat(), this.leaseMs / 3).unref();
  }

  private async renewLeases(owners: string[]): Promise<void> {
    await this.pool.query(
      `INSERT INTO async_run_owners (owner, seen_at) SELECT unnest($1::text[]), ${DB_NOW_MS}
       ON CONFLICT (owner) DO UPDATE SET seen_at = EXCLUDED.seen_at`,
      [owners],
    );
  }

  private beat(): void {
    if (this.beating) return; // the previous beat is still at work: a slow database must not pile them up
    this.beating = (async () => {
      await this.renewLeases([...this.owners]);
      if (this.recovery) await this.recover(this.recovery.owner, this.recovery.failure);
      for (const work of this.heartbeatWork) await work();
    })()
      // Nowhere to report to; the next beat tries again.
      .catch(() => undefined)
      .finally(() => {
        this.beating = undefined;
      });
  }

  /** Stops the heartbeat and gives up the leases, so this process's leftover runs are recoverable at once. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.recovery = undefined;
    this.heartbeatWork.length = 0;
    await this.beating;
    const owners = [...this.owners];
    this.owners.clear();
    if (owners.length > 0) await this.pool.query('DELETE FROM async_run_owners WHERE owner = ANY($1::text[])', [owners]);
  }

  async prune(before: number): Promise<number> {
    return inTransaction(this.pool, async (client) => {
      // Data-modifying CTEs always run to completion, read or not: the events go with their runs.
      const { rows } = await client.query<{ n: number }>(
        `WITH runs AS (DELETE FROM async_runs WHERE finished_at < $1 RETURNING organisation, id),
              events AS (DELETE FROM async_run_events e USING runs WHERE e.organisation = runs.organisation AND e.run_id = runs.id)
         SELECT COUNT(*) AS n FROM runs`,
        [before],
      );
      await client.query('DELETE FROM messages_request_meta WHERE created_at < $1', [before]);
      return rows[0]!.n;
    });
  }

  async recordMessagesRequest(e: MessagesRequestMetadata): Promise<void> {
    await this.pool.query(
      `INSERT INTO messages_request_meta (request_id, organisation, created_at, user_id, service_tier, inference_geo, correlation_id, priority)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (request_id) DO UPDATE SET organisation = EXCLUDED.organisation, created_at = EXCLUDED.created_at, user_id = EXCLUDED.user_id,
         service_tier = EXCLUDED.service_tier, inference_geo = EXCLUDED.inference_geo, correlation_id = EXCLUDED.correlation_id, priority = EXCLUDED.priority`,
      [e.requestId, e.organisation, e.createdAt, e.userId ?? null, e.serviceTier ?? null, e.inferenceGeo ?? null, e.correlationId ?? null, e.priority ?? null],
    );
  }

  async readMessagesRequest(organisation: string, requestId: string): Promise<MessagesRequestMetadata | undefined> {
    const { rows } = await this.pool.query<MessagesRequestRow>('SELECT * FROM messages_request_meta WHERE organisation = $1 AND request_id = $2', [organisation, requestId]);
    return rows[0] ? messagesRequestFromRow(rows[0]) : undefined;
  }
}
