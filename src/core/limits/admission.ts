// Admission control in front of every chat call: allowed models, rate limits (requests and
// tokens per minute, concurrency) and money budgets, per key and per organisation. The gateway
// admits before routing and settles when the call ends; both are synchronous around the
// check-and-reserve step, so concurrent calls never see the same headroom twice.

import { keyActive } from '../keys.js';
import type { ChatRequest } from '../types.js';
import { GatewayError } from '../errors.js';
import type { ChatSummary, RequestContext } from '../gateway.js';
import { costOf, type ResolvedModel } from '../models.js';
import { estimateTokens } from '../truncate.js';
import type { ApiKeyRecord } from '../../store/store.js';
import type { TenancyStore } from '../../store/tenancy.js';
import type { BudgetKeeper, BudgetLine, BudgetTicket, Coordination, RateLimiter, RateLimitScope, RateRejection, RateTicket, RateWindowState } from '../../store/coordination.js';
import { LocalBudgetKeeper, periodBounds } from './budget-ledger.js';
import { LocalRateLimiter } from './local-rate-limiter.js';
import { redactedJson } from './redact.js';
import { hasLimits, limitSpecSchema, type BudgetPeriod, type LimitSpec, type LimitsConfig } from './spec.js';

/** One limit's state after a request was counted in it. */
export interface LimitHeadroom {
  limit: number;
  remaining: number;
  /** Milliseconds until one more fits (the oldest entry leaves the 60-second window). */
  resetMs: number;
}

/** What the tightest request and token limits leave once a call is admitted (rate-limit response headers). */
export interface RateHeadroom {
  requests?: LimitHeadroom;
  tokens?: LimitHeadroom;
}

/** What the gateway needs from admission control. */
export interface ChatAdmission {
  /**
   * Throws the 403 of `admit` when the caller's key may not use the model (the 401 when it was
   * revoked or has expired since); reserves nothing. Only `keyId` is read: an async run's submit
   * and start check with it before any call is made.
   */
  checkModel(request: ChatRequest, model: ResolvedModel, context: Pick<RequestContext, 'keyId'>): Promise<void>;
  /**
   * Throws a 401 when the key was revoked or has expired (or no longer exists) since the request
   * was authenticated: work queued with a key (an async run) starts only while the key is valid.
   */
  checkKey(context: Pick<RequestContext, 'keyId'>): Promise<void>;
  /**
   * Throws a GatewayError (403, 429) when the call may not run; otherwise reserves its share and
   * says what the caller's rate limits have left, when it has any.
   */
  admit(request: ChatRequest, model: ResolvedModel, context: RequestContext): Promise<RateHeadroom | undefined>;
  /** Releases what `admit` reserved, with the real usage and cost. Idempotent. */
  settle(context: RequestContext, summary: ChatSummary): { loggedBody?: string } | undefined;
}

interface Scope {
  /** `key:<id>` or `org:<name>`. */
  id: string;
  /** How the scope is named in error messages. */
  label: string;
  spec: LimitSpec;
}

interface Ticket {
  rate?: RateTicket;
  budget?: BudgetTicket;
  loggedBody?: string;
}

export interface AdmissionOptions {
  config: LimitsConfig;
  tenancy: TenancyStore;
  /**
   * Prompt tokens before the call: the provider's tokenizer where it has one. With `limit`, a
   * count above it may be a lower bound (see Provider.countPromptTokens).
   */
  countTokens: (request: ChatRequest, limit?: number) => Promise<number>;
  /** Shared windows and budgets when processes share the store (Redis); default: this process's memory. */
  coordination?: Coordination;
  /** Told when a call is admitted, with the gateway's own time spent so far (metrics). */
  onAdmitted?: (context: RequestContext, overheadMs: number) => void;
  /** The models a call for `model` may be answered by (its fallbacks too); default: itself. */
  reachableModels?: (model: ResolvedModel) => ResolvedModel[];
}

const PERIODS: BudgetPeriod[] = ['day', 'month'];

/** Whether a key may use `model` when a request names it as `requested` (its id or an alias). */
export function modelAllowed(key: ApiKeyRecord, requested: string, model: ResolvedModel): boolean {
  const allowed = key.allowedModels;
  if (!allowed?.length) return true;
  return allowed.includes(requested) || allowed.includes(model.id) || model.aliases.some((a) => allowed.includes(a));
}

/**
 * Admission reloads the key (keyById) for each call: a key revoked or expired after the request
 * was authenticated (an async run queued before, a request in flight) is refused, never served
 * nor charged to it.
 */
function refuseUnlessActive(key: ApiKeyRecord | undefined): asserts key is ApiKeyRecord {
  if (!key || !keyActive(key)) {
    const what = !key ? 'no longer exists' : key.revokedAt ? 'has been revoked' : 'has expired';
    throw new GatewayError('auth', `This API key ${what}: the request was not run`, { code: 'api_key_revoked_or_expired' });
  }
}

