// POST /v2/text/chat (several providers at once, or one with fallbacks) and
// POST /v2/text/chat/stream (one provider, raw text chunk by chunk).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, toGatewayError } from '../../core/errors.js';
import type { ChatResult, ChatSummary } from '../../core/gateway.js';
import { attemptsOf } from '../../core/router/router.js';
import { collectStream, type CollectedResponse } from '../../core/stream.js';
import type { StreamPart } from '../../core/types.js';
import { parseBody } from '../../core/validation.js';
import type { ServerContext } from '../../server/context.js';
import { requestContext, servedByHeaders } from '../../server/context.js';
import { StreamWriter } from '../../server/sse.js';
import { buildChatRequest, requestHistory } from './build-request.js';
import { edenErrorBody } from './errors.js';
import { renderFailure, renderSuccess, shapeResponse, type EdenResult } from './render.js';
import { resolveTargets, type EdenTarget } from './resolve-providers.js';
import { edenChatRequestSchema, type EdenChatRequest } from './schema.js';

const DIALECT = 'eden';

function fieldError(field: string, message: string): GatewayError {
  return new GatewayError('bad_request', message, { param: field, code: 'invalid_request', fieldErrors: { [field]: [message] } });
}

interface Parsed {
  body: EdenChatRequest;
  targets: EdenTarget[];
  fallbacks: EdenTarget[];
}

function parse(context: ServerContext, raw: unknown, stream: boolean): Parsed {
  const body = parseBody(edenChatRequestSchema, raw);
  if (stream && body.providers.length !== 1) throw fieldError('providers', 'The stream route takes exactly one provider');
  if (body.fallback_providers.length > 0 && body.providers.length !== 1) {
    throw fieldError('fallback_providers', 'fallback_providers needs exactly one provider in providers');
  }
  const registry = context.gateway.registry;
  const targets = resolveTargets(registry, body.providers, body.settings, 'providers');
  const fallbacks = resolveTargets(registry, body.fallback_providers, body.settings, 'fallback_providers');
  // Requests that cannot be built fail the whole call with a 400, before any provider is called.
  buildChatRequest(body, targets[0]!.model.id);
  return { body, targets, fallbacks };
}

/** Calls started per HTTP request, for their request-log ids. */
const callsStarted = new WeakMap<FastifyRequest, number>();

/**
 * One gateway call; each gets its own request-log row: the first keeps the request's id (the
 * `x-request-id` a client sees), later ones — other providers, fallback providers — `<id>-2`,
 * `<id>-3`… in the order they start.
 */
function startCall(context: ServerContext, request: FastifyRequest, reply: FastifyReply, body: EdenChatRequest, target: EdenTarget, route: string, stream: boolean): Promise<ChatResult> {
  const ctx = requestContext(request, reply, { dialect: DIALECT, route, stream });
  const n = (callsStarted.get(request) ?? 0) + 1;
  callsStarted.set(request, n);
  if (n > 1) ctx.requestId = `${request.id}-${n}`;
  return context.gateway.chat(buildChatRequest(body, target.model.id), ctx, { provider: target.provider });
}

interface Served {
  target: EdenTarget;
  result: ChatResult;
  collected: CollectedResponse;
  summary: ChatSummary;
}

/** What failed fallback_providers cost before one answered: their attempts and their time. */
class EarlierCalls {
  attempts = 0;
  waitedMs = 0;

  add(error: unknown, startedAt: number, attempts?: number): void {
    this.attempts += attempts ?? attemptsOf(error) ?? 1;
    this.waitedMs += performance.now() - startedAt;
  }

  /** The serving call's result, with the earlier calls counted in. */
  apply(result: ChatResult): ChatResult {
    return { ...result, attempts: result.attempts + this.attempts, upstreamMs: () => result.upstreamMs() + this.waitedMs };
  }
}

/** The provider, then its fallbacks in order, until one answers in full. */
async function serveBuffered(context: ServerContext, request: FastifyRequest, reply: FastifyReply, body: EdenChatRequest, chain: EdenTarget[]): Promise<Served> {
  let lastError: GatewayError | undefined;
  const earlier = new EarlierCalls();
  for (const target of chain) {
    const startedAt = performance.now();
    let result: ChatResult | undefined;
    try {
      result = await startCall(context, request, reply, body, target, '/v2/text/chat', false);
      const collected = await collectStream(result.stream);
      return { target, result: earlier.apply(result), collected, summary: await result.done };
    } catch (err) {
      earlier.add(err, startedAt, result?.attempts);
      lastError = toGatewayError(err);
      if (lastError.kind === 'cancelled') break;
    }
  }
  throw lastError!;
}

/** Served-by headers for one call or several run side by side (values comma-joined). */
function combinedHeaders(served: Served[], arrivedAt: number): Record<string, string> {
  if (served.length === 0) return {};
  const first = served[0]!;
  if (served.length === 1) return servedByHeaders(first.result, arrivedAt, first.result.ttftMs);
  const join = (f: (s: Served) => string) => served.map(f).join(', ');
  // Side by side, the wait that counts is the longest one, and the limits the fewest requests left (the last call admitted).
  const waited = Math.max(...served.map((s) => s.result.upstreamMs()));
  const lowest = served.reduce((a, b) => ((b.result.limits?.requests?.remaining ?? Infinity) < (a.result.limits?.requests?.remaining ?? Infinity) ? b : a));
  return {
    ...servedByHeaders({ ...first.result, limits: lowest.result.limits }, arrivedAt, Math.min(...served.map((s) => s.result.ttftMs)), waited),
    'x-switchboard-provider': join((s) => s.result.provider),
    'x-switchboard-model': join((s) => s.result.model.id),
    'x-switchboard-deployment': join((s) => s.result.deployment.name),
    'x-switchboard-attempts': join((s) => String(s.result.attempts)),
  };
}

