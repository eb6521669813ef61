// Sliding 60-second windows for requests and tokens, and a concurrency counter, for one scope
// (a key or an organisation), in this process's memory (LocalRateLimiter). Processes sharing a
// store share their windows in Redis instead (src/store/redis-coordination.ts).

export const WINDOW_MS = 60_000;

interface TokenEntry {
  at: number;
  tokens: number;
}

/** One admitted request's share of a window, corrected when its real usage is known. */
export interface TokenHandle {
  readonly entry: TokenEntry;
}

export class RateWindow {
  private requests: number[] = [];
  private tokens: TokenEntry[] = [];
  inFlight = 0;

  private prune(now: number): void {
    const cutoff = now - WINDOW_MS;
    while (this.requests.length && this.requests[0]! <= cutoff) this.requests.shift();
    while (this.tokens.length && this.tokens[0]!.at <= cutoff) this.tokens.shift();
  }

  requestCount(now: number): number {
    this.prune(now);
    return this.requests.length;
  }

  tokenCount(now: number): number {
    this.prune(now);
    return this.tokens.reduce((sum, e) => sum + e.tokens, 0);
  }

  /** Milliseconds until the oldest request and the oldest token entry leave the window. */
  resetsMs(now: number): { requestsResetMs: number; tokensResetMs: number } {
    this.prune(now);
    const left = (at: number | undefined) => (at === undefined ? 0 : Math.max(0, at + WINDOW_MS - now));
    return { requestsResetMs: left(this.requests[0]), tokensResetMs: left(this.tokens[0]?.at) };
  }

  /** Seconds until the oldest request leaves the window. */
  requestRetryAfter(now: number): number {
    return this.requests.length ? Math.max(1, Math.ceil((this.requests[0]! + WINDOW_MS - now) / 1000)) : 1;
  }

  /** Seconds until enough tokens leave the window for `needed` more to fit under `limit`. */
  tokenRetryAfter(now: number, needed: number, limit: number): number {
    let used = this.tokenCount(now);
    for (const entry of this.tokens) {
      if (used + needed <= limit) break;
      used -= entry.tokens;
      if (used + needed <= limit) return Math.max(1, Math.ceil((entry.at + WINDOW_MS - now) / 1000));
    }
    return Math.ceil(WINDOW_MS / 1000);
  }

  admit(now: number, estimatedTokens: number): TokenHandle {
    this.requests.push(now);
    const entry = { at: now, tokens: estimatedTokens };
    this.tokens.push(entry);
    this.inFlight++;
    return { entry };
  }

  /** The call ended: release its concurrency slot and replace the estimate with real tokens. */
  release(handle: TokenHandle, actualTokens: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    handle.entry.tokens = actualTokens;
  }

  /** Takes an admitted request back out, as if it had never been admitted. */
  withdraw(handle: TokenHandle): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const request = this.requests.indexOf(handle.entry.at);
    if (request >= 0) this.requests.splice(request, 1);
    const tokens = this.tokens.indexOf(handle.entry);
    if (tokens >= 0) this.tokens.splice(tokens, 1);
  }
}
