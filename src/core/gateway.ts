// The core every dialect calls: resolve the model, check what it can do, route to a provider,
// and account for the result. Dialects get back a primed stream of canonical parts.

import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { GatewayError, UNREADABLE_EVENT, badRequest, toGatewayError } from './errors.js';
import type { ResolvedDeployment, ResolvedModel } from './models.js';
import { ModelRegistry, costOf } from './models.js';
import type { Capabilities, Provider, ProviderEnvironment, ProviderFactory } from './provider.js';
import { Router, attemptLogOf, type AttemptStream, type RouteAttempt } from './router/router.js';
import type { Cancellable } from './router/cancellation.js';
import type { PrimedStream } from './stream.js';
import { mergeChoices, primeAll } from './stream.js';
import { enforceStructuredOutput, compileSchema } from './structured-output.js';
import { documentsAsText } from './documents.js';
import type { ChatRequest, ContentPart, StreamPart, Usage } from './types.js';
import { addChoiceUsage, addUsage, emptyUsage } from './types.js';
import { estimateTextTokens, estimateTokens } from './truncate.js';
import type { Store } from '../store/store.js';
import type { ChatAdmission, RateHeadroom } from './limits/admission.js';

export interface RequestContext {
  requestId: string;
  organisation: string;
  keyId?: string;
  dialect: string;
  route: string;
  correlationId?: string;
  stream: boolean;
  /** Fires when the client goes away (tools, MCP and providers outside the router take it). */
  signal: AbortSignal;
  /**
   * The same event without an AbortSignal, where the server has one: the router listens here, so a
   * request whose signal nobody reads never builds one (see src/core/router/cancellation.ts).
   */
  cancellation?: Cancellable;
  /** performance.now() when the request arrived, for latency and overhead. */
  startedAt: number;
  /**
   * A later model call of a request already admitted (a tool loop's next round): its tokens and
   * cost count, but it is not another request against requests-per-minute.
   */
  continuation?: boolean;
}

/**
 * The same request under a derived id (a tool round's `-r2`, a fallback's `-f1`), logged as a
 * call of its own. `signal` is copied by name: on the server's context it is a getter, which a
 * spread leaves out.
 */
export function withRequestId(context: RequestContext, requestId: string): RequestContext {
  return { ...context, signal: context.signal, requestId };
}

export interface ChatResult {
  stream: PrimedStream;
  model: ResolvedModel;
  deployment: ResolvedDeployment;
  provider: string;
  attempts: number;
  /** Milliseconds from request arrival to the first content part. */
  ttftMs: number;
  /** Milliseconds spent so far waiting on upstreams (and retry backoff); the rest is overhead. */
  upstreamMs(): number;
  /** Every attempt made, with its error when it failed (retries, fallbacks). */
  attemptLog: RouteAttempt[];
  /** What the caller's rate limits have left after this call was counted (absent without limits). */
  limits?: RateHeadroom;
  /** Resolves when the stream has been consumed, with its usage and cost. */
  done: Promise<ChatSummary>;
}

export interface ChatSummary {
  usage: Usage;
  cost: number;
  status: number;
  errorKind?: string;
  latencyMs: number;
}

/** A prompt's token count, and where it came from: the upstream, the provider's tokenizer, or ≈4 characters a token. */
export interface TokenCount {
  tokens: number;
  source: 'upstream' | 'tokenizer' | 'estimate';
}

/** Per-call routing choices a dialect can make (Eden `provider/model`). */
export interface ChatRouting {
  /** Serve the model only through deployments of this provider. */
  provider?: string;
}

/** An attempt whose answer was set aside (a decline the router rerouted): its tokens were paid for. */
export interface SetAsideAnswer {
  model: string;
  provider: string;
  usage: Usage;
  cost: number;
}

export interface ChatDone {
  context: RequestContext;
  model?: string;
  provider?: string;
  /** The answer the client got (or the failure): its usage and cost. */
  summary: ChatSummary;
  ttftMs?: number;
  /** Answers set aside on the way; `chargedSummary` adds them in. */
  setAside: readonly SetAsideAnswer[];
}