function refuseUnlessAllowed(key: ApiKeyRecord, requested: string, model: ResolvedModel): void {
  if (!modelAllowed(key, requested, model)) {
    throw new GatewayError('permission', `This API key may not use the model '${requested}'`, { param: 'model', code: 'model_not_allowed' });
  }
}

/** Per dimension, the scope with the least left (a key's limits and its organisation's both apply). */
function tightest(scopes: Scope[], windows: RateWindowState[]): RateHeadroom | undefined {
  const headroom: RateHeadroom = {};
  const keep = (dimension: keyof RateHeadroom, next: LimitHeadroom) => {
    const current = headroom[dimension];
    if (!current || next.remaining < current.remaining) headroom[dimension] = next;
  };
  for (const [i, scope] of scopes.entries()) {
    const window = windows[i];
    if (!window) continue;
    const { rpm, tpm } = scope.spec;
    if (rpm !== undefined) keep('requests', { limit: rpm, remaining: Math.max(0, rpm - window.requests), resetMs: window.requestsResetMs });
    if (tpm !== undefined) keep('tokens', { limit: tpm, remaining: Math.max(0, tpm - window.tokens), resetMs: window.tokensResetMs });
  }
  return headroom.requests || headroom.tokens ? headroom : undefined;
}

function parseSpec(raw: unknown): LimitSpec | undefined {
  if (raw === undefined || raw === null) return undefined;
  const parsed = limitSpecSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

function money(usd: number): string {
  return `$${usd.toFixed(6).replace(/0+$/, '').replace(/\.$/, '')}`;
}

export class Admission implements ChatAdmission {
  private readonly rateLimiter: RateLimiter;
  private readonly budgets: BudgetKeeper;
  private readonly tickets = new WeakMap<RequestContext, Ticket>();
  /** Chat calls admitted and not yet settled. */
  inFlight = 0;

  constructor(private readonly options: AdmissionOptions) {
    const loadSpent = (scope: string, since: number) =>
      options.tenancy.spentSince(scope.startsWith('key:') ? { keyId: scope.slice(4) } : { organisation: scope.slice(4) }, since);
    this.rateLimiter = options.coordination ?? new LocalRateLimiter();
    this.budgets = options.coordination?.budgets(loadSpent) ?? new LocalBudgetKeeper(loadSpent);
  }

  private async scopesOf(context: RequestContext, key: ApiKeyRecord | undefined): Promise<{ scopes: Scope[]; logBodies: boolean }> {
    const { config, tenancy } = this.options;
    const scopes: Scope[] = [];
    if (key) {
      const spec = parseSpec(key.limits) ?? config.keys;
      if (hasLimits(spec)) scopes.push({ id: `key:${key.id}`, label: `key ${key.id}`, spec });
    }
    const settings = await tenancy.organisationSettings(context.organisation);
    const { logBodies: configuredLogBodies, ...configured } = config.organisations[context.organisation] ?? {};
    const orgSpec = parseSpec(settings?.limits) ?? parseSpec(configured);
    if (hasLimits(orgSpec)) scopes.push({ id: `org:${context.organisation}`, label: `organisation ${context.organisation}`, spec: orgSpec });
    return { scopes, logBodies: settings?.logBodies ?? configuredLogBodies ?? false };
  }

  /** The caller's key as it is now; throws when it no longer authenticates. Undefined without a key (admin, open mode). */
  private async activeKey(context: Pick<RequestContext, 'keyId'>): Promise<ApiKeyRecord | undefined> {
    if (!context.keyId) return undefined;
    const key = await this.options.tenancy.keyById(context.keyId);
    refuseUnlessActive(key);
    return key;
  }

  async checkKey(context: Pick<RequestContext, 'keyId'>): Promise<void> {
    await this.activeKey(context);
  }

  async checkModel(request: ChatRequest, model: ResolvedModel, context: Pick<RequestContext, 'keyId'>): Promise<void> {
    const key = await this.activeKey(context);
    if (key) refuseUnlessAllowed(key, request.model, model);
  }

  async admit(request: ChatRequest, model: ResolvedModel, context: RequestContext): Promise<RateHeadroom | undefined> {
    const key = await this.activeKey(context);
    if (key) refuseUnlessAllowed(key, request.model, model);
    const { scopes, logBodies } = await this.scopesOf(context, key);

    const needsTokens = scopes.some((s) => s.spec.tpm !== undefined || s.spec.budget !== undefined);
    // A prompt past the model's context is refused after admission anyway: past it, a lower bound
    // saves tokenizing the whole of it (a local tokenizer holds the event loop).
    const promptTokens = needsTokens ? await this.options.countTokens(request, model.contextLength).catch(() => estimateTokens(request)) : 0;
    // The canonical maxTokens is the answer's: a thinking budget is output on top of it.
    const thinking = request.reasoning?.enabled ? (request.reasoning.budgetTokens ?? 0) : 0;
    // No answer outlasts the model's context: a max_tokens far past it reserves what could be spent.
    const perChoice = request.maxTokens === undefined ? this.options.config.defaultMaxTokens : request.maxTokens + thinking;
    // Priced at the dearest model that may answer: a fallback to a costlier one must not overspend.
    const reachable = this.options.reachableModels?.(model) ?? [model];
    const reservation = Math.max(
      ...reachable.map((m) => costOf(m.pricing, { inputTokens: promptTokens, outputTokens: Math.min(perChoice, m.contextLength) * (request.n ?? 1) })),
    );
    const budgetScopes: Scope[] = [];
    const lines: BudgetLine[] = [];
    for (const scope of scopes) {
      for (const period of PERIODS) {
        const amount = scope.spec.budget?.[period];
        if (amount !== undefined) {
          budgetScopes.push(scope);
          lines.push({ scope: scope.id, period, amount });
        }
      }
    }

    // Rate windows first, then budgets; each keeper checks and counts in one atomic step, and a
    // call refused by its budget is taken back out of the rate windows.
    // A continuation (a tool loop's next round) is not another request against rpm.
    const rpmOf = (s: Scope) => (context.continuation ? undefined : s.spec.rpm);
    const rateScopes = scopes.filter((s) => rpmOf(s) !== undefined || s.spec.tpm !== undefined || s.spec.concurrent !== undefined);
    let rate: RateTicket | undefined;
    let headroom: RateHeadroom | undefined;
    if (rateScopes.length > 0) {
      const admitted = await this.rateLimiter.admit(rateScopes.map((s) => ({ ...rateScopeOf(s), rpm: rpmOf(s) })), promptTokens);
      if ('rejected' in admitted) throw rateLimitError(rateScopes[admitted.rejected.scope]!, admitted.rejected, promptTokens);
      rate = admitted.ticket;
      headroom = tightest(rateScopes, admitted.windows);
    }
    let budget: BudgetTicket | undefined;
    if (lines.length > 0) {
      const reserved = await this.budgets.reserve(lines, reservation).catch((err: unknown) => {
        if (rate) this.rateLimiter.withdraw(rate);
        throw err;
      });
      if ('refused' in reserved) {
        if (rate) this.rateLimiter.withdraw(rate);
        const { line, spent, reserved: held } = reserved.refused;
        const { period, amount } = lines[line]!;
        const now = Date.now();
        throw new GatewayError(
          'budget_exceeded',
          `The ${period === 'day' ? 'daily' : 'monthly'} budget of ${money(amount)} for ${budgetScopes[line]!.label} is used up (spent ${money(spent)}, ${money(held)} reserved by running requests, this request reserves ${money(reservation)})`,
          { code: 'budget_exceeded', retryAfter: Math.ceil((periodBounds(period, now).end - now) / 1000), retryable: false },
        );
      }
      budget = reserved.ticket;
    }
    const ticket: Ticket = { rate, budget, loggedBody: logBodies ? redactedJson({ request }) : undefined };
    this.tickets.set(context, ticket);
    this.inFlight++;
    this.options.onAdmitted?.(context, performance.now() - context.startedAt);
    return headroom;
  }

  settle(context: RequestContext, summary: ChatSummary): { loggedBody?: string } | undefined {
    const ticket = this.tickets.get(context);
    if (!ticket) return undefined;
    this.tickets.delete(context);
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (ticket.rate) this.rateLimiter.release(ticket.rate, summary.usage.totalTokens);
    if (ticket.budget) this.budgets.settle(ticket.budget, summary.cost);
    return { loggedBody: ticket.loggedBody };
  }
}

function rateScopeOf(scope: Scope): RateLimitScope {
  return { id: scope.id, rpm: scope.spec.rpm, tpm: scope.spec.tpm, concurrent: scope.spec.concurrent };
}

function rateLimitError(scope: Scope, rejected: RateRejection, promptTokens: number): GatewayError {
  const { spec, label } = scope;
  const { retryAfter } = rejected;
  if (rejected.limit === 'rpm') {
    return new GatewayError('rate_limit', `Rate limit reached for ${label}: ${spec.rpm} requests per minute. Try again in ${retryAfter}s.`, {
      code: 'requests_per_minute_exceeded',
      retryAfter,
      retryable: false,
      rateLimit: { requests: { limit: spec.rpm!, remaining: 0, resetMs: retryAfter * 1000 } },
    });
  }
  if (rejected.limit === 'tpm') {
    return new GatewayError(
      'rate_limit',
      `Rate limit reached for ${label}: ${spec.tpm} tokens per minute (used ${rejected.usedTokens}, this request needs ${promptTokens}). Try again in ${retryAfter}s.`,
      {
        code: 'tokens_per_minute_exceeded',
        retryAfter,
        retryable: false,
        rateLimit: { tokens: { limit: spec.tpm!, remaining: Math.max(0, spec.tpm! - rejected.usedTokens), resetMs: retryAfter * 1000 } },
      },
    );
  }
  return new GatewayError('rate_limit', `Too many concurrent requests for ${label}: at most ${spec.concurrent} at once.`, {
    code: 'concurrent_requests_exceeded',
    retryAfter,
    retryable: false,
  });
}
