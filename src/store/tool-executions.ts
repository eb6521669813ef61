// Storage of async tool executions (seed 001's executionId polling), one row per execution,
// always scoped by organisation so one organisation never sees another's ids.

export type ToolExecutionStatus = 'pending' | 'running' | 'complete' | 'failed';

export interface ToolExecutionRecord {
  id: string;
  organisation: string;
  requestId: string;
  toolUseId: string;
  toolName: string;
  input: unknown;
  status: ToolExecutionStatus;
  /** The client-facing result (result, images, s3Urls) once complete. */
  result?: Record<string, unknown>;
  error?: string;
  createdAt: number;
  updatedAt: number;
}

export interface ToolExecutionUpdate {
  status: ToolExecutionStatus;
  result?: Record<string, unknown>;
  error?: string;
}

export interface ToolExecutionStore {
  createExecution(record: ToolExecutionRecord): Promise<void>;
  updateExecution(id: string, update: ToolExecutionUpdate): Promise<void>;
  /** Undefined when the id does not exist for this organisation. */
  getExecution(organisation: string, id: string): Promise<ToolExecutionRecord | undefined>;
  /**
   * Marks pending/running executions failed whose process is gone: with SQLite (one process per
   * store) every earlier one; with a shared store those whose process's lease has lapsed, from
   * then on too (a live process's work is never failed).
   */
  abandonUnfinished?(reason: string): Promise<number>;
}

/** For stores that have no table of their own (tests, other back-ends until they add one). */
export class MemoryToolExecutionStore implements ToolExecutionStore {
  private readonly rows = new Map<string, ToolExecutionRecord>();

  async createExecution(record: ToolExecutionRecord): Promise<void> {
    this.rows.set(record.id, structuredClone(record));
  }

  async updateExecution(id: string, update: ToolExecutionUpdate): Promise<void> {
    const row = this.rows.get(id);
    if (row) Object.assign(row, structuredClone(update), { updatedAt: Date.now() });
  }

  async getExecution(organisation: string, id: string): Promise<ToolExecutionRecord | undefined> {
    const row = this.rows.get(id);
    return row && row.organisation === organisation ? structuredClone(row) : undefined;
  }
}
