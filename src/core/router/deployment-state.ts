// What the router knows about one deployment at run time: requests in flight, the moving
// average of its time to first token, its circuit breaker, and a Retry-After cool-down.

import type { ResolvedDeployment } from '../models.js';
import { CircuitBreaker, type BreakerSettings } from './breaker.js';

/** Weight of the newest sample in the latency moving average. */
const LATENCY_ALPHA = 0.3;

export class DeploymentState {
  inFlight = 0;
  /** Exponential moving average of time to first token, ms; undefined until the first success. */
  ttftAverageMs: number | undefined;
  requests = 0;
  failures = 0;
  /** Epoch ms until which an upstream asked us (Retry-After) to stay away. */
  coolingUntil = 0;
  readonly breaker: CircuitBreaker;

  constructor(
    readonly deployment: ResolvedDeployment,
    breaker: BreakerSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.breaker = new CircuitBreaker(breaker, now);
  }

  /** At its maxConcurrent limit (0 = unlimited). */
  get saturated(): boolean {
    return this.deployment.maxConcurrent > 0 && this.inFlight >= this.deployment.maxConcurrent;
  }

  get cooling(): boolean {
    return this.coolingUntil > this.now();
  }

  recordTtft(ms: number): void {
    this.ttftAverageMs = this.ttftAverageMs === undefined ? ms : LATENCY_ALPHA * ms + (1 - LATENCY_ALPHA) * this.ttftAverageMs;
  }

  coolFor(seconds: number): void {
    this.coolingUntil = Math.max(this.coolingUntil, this.now() + seconds * 1000);
  }

  snapshot(): Record<string, unknown> {
    return {
      name: this.deployment.name,
      provider: this.deployment.provider,
      model: this.deployment.model,
      weight: this.deployment.weight,
      maxConcurrent: this.deployment.maxConcurrent,
      inFlight: this.inFlight,
      requests: this.requests,
      failures: this.failures,
      ttftAverageMs: this.ttftAverageMs === undefined ? null : Math.round(this.ttftAverageMs * 10) / 10,
      circuit: this.breaker.snapshot(),
      ...(this.cooling ? { coolingUntil: new Date(this.coolingUntil).toISOString() } : {}),
    };
  }
}
