// Chooses the deployment that serves a request and what happens when it fails: a strategy picks
// among the deployments whose circuit is closed and that have room; retryable failures before
// the first content token are retried (backoff + jitter, Retry-After honoured), possibly on
// another deployment; then the model's fallback chains take over. Settings: ./settings.ts.

import type { ResolvedDeployment, ResolvedModel, ModelRegistry } from '../models.js';
import type { PrimedStream } from '../stream.js';
import { isContentPart, primeStream } from '../stream.js';
import type { StreamPart, Usage } from '../types.js';
import { addChoiceUsage, emptyUsage } from '../types.js';
import { GatewayError, type ErrorKind, toGatewayError } from '../errors.js';
import { backoffDelayMs, sleep } from './backoff.js';
import { Cancellation, type Cancellable } from './cancellation.js';
import { DeploymentState } from './deployment-state.js';
import { DEFAULT_SETTINGS, mergeSettings, parsePartialSettings, type RouteSettings } from './settings.js';
import { pickDeployment } from './strategies.js';
import { timedStream } from './timed-stream.js';

export interface RouteAttempt {
  model: string;
  deployment: ResolvedDeployment;
  error?: GatewayError;
  /** Tokens the upstream spent on an answer that was set aside (a decline rerouted): paid for, never shown. */
  setAsideUsage?: Usage;
}

export interface RouteResult {
  stream: PrimedStream;
  model: ResolvedModel;
  deployment: ResolvedDeployment;
  attempts: RouteAttempt[];
  /** Milliseconds spent so far waiting on upstreams (and in backoff): not the gateway's overhead. */
  upstreamMs(): number;
}

/**
 * One attempt's stream. `buffered`: a buffered upstream call, whose first part comes with the
 * whole answer; the first-token and idle limits are for streamed calls, so only the total
 * timeout bounds it (as TensorZero's non-streaming and LiteLLM's non-stream timeouts do).
 */
export interface AttemptStream extends AsyncIterable<StreamPart> {
  readonly buffered?: boolean;
}

/** Whether primed parts (read up to the first content part) are an answer that declined before writing anything. */
function isEmptyRefusal(head: readonly StreamPart[]): boolean {
  const last = head.at(-1);
  return last?.type === 'finish' && last.finishReason === 'content-filter' && !head.slice(0, -1).some(isContentPart);
}

/** The usage of every choice that finished in the primed parts. */
function headUsage(head: readonly StreamPart[]): Usage {
  let usage = emptyUsage();
  for (const part of head) if (part.type === 'finish') usage = addChoiceUsage(usage, part.usage);
  return usage;
}

/** Declines rerouted by the router, with what the declining upstream charged for them. */
const setAsideUsage = new WeakMap<GatewayError, Usage>();

/** Starts one attempt on a deployment; the router primes it. */
export type AttemptFn = (model: ResolvedModel, deployment: ResolvedDeployment, signal: AbortSignal) => AttemptStream;

export interface RouterOptions {
  /** The client went away: an AbortSignal, or the server's cheaper Cancellable. */
  signal: Cancellable;
  /** Only this provider's deployments of the requested model (Eden `provider/model`). */
  provider?: string;
}

export interface RouterClock {
  now(): number;
  random(): number;
}

/** Failures that say nothing about a deployment's health: they never trip its breaker. */
const CLIENT_SIDE_KINDS = new Set<ErrorKind>(['bad_request', 'context_window', 'content_policy', 'cancelled', 'payload_too_large', 'permission']);

/**
 * A refusal for want of room — a full local queue, an upstream's 429 that says when to come back —
 * says the deployment is alive. Its Retry-After cool-down already steers requests elsewhere;
 * opening its circuit as well would turn every request away for the breaker's cool-off, long after
 * the room came back (and a lone deployment's callers would no longer get the upstream's answer).
 */
function isBusy(error: GatewayError): boolean {
  return error.busy || (error.kind === 'rate_limit' && error.retryAfter !== undefined);
}

/** The attempts a failed route made, for the request log and the error log (keyed by the thrown error). */
const failedRoutes = new WeakMap<object, RouteAttempt[]>();

export function attemptLogOf(error: unknown): RouteAttempt[] | undefined {
  return typeof error === 'object' && error !== null ? failedRoutes.get(error) : undefined;
}

export function attemptsOf(error: unknown): number | undefined {
  return attemptLogOf(error)?.length;
}

interface Timing {
  waitMs: number;
}

export class Router {
  private readonly states = new Map<ResolvedDeployment, DeploymentState>();
  private readonly settingsById = new Map<string, RouteSettings>();

