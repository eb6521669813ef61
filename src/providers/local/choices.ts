// n choices of one request on the sequences it was given. The request takes the sequences it
// needs at once in one piece (SequencePool.acquireMany): choices that took them one by one could
// each hold some while waiting for the others' (the core's one-call-per-choice emulation did,
// and a request with n above local.parallel, or two with n > 1 side by side, waited forever).
// Choices beyond the sequences start as earlier ones end and hand theirs on.

import { toGatewayError } from '../../core/errors.js';
import { mergeChoices } from '../../core/stream.js';
import type { StreamPart } from '../../core/types.js';
import type { SequenceLease } from './sequence-pool.js';

/** The request's sequences, passed from a choice that ended to the next one that starts. */
export class LeaseRelay {
  private readonly kept: SequenceLease[];
  private readonly takers: Array<(lease: SequenceLease | undefined) => void> = [];
  private closed = false;

  constructor(leases: SequenceLease[]) {
    this.kept = [...leases];
  }

  /** A sequence for the next choice, when one is free; undefined once the response is over. */
  take(): Promise<SequenceLease | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const lease = this.kept.shift();
    if (lease) return Promise.resolve(lease);
    return new Promise((resolve) => this.takers.push(resolve));
  }

  give(lease: SequenceLease): void {
    if (this.closed) return lease.release();
    const taker = this.takers.shift();
    if (taker) taker(lease);
    else this.kept.push(lease);
  }

  /** The response is over: the sequences kept go back to the pool, and a choice still waiting for one ends. */
  close(): void {
    this.closed = true;
    for (const lease of this.kept.splice(0)) lease.release();
    for (const taker of this.takers.splice(0)) taker(undefined);
  }
}

/** Generates one choice on `lease`; calls `done` with the lease once the sequence is idle again. */
export type ChoiceGenerator = (index: number, lease: SequenceLease, done: (lease: SequenceLease) => void) => AsyncIterable<StreamPart>;

/** `count` choices, their parts merged and tagged with the choice index (as the core's emulation tags them). */
export async function* runChoices(count: number, leases: SequenceLease[], generate: ChoiceGenerator): AsyncGenerator<StreamPart> {
  const relay = new LeaseRelay(leases);
  async function* choice(index: number): AsyncGenerator<StreamPart> {
    const lease = await relay.take();
    if (!lease) return;
    try {
      yield* generate(index, lease, (l) => relay.give(l));
    } catch (err) {
      // A part, not a rejection: the merge may hold this choice's next() without awaiting it.
      yield { type: 'error', error: toGatewayError(err) };
    }
  }
  const merged = mergeChoices(Array.from({ length: count }, (_, i) => choice(i)))[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await merged.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Before the merge is stopped: it waits for each choice, and one waiting for a sequence would never end.
    relay.close();
    await merged.return?.(undefined);
  }
}
