// Reads a run's events from the store, from a point on, and follows new ones until the run
// ends. Events only ever come from the store, so every observer sees the same sequence.

import type { AsyncRunEvent, AsyncRunStore } from '../../store/async-runs.js';
import { TERMINAL_STATUSES } from '../../store/async-runs.js';
import type { RunEventHub } from './event-hub.js';

const PAGE = 500;
/** Fallback wake-up, for runs executed by another process sharing the store. */
const POLL_MS = 1000;

/**
 * `signal` ends the observation at once (the client went). `stopping` (the server shutting down)
 * ends it after one last read: every event stored by then is delivered (the final ones of runs
 * that ended in the shutdown included), and the generator returns even if the run goes on; the
 * caller tells the client why.
 */
export async function* observeRun(
  store: AsyncRunStore,
  hub: RunEventHub,
  organisation: string,
  id: string,
  after: number,
  signal: AbortSignal,
  stopping?: AbortSignal,
): AsyncGenerator<AsyncRunEvent> {
  let cursor = after;
  const wakeOn = stopping ? AbortSignal.any([signal, stopping]) : signal;
  while (!signal.aborted) {
    const last = stopping?.aborted === true;
    const wake = hub.next(organisation, id, wakeOn);
    try {
      // Status first: if it is already final, every event is already stored (they are appended
      // before the status changes), so draining the events below reaches the true end.
      const run = await store.get(organisation, id);
      const events = await store.readEvents(organisation, id, cursor, PAGE);
      for (const event of events) {
        cursor = event.seq;
        yield event;
      }
      if (events.length === PAGE) continue;
      if (!run || TERMINAL_STATUSES.includes(run.status) || last) return;
      if (events.length > 0) continue;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([wake.promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, POLL_MS)))]);
      clearTimeout(timer);
    } finally {
      wake.cancel();
    }
  }
}
