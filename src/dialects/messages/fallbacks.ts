// Server-side fallback on a refusal (Anthropic's `fallbacks`, beta server-side-fallback-2026-06-01):
// when the requested model declines (a refusal: Anthropic's stop_reason "refusal", OpenAI's
// content_filter, a Bedrock guardrail), the same request goes to each fallback model in turn, in
// the same response. Whatever the declining model wrote stays; a `fallback` content block marks
// each boundary; `usage.iterations` gives each model's tokens, the serving one last as
// `fallback_message` (render-events.ts). Any model behind the gateway may decline or serve.
// Each hop is a gateway call of its own (limits, the request log: `<request id>-f<n>`).

import { GatewayError, badRequest, isGatewayError, toGatewayError } from '../../core/errors.js';
import { withRequestId, type Gateway, type RequestContext } from '../../core/gateway.js';
import type { ResolvedModel } from '../../core/models.js';
import type { StreamPart, Usage } from '../../core/types.js';
import type { CompactionPart } from './compaction.js';
import { servedOnlyByAnthropic } from './field-policy.js';
import type { MessagesRequest } from './schema.js';

/** A boundary between a model that declined and the one that goes on (rendered as a `fallback` block). */
export interface FallbackPart {
  type: 'fallback';
  /** The declining model: the caller's spelling for the requested model, the gateway's id after. */
  from: string;
  to: string;
  /** The refusal's policy category, when the provider named one. */
  category: unknown;
  /** What the declining model used. */
  refusedUsage: Usage;
}

/** What a Messages response is rendered from: the gateway's parts, fallback boundaries, a compaction's summary. */
export type MessagesPart = StreamPart | FallbackPart | CompactionPart;

type FallbackEntry = Exclude<NonNullable<MessagesRequest['fallbacks']>, 'default'>[number];

/**
 * The wire body of one fallback attempt: the request with `model` and the entry's overrides, as
 * Anthropic combines them (absent: the request's value; null: the model's default). A thinking
 * or `fast` setting the fallback model cannot take is left to its default rather than refused.
 */
function fallbackBody(raw: Record<string, unknown>, entry: FallbackEntry, target: { reasoning: boolean; anthropic: boolean }): Record<string, unknown> {
  const body: Record<string, unknown> = { ...raw, model: entry.model };
  delete body.fallbacks;
  if (entry.max_tokens != null) body.max_tokens = entry.max_tokens;
  if (entry.thinking === null || (entry.thinking === undefined && !target.reasoning)) delete body.thinking;
  else if (entry.thinking !== undefined) body.thinking = entry.thinking;
  if (entry.output_config === null) delete body.output_config;
  else if (entry.output_config !== undefined) {
    const merged: Record<string, unknown> = { ...(body.output_config as Record<string, unknown> | undefined) };
    for (const [key, value] of Object.entries(entry.output_config)) {
      if (value === null) delete merged[key];
      else if (value !== undefined) merged[key] = value;
    }
    if (Object.keys(merged).length) body.output_config = merged;
    else delete body.output_config;
  }
  if (entry.speed === null || (entry.speed === undefined && !target.anthropic)) delete body.speed;
  else if (entry.speed !== undefined) body.speed = entry.speed;
  return body;
}

/**
 * Each fallback attempt's body, checked as if it were sent to its model (`prepare`), so a bad
 * entry is a 400 before anything is served. `default` is the model's configured
 * contentPolicyFallbacks (docs/router.md); none configured: the model answers alone.
 */
export async function prepareFallbacks<P>(
  raw: Record<string, unknown>,
  body: MessagesRequest,
  model: ResolvedModel,
  gateway: Gateway,
  prepare: (hopRaw: Record<string, unknown>) => Promise<P>,
): Promise<P[]> {
  if (body.fallbacks == null) return [];
  if (body.mcp_servers?.length) throw badRequest("'fallbacks' cannot be combined with 'mcp_servers'", 'fallbacks', 'unsupported_parameter');
  const entries: FallbackEntry[] =
    body.fallbacks === 'default' ? gateway.router.settings(model).contentPolicyFallbacks.map((id) => ({ model: id })) : body.fallbacks;
  const seen = new Set([model.id]);
  const hops: P[] = [];
  for (const [i, entry] of entries.entries()) {
    const param = `fallbacks[${i}]`;
    let target: ResolvedModel;
    try {
      target = gateway.registry.resolve(entry.model);
    } catch (err) {
      throw badRequest(`${param}.model: ${toGatewayError(err).message}`, `${param}.model`, 'invalid_fallback');
    }
    if (seen.has(target.id)) throw badRequest(`${param}.model: '${entry.model}' is already in the chain (the requested model or an earlier fallback)`, `${param}.model`, 'invalid_fallback');
    seen.add(target.id);
    const caps = gateway.capabilities(target.deployments[0]!);
    try {
      hops.push(await prepare(fallbackBody(raw, entry, { reasoning: caps.reasoning, anthropic: servedOnlyByAnthropic(target) })));
    } catch (err) {
      if (!isGatewayError(err) || err.status >= 500) throw err;
      throw new GatewayError(err.kind, `${param} ('${entry.model}'): ${err.message}`, { param: err.param ? `${param}.${err.param}` : param, code: err.code });
    }
  }
  return hops;
}

/** A started fallback attempt: its parts, and the gateway's id of the model serving it. */
export interface StartedHop {
  stream: AsyncIterable<StreamPart>;
  modelId: string;
}

/**
 * Passes the first model's parts through; on a refusal with fallbacks left, starts them in order
 * (one that cannot start is skipped: it never ran, so it gets no boundary) and goes on with the
 * first that starts. No fallback left, or none that starts: the refusal stands as it came.
 */
export async function* withRefusalFallbacks(
  first: AsyncIterable<StreamPart>,
  requestedModel: string,
  hops: Array<(ctx: RequestContext) => Promise<StartedHop>>,
  ctx: RequestContext,
  onSkipped: (err: GatewayError, hop: number) => void,
): AsyncGenerator<MessagesPart> {
  let stream = first;
  let from = requestedModel;
  let next = 0;
  for (;;) {
    let refusal: Extract<StreamPart, { type: 'finish' }> | undefined;
    for await (const part of stream) {
      if (part.type === 'finish' && part.finishReason === 'content-filter' && next < hops.length) refusal = part;
      else yield part;
    }
    if (!refusal) return;
    let started: StartedHop | undefined;
    while (!started && next < hops.length) {
      const hop = ++next;
      try {
        started = await hops[hop - 1]!(withRequestId(ctx, `${ctx.requestId}-f${hop}`));
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        onSkipped(toGatewayError(err), hop);
      }
    }
    if (!started) {
      yield refusal;
      return;
    }
    const category = (refusal.stopDetails as { category?: unknown } | undefined)?.category ?? null;
    yield { type: 'fallback', from, to: started.modelId, category, refusedUsage: refusal.usage };
    from = started.modelId;
    stream = started.stream;
  }
}
