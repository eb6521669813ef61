// Admission control in front of every chat call: allowed models, rate limits (requests and
// tokens per minute, concurrency) and money budgets, per key and per organisation. The gateway
// admits before routing and settles when the call ends; both are synchronous around the
// check-and-reserve step, so concurrent calls never see the same headroom twice.

import type { ChatRequest } from '../types.js';
import { GatewayError } from '../errors.js';
import type { ChatSummary, RequestContext } from '../gateway.js';
import { costOf, type ResolvedModel } from '../models.js';
import { estimateTokens } from '../truncate.js';
import type { ApiKeyRecord } from '../../store/store.js';
import type { TenancyStore } from '../../store/tenancy.js';
import { BudgetLedger, type BudgetAccount } from './budget-ledger.js';
import { RateWindow, type TokenHandle } from './rate-window.js';
import { redactedJson } from './redact.js';
import { hasLimits, limitSpecSchema, type BudgetPeriod, type LimitSpec, type LimitsConfig } from './spec.js';

/** What the gateway needs from admission control. */
export interface ChatAdmission {
  /** Throws a GatewayError (403, 429) when the call may not run; otherwise reserves its share. */
  admit(request: ChatRequest, model: ResolvedModel, context: RequestContext): Promise<void>;
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
  windows: Array<{ window: RateWindow; handle: TokenHandle }>;
  budgets: Array<{ account: BudgetAccount; reservation: number }>;
  loggedBody?: string;
}

export interface AdmissionOptions {
  config: LimitsConfig;
  tenancy: TenancyStore;
  /** Prompt tokens before the call: the provider's tokenizer where it has one. */
  countTokens: (request: ChatRequest) => Promise<number>;
  /** Told when a call is admitted, with the gateway's own time spent so far (metrics). */
  onAdmitted?: (context: RequestContext, overheadMs: number) => void;
}

const PERIODS: BudgetPeriod[] = ['day', 'month'];

function modelAllowed(key: ApiKeyRecord, requested: string, model: ResolvedModel): boolean {
  const allowed = key.allowedModels;
  if (!allowed?.length) return true;
  return allowed.includes(requested) || allowed.includes(model.id) || model.aliases.some((a) => allowed.includes(a));
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
  private readonly windows = new Map<string, RateWindow>();
  private readonly ledger: BudgetLedger;
  private readonly tickets = new WeakMap<RequestContext, Ticket>();
  /** Chat calls admitted and not yet settled. */
  inFlight = 0;

  constructor(private readonly options: AdmissionOptions) {
    this.ledger = new BudgetLedger((scope, since) =>
      options.tenancy.spentSince(scope.startsWith('key:') ? { keyId: scope.slice(4) } : { organisation: scope.slice(4) }, since),
    );
  }

  private window(scope: string): RateWindow {
    let window = this.windows.get(scope);
    if (!window) this.windows.set(scope, (window = new RateWindow()));
    return window;
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

  async admit(request: ChatRequest, model: ResolvedModel, context: RequestContext): Promise<void> {
    const key = context.keyId ? await this.options.tenancy.keyById(context.keyId) : undefined;
    if (key && !modelAllowed(key, request.model, model)) {
      throw new GatewayError('permission', `This API key may not use the model '${request.model}'`, { param: 'model', code: 'model_not_allowed' });
    }
    const { scopes, logBodies } = await this.scopesOf(context, key);

    const needsTokens = scopes.some((s) => s.spec.tpm !== undefined || s.spec.budget !== undefined);
    const promptTokens = needsTokens ? await this.options.countTokens(request).catch(() => estimateTokens(request)) : 0;
    const maxOutput = (request.maxTokens ?? Math.min(this.options.config.defaultMaxTokens, model.contextLength)) * (request.n ?? 1);
    const reservation = costOf(model.pricing, { inputTokens: promptTokens, outputTokens: maxOutput });
    const accounts: Array<{ scope: Scope; period: BudgetPeriod; amount: number; account: BudgetAccount }> = [];
    for (const scope of scopes) {
      for (const period of PERIODS) {
        const amount = scope.spec.budget?.[period];
        if (amount !== undefined) accounts.push({ scope, period, amount, account: await this.ledger.account(scope.id, period, Date.now()) });
      }
    }

    // From here to the reservations nothing awaits: check and reserve are one step.
    const now = Date.now();
    for (const scope of scopes) this.check(scope, now, promptTokens);
    for (const { scope, period, amount, account } of accounts) {
      if (account.wouldExceed(amount, reservation)) {
        throw new GatewayError(
          'budget_exceeded',
          `The ${period === 'day' ? 'daily' : 'monthly'} budget of ${money(amount)} for ${scope.label} is used up (spent ${money(account.spent)}, ${money(account.reserved)} reserved by running requests, this request reserves ${money(reservation)})`,
          { code: 'budget_exceeded', retryAfter: Math.ceil((account.periodEnd - now) / 1000), retryable: false },
        );
      }
    }
    const ticket: Ticket = {
      windows: scopes.map((s) => {
        const window = this.window(s.id);
        return { window, handle: window.admit(now, promptTokens) };
      }),
      budgets: accounts.map(({ account }) => {
        account.reserve(reservation);
        return { account, reservation };
      }),
      loggedBody: logBodies ? redactedJson({ request }) : undefined,
    };
    this.tickets.set(context, ticket);
    this.inFlight++;
    this.options.onAdmitted?.(context, performance.now() - context.startedAt);
  }

  private check(scope: Scope, now: number, promptTokens: number): void {
    const { spec, label } = scope;
    const window = this.window(scope.id);
    if (spec.rpm !== undefined && window.requestCount(now) >= spec.rpm) {
      const retryAfter = window.requestRetryAfter(now);
      throw new GatewayError('rate_limit', `Rate limit reached for ${label}: ${spec.rpm} requests per minute. Try again in ${retryAfter}s.`, {
        code: 'requests_per_minute_exceeded',
        retryAfter,
        retryable: false,
      });
    }
    if (spec.tpm !== undefined && window.tokenCount(now) + promptTokens > spec.tpm) {
      const retryAfter = window.tokenRetryAfter(now, promptTokens, spec.tpm);
      throw new GatewayError('rate_limit', `Rate limit reached for ${label}: ${spec.tpm} tokens per minute (used ${window.tokenCount(now)}, this request needs ${promptTokens}). Try again in ${retryAfter}s.`, {
        code: 'tokens_per_minute_exceeded',
        retryAfter,
        retryable: false,
      });
    }
    if (spec.concurrent !== undefined && window.inFlight >= spec.concurrent) {
      throw new GatewayError('rate_limit', `Too many concurrent requests for ${label}: at most ${spec.concurrent} at once.`, {
        code: 'concurrent_requests_exceeded',
        retryAfter: 1,
        retryable: false,
      });
    }
  }

  settle(context: RequestContext, summary: ChatSummary): { loggedBody?: string } | undefined {
    const ticket = this.tickets.get(context);
    if (!ticket) return undefined;
    this.tickets.delete(context);
    this.inFlight = Math.max(0, this.inFlight - 1);
    for (const { window, handle } of ticket.windows) window.release(handle, summary.usage.totalTokens);
    for (const { account, reservation } of ticket.budgets) account.settle(reservation, summary.cost);
    return { loggedBody: ticket.loggedBody };
  }
}
