// Wakes observers of a run when it gets new events or ends. It carries no data: observers read
// the store, which is the only source of events, so every observer sees the same sequence. With
// signals (processes sharing the store), a wake-up reaches the observers in every process.

import { randomUUID } from 'node:crypto';
import type { Signals } from '../../store/coordination.js';

export class RunEventHub {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly origin = randomUUID();
  private readonly unsubscribe?: () => void;

  constructor(private readonly signals?: Signals) {
    this.unsubscribe = signals?.subscribe('runs', (message) => {
      const space = message.indexOf(' ');
      if (message.slice(0, space) !== this.origin) this.wake(message.slice(space + 1));
    });
  }

  private key(organisation: string, id: string): string {
    return `${organisation}\u0000${id}`;
  }

  /**
   * A promise for the next change of the run. Take it BEFORE reading the store, so a change
   * between the read and the wait is not missed.
   */
  next(organisation: string, id: string, signal?: AbortSignal): { promise: Promise<void>; cancel: () => void } {
    const key = this.key(organisation, id);
    let set = this.waiters.get(key);
    if (!set) {
      set = new Set();
      this.waiters.set(key, set);
    }
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    const waiter = () => {
      cancel();
      wake();
    };
    const cancel = () => {
      set!.delete(waiter);
      if (set!.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
      signal?.removeEventListener('abort', waiter);
    };
    set.add(waiter);
    signal?.addEventListener('abort', waiter, { once: true });
    return { promise, cancel };
  }

  notify(organisation: string, id: string): void {
    const key = this.key(organisation, id);
    this.wake(key);
    this.signals?.publish('runs', `${this.origin} ${key}`);
  }

  private wake(key: string): void {
    const set = this.waiters.get(key);
    if (!set) return;
    for (const waiter of [...set]) waiter();
  }

  /** Stops listening to other processes. */
  close(): void {
    this.unsubscribe?.();
  }

  /** Wakes everyone (shutdown). */
  notifyAll(): void {
    for (const set of [...this.waiters.values()]) for (const waiter of [...set]) waiter();
  }
}
