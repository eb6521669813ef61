// Async tool executions in the embedded SQLite store.

import type Database from 'better-sqlite3';
import type { ToolExecutionRecord, ToolExecutionStore, ToolExecutionUpdate } from './tool-executions.js';
import { executionFromRow, type ExecutionRow } from './rows.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
const SCHEMA = `
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
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

export class SqliteToolExecutionStore implements ToolExecutionStore {
  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
  }

  async createExecution(r: ToolExecutionRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO tool_executions (id, organisation, request_id, tool_use_id, tool_name, input, status, result, error, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(r.id, r.organisation, r.requestId, r.toolUseId, r.toolName, JSON.stringify(r.input ?? null), r.status, r.result ? JSON.stringify(r.result) : null, r.error ?? null, r.createdAt, r.updatedAt);
  }

  async updateExecution(id: string, u: ToolExecutionUpdate): Promise<void> {
    this.db
      .prepare('UPDATE tool_executions SET status = ?, result = ?, error = ?, updated_at = ? WHERE id = ?')
      .run(u.status, u.result ? JSON.stringify(u.result) : null, u.error ?? null, Date.now(), id);
  }

  async abandonUnfinished(reason: string): Promise<number> {
    return this.db
      .prepare("UPDATE tool_executions SET status = 'failed', error = ?, updated_at = ? WHERE status IN ('pending', 'running')")
      .run(reason, Date.now()).changes;
  }

  async getExecution(organisation: string, id: string): Promise<ToolExecutionRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM tool_executions WHERE id = ? AND organisation = ?').get(id, organisation) as ExecutionRow | undefined;
    return row ? executionFromRow(row) : undefined;
  }
}