  constructor(
    private readonly registry: Pick<ModelRegistry, 'models' | 'resolve'>,
    routerConfig?: unknown,
    private readonly clock: RouterClock = { now: Date.now, random: Math.random },
  ) {
    const defaults = mergeSettings(DEFAULT_SETTINGS, parsePartialSettings(routerConfig, 'router'));
    for (const model of registry.models) {
      const settings = mergeSettings(defaults, parsePartialSettings(model.routing, `models[${model.id}].routing`));
      for (const id of [...settings.fallbacks, ...settings.contextWindowFallbacks, ...settings.contentPolicyFallbacks]) {
        try {
          registry.resolve(id);
        } catch {
          throw new Error(`Invalid config in models[${model.id}].routing: fallback model '${id}' does not exist`);
        }
      }
      this.settingsById.set(model.id, settings);
      for (const d of model.deployments) this.states.set(d, new DeploymentState(d, settings.breaker, clock.now));
    }
  }

  settings(model: ResolvedModel): RouteSettings {
    return this.settingsById.get(model.id) ?? DEFAULT_SETTINGS;
  }

  /** Whole seconds until the first of `states` may take a request again (Retry-After; ≥ 1). */
  private secondsUntilAvailable(states: DeploymentState[]): number {
    const now = this.clock.now();
    const waits = states.map((s) => Math.max(s.breaker.msUntilTrial(), s.coolingUntil - now, s.saturated ? 1000 : 0));
    return Math.max(1, Math.ceil(Math.min(...waits) / 1000));
  }

  /** Every model a request for `model` may be answered by: itself and its fallback models. */
  reachableModels(model: ResolvedModel): ResolvedModel[] {
    const settings = this.settings(model);
    const fallbacks = [...settings.fallbacks, ...settings.contextWindowFallbacks, ...settings.contentPolicyFallbacks];
    return [model, ...fallbacks.map((id) => this.registry.resolve(id))];
  }

  /** Every deployment a request for `model` may reach: its own and those of its fallback models. */
  reachableDeployments(model: ResolvedModel): ResolvedDeployment[] {
    return this.reachableModels(model).flatMap((m) => m.deployments);
  }

  async route(model: ResolvedModel, attempt: AttemptFn, options: RouterOptions): Promise<RouteResult> {
    const settings = this.settings(model);
    const timing: Timing = { waitMs: 0 };
    const attempts: RouteAttempt[] = [];
    // One cancellation for the whole request: the client going away, or the total timeout.
    const request = new Cancellation();
    // The client gone (no reason), or the server ending the request (its GatewayError: shutdown).
    const onClientGone = () =>
      request.abort(options.signal.reason instanceof GatewayError ? options.signal.reason : new GatewayError('cancelled', 'The request was cancelled'));
    if (options.signal.aborted) onClientGone();
    options.signal.addEventListener('abort', onClientGone, { once: true });
    const { totalMs } = settings.timeouts;
    const totalTimer =
      totalMs > 0
        ? setTimeout(() => request.abort(new GatewayError('timeout', `The request took longer than ${totalMs} ms`, { code: 'total_timeout' })), totalMs).unref()
        : undefined;
    const release = () => {
      clearTimeout(totalTimer);
      options.signal.removeEventListener('abort', onClientGone);
    };

    const chains = {
      fallbacks: [...settings.fallbacks],
      context: [...settings.contextWindowFallbacks],
      content: [...settings.contentPolicyFallbacks],
    };
    const visited = new Set<string>([model.id]);
    let current = model;
    let provider = options.provider;
    try {
      for (;;) {
        try {
          const served = await this.routeModel(current, provider, attempt, request, attempts, timing, release);
          return { ...served, attempts, upstreamMs: () => timing.waitMs };
        } catch (err) {
          const error = toGatewayError(err);
          if (request.aborted) throw request.reason instanceof GatewayError ? request.reason : error;
          const chain =
            error.kind === 'context_window' ? chains.context : error.kind === 'content_policy' ? chains.content : this.fallsBack(error, settings) ? chains.fallbacks : [];
          let next: string | undefined;
          while ((next = chain.shift()) !== undefined && visited.has(this.registry.resolve(next).id));
          if (next === undefined) throw error;
          current = this.registry.resolve(next);
          visited.add(current.id);
          provider = undefined;
        }
      }
    } catch (err) {
      release();
      if (typeof err === 'object' && err !== null) failedRoutes.set(err, attempts);
      throw err;
    }
  }

  /** Errors that the next model in the chain might not have. */
  private fallsBack(error: GatewayError, settings: RouteSettings): boolean {
    if (error.kind === 'bad_request' || error.kind === 'cancelled') return false;
    return settings.retryOn.includes(error.kind) || error.retryable || error.status >= 500;
  }

