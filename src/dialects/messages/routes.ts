// POST /v1/messages: Anthropic's Messages API, buffered and streaming.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toGatewayError } from '../../core/errors.js';
import { requestContext, servedByHeaders } from '../../server/context.js';
import { SSE_HEADERS, StreamWriter } from '../../server/sse.js';
import { MemoryThreadStore } from '../../store/threads.js';
import { anthropicErrorBody } from './errors.js';
import { messageEvents, newMessageId } from './message-events.js';
import { betasOf } from './field-policy.js';
import { prepareMessages } from './prepare.js';
import { eventJson, MessageEventRenderer } from './render-events.js';
import type { MessagesDeps } from './start.js';
import { startMessages } from './start.js';
import { MessageThreads, type ThreadTurn } from './threads.js';

async function createMessage(deps: MessagesDeps, threads: MessageThreads, request: FastifyRequest, reply: FastifyReply) {
  const organisation = request.auth!.organisation;
  const turn = await threads.begin(request.body, organisation);
  if (!turn) return respond(deps, request, reply, request.body);
  try {
    return await respond(deps, request, reply, turn.body, turn);
  } finally {
    // Kept once the reply completed; otherwise the previous reply may be continued again (before
    // the error reaches the client, so its retry finds the thread free).
    await turn.abandon();
  }
}

async function respond(deps: MessagesDeps, request: FastifyRequest, reply: FastifyReply, raw: unknown, turn?: ThreadTurn) {
  const { context } = deps;
  const { gateway, store } = context;
  const prepared = await prepareMessages(raw, gateway, deps.config, betasOf(request.headers['anthropic-beta']));
  const { body, info } = prepared;
  const organisation = request.auth!.organisation;
  if (info.correlationId) reply.header('x-correlation-id', info.correlationId);
  const stream = body.stream === true;
  const ctx = requestContext(request, reply, { dialect: 'messages', route: '/v1/messages', stream, organisation, correlationId: info.correlationId });
  const recorded = { userId: info.userId, serviceTier: info.serviceTier, inferenceGeo: info.inferenceGeo, correlationId: info.correlationId, priority: body.priority };
  // Only a request that carries one of these gets a row: a write on every request cost a
  // streamed request ≈ 10 % of its CPU here (a round trip on PostgreSQL).
  if (Object.values(recorded).some((v) => v !== undefined)) {
    await store.asyncRuns?.recordMessagesRequest({ requestId: ctx.requestId, organisation, createdAt: Date.now(), ...recorded });
  }

  const started = await startMessages(prepared, ctx, deps);
  const renderer = new MessageEventRenderer({ id: newMessageId(), model: started.modelId, omitThinking: info.omitThinking });
  // Who served it, when the headers go out: for a buffered reply, the model that answered last
  // (a fallback's, as the body's `model`); a stream's go out before any fallback could start.
  // With MCP servers the tool loop makes more calls after the first, whose waits the first call's
  // timing does not hold: its headers are taken now, at the first content, as a stream's are.
  const servedBy = () => (started.chat ? servedByHeaders(started.chat, request.arrivedAt, started.chat.ttftMs, undefined, 'anthropic') : {});
  const atFirstContent = prepared.body.mcp_servers?.length ? servedBy() : undefined;
  const headers = (): Record<string, string> => ({
    ...(atFirstContent ?? servedBy()),
    'request-id': String(request.id),
    ...(info.correlationId && { 'x-correlation-id': info.correlationId }),
  });

  if (!stream) {
    for await (const part of started.stream) {
      if (part.type === 'error') throw toGatewayError(part.error);
      renderer.push(part);
    }
    renderer.end();
    const message = renderer.message();
    await turn?.keep(message.id as string, message);
    return reply.headers(headers()).send(message);
  }

  reply.hijack();
  const writer = new StreamWriter(reply);
  writer.start(200, { ...SSE_HEADERS, ...headers(), 'x-request-id': String(request.id) });
  try {
    for await (const event of messageEvents(started.stream, renderer, String(request.id))) {
      if (writer.isClosed) break;
      // The whole reply or none of it: a thread holds a stream that reached message_stop, and
      // holds it before the client sees the end, so a continue sent at once finds it.
      if (event.event === 'message_stop' && turn) {
        const message = renderer.message();
        await turn.keep(message.id as string, message);
      }
      await writer.sse({ event: event.event, data: eventJson(event) });
      if (event.event === 'content_block_delta') writer.contentWritten();
    }
  } catch (err) {
    // Nothing may escape after the headers are out: end with an error event instead.
    context.logger.error({ err, reqId: request.id }, 'messages stream failed');
    await writer.sse({ event: 'error', data: JSON.stringify(anthropicErrorBody(toGatewayError(err), String(request.id))) })?.catch(() => undefined);
  } finally {
    writer.end();
  }
}

/**
 * count_tokens takes no max_tokens; the messages parser needs one, above a thinking budget
 * (which must stay below it) when the body has one.
 */
function withCountingMaxTokens(raw: Record<string, unknown>): Record<string, unknown> {
  // As Anthropic's: `compaction` is accepted and ignored, the count is of the conversation as sent.
  const { compaction: _ignored, ...body } = raw;
  if (body.max_tokens !== undefined) return body;
  const budget = (body.thinking as { budget_tokens?: unknown } | undefined)?.budget_tokens;
  return { ...body, max_tokens: typeof budget === 'number' && Number.isFinite(budget) ? budget + 1 : 1 };
}

/**
 * POST /v1/messages/count_tokens (the SDK's messages.countTokens): the prompt's tokens as the
 * upstream counts them (Anthropic, Bedrock), else the local tokenizer's, else an estimate; the
 * `x-switchboard-token-count` header says which.
 */
async function countTokens(deps: MessagesDeps, request: FastifyRequest, reply: FastifyReply) {
  const raw = request.body && typeof request.body === 'object' ? withCountingMaxTokens(request.body as Record<string, unknown>) : request.body;
  const { request: chatRequest } = await prepareMessages(raw, deps.context.gateway, deps.config, betasOf(request.headers['anthropic-beta']), true);
  const context = requestContext(request, reply, { dialect: 'messages', route: '/v1/messages/count_tokens', stream: false });
  const counted = await deps.context.gateway.countInputTokens(chatRequest, context);
  reply.header('x-switchboard-token-count', counted.source);
  return { input_tokens: counted.tokens };
}

export function registerMessagesRoutes(app: FastifyInstance, deps: MessagesDeps): void {
  const { store, logger } = deps.context;
  const threads = new MessageThreads(store.coordination?.threads ?? new MemoryThreadStore(), (err) =>
    logger.warn({ err }, 'a message thread could not be held; its continue will be a thread_not_found'),
  );
  app.post('/v1/messages', (request, reply) => createMessage(deps, threads, request, reply));
  app.post('/v1/messages/count_tokens', (request, reply) => countTokens(deps, request, reply));
}