async function chat(context: ServerContext, request: FastifyRequest, reply: FastifyReply) {
  const { body, targets, fallbacks } = parse(context, request.body, false);
  const history = requestHistory(body);
  const outcomes = await Promise.all(
    targets.map(async (target) => {
      const chain = [target, ...fallbacks];
      try {
        return { name: target.name, served: await serveBuffered(context, request, reply, body, chain) };
      } catch (err) {
        return { name: target.name, error: toGatewayError(err) };
      }
    }),
  );
  const served = outcomes.flatMap((o) => (o.served ? [o.served] : []));
  if (served.length === 0) {
    // Nothing answered: an error status, with each provider's problem by name.
    const first = outcomes[0]!.error!;
    // One provider: its own error, which carries its rate-limit headroom and its attempts (the
    // headers of every other route).
    if (outcomes.length === 1) throw first;
    const problems = Object.fromEntries(outcomes.map((o) => [o.name, [o.error!.message]]));
    throw new GatewayError(first.kind, 'Every provider failed', {
      code: first.code,
      status: first.status,
      retryAfter: first.retryAfter,
      provider: first.provider,
      fieldErrors: problems,
      rateLimit: first.rateLimit,
    });
  }
  const results: Array<{ name: string; result: EdenResult }> = outcomes.map((o) => ({
    name: o.name,
    result: o.served
      ? renderSuccess({
          provider: o.served.target.name,
          model: o.served.result.model.id,
          history,
          collected: o.served.collected,
          cost: o.served.summary.cost,
          showOriginal: body.show_original_response,
        })
      : renderFailure(o.name, o.error!, body.show_original_response),
  }));
  return reply.headers(combinedHeaders(served, request.arrivedAt)).send(shapeResponse(results, body.response_as_dict, body.attributes_as_list));
}

/**
 * Streams raw text. Fallbacks are tried until a first byte is written; a failure after that ends
 * the body with a JSON error line and an unterminated chunked response, never a clean end.
 */
async function chatStream(context: ServerContext, request: FastifyRequest, reply: FastifyReply) {
  const { body, targets, fallbacks } = parse(context, request.body, true);
  let lastError: GatewayError | undefined;
  const earlier = new EarlierCalls();
  for (const target of [...targets, ...fallbacks]) {
    const startedAt = performance.now();
    let result: ChatResult;
    try {
      result = await startCall(context, request, reply, body, target, '/v2/text/chat/stream', true);
    } catch (err) {
      earlier.add(err, startedAt);
      lastError = toGatewayError(err);
      if (lastError.kind === 'cancelled') break;
      continue;
    }
    const iterator = result.stream[Symbol.asyncIterator]();
    // Parts before the first text byte: a failure here still falls back.
    let first: IteratorResult<StreamPart> | undefined;
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done || next.value.type === 'finish' || (next.value.type === 'text-delta' && next.value.delta.length > 0)) {
          first = next;
          break;
        }
        if (next.value.type === 'error') throw next.value.error;
      }
    } catch (err) {
      await iterator.return?.(undefined);
      earlier.add(err, startedAt, result.attempts);
      lastError = toGatewayError(err);
      continue;
    }
    reply.hijack();
    const writer = new StreamWriter(reply);
    writer.start(200, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      'x-request-id': String(request.id),
      'x-eden-provider': target.name,
      ...servedByHeaders(earlier.apply(result), request.arrivedAt, result.ttftMs),
    });
    await pipeText(context, writer, reply, first, iterator);
    return;
  }
  throw lastError ?? new GatewayError('unavailable', 'No provider could answer');
}

async function pipeText(context: ServerContext, writer: StreamWriter, reply: FastifyReply, first: IteratorResult<StreamPart>, iterator: AsyncIterator<StreamPart>) {
  let failure: GatewayError | undefined;
  try {
    let next = first;
    while (!next.done && !writer.isClosed) {
      const part = next.value;
      if (part.type === 'error') {
        failure = toGatewayError(part.error);
        break;
      }
      if (part.type === 'text-delta' && part.delta) await writer.write(part.delta);
      next = await iterator.next();
    }
  } catch (err) {
    failure = toGatewayError(err);
  } finally {
    if (writer.isClosed) await iterator.return?.(undefined);
  }
  if (writer.isClosed) return;
  if (!failure) return writer.end();
  context.logger.warn({ kind: failure.kind }, 'eden stream failed after its first byte');
  await writer.write(`\n${JSON.stringify(edenErrorBody(failure))}\n`);
  // No terminating chunk: the client sees an incomplete response, not a clean end.
  writer.flush();
  reply.raw.socket?.end();
}

export function registerEdenRoutes(app: FastifyInstance, context: ServerContext): void {
  app.addHook('preHandler', async (request) => {
    request.auth = await context.auth.authenticate(request);
  });
  app.post('/v2/text/chat', (request, reply) => chat(context, request, reply));
  app.post('/v2/text/chat/stream', (request, reply) => chatStream(context, request, reply));
}