  private async routeModel(
    model: ResolvedModel,
    provider: string | undefined,
    attempt: AttemptFn,
    signal: Cancellable,
    attempts: RouteAttempt[],
    timing: Timing,
    release: () => void,
  ): Promise<Omit<RouteResult, 'attempts' | 'upstreamMs'>> {
    const settings = this.settings(model);
    const deployments = model.deployments.filter((d) => provider === undefined || d.provider === provider);
    const states = deployments.map((d) => this.state(d, settings));
    const tried = new Set<DeploymentState>();
    let lastError: GatewayError | undefined;
    // Deployments whose own setup failed this request (its key, its upstream model): never again.
    const misconfigured = new Set<DeploymentState>();
    for (let retry = 0; ; retry++) {
      const usable = misconfigured.size ? states.filter((s) => !misconfigured.has(s)) : states;
      // A request cancelled before this attempt (its client left while a caller prepared it, or
      // during a backoff) starts nothing: an abort listener added now would never run.
      if (signal.aborted) throw signal.reason;
      // Picked at once in the common case: no promise for a request that need not wait. When every
      // usable deployment is cooling down, a retry waits for the first to come back; a first
      // attempt goes to one anyway, so one answer's Retry-After never blocks a model at the gateway
      // (a lone deployment's callers then get the upstream's own answer).
      const state =
        this.pick(usable, tried, settings) ??
        (retry === 0 ? this.pick(usable, tried, settings, true) : await this.waitForDeployment(usable, tried, settings, signal, timing, lastError!));
      if (!state) {
        throw (
          lastError ??
          new GatewayError('unavailable', `No deployment of '${model.id}' can take a request now (circuit open or at capacity)`, {
            code: 'no_deployment_available',
            retryAfter: this.secondsUntilAvailable(usable),
          })
        );
      }
      tried.add(state);
      try {
        const served = await this.tryDeployment(model, state, attempt, signal, settings, timing, release);
        attempts.push({ model: model.id, deployment: state.deployment });
        return served;
      } catch (err) {
        const error = toGatewayError(err);
        const spent = setAsideUsage.get(error);
        attempts.push({ model: model.id, deployment: state.deployment, error, ...(spent && { setAsideUsage: spent }) });
        lastError = error;
        if (signal.aborted || retry >= settings.retries) throw error;
        if (!settings.retryOn.includes(error.kind)) {
          // A failure of this deployment's own setup (its key, its upstream model name) may not
          // hit another one: move on to an untried deployment at once, never back to this one.
          const untried = states.some((s) => !tried.has(s) && s.breaker.canRequest());
          if (error.retryable && error.kind !== 'bad_request' && untried) {
            misconfigured.add(state);
            continue;
          }
          throw error;
        }
        const coolWaitMs = this.coolWaitMs(states);
        if (coolWaitMs > settings.backoff.maxRetryAfterMs) throw error;
        const delayMs = Math.max(coolWaitMs, backoffDelayMs(retry, settings.backoff.baseMs, settings.backoff.maxMs, this.clock.random));
        const t0 = performance.now();
        await sleep(delayMs, signal);
        timing.waitMs += performance.now() - t0;
      }
    }
  }

  /**
   * A retry's deployment when none is ready: when every usable deployment is cooling down after
   * its Retry-After, waits for the first to come back, as long as that is within
   * `maxRetryAfterMs` (else the request gives up with its last error). Undefined when none is
   * usable at all (circuits open, full).
   */
  private async waitForDeployment(
    states: DeploymentState[],
    tried: Set<DeploymentState>,
    settings: RouteSettings,
    signal: Cancellable,
    timing: Timing,
    lastError: GatewayError,
  ): Promise<DeploymentState | undefined> {
    for (;;) {
      const coolWaitMs = this.coolWaitMs(states);
      if (coolWaitMs > settings.backoff.maxRetryAfterMs) throw lastError;
      if (coolWaitMs > 0) {
        const t0 = performance.now();
        await sleep(coolWaitMs, signal);
        timing.waitMs += performance.now() - t0;
      }
      // No wait left: a cool-down that ended between the caller's pick and now, or none usable.
      const state = this.pick(states, tried, settings);
      if (state || coolWaitMs <= 0) return state;
    }
  }

  /** Milliseconds until some usable deployment stops cooling down (0 if one is ready now). */
  private coolWaitMs(states: DeploymentState[]): number {
    const usable = states.filter((s) => s.breaker.canRequest() && !s.saturated);
    if (usable.length === 0 || usable.some((s) => !s.cooling)) return 0;
    return Math.min(...usable.map((s) => s.coolingUntil - this.clock.now()));
  }

