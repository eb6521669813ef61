// Storage of async runs (seed 003) and their event logs, plus the per-request metadata the
// Messages API records. Every query is scoped by organisation: ids are unique per organisation.

export type AsyncRunStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_STATUSES: readonly AsyncRunStatus[] = ['completed', 'failed', 'cancelled'];

export interface AsyncRunUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
}

export interface AsyncRunError {
  type: string;
  message: string;
}

export interface AsyncRunRecord {
  organisation: string;
  id: string;
  /** What executes it (the dialect that accepted it), e.g. 'messages'. */
  kind: string;
  status: AsyncRunStatus;
  priority: number;
  /** Model as requested; replaced by the resolved id once it runs. */
  model: string;
  /** The request body as accepted (JSON text). */
  request: string;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  usage?: AsyncRunUsage;
  error?: AsyncRunError;
  /** The final result (a Messages `message` object) when completed. */
  result?: unknown;
  eventCount: number;
  /** The process that runs it (see the recovery on start-up). */
  owner?: string;
  userId?: string;
  correlationId?: string;
  keyId?: string;
}

export interface NewAsyncRun {
  organisation: string;
  id: string;
  kind: string;
  priority: number;
  model: string;
  request: string;
  userId?: string;
  correlationId?: string;
  keyId?: string;
}

export interface AsyncRunEvent {
  /** 1, 2, 3… within the run; the SSE `id:`. */
  seq: number;
  event: string;
  data: string;
}

export interface AsyncRunFinish {
  status: 'completed' | 'failed' | 'cancelled';
  usage?: AsyncRunUsage;
  error?: AsyncRunError;
  result?: unknown;
  model?: string;
  /** Appended in the same transaction, before the status changes (observers rely on it). */
  finalEvent?: { event: string; data: string };
}

export interface RecoveredRuns {
  failed: Array<{ organisation: string; id: string }>;
  requeued: Array<{ organisation: string; id: string }>;
}

/** What the Messages API records about each request beyond the request log. */
export interface MessagesRequestMetadata {
  requestId: string;
  organisation: string;
  createdAt: number;
  userId?: string;
  serviceTier?: string;
  inferenceGeo?: string;
  correlationId?: string;
  priority?: number;
}

/** appendEvent on a run that is no longer running (ended from outside, by another process). */
export class RunNotRunningError extends Error {
  constructor(id: string) {
    super(`Async run '${id}' is not running`);
    this.name = 'RunNotRunningError';
  }
}

export interface AsyncRunStore {
  /** True when several processes share the store (they claim from one queue). */
  readonly shared?: boolean;
  /** False when the organisation already has a run with this id. */
  create(run: NewAsyncRun): Promise<boolean>;
  get(organisation: string, id: string): Promise<AsyncRunRecord | undefined>;
  /** 1-based position among pending runs (higher priority first, FIFO within); undefined unless pending. */
  queuePosition(organisation: string, id: string): Promise<number | undefined>;
  /** Atomically moves the next pending run to running, owned by `owner`. */
  claimNext(owner: string): Promise<AsyncRunRecord | undefined>;
  /** Runs waiting to start, every organisation (the queue depth). */
  countPending(): Promise<number>;
  setModel(organisation: string, id: string, model: string): Promise<void>;
  /** Appends one event to a running run and returns its sequence number; RunNotRunningError otherwise. */
  appendEvent(organisation: string, id: string, event: string, data: string): Promise<number>;
  readEvents(organisation: string, id: string, after: number, limit: number): Promise<AsyncRunEvent[]>;
  /** Ends a run that is in one of `from`; false when it was not (already ended, say). */
  finish(organisation: string, id: string, from: AsyncRunStatus[], finish: AsyncRunFinish): Promise<boolean>;
  /**
   * Runs left `running` by a process other than `owner`: re-queued when they emitted nothing,
   * else failed with `failure` appended as their last event.
   */
  recoverOrphans(owner: string, failure: (run: AsyncRunRecord) => AsyncRunFinish): Promise<RecoveredRuns>;
  /** Deletes runs (and their events) that ended before `before`. */
  prune(before: number): Promise<number>;
  recordMessagesRequest(entry: MessagesRequestMetadata): Promise<void>;
  readMessagesRequest(organisation: string, requestId: string): Promise<MessagesRequestMetadata | undefined>;
}
