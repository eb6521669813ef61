// Runs async work from the store's priority queue (higher priority first, FIFO within) with a
// configured concurrency. Events are appended to the store before observers are woken. On
// start-up, runs a dead process left running are re-queued (nothing emitted) or failed.
// Processes sharing a store (PostgreSQL) claim from the same queue; with signals (Redis) they
// hear of new work, new events and cancellations at once, without them they poll.

import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { RunNotRunningError, type AsyncRunFinish, type AsyncRunRecord, type AsyncRunStore, type AsyncRunUsage, type NewAsyncRun } from '../../store/async-runs.js';
import type { Signals } from '../../store/coordination.js';
import type { AsyncConfig } from './config.js';
import { RunEventHub } from './event-hub.js';

export interface RunExecution {
  run: AsyncRunRecord;
  /** Aborted when the run is cancelled or the server shuts down. */
  signal: AbortSignal;
  /** Appends an event to the run's log, then wakes its observers. */
  emit(event: string, data: string): Promise<void>;
  setModel(model: string): Promise<void>;
}

export interface RunOutcome {
  status: 'completed' | 'failed';
  usage?: AsyncRunUsage;
  error?: { type: string; message: string };
  result?: unknown;
  model?: string;
  /** The run's last event, appended with its end in one step (see AsyncRunFinish.finalEvent). */
  finalEvent?: { event: string; data: string };
}

/** One kind of async work (the dialect that accepted it). */
export interface RunKind {
  /** Runs to the end, emitting every event itself (an error event included when it fails). */
  execute(execution: RunExecution): Promise<RunOutcome>;
  /** The last event of a run ended from outside its execution (cancel, crash, shutdown). */
  terminalEvent(reason: 'cancelled' | 'failed', message: string): { event: string; data: string };
}

interface ActiveRun {
  controller: AbortController;
  stopReason?: 'cancel' | 'shutdown';
  emitted: number;
  done: Promise<void>;
}

export const CANCELLED_MESSAGE = 'The run was cancelled';
export const CRASHED_MESSAGE = 'The server process running this message stopped before it finished (it exited or was killed); the events emitted until then are kept';
export const SHUTDOWN_MESSAGE = 'The server shut down before this message finished; the events emitted until then are kept';

/**
 * How often a process sharing its store looks for work: queued elsewhere while no signal reaches
 * it (without Redis), or re-queued by the store's lease recovery after another process died.
 */
const SHARED_QUEUE_POLL_MS = 1000;

export class AsyncRunner {
  readonly hub: RunEventHub;
  /** This process, as the owner of the runs it executes. */
  readonly owner = `proc-${randomUUID()}`;
  private queueTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly active = new Map<string, ActiveRun>();
  private pumping = false;
  private stopping = false;
  /** A graceful shutdown has begun: no new work is claimed. */
  private draining = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly closing = new AbortController();

  constructor(
    readonly store: AsyncRunStore,
    private readonly config: AsyncConfig,
    private readonly logger: Logger,
    private readonly kinds: Record<string, RunKind>,
    private readonly signals?: Signals,
  ) {
    this.hub = new RunEventHub(signals);
  }

  private key(organisation: string, id: string): string {
    return `${organisation}\u0000${id}`;
  }

  async start(): Promise<void> {
    const recovered = await this.store.recoverOrphans(this.owner, (run) => this.failure(run, 'failed', CRASHED_MESSAGE));
    if (recovered.failed.length || recovered.requeued.length) {
      this.logger.warn({ failed: recovered.failed.length, requeued: recovered.requeued.length }, 'async runs left running by a stopped process recovered');
    }
    await this.prune();
    this.pruneTimer = setInterval(() => void this.prune(), this.config.pruneIntervalSeconds * 1000);
    this.pruneTimer.unref();
    if (this.store.shared) {
      // Work queued (or re-queued after a crash) by another process: heard of, or polled for.
      this.queueTimer = setInterval(() => this.pump(), SHARED_QUEUE_POLL_MS);
      this.queueTimer.unref();
    }
    if (this.signals) {
      this.unsubscribe.push(
        this.signals.subscribe('queue', (origin) => origin !== this.owner && this.pump()),
        this.signals.subscribe('cancel', (message) => this.cancelledElsewhere(message)),
      );
    }
    this.pump();
  }

  private async prune(): Promise<void> {
    try {
      await this.store.prune(Date.now() - this.config.retentionHours * 3_600_000);
    } catch (err) {
      this.logger.error({ err }, 'async run pruning failed');
    }
  }

  private failure(run: Pick<AsyncRunRecord, 'kind'>, reason: 'cancelled' | 'failed', message: string): AsyncRunFinish {
    const kind = this.kinds[run.kind];
    return {
      status: reason,
      error: reason === 'failed' ? { type: 'api_error', message } : undefined,
      finalEvent: kind?.terminalEvent(reason, message),
    };
  }

  /** Stores a new pending run; false when the id exists. */
  async submit(run: NewAsyncRun): Promise<boolean> {
    if (!this.kinds[run.kind]) throw new Error(`No async run kind '${run.kind}'`);
    const created = await this.store.create(run);
    if (created) {
      this.pump();
      this.signals?.publish('queue', this.owner);
    }
    return created;
  }