export type ChatObserver = (event: ChatDone) => void;

const NONE_SET_ASIDE: readonly SetAsideAnswer[] = Object.freeze([]);

/** What the call cost in all: the answer and every answer set aside on the way (request log, budgets). */
export function chargedSummary(summary: ChatSummary, setAside: readonly SetAsideAnswer[]): ChatSummary {
  if (setAside.length === 0) return summary;
  return {
    ...summary,
    usage: setAside.reduce((usage, answer) => addUsage(usage, answer.usage), summary.usage),
    cost: setAside.reduce((cost, answer) => cost + answer.cost, summary.cost),
  };
}

export class Gateway {
  readonly registry: ModelRegistry;
  readonly router: Router;
  private readonly providers = new Map<string, Provider>();
  private readonly observers: ChatObserver[] = [];
  /** Limits, budgets and allowed models; set by the server (absent: everything is admitted). */
  admission?: ChatAdmission;

  constructor(
    readonly config: Config,
    readonly store: Store,
    readonly logger: Logger,
    private readonly factories: Record<string, ProviderFactory>,
    readonly dataDir: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.registry = new ModelRegistry(config, env);
    this.router = new Router(this.registry, config.router);
    for (const model of this.registry.models) {
      for (const d of model.deployments) {
        if (!factories[d.provider]) throw new Error(`Model '${model.id}' names an unknown provider '${d.provider}' (known: ${Object.keys(factories).join(', ')})`);
        try {
          this.provider(d.provider).checkDeployment?.(d);
        } catch (err) {
          throw new Error(`Model '${model.id}': ${(err as Error).message}`);
        }
      }
    }
  }

  provider(name: string): Provider {
    let provider = this.providers.get(name);
    if (!provider) {
      const env: ProviderEnvironment = { config: this.config, logger: this.logger.child({ provider: name }), dataDir: this.dataDir };
      provider = this.factories[name]!(env);
      this.providers.set(name, provider);
    }
    return provider;
  }

  /** Providers started so far (for their stats() in /metrics). */
  startedProviders(): Provider[] {
    return [...this.providers.values()];
  }

  /** Called for every finished chat call (metrics, usage, limits). */
  onChatDone(observer: ChatObserver): void {
    this.observers.push(observer);
  }

  capabilities(deployment: ResolvedDeployment): Capabilities {
    return this.provider(deployment.provider).capabilities(deployment);
  }

