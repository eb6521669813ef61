// The router's own request-wide cancellation (client gone, total timeout). It never leaves the
// router, so it need not be an AbortSignal: on Node 20 every AbortSignal is built with
// Object.setPrototypeOf, and V8's young-generation GC then keeps it, with whatever its listeners
// hold, even after it is garbage — one fewer per request measured 15–25 % fewer bytes promoted
// per scavenge (docs/benchmarks.md). Attempts still get a real AbortSignal: providers hand it to
// undici, the AWS SDK and node-llama-cpp.

/** What the router reads of a cancellation: an AbortSignal satisfies it too. */
export interface Cancellable {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export class Cancellation implements Cancellable {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> = [];

  /** Like AbortController.abort: once only; every listener runs once, in the order added. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }

  /** As on an AbortSignal, a listener added after the abort never runs. */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners.indexOf(listener);
    if (i >= 0) this.listeners.splice(i, 1);
  }
}
