// Wraps one attempt's stream with the router's clocks: a time-to-first-token limit until the
// first content part, an idle limit between parts after it, and the attempt's abort signal
// (total timeout, client gone). It also adds up the time spent waiting on the upstream, which
// is what the overhead header subtracts.

import { GatewayError } from '../errors.js';
import { isContentPart } from '../stream.js';
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
      const next = async (): Promise<IteratorResult<StreamPart>> => {
        if (options.signal.aborted) throw abortError(options.signal);
        const limit = started ? options.idleMs : options.ttftMs;
        const t0 = performance.now();
        let timer: NodeJS.Timeout | undefined;
        let onAbort: (() => void) | undefined;
        const guards = new Promise<never>((_, reject) => {
          if (limit > 0) {
            timer = setTimeout(() => {
              const error = started
                ? new GatewayError('timeout', `The upstream sent nothing for ${limit} ms`, { code: 'idle_timeout' })
                : new GatewayError('timeout', `No first token within ${limit} ms`, { code: 'ttft_timeout' });
              options.onTimeout(error);
              reject(error);
            }, limit);
          }
          onAbort = () => reject(abortError(options.signal));
          options.signal.addEventListener('abort', onAbort, { once: true });
        });
        try {
          const result = await Promise.race([iterator.next(), guards]);
          if (!result.done && isContentPart(result.value)) started = true;
          return result;
        } catch (err) {
          // The upstream may still be stuck in next(): ask it to stop, without waiting for it.
          stuck = true;
          void Promise.resolve(iterator.return?.()).catch(() => undefined);
          throw err;
        } finally {
          clearTimeout(timer);
          if (onAbort) options.signal.removeEventListener('abort', onAbort);
          options.onWait(performance.now() - t0);
        }
      };
      return {
        next,
        async return(): Promise<IteratorResult<StreamPart>> {
          if (!stuck) await Promise.resolve(iterator.return?.()).catch(() => undefined);
          return { done: true, value: undefined };
        },
      };
    },
  };
}
