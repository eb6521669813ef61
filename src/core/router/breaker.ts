// A circuit breaker per deployment: closed → open after N consecutive failures → half-open
// after a cool-off (one trial request) → closed on its success, open again on its failure.

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface BreakerSettings {
  failureThreshold: number;
  coolOffMs: number;
}

export class CircuitBreaker {
  private consecutiveFailures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;

  constructor(
    private readonly settings: BreakerSettings,
    private readonly now: () => number = Date.now,
  ) {}

  state(): CircuitState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.settings.coolOffMs ? 'half-open' : 'open';
  }

  /** May a request go to this deployment now? Half-open lets exactly one trial through. */
  canRequest(): boolean {
    const state = this.state();
    if (state === 'closed') return true;
    if (state === 'open') return false;
    return !this.trialInFlight;
  }

  /** Milliseconds until the circuit lets a trial through (0 when it is not open). */
  msUntilTrial(): number {
    if (this.state() !== 'open' || this.openedAt === undefined) return 0;
    return this.openedAt + this.settings.coolOffMs - this.now();
  }

  /** Called when a request is sent; marks the half-open trial as taken. */
  onRequest(): void {
    if (this.state() === 'half-open') this.trialInFlight = true;
  }

  onSuccess(): void {
    this.consecutiveFailures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  /** An outcome that says nothing about health (client gone, bad request): frees the trial slot. */
  onNeutral(): void {
    this.trialInFlight = false;
  }

  onFailure(): void {
    this.consecutiveFailures++;
    const wasTrial = this.state() === 'half-open';
    this.trialInFlight = false;
    if (wasTrial || (this.settings.failureThreshold > 0 && this.consecutiveFailures >= this.settings.failureThreshold)) {
      this.openedAt = this.now();
    }
  }

  snapshot(): { state: CircuitState; consecutiveFailures: number; openUntil?: string } {
    const state = this.state();
    return {
      state,
      consecutiveFailures: this.consecutiveFailures,
      ...(state === 'open' && this.openedAt !== undefined ? { openUntil: new Date(this.openedAt + this.settings.coolOffMs).toISOString() } : {}),
    };
  }
}
