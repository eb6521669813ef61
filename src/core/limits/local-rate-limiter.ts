// Rate limits kept in this process's memory: the embedded default (one process owns the store).

import type { RateLimiter, RateLimitScope, RateRejection, RateTicket, RateWindowState } from '../../store/coordination.js';
import { RateWindow, type TokenHandle } from './rate-window.js';

interface LocalTicket {
  readonly entries: Array<{ window: RateWindow; handle: TokenHandle }>;
}

export class LocalRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, RateWindow>();

  private window(scope: string): RateWindow {
    let window = this.windows.get(scope);
    if (!window) this.windows.set(scope, (window = new RateWindow()));
    return window;
  }

  private rejection(scopes: RateLimitScope[], now: number, promptTokens: number): RateRejection | undefined {
    for (const [index, scope] of scopes.entries()) {
      const window = this.window(scope.id);
      const usedTokens = window.tokenCount(now);
      if (scope.rpm !== undefined && window.requestCount(now) >= scope.rpm) {
        return { scope: index, limit: 'rpm', retryAfter: window.requestRetryAfter(now), usedTokens };
      }
      if (scope.tpm !== undefined && usedTokens + promptTokens > scope.tpm) {
        return { scope: index, limit: 'tpm', retryAfter: window.tokenRetryAfter(now, promptTokens, scope.tpm), usedTokens };
      }
      if (scope.concurrent !== undefined && window.inFlight >= scope.concurrent) {
        return { scope: index, limit: 'concurrent', retryAfter: 1, usedTokens };
      }
    }
    return undefined;
  }

  async admit(scopes: RateLimitScope[], promptTokens: number): Promise<{ ticket: RateTicket; windows: RateWindowState[] } | { rejected: RateRejection }> {
    const now = Date.now();
    const rejected = this.rejection(scopes, now, promptTokens);
    if (rejected) return { rejected };
    const entries = scopes.map((scope) => {
      const window = this.window(scope.id);
      return { window, handle: window.admit(now, promptTokens) };
    });
    const ticket: LocalTicket = { entries };
    const windows = entries.map(({ window }) => ({ requests: window.requestCount(now), tokens: window.tokenCount(now), ...window.resetsMs(now) }));
    return { ticket, windows };
  }

  release(ticket: RateTicket, actualTokens: number): void {
    for (const { window, handle } of (ticket as LocalTicket).entries) window.release(handle, actualTokens);
  }

  withdraw(ticket: RateTicket): void {
    for (const { window, handle } of (ticket as LocalTicket).entries) window.withdraw(handle);
  }
}
