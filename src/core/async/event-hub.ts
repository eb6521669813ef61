// Wakes observers of a run when it gets new events or ends. It carries no data: observers read
// the store, which is the only source of events, so every observer sees the same sequence.

export class RunEventHub {
  private readonly waiters = new Map<string, Set<() => void>>();

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
    const set = this.waiters.get(this.key(organisation, id));
    if (!set) return;
    for (const waiter of [...set]) waiter();
  }

  /** Wakes everyone (shutdown). */
  notifyAll(): void {
    for (const set of [...this.waiters.values()]) for (const waiter of [...set]) waiter();
  }
}
