// What gateway processes sharing one store must also share live, beyond rows: rate-limit windows
// (a limit of 60 requests a minute holds for the deployment, not per process), budget
// reservations (two processes must not both spend the last dollar), wake-ups (an async run's
// observers in one process hear of events another process appended) and the conversations of
// message threads (a continue may reach any process). Redis provides them
// (src/store/redis-coordination.ts); a single process keeps them in memory.

import type { ThreadStore } from './threads.js';

/** One scope's limits (a key or an organisation); absent fields are not limited. */
export interface RateLimitScope {
  /** `key:<id>` or `org:<name>`. */
  id: string;
  rpm?: number;
  tpm?: number;
  concurrent?: number;
}

/** A scope's window once a request is counted in it, for the rate-limit response headers. */
export interface RateWindowState {
  /** Requests in the window, this one included. */
  requests: number;
  /** Tokens in the window (this request's estimate included). */
  tokens: number;
  /** Milliseconds until the oldest request leaves the window (one more fits then). */
  requestsResetMs: number;
  /** Milliseconds until the oldest token entry leaves the window. */
  tokensResetMs: number;
}

/** Why a request was refused: which scope (index into the scopes given) and which limit. */
export interface RateRejection {
  scope: number;
  limit: 'rpm' | 'tpm' | 'concurrent';
  /** Seconds until it could pass. */
  retryAfter: number;
  /** Tokens counted in the scope's window (for the tpm message). */
  usedTokens: number;
}

/** An admitted request's place in its scopes' windows; what it holds is the limiter's business. */
export type RateTicket = object;

export interface RateLimiter {
  /**
   * Checks every scope and, only if all pass, counts the request in each: one atomic step, so
   * concurrent requests (from any process) never see the same headroom twice.
   */
  admit(scopes: RateLimitScope[], promptTokens: number): Promise<{ ticket: RateTicket; windows: RateWindowState[] } | { rejected: RateRejection }>;
  /** The call ended: frees its concurrency slot and replaces the token estimate with the real count. */
  release(ticket: RateTicket, actualTokens: number): void;
  /** Takes an admitted request back out entirely (a later check refused it). */
  withdraw(ticket: RateTicket): void;
}

/** Messages to every process sharing the store, this one included. */
export interface Signals {
  /**
   * Resolves once Redis has passed the message on to the subscribers (never rejects: a failure is
   * logged); most callers do not wait.
   */
  publish(topic: string, message: string): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe(topic: string, listener: (message: string) => void): () => void;
}

/** One budget a call must fit: a scope's amount for a period (UTC day or month). */
export interface BudgetLine {
  scope: string;
  period: 'day' | 'month';
  /** USD. */
  amount: number;
}

/** The first line the call did not fit, with that line's state. */
export interface BudgetRefusal {
  line: number;
  spent: number;
  reserved: number;
}

/** What a call reserved; settled when it ends. */
export interface BudgetTicket {
  readonly reservation: number;
}

export interface BudgetKeeper {
  /**
   * Reserves `reservation` (USD) on every line if it fits all of them (spent + reserved +
   * reservation ≤ amount): one atomic step, so concurrent calls cannot share the last headroom.
   */
  reserve(lines: BudgetLine[], reservation: number): Promise<{ ticket: BudgetTicket } | { refused: BudgetRefusal }>;
  /** The call ended: its reservation is replaced by what it really cost. */
  settle(ticket: BudgetTicket, cost: number): void;
}

/** Money settled by a scope (`key:<id>` or `org:<name>`) since a time: the request log's sum. */
export type SpentLoader = (scope: string, since: number) => Promise<number>;

/** Everything processes sharing a store share live. */
export interface Coordination extends RateLimiter, Signals {
  /** Budgets kept for every process; `loadSpent` seeds a period the first time it is used. */
  budgets(loadSpent: SpentLoader): BudgetKeeper;
  /** Message threads' conversations between turns. */
  readonly threads: ThreadStore;
}