  /** Refuses, with a 400 naming the field, what the model cannot do and the core cannot emulate. */
  checkRequest(request: ChatRequest, model: ResolvedModel): void {
    // Provider-only tools and blocks must not reach another provider, fallbacks included.
    let reachable: ResolvedDeployment[] | undefined;
    const servedOnlyBy = (provider: string) => (reachable ??= this.router.reachableDeployments(model)).every((d) => d.provider === provider);
    for (const tool of request.providerTools ?? []) {
      if (!servedOnlyBy(tool.provider)) {
        throw badRequest(`The tool type '${String(tool.definition.type)}' runs on ${tool.provider} only, and the model '${model.id}' is not served by ${tool.provider} alone`, 'tools', 'unsupported_parameter');
      }
    }
    for (const message of request.messages) {
      // A tool result's attachments reach the model as any other media does.
      const parts: ContentPart[] = message.content.flatMap((p): ContentPart[] => (p.type === 'tool-result' ? [p, ...p.content] : [p]));
      for (const part of parts) {
        if (part.type === 'provider-block' && !servedOnlyBy(part.provider)) {
          throw badRequest(`A '${String(part.block.type)}' block can only go back to ${part.provider}, and the model '${model.id}' is not served by ${part.provider} alone`, 'messages', 'unsupported_parameter');
        }
        if ((part.type === 'image' || part.type === 'video') && !model.modalities.includes(part.type)) {
          throw badRequest(`The model '${model.id}' does not accept ${part.type} input`, 'messages', 'unsupported_modality');
        }
        if (part.type === 'document' && !model.modalities.includes('document')) {
          throw badRequest(`The model '${model.id}' does not accept document input`, 'messages', 'unsupported_modality');
        }
      }
    }
    const caps = this.capabilities(model.deployments[0]!);
    if (request.tools?.length && !caps.tools) throw badRequest(`The model '${model.id}' does not support tools`, 'tools', 'unsupported_parameter');
    const sampling: Array<[keyof ChatRequest, Capabilities['sampling'][number], string]> = [
      ['temperature', 'temperature', 'temperature'],
      ['topP', 'topP', 'top_p'],
      ['topK', 'topK', 'top_k'],
      ['minP', 'minP', 'min_p'],
      ['seed', 'seed', 'seed'],
      ['presencePenalty', 'presencePenalty', 'presence_penalty'],
      ['frequencyPenalty', 'frequencyPenalty', 'frequency_penalty'],
      ['repetitionPenalty', 'repetitionPenalty', 'repetition_penalty'],
      ['logitBias', 'logitBias', 'logit_bias'],
      ['verbosity', 'verbosity', 'verbosity'],
    ];
    for (const [field, cap, wire] of sampling) {
      if (request[field] !== undefined && !caps.sampling.includes(cap)) {
        throw badRequest(`The model '${model.id}' (provider ${model.deployments[0]!.provider}) does not support '${wire}'`, wire, 'unsupported_parameter');
      }
    }
    if (request.logprobs && !caps.logprobs) {
      throw badRequest(`The model '${model.id}' (provider ${model.deployments[0]!.provider}) does not return token logprobs`, 'logprobs', 'unsupported_parameter');
    }
    if (request.stop?.length && !caps.sampling.includes('stop')) throw badRequest(`The model '${model.id}' does not support stop sequences`, 'stop', 'unsupported_parameter');
    if (request.responseFormat?.type === 'json' && request.responseFormat.schema) compileSchema(request.responseFormat.schema);
  }

  /**
   * Starts a chat call. Rejects for failures before the first content part (after routing,
   * retries and fallbacks); later failures arrive as `error` parts in the stream.
   */
  async chat(request: ChatRequest, context: RequestContext, routing: ChatRouting = {}): Promise<ChatResult> {
    const model = this.registry.resolve(request.model);
    request = await documentsAsText(request, model);
    this.checkRequest(request, model);
    let limits: RateHeadroom | undefined;
    try {
      limits = await this.admission?.admit(request, model, context);
    } catch (err) {
      const error = toGatewayError(err);
      this.finishRefused(context, model.id, error, 0);
      throw error;
    }
    const n = request.n ?? 1;
    let result;
    try {
      result = await this.router.route(
        model,
        (m, deployment, signal) => this.attempt(request, m, deployment, signal, context, n),
        { signal: context.cancellation ?? context.signal, provider: routing.provider },
      );
    } catch (err) {
      const error = toGatewayError(err);
      const attempts = attemptLogOf(err);
      if (attempts) this.logUnreadableEvents(attempts, context);
      this.finishRefused(context, model.id, error, attempts?.length ?? 1, this.setAsideAnswers(attempts ?? []));
      throw error;
    }
    this.logUnreadableEvents(result.attempts, context);
    const ttftMs = performance.now() - context.startedAt;
    let resolveDone!: (s: ChatSummary) => void;
    const done = new Promise<ChatSummary>((r) => (resolveDone = r));
    return {
      stream: this.account(request, result.stream, result.model, result.deployment, context, ttftMs, result.attempts, resolveDone),
      model: result.model,
      deployment: result.deployment,
      provider: result.deployment.provider,
      attempts: result.attempts.length,
      ttftMs,
      upstreamMs: result.upstreamMs,
      limits,
      attemptLog: result.attempts,
      done,
    };
  }

