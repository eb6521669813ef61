// POST /v1/chat/completions (+ the seed's alias), GET /v1/models, GET /v1/sessions/:id.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, toGatewayError } from '../../core/errors.js';
import { checkSessionId, recordSessionTurn, sessionHistory, withSessionHistory } from '../../core/sessions.js';
import { PartReader, ResponseCollector, collectStream, isContentPart } from '../../core/stream.js';
import { truncatePrompt } from '../../core/truncate.js';
import { parseBody } from '../../core/validation.js';
import type { ServerContext } from '../../server/context.js';
import { requestContext, servedByHeaders } from '../../server/context.js';
import { listedModel, listedModels, type ListedModel } from '../../server/model-list.js';
import { SSE_HEADERS, StreamWriter } from '../../server/sse.js';
import { openAIErrorBody } from './errors.js';
import { parseChatCompletionRequest } from './parse-request.js';
import { ChunkRenderer, renderCompletion } from './render.js';
import { renderMessages } from './render-messages.js';
import { chatCompletionRequestSchema } from './schema.js';

/** The seed vendor's route trims prompts to 1500 tokens unless told otherwise (seed 004); /v1 does not. */
const SEED_DEFAULT_TRUNCATE_LEN = 1500;

function completionId(): string {
  // randomUUID draws from a pooled entropy buffer; randomBytes was a getrandom call per request.
  return `chatcmpl-${randomUUID().replaceAll('-', '')}`;
}

/** "Shorten the conversation" cannot be done by a client whose history the server holds: say what can. */
function withSessionHint(err: unknown, sessionId: string, sessionMessages: number): unknown {
  if (!(err instanceof GatewayError) || err.kind !== 'context_window') return err;
  err.message += ` The session '${sessionId}' adds ${sessionMessages} earlier messages to this request: send prompt_truncate_len to drop the oldest, or start a new X-Session-ID.`;
  return err;
}

async function chatCompletions(context: ServerContext, request: FastifyRequest, reply: FastifyReply, route: string, defaultTruncateLen?: number) {
  const { gateway, store } = context;
  const body = parseBody(chatCompletionRequestSchema, request.body);
  const organisation = request.auth!.organisation;
  const sessionHeader = request.headers['x-session-id'];
  const sessionId = typeof sessionHeader === 'string' && sessionHeader.length > 0 ? checkSessionId(sessionHeader) : undefined;
  // A tool result may answer a call the session holds: the history is read before the checks.
  const history = sessionId ? await sessionHistory(store, organisation, sessionId) : [];
  const original = await parseChatCompletionRequest(body, history);
  let chatRequest = withSessionHistory(history, original);
  const sessionMessages = chatRequest.messages.length - original.messages.length;
  const truncateLen = body.prompt_truncate_len ?? defaultTruncateLen;
  if (truncateLen !== undefined) {
    chatRequest = (await truncatePrompt(chatRequest, truncateLen, (r, limit) => gateway.countPromptTokens(r, limit))).request;
  }

  const stream = body.stream === true;
  const ctx = requestContext(request, reply, { dialect: 'openai', route, stream, organisation });
  const result = await gateway.chat(chatRequest, ctx).catch((err: unknown) => {
    throw sessionId && sessionMessages > 0 ? withSessionHint(err, sessionId, sessionMessages) : err;
  });
  const meta = {
    id: completionId(),
    created: Math.floor(Date.now() / 1000),
    model: result.model.id,
    includeReasoning: !chatRequest.reasoning?.exclude,
    logprobs: chatRequest.logprobs !== undefined,
  };
  const headers = servedByHeaders(result, request.arrivedAt, result.ttftMs);

  if (!stream) {
    const collected = await collectStream(result.stream);
    const summary = await result.done;
    if (sessionId) await recordSessionTurn(store, organisation, sessionId, original.messages, collected.choices[0]!);
    return reply.headers(headers).send(renderCompletion(collected, meta, summary.cost));
  }

  reply.hijack();
  const writer = new StreamWriter(reply);
  writer.start(200, { ...SSE_HEADERS, ...headers, 'x-request-id': String(request.id) });
  const renderer = new ChunkRenderer(meta);
  const collector = new ResponseCollector();
  let failure: GatewayError | undefined;
  // Parts that arrived together are taken without a promise each (src/core/stream.ts).
  const parts = new PartReader(result.stream);
  try {
    for (let part; (part = parts.ready() ?? (await parts.next())) !== undefined; ) {
      if (writer.isClosed) break;
      collector.add(part);
      if (part.type === 'error') {
        failure = toGatewayError(part.error);
        break;
      }
      for (const chunk of renderer.render(part)) {
        const backPressure = writer.sse({ data: chunk });
        if (backPressure) await backPressure;
      }
      if (isContentPart(part)) writer.contentWritten();
    }
    if (writer.isClosed) return;
    if (failure) {
      await writer.sse({ data: JSON.stringify(openAIErrorBody(failure)) });
    } else {
      const summary = await result.done;
      await writer.sse({ data: renderer.usageChunk(summary.usage, summary.cost) });
      if (sessionId) await recordSessionTurn(store, organisation, sessionId, original.messages, collector.choice(0));
    }
    await writer.sse({ data: '[DONE]' });
  } catch (err) {
    // Nothing may escape after the headers are out: end with an error event instead.
    context.logger.error({ err, reqId: request.id }, 'stream failed');
    await writer.sse({ data: JSON.stringify(openAIErrorBody(toGatewayError(err))) })?.catch(() => undefined);
    await writer.sse({ data: '[DONE]' })?.catch(() => undefined);
  } finally {
    await parts.stop();
    writer.end();
  }
}

function openAIModel({ id, model }: ListedModel) {
  return { id, object: 'model', created: model.created, owned_by: model.ownedBy };
}

export function registerOpenAIRoutes(app: FastifyInstance, context: ServerContext): void {
  app.addHook('preHandler', async (request) => {
    request.auth = await context.auth.authenticate(request);
  });

  app.post('/v1/chat/completions', (request, reply) => chatCompletions(context, request, reply, '/v1/chat/completions'));
  app.post('/api/v3/inference/chat/completions', (request, reply) =>
    chatCompletions(context, request, reply, '/api/v3/inference/chat/completions', SEED_DEFAULT_TRUNCATE_LEN),
  );

  // Every model id and alias the caller's key may use (Anthropic's SDK gets its own list: messages/models-routes.ts).
  app.get('/v1/models', async (request) => ({ object: 'list', data: listedModels(context, request.auth).map(openAIModel) }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => openAIModel(listedModel(context, request.auth, request.params.id)));

  app.get<{ Params: { id: string } }>('/v1/sessions/:id', async (request) => {
    const id = checkSessionId(request.params.id, 'id');
    const messages = await context.store.readSession(request.auth!.organisation, id);
    if (!messages) throw new GatewayError('not_found', `No session '${id}'`, { param: 'id', code: 'session_not_found' });
    return { id, object: 'chat.session', messages: renderMessages(messages) };
  });
}
