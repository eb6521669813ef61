// Async tool executions in PostgreSQL. Each row names the process running it, whose lease (the
// async runs' owner leases) says whether it is alive: executions of a process that died are
// failed by the survivors, never those of a live one.

import type pg from 'pg';
import { ownerIsGoneSql } from './postgres-async-runs.js';
import type { ToolExecutionRecord, ToolExecutionStore, ToolExecutionUpdate } from './tool-executions.js';
import { executionFromRow, type ExecutionRow } from './rows.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
export const POSTGRES_TOOL_EXECUTIONS_SCHEMA = `
CREATE TABLE IF NOT EXISTS tool_executions (
  id TEXT PRIMARY KEY,
  organisation TEXT NOT NULL,
  request_id TEXT NOT NULL,
  tool_use_id TEXT NOT NULL,
  tool_name TEXT NOT NULL,
  input TEXT NOT NULL,
  status TEXT NOT NULL,
  result TEXT,
  error TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  owner TEXT
);
`;

export interface ToolExecutionLease {
  /** This process, as the owner of the executions it starts (its lease is kept alive elsewhere). */
  owner: string;
  leaseMs: number;
}

export class PostgresToolExecutionStore implements ToolExecutionStore {
  /** The reason given to abandonUnfinished, repeated on every heartbeat (see recoverGone). */
  private abandonReason?: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly lease: ToolExecutionLease,
  ) {}

  async createExecution(r: ToolExecutionRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO tool_executions (id, organisation, request_id, tool_use_id, tool_name, input, status, result, error, created_at, updated_at, owner)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        r.id, r.organisation, r.requestId, r.toolUseId, r.toolName, JSON.stringify(r.input ?? null), r.status,
        r.result ? JSON.stringify(r.result) : null, r.error ?? null, r.createdAt, r.updatedAt, this.lease.owner,
      ],
    );
  }

  /**
   * Fails the pending and running executions of processes whose lease has lapsed (never this
   * process's), now and from then on whenever `recoverGone` runs (every heartbeat).
   */
  async abandonUnfinished(reason: string): Promise<number> {
    this.abandonReason = reason;
    return this.recoverGone();
  }

  async recoverGone(): Promise<number> {
    if (this.abandonReason === undefined) return 0;
    const result = await this.pool.query(
      `UPDATE tool_executions t SET status = 'failed', error = $1, updated_at = $2
       WHERE t.status IN ('pending', 'running') AND (t.owner IS NULL OR (t.owner <> $3 AND ${ownerIsGoneSql('t.owner', '$4')}))`,
      [this.abandonReason, Date.now(), this.lease.owner, this.lease.leaseMs],
    );
    return result.rowCount ?? 0;
  }

  async updateExecution(id: string, u: ToolExecutionUpdate): Promise<void> {
    await this.pool.query('UPDATE tool_executions SET status = $1, result = $2, error = $3, updated_at = $4 WHERE id = $5', [
      u.status,
      u.result ? JSON.stringify(u.result) : null,
      u.error ?? null,
      Date.now(),
      id,
    ]);
  }

  async getExecution(organisation: string, id: string): Promise<ToolExecutionRecord | undefined> {
    const { rows } = await this.pool.query<ExecutionRow>('SELECT * FROM tool_executions WHERE id = $1 AND organisation = $2', [id, organisation]);
    return rows[0] ? executionFromRow(rows[0]) : undefined;
  }
}