  private attempt(
    request: ChatRequest,
    model: ResolvedModel,
    deployment: ResolvedDeployment,
    signal: AbortSignal,
    context: RequestContext,
    n: number,
  ): AttemptStream {
    const provider = this.provider(deployment.provider);
    const caps = provider.capabilities(deployment);
    // A client that reads the whole answer at once gets a buffered upstream call where the
    // provider can make one: one body to parse rather than an event per token.
    const buffered = !context.stream && caps.bufferedCalls === true;
    const callContext = { model, deployment, signal, requestId: context.requestId, logger: this.logger, buffered };
    let stream: AsyncIterable<StreamPart>;
    if (n > 1 && !caps.multipleChoices) {
      // Emulate n by n independent calls; each is primed so a failure fails the whole request.
      // A fixed seed must still give n different choices: choice i samples with seed + i.
      const single = (i: number): ChatRequest => ({ ...request, n: 1, seed: request.seed === undefined ? undefined : request.seed + i });
      stream = (async function* () {
        yield* mergeChoices(await primeAll(Array.from({ length: n }, (_, i) => provider.stream(single(i), callContext))));
      })();
    } else {
      stream = provider.stream(request, callContext);
    }
    if (request.responseFormat?.type === 'json') stream = enforceStructuredOutput(stream, request.responseFormat);
    if (!buffered) return stream;
    const parts = stream;
    return { buffered, [Symbol.asyncIterator]: () => parts[Symbol.asyncIterator]() };
  }

  /** Adds up usage and errors as the parts go by, and accounts for the call when it ends. */
  private account(
    request: ChatRequest,
    stream: PrimedStream,
    model: ResolvedModel,
    deployment: ResolvedDeployment,
    context: RequestContext,
    ttftMs: number,
    attempts: RouteAttempt[],
    resolveDone: (s: ChatSummary) => void,
  ): PrimedStream {
    const setAside = this.setAsideAnswers(attempts);
    let usage = emptyUsage();
    // n emulated by n calls: each was billed its prompt, so the cost counts it n times (usage, as
    // OpenAI reports it, counts it once).
    const separateCalls = (request.n ?? 1) > 1 && !this.capabilities(deployment).multipleChoices;
    let billed = emptyUsage();
    const finishedChoices = new Set<number>();
    // Characters generated per choice, for a call cut off before its usage arrived.
    const generated = new Map<number, number>();
    // The prompt's usage as the provider counted it at the start (Anthropic, local), caches included.
    let promptUsage: Usage | undefined;
    let error: GatewayError | undefined;
    const logger = this.logger;
    /** A choice's usage, counted once: from its finish part, or from an error that ended it after it finished (a schema refusal). */
    const settleChoice = (choice: number, choiceUsage: Usage) => {
      if (finishedChoices.has(choice)) return;
      finishedChoices.add(choice);
      usage = addChoiceUsage(usage, choiceUsage);
      billed = addUsage(billed, choiceUsage);
    };
    return stream.observe({
      part(part) {
        if (part.type === 'start' && part.usage && !promptUsage) promptUsage = part.usage;
        if (part.type === 'text-delta' || part.type === 'reasoning-delta' || part.type === 'tool-input-delta') {
          generated.set(part.choice ?? 0, (generated.get(part.choice ?? 0) ?? 0) + part.delta.length);
        }
        if (part.type === 'finish') settleChoice(part.choice ?? 0, part.usage);
        if (part.type === 'error') {
          if (part.usage) settleChoice(part.choice ?? 0, part.usage);
          error = toGatewayError(part.error);
          // A bug, not an upstream's failure: the client gets "Internal error", the operator the stack.
          if (error.kind === 'internal') logger.error({ err: error.cause ?? part.error, reqId: context.requestId }, 'internal error in a stream');
          else if (error.code === UNREADABLE_EVENT) logUnreadableEvent(logger, error, context);
        }
      },
      end: (completed) => {
        // Cut off by the gateway's side (the client went, a timeout, the shutdown grace ran out)
        // rather than failed by the upstream: the upstream worked, and bills, for what it sent.
        const cutOff = error ? error.kind === 'cancelled' || error.kind === 'timeout' || error.code === 'server_shutting_down' : !completed;
        if (cutOff) usage = withCutOffChoices(usage, request, promptUsage, generated, finishedChoices);
        const status = error ? error.status : completed ? 200 : 499;
        const summary: ChatSummary = {
          usage,
          cost: costOf(model.pricing, separateCalls && !cutOff ? billed : usage),
          status,
          errorKind: error?.kind ?? (completed ? undefined : 'cancelled'),
          latencyMs: performance.now() - context.startedAt,
        };
        this.finish(context, model.id, deployment, ttftMs, summary, attempts.length, setAside);
        resolveDone(summary);
      },
    });
  }

