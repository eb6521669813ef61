// Makes the sequences of one context that generate together share every decode.
//
// node-llama-cpp decodes whatever is queued one event-loop turn after the first token is queued,
// and after a decode it loops at once on whatever was queued meanwhile. Sampling ends at slightly
// different times for each sequence, so the first ones re-queue before the last is sampled: four
// sequences then share a decode three at a time, or go alone. On a GPU a decode costs about the
// same for one token as for four, so each split is a step lost.
//
// The gate works in rounds. While a round's decode is in flight, a driver that wants its next
// token waits until every token of that round is delivered; then all ask, one macrotask later
// (node-llama-cpp's loop has found its queue empty by then and returned to the dispatch
// schedule). The schedule holds the dispatch until every generating driver has asked, or
// `maxWaitMs` has passed, so one slow consumer (a client reading slowly) delays the others little.

import type { CustomBatchingDispatchSchedule } from 'node-llama-cpp';

export class BatchGate {
  /** Drivers inside a generation loop. */
  private generating = 0;
  /** Tokens asked for and not yet delivered. */
  private asking = 0;
  /** True between a round's dispatch and the delivery of its last token. */
  private inFlight = false;
  private readonly waiting: Array<() => void> = [];
  private held: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Decodes dispatched through the gate, and the sequences they carried (for metrics). */
  rounds = 0;
  roundSequences = 0;

  constructor(private readonly maxWaitMs = 2) {}

  /** node-llama-cpp's `batching.dispatchSchedule`. */
  readonly schedule: CustomBatchingDispatchSchedule = (dispatch) => {
    this.held = dispatch;
    // Alone, the one driver's token is queued by now and nothing is worth waiting for: dispatch
    // at once (as node-llama-cpp does when every sequence has queued), in this turn.
    if (this.generating === 1 && this.asking === 1) this.release(true);
    else if (!this.releaseIfAllAsked()) this.timer ??= setTimeout(() => this.release(), this.maxWaitMs);
  };

  /** A driver starts generating. */
  enter(): void {
    this.generating++;
  }

  /** A driver stops generating. */
  leave(): void {
    this.generating--;
    this.releaseIfAllAsked();
  }

  /**
   * Resolves when the driver may ask for its next token (see the top comment); undefined when it
   * may ask at once, as a sequence generating alone always may.
   */
  beforeAsk(): Promise<void> | undefined {
    if (this.generating <= 1 && !this.inFlight) return undefined;
    return new Promise((resolve) => {
      const go = () => setImmediate(resolve);
      if (this.inFlight) this.waiting.push(go);
      else go();
    });
  }

  /** The driver asks node-llama-cpp for its next token now. */
  ask(): void {
    this.asking++;
    this.releaseIfAllAsked();
  }

  /** The asked-for token arrived (or the generation ended). */
  answered(): void {
    this.asking--;
    if (this.asking > 0) return;
    this.inFlight = false;
    for (const go of this.waiting.splice(0)) go();
  }

  /** Dispatches the held decode once every generating driver has asked; says whether it did. */
  private releaseIfAllAsked(): boolean {
    if (!this.held || this.asking < this.generating) return false;
    this.release();
    return true;
  }

  private release(now = false): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const dispatch = this.held;
    this.held = undefined;
    if (!dispatch) return;
    this.rounds++;
    this.roundSequences += this.asking;
    this.inFlight = this.asking > 0;
    // Otherwise one turn later, as node-llama-cpp's own "nextCycle": the last asker's tokens are
    // queued a few microtasks after ask().
    if (now) dispatch();
    else setImmediate(dispatch);
  }
}