  /**
   * Cancels a pending or running run and returns it as it ends; undefined when unknown. A run
   * that already ended is returned unchanged.
   */
  async cancel(organisation: string, id: string, attempt = 0): Promise<AsyncRunRecord | undefined> {
    const run = await this.store.get(organisation, id);
    if (!run) return undefined;
    if (run.status === 'pending') {
      const finished = await this.store.finish(organisation, id, ['pending'], this.failure(run, 'cancelled', CANCELLED_MESSAGE));
      if (finished) {
        this.hub.notify(organisation, id);
        await this.countPending();
        return this.store.get(organisation, id);
      }
      // Claimed meanwhile: fall through to the running case.
    }
    const active = this.active.get(this.key(organisation, id));
    if (active) {
      active.stopReason ??= 'cancel';
      active.controller.abort(new Error(CANCELLED_MESSAGE));
      await active.done;
    } else {
      const current = await this.store.get(organisation, id);
      if (current?.status === 'running' && current.owner === this.owner && !this.stopping && attempt < 100) {
        // Claimed by this process a moment ago and being launched: cancel it once it is active.
        await new Promise((resolve) => setImmediate(resolve));
        return this.cancel(organisation, id, attempt + 1);
      }
      if (current?.status === 'running') {
        // Running but not here (another process sharing the store, or lost): end it in the store;
        // its process stops it when told, or at its next event, which the store refuses.
        await this.store.finish(organisation, id, ['running'], this.failure(run, 'cancelled', CANCELLED_MESSAGE));
        this.signals?.publish('cancel', this.key(organisation, id));
        this.hub.notify(organisation, id);
      }
    }
    return this.store.get(organisation, id);
  }

  /** Runs waiting in the store's queue, as last counted (read synchronously by the metrics gauge). */
  pendingCount = 0;

  private async countPending(): Promise<void> {
    this.pendingCount = await this.store.countPending();
  }

  private pump(): void {
    if (this.pumping || this.stopping || this.draining) return;
    this.pumping = true;
    void (async () => {
      try {
        while (!this.stopping && !this.draining && this.active.size < this.config.concurrency) {
          const run = await this.store.claimNext(this.owner);
          if (!run) break;
          this.launch(run);
        }
        await this.countPending();
      } catch (err) {
        this.logger.error({ err }, 'async queue failed');
      } finally {
        this.pumping = false;
      }
    })();
  }

  private launch(run: AsyncRunRecord): void {
    const key = this.key(run.organisation, run.id);
    const kind = this.kinds[run.kind]!;
    const entry: ActiveRun = { controller: new AbortController(), emitted: 0, done: Promise.resolve() };
    this.active.set(key, entry);
    this.hub.notify(run.organisation, run.id);
    const execution: RunExecution = {
      run,
      signal: entry.controller.signal,
      emit: async (event, data) => {
        try {
          await this.store.appendEvent(run.organisation, run.id, event, data);
        } catch (err) {
          // Ended from outside (cancelled by another process sharing the store): stop here.
          if (err instanceof RunNotRunningError) {
            entry.stopReason ??= 'cancel';
            entry.controller.abort(new Error(CANCELLED_MESSAGE));
          }
          throw err;
        }
        entry.emitted++;
        this.hub.notify(run.organisation, run.id);
      },
      setModel: (model) => this.store.setModel(run.organisation, run.id, model),
    };
    entry.done = (async () => {
      let outcome: RunOutcome | undefined;
      let thrown: unknown;
      try {
        outcome = await kind.execute(execution);
      } catch (err) {
        thrown = err;
      }
      try {
        await this.settle(run, entry, outcome, thrown);
      } catch (err) {
        this.logger.error({ err, run: run.id }, 'async run could not be finalised');
      } finally {
        this.active.delete(key);
        this.hub.notify(run.organisation, run.id);
        this.pump();
      }
    })();
  }

  /** Another process cancelled a run in the store: stop it if it runs here. */
  private cancelledElsewhere(key: string): void {
    const active = this.active.get(key);
    if (!active) return;
    active.stopReason ??= 'cancel';
    active.controller.abort(new Error(CANCELLED_MESSAGE));
  }

  private async settle(run: AsyncRunRecord, entry: ActiveRun, outcome: RunOutcome | undefined, thrown: unknown): Promise<void> {
    const { organisation, id } = run;
    if (entry.stopReason === 'cancel') {
      await this.store.finish(organisation, id, ['running'], { ...this.failure(run, 'cancelled', CANCELLED_MESSAGE), usage: outcome?.usage });
      return;
    }
    if (entry.stopReason === 'shutdown') {
      // Nothing emitted yet: leave it running; the next start-up re-queues it.
      if (entry.emitted > 0) await this.store.finish(organisation, id, ['running'], { ...this.failure(run, 'failed', SHUTDOWN_MESSAGE), usage: outcome?.usage });
      return;
    }
    if (thrown !== undefined || !outcome) {
      this.logger.error({ err: thrown, run: id }, 'async run failed unexpectedly');
      await this.store.finish(organisation, id, ['running'], this.failure(run, 'failed', 'The run failed unexpectedly'));
      return;
    }
    await this.store.finish(organisation, id, ['running'], outcome);
  }

  /** Aborted when the runner stops: observers end their streams with it. */
  get stopped(): AbortSignal {
    return this.closing.signal;
  }

  /** Number of runs executing in this process. */
  get running(): number {
    return this.active.size;
  }

  /**
   * A graceful shutdown: claims no more work and lets the runs in progress go on for up to
   * `graceMs`, then stops (what is still running then ends as stop() ends it). Queued runs stay
   * queued for the next process.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const running = [...this.active.values()].map((e) => e.done);
    if (running.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(running), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    await this.stop();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.queueTimer) clearInterval(this.queueTimer);
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    for (const entry of this.active.values()) {
      entry.stopReason ??= 'shutdown';
      entry.controller.abort(new Error(SHUTDOWN_MESSAGE));
    }
    await Promise.all([...this.active.values()].map((e) => e.done));
    this.closing.abort();
    this.hub.notifyAll();
    this.hub.close();
  }
}