  /** Failed attempts whose upstream sent an event the converter could not read. */
  private logUnreadableEvents(attempts: RouteAttempt[], context: RequestContext): void {
    for (const attempt of attempts) {
      if (attempt.error?.code === UNREADABLE_EVENT) logUnreadableEvent(this.logger, attempt.error, context);
    }
  }

  /** Attempts whose answers the router set aside, priced at their own model's rates. */
  private setAsideAnswers(attempts: readonly RouteAttempt[]): readonly SetAsideAnswer[] {
    if (!attempts.some((attempt) => attempt.setAsideUsage)) return NONE_SET_ASIDE;
    return attempts.flatMap(({ model, deployment, setAsideUsage: usage }) =>
      usage ? [{ model, provider: deployment.provider, usage, cost: costOf(this.registry.resolve(model).pricing, usage) }] : [],
    );
  }

  /** Accounts for a call that failed before any stream existed (refused, or every attempt failed). */
  private finishRefused(context: RequestContext, model: string, error: GatewayError, attempts: number, setAside: readonly SetAsideAnswer[] = NONE_SET_ASIDE): void {
    const summary = { usage: emptyUsage(), cost: 0, status: error.status, errorKind: error.kind, latencyMs: performance.now() - context.startedAt };
    this.finish(context, model, undefined, undefined, summary, attempts, setAside);
  }

  private finish(
    context: RequestContext,
    model: string | undefined,
    deployment: ResolvedDeployment | undefined,
    ttftMs: number | undefined,
    summary: ChatSummary,
    attempts: number,
    setAside: readonly SetAsideAnswer[],
  ): void {
    for (const observer of this.observers) {
      try {
        observer({ context, model, provider: deployment?.provider, summary, ttftMs, setAside });
      } catch (err) {
        this.logger.error({ err }, 'chat observer failed');
      }
    }
    // Budgets and the request log count every token paid for, set-aside answers included.
    const charged = chargedSummary(summary, setAside);
    const admitted = this.admission?.settle(context, charged);
    this.store
      .logRequest({
        id: context.requestId,
        createdAt: Date.now(),
        organisation: context.organisation,
        keyId: context.keyId,
        correlationId: context.correlationId,
        dialect: context.dialect,
        route: context.route,
        model,
        provider: deployment?.provider,
        deployment: deployment?.name,
        attempts,
        status: charged.status,
        errorKind: charged.errorKind,
        latencyMs: charged.latencyMs,
        ttftMs,
        inputTokens: charged.usage.inputTokens,
        outputTokens: charged.usage.outputTokens,
        totalTokens: charged.usage.totalTokens,
        cost: charged.cost,
        cacheReadTokens: charged.usage.cacheReadTokens ?? 0,
        cacheWriteTokens: charged.usage.cacheWriteTokens ?? 0,
        reasoningTokens: charged.usage.reasoningTokens ?? 0,
        serverToolUse: charged.usage.serverToolUse,
        stream: context.stream,
        body: admitted?.loggedBody,
      })
      .catch((err: unknown) => this.logger.error({ err }, 'request log write failed'));
  }

