// The sequences of one context, handed out one per request (one per choice, all at once, for
// several choices). Beyond them, requests wait in a bounded FIFO queue; past its limit they are refused at once with 503 + Retry-After, which is
// "this server is at capacity" (a 429 would blame the client's own rate, and the router may
// try another deployment on a 503). A waiter whose client goes away leaves the queue at once.

import type { EvaluationPriority, LlamaContextSequence, Token } from 'node-llama-cpp';
import { GatewayError } from '../../core/errors.js';
import { batchPriorityOf } from './batch-order.js';

export interface SequenceLease {
  readonly sequence: LlamaContextSequence;
  /** The sequence's place in its context's batches (see batch-order.ts). */
  readonly batchPriority: EvaluationPriority;
  /** Gives the sequence back (idempotent). */
  release(): void;
}

interface Waiter {
  /** Sequences wanted, all at once: a request's choices never hold some while waiting for the rest. */
  count: number;
  prompt: readonly Token[];
  resolve(leases: SequenceLease[]): void;
  reject(err: unknown): void;
}

export function cancelledError(): GatewayError {
  return new GatewayError('cancelled', 'The request was cancelled');
}

export class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(
    private readonly sequences: readonly LlamaContextSequence[],
    private readonly queueLimit: number,
  ) {
    this.free = [...sequences];
  }

  get queueDepth(): number {
    return this.waiters.length;
  }

  get activeCount(): number {
    return this.sequences.length - this.free.length;
  }

  get size(): number {
    return this.sequences.length;
  }

  /** A free sequence (preferring the one whose cached tokens share the longest prefix with `prompt`), or a place in the queue. */
  async acquire(prompt: readonly Token[], signal: AbortSignal): Promise<SequenceLease> {
    return (await this.acquireMany(prompt, 1, signal))[0]!;
  }

  /**
   * `count` sequences at once (at most the pool's size). Taken one by one, the choices of two
   * requests could each hold some and wait for the others' forever; the queue is FIFO, so a
   * waiter for several is not passed by later waiters for one.
   */
  async acquireMany(prompt: readonly Token[], count: number, signal: AbortSignal): Promise<SequenceLease[]> {
    if (signal.aborted) throw cancelledError();
    if (this.closed) throw new GatewayError('unavailable', 'The local model is shutting down', { retryAfter: 1 });
    if (count < 1 || count > this.sequences.length) throw new RangeError(`cannot lease ${count} of ${this.sequences.length} sequences`);
    if (this.waiters.length === 0 && this.free.length >= count) return this.take(prompt, count);
    if (this.waiters.length >= this.queueLimit) {
      throw new GatewayError(
        'unavailable',
        `The local model is busy: ${this.sequences.length} requests are generating and ${this.waiters.length} are queued (queue limit ${this.queueLimit}). Retry shortly.`,
        { code: 'local_queue_full', retryAfter: 1, busy: true },
      );
    }
    return new Promise<SequenceLease[]>((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(cancelledError());
        // A waiter for several that left may have held back smaller ones behind it.
        this.serveWaiters();
      };
      const waiter: Waiter = {
        count,
        prompt,
        resolve: (s) => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new GatewayError('unavailable', 'The local model is shutting down', { retryAfter: 1 }));
  }

  private take(prompt: readonly Token[], count: number): SequenceLease[] {
    return Array.from({ length: count }, () => this.lease(this.takeBestFree(prompt)));
  }

  /** Hands free sequences to the waiters at the head of the queue, as many as they can have whole. */
  private serveWaiters(): void {
    while (this.waiters.length > 0 && this.waiters[0]!.count <= this.free.length) {
      const waiter = this.waiters.shift()!;
      waiter.resolve(this.take(waiter.prompt, waiter.count));
    }
  }

  private lease(sequence: LlamaContextSequence): SequenceLease {
    let released = false;
    return {
      sequence,
      batchPriority: batchPriorityOf(this.sequences.indexOf(sequence), this.sequences.length),
      release: () => {
        if (released) return;
        released = true;
        this.free.push(sequence);
        this.serveWaiters();
      },
    };
  }

  private takeBestFree(prompt: readonly Token[]): LlamaContextSequence {
    let best = 0;
    let bestShared = -1;
    this.free.forEach((sequence, index) => {
      const shared = sequence.compareContextTokens(prompt as Token[]).firstDifferentIndex;
      if (shared > bestShared) {
        best = index;
        bestShared = shared;
      }
    });
    return this.free.splice(best, 1)[0]!;
  }
}
