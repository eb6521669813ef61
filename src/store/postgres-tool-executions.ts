// Async tool executions in PostgreSQL. No abandonUnfinished: the table is shared, and one
// process restarting must not fail executions that other live processes are running.

import type pg from 'pg';
import type { ToolExecutionRecord, ToolExecutionStore, ToolExecutionUpdate } from './tool-executions.js';
import { executionFromRow, type ExecutionRow } from './rows.js';

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
  updated_at BIGINT NOT NULL
);
`;

export class PostgresToolExecutionStore implements ToolExecutionStore {
  constructor(private readonly pool: pg.Pool) {}

  async createExecution(r: ToolExecutionRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO tool_executions (id, organisation, request_id, tool_use_id, tool_name, input, status, result, error, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [r.id, r.organisation, r.requestId, r.toolUseId, r.toolName, JSON.stringify(r.input ?? null), r.status, r.result ? JSON.stringify(r.result) : null, r.error ?? null, r.createdAt, r.updatedAt],
    );
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