  /**
   * A prompt's input tokens for a count-tokens route: the upstream's own count where it has one,
   * else the provider's tokenizer, else an estimate; `source` says which. The key must be allowed
   * the model, as for a chat call; no limit or budget is charged.
   */
  async countInputTokens(request: ChatRequest, context: RequestContext): Promise<TokenCount> {
    const model = this.registry.resolve(request.model);
    await this.admission?.checkModel(request, model, context);
    const deployment = model.deployments[0]!;
    const provider = this.provider(deployment.provider);
    if (provider.countInputTokens) {
      const callContext = { model, deployment, signal: context.signal, requestId: context.requestId, logger: this.logger };
      const counted = await provider.countInputTokens({ ...request, model: model.id }, callContext);
      if (counted !== undefined) return { tokens: counted, source: 'upstream' };
    }
    return this.countLocally(request, model, deployment, provider);
  }

  /**
   * Exact prompt token count where the provider has a tokenizer, else an estimate. With `limit`,
   * a count above it may be a lower bound (for callers that ask only whether the prompt fits).
   */
  async countPromptTokens(request: ChatRequest, limit?: number): Promise<number> {
    const model = this.registry.resolve(request.model);
    const deployment = model.deployments[0]!;
    return (await this.countLocally(request, model, deployment, this.provider(deployment.provider), limit)).tokens;
  }

  /** The provider's tokenizer where it has one, else ≈ 4 characters a token: no upstream call. */
  private async countLocally(request: ChatRequest, model: ResolvedModel, deployment: ResolvedDeployment, provider: Provider, limit?: number): Promise<TokenCount> {
    if (provider.countPromptTokens) return { tokens: await provider.countPromptTokens({ ...request, model: model.id }, deployment, limit), source: 'tokenizer' };
    return { tokens: estimateTokens(request), source: 'estimate' };
  }

  /** Loads the default model's provider so the first request does not pay for it. */
  async warmUp(): Promise<void> {
    const model = this.registry.defaultModel;
    const d = model.deployments[0]!;
    await this.provider(d.provider).warmUp?.(d, model);
  }

  async close(): Promise<void> {
    for (const provider of this.providers.values()) await provider.close?.().catch(() => undefined);
    this.providers.clear();
  }
}

/**
 * The client is told the upstream's event was unreadable; the operator also gets the exception
 * behind it, with its stack, since a converter bug of ours would look exactly the same.
 */
function logUnreadableEvent(logger: Logger, error: GatewayError, context: RequestContext): void {
  logger.warn({ err: error.cause ?? error, provider: error.provider, reqId: context.requestId }, 'unreadable upstream event');
}

/**
 * `req-` and 24 characters: the creation time (milliseconds, 9 base-36 digits) then 15 random hex
 * digits. Ids that sort by time put each request-log row at the right edge of its primary-key
 * index: a batch of rows dirties a page or two there, where random ids dirtied a page per row
 * (twice the cost of each batch write, measured in docs/benchmarks.md).
 */
export function newRequestId(prefix = 'req'): string {
  return `${prefix}-${Date.now().toString(36).padStart(9, '0')}${randomUUID().replaceAll('-', '').slice(0, 15)}`;
}

/**
 * A call cut off (the client went, the request was cancelled) never gets its usage from the
 * provider, yet the upstream worked for it: without this, a client could stream a whole answer,
 * hang up before the last event, and be charged nothing against its budget or tokens-per-minute.
 * What was not reported is estimated as `estimateTokens` does (≈ 4 characters a token): the
 * prompt when no choice finished (as the provider counted it at the start, when it did), and what
 * each unfinished choice had generated.
 */
export function withCutOffChoices(usage: Usage, request: ChatRequest, promptUsage: Usage | undefined, generated: ReadonlyMap<number, number>, finished: ReadonlySet<number>): Usage {
  let outputTokens = 0;
  for (const [choice, chars] of generated) if (!finished.has(choice)) outputTokens += estimateTextTokens(chars);
  if (finished.size > 0) {
    return outputTokens === 0 ? usage : addChoiceUsage(usage, { inputTokens: 0, outputTokens, totalTokens: outputTokens });
  }
  const prompt: Usage = promptUsage ? { ...promptUsage, outputTokens: 0, reasoningTokens: undefined } : { inputTokens: estimateTokens(request), outputTokens: 0, totalTokens: 0 };
  return { ...prompt, outputTokens, totalTokens: prompt.inputTokens + outputTokens };
}
