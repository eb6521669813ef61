// Async tool executions in PostgreSQL. No abandonUnfinished: the table is shared, and one
// process restarting must not fail executions that other live processes are running.

import type pg from 'pg';
import type { ToolExecutionRecord, ToolExecutionStatus, ToolExecutionStore, ToolExecutionUpdate } from './tool-executions.js';

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

interface ExecutionRow {
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

function fromRow(row: ExecutionRow): ToolExecutionRecord {
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
    return rows[0] ? fromRow(rows[0]) : undefined;
  }
}
