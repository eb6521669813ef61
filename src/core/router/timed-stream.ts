// Wraps one attempt's stream with the router's clocks: a time-to-first-token limit until the
// first content part, an idle limit between parts after it, and the attempt's abort signal
// (total timeout, client gone). It also adds up the time spent waiting on the upstream, which
// is what the overhead header subtracts.

import { GatewayError } from '../errors.js';
import { isContentPart, takeReady } from '../stream.js';
import type { StreamPart } from '../types.js';

export interface TimedStreamOptions {
  /** 0 = no limit. */
  ttftMs: number;
  idleMs: number;
  signal: AbortSignal;
  /** Called with the timeout error so the caller can abort the upstream call. */
  onTimeout: (error: GatewayError) => void;
  /** Called with the milliseconds each wait on the upstream took. */
  onWait: (ms: number) => void;
}

/** How long an aborted or timed-out upstream gets to stop before its attempt ends without it. */
const STOP_GRACE_MS = 250;

function abortError(signal: AbortSignal): GatewayError {
  return signal.reason instanceof GatewayError ? signal.reason : new GatewayError('cancelled', 'The request was cancelled');
}

export function timedStream(source: AsyncIterable<StreamPart>, options: TimedStreamOptions): AsyncIterable<StreamPart> {
  return {
    [Symbol.asyncIterator]() {
      const iterator = source[Symbol.asyncIterator]();
      let started = false;
      // Set when a guard fired while the upstream was still inside next(): it may never return.
      let stuck = false;
      // One abort listener and one re-armed timer per attempt, not per part: a stream of many
      // small chunks would otherwise pay for a timer, a listener and a promise each.
      let failure: GatewayError | undefined;
      let rejectWaiting: ((error: unknown) => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      let armedFor = 0;
      const fail = (error: GatewayError) => {
        failure ??= error;
        rejectWaiting?.(failure);
      };
      const onTimer = () => {
        timer = undefined;
        // Time the consumer spends between reads (a slow client) is not the upstream's silence.
        if (!rejectWaiting) return;
        const error = started
          ? new GatewayError('timeout', `The upstream sent nothing for ${armedFor} ms`, { code: 'idle_timeout' })
          : new GatewayError('timeout', `No first token within ${armedFor} ms`, { code: 'ttft_timeout' });
        options.onTimeout(error);
        fail(error);
      };
      const arm = () => {
        const limit = started ? options.idleMs : options.ttftMs;
        if (limit <= 0) {
          clearTimeout(timer);
          timer = undefined;
        } else if (timer && armedFor === limit) {
          timer.refresh();
        } else {
          clearTimeout(timer);
          armedFor = limit;
          timer = setTimeout(onTimer, limit);
        }
      };
      const onAbort = () => fail(abortError(options.signal));
      options.signal.addEventListener('abort', onAbort, { once: true });
      const release = () => {
        clearTimeout(timer);
        timer = undefined;
        options.signal.removeEventListener('abort', onAbort);
      };
      // A plain promise per read, settled by the upstream or by a guard (timer, abort), whichever
      // comes first: cheaper than an async function around Promise.race.
      const next = (): Promise<IteratorResult<StreamPart>> => {
        if (failure) return Promise.reject(failure);
        if (options.signal.aborted) return Promise.reject(abortError(options.signal));
        arm();
        const t0 = performance.now();
        return new Promise<IteratorResult<StreamPart>>((resolve, reject) => {
          let settled = false;
          const settle = () => {
            if (settled) return false;
            settled = true;
            rejectWaiting = undefined;
            options.onWait(performance.now() - t0);
            return true;
          };
          rejectWaiting = (error) => {
            if (!settle()) return;
            // The upstream may still be stuck in next(): ask it to stop, and give it a moment to
            // (the abort signal reaches it too). Whatever the rejection ends frees a concurrency
            // slot, and a slot freed while the upstream connection is still open lets one call
            // more reach the upstream than the limit allows. One that does not stop in time is
            // left behind.
            stuck = true;
            release();
            const stopped = Promise.resolve(iterator.return?.()).catch(() => undefined);
            let grace: NodeJS.Timeout | undefined;
            void Promise.race([stopped, new Promise((resolve) => (grace = setTimeout(resolve, STOP_GRACE_MS)))]).then(() => {
              clearTimeout(grace);
              reject(error);
            });
          };
          iterator.next().then(
            (result) => {
              if (!settle()) return;
              if (result.done) release();
              else if (isContentPart(result.value)) started = true;
              resolve(result);
            },
            (err: unknown) => {
              if (!settle()) return;
              release();
              void Promise.resolve(iterator.return?.()).catch(() => undefined);
              reject(err);
            },
          );
        });
      };
      return {
        next,
        // A part the source already holds needs no clock: nothing is waited for.
        takeReady(): StreamPart | undefined {
          if (failure || rejectWaiting || options.signal.aborted) return undefined;
          const part = takeReady(iterator);
          if (part !== undefined && isContentPart(part)) started = true;
          return part;
        },
        async return(): Promise<IteratorResult<StreamPart>> {
          release();
          if (!stuck) await Promise.resolve(iterator.return?.()).catch(() => undefined);
          return { done: true, value: undefined };
        },
      };
    },
  };
}