  /** `cooling`: a deployment cooling down after its Retry-After may be picked (when none other is ready). */
  private pick(states: DeploymentState[], tried: Set<DeploymentState>, settings: RouteSettings, cooling = false): DeploymentState | undefined {
    let candidates = states.filter((s) => s.breaker.canRequest() && !s.saturated);
    if (candidates.length === 0) return undefined;
    // One that asked to be left alone (Retry-After) only when none other is ready; then one this
    // request has not failed on.
    const ready = candidates.filter((s) => !s.cooling);
    if (ready.length > 0) candidates = ready;
    else if (!cooling) return undefined;
    const untried = candidates.filter((s) => !tried.has(s));
    if (untried.length) candidates = untried;
    return pickDeployment(
      settings.strategy,
      candidates.map((s) => ({ state: s, weight: s.deployment.weight, inFlight: s.inFlight, ttftAverageMs: s.ttftAverageMs })),
      this.clock.random,
    ).state;
  }

  private state(deployment: ResolvedDeployment, settings: RouteSettings): DeploymentState {
    let state = this.states.get(deployment);
    if (!state) {
      state = new DeploymentState(deployment, settings.breaker, this.clock.now);
      this.states.set(deployment, state);
    }
    return state;
  }

  /** One attempt: primed (first content part read) or rejected; the stream is tracked to its end. */
  private async tryDeployment(
    model: ResolvedModel,
    state: DeploymentState,
    attempt: AttemptFn,
    requestSignal: Cancellable,
    settings: RouteSettings,
    timing: Timing,
    release: () => void,
  ): Promise<Omit<RouteResult, 'attempts' | 'upstreamMs'>> {
    const controller = new AbortController();
    const forward = () => controller.abort(requestSignal.reason);
    requestSignal.addEventListener('abort', forward, { once: true });
    state.inFlight++;
    state.requests++;
    state.breaker.onRequest();
    let ended = false;
    const end = (error?: GatewayError) => {
      if (ended) return;
      ended = true;
      state.inFlight--;
      requestSignal.removeEventListener('abort', forward);
      if (error && !CLIENT_SIDE_KINDS.has(error.kind) && !isBusy(error)) {
        state.failures++;
        state.breaker.onFailure();
      } else if (error) {
        state.breaker.onNeutral();
      }
    };
    const started = performance.now();
    let primed: PrimedStream;
    try {
      const attemptStream = attempt(model, state.deployment, controller.signal);
      const streamed = attemptStream.buffered !== true;
      const source = timedStream(attemptStream, {
        ttftMs: streamed ? settings.timeouts.ttftMs : 0,
        idleMs: streamed ? settings.timeouts.idleMs : 0,
        signal: controller.signal,
        onTimeout: (error) => controller.abort(error),
        onWait: (ms) => (timing.waitMs += ms),
      });
      primed = await primeStream(source);
      // A refusal that is the whole answer (no content: a classifier's decline) is the same
      // content-policy failure as a refusal sent as an error, when the model names models for one.
      if (settings.contentPolicyFallbacks.length && isEmptyRefusal(primed.head)) {
        const declined = new GatewayError('content_policy', `The model '${model.id}' declined the request`, { code: 'refusal' });
        setAsideUsage.set(declined, headUsage(primed.head));
        await primed[Symbol.asyncIterator]().return?.();
        throw declined;
      }
    } catch (err) {
      const error = toGatewayError(err);
      if (error.retryAfter !== undefined) state.coolFor(error.retryAfter);
      end(error);
      throw error;
    }
    state.recordTtft(performance.now() - started);
    state.breaker.onSuccess();
    let streamError: GatewayError | undefined;
    return {
      model,
      deployment: state.deployment,
      stream: primed.observe({
        part(part) {
          if (part.type === 'error') streamError = toGatewayError(part.error);
        },
        end() {
          end(streamError);
          release();
        },
      }),
    };
  }

  /** Router state for GET /v1/router/status. */
  status(): Record<string, unknown> {
    return {
      models: this.registry.models.map((model) => {
        const settings = this.settings(model);
        return {
          id: model.id,
          strategy: settings.strategy,
          retries: settings.retries,
          fallbacks: settings.fallbacks,
          contextWindowFallbacks: settings.contextWindowFallbacks,
          contentPolicyFallbacks: settings.contentPolicyFallbacks,
          deployments: model.deployments.map((d) => this.state(d, settings).snapshot()),
        };
      }),
    };
  }
}
