// Seed 003's async runs: POST /v1/messages/async, GET …/{id} (status), GET …/{id}/events
// (observe, with replay), DELETE …/{id} (cancel). Everything is scoped by organisation.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, badRequest } from '../../core/errors.js';
import { checkRunId, newRunId } from '../../core/async/ids.js';
import { observeRun } from '../../core/async/observe.js';
import type { AsyncRunner } from '../../core/async/runner.js';
import type { AsyncRunRecord, AsyncRunStore } from '../../store/async-runs.js';
import { SSE_HEADERS, StreamWriter, formatSse } from '../../server/sse.js';
import { MESSAGES_RUN_KIND, storeMessagesRequest } from './async-run-kind.js';
import { betasOf } from './field-policy.js';
import { prepareMessages } from './prepare.js';
import { renderUsage } from './render-events.js';
import type { MessagesDeps } from './start.js';

// Ids may be 128 characters, past Fastify's 100-character limit on route parameters, so the
// id routes are one wildcard each and split the path themselves.
type RunRoute = { Params: { '*': string }; Querystring: { starting_after?: string } };

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `No async message '${id}'`, { param: 'message_id', code: 'message_not_found' });
}

async function statusBody(store: AsyncRunStore, run: AsyncRunRecord): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {
    message_id: run.id,
    status: run.status,
    model: run.model,
    priority: run.priority,
    created_at: iso(run.createdAt),
    started_at: iso(run.startedAt),
    finished_at: iso(run.finishedAt),
    usage: run.usage ? renderUsage(run.usage) : null,
    error: run.error ?? null,
    message: run.status === 'completed' ? (run.result ?? null) : null,
    event_count: run.eventCount,
  };
  if (run.status === 'pending') body.queue_position = (await store.queuePosition(run.organisation, run.id)) ?? null;
  if (run.correlationId) body.correlation_id = run.correlationId;
  return body;
}

/** Where an observer resumes: after Last-Event-ID, or after ?starting_after=N, else from the start. */
function resumeAfter(request: FastifyRequest<RunRoute>): number {
  const header = request.headers['last-event-id'];
  const [raw, param] = typeof header === 'string' && header.length ? [header, 'Last-Event-ID'] : [request.query.starting_after, 'starting_after'];
  if (raw === undefined || raw === '') return 0;
  if (!/^\d{1,15}$/.test(raw)) throw badRequest(`${param} must be a non-negative event sequence number`, param, 'invalid_event_id');
  return Number(raw);
}

export function registerAsyncRoutes(app: FastifyInstance, deps: MessagesDeps, runner: AsyncRunner): void {
  const { context } = deps;
  const store = runner.store;

  const findRun = async (request: FastifyRequest<RunRoute>, rawId: string): Promise<AsyncRunRecord> => {
    const id = checkRunId(rawId, 'message_id');
    const run = await store.get(request.auth!.organisation, id);
    if (!run) throw notFound(id);
    return run;
  };

  app.post<{ Querystring: { message_id?: string } }>('/v1/messages/async', async (request, reply) => {
    // Validated like /v1/messages, so a bad body is refused now rather than failing later.
    const betas = betasOf(request.headers['anthropic-beta']);
    const { info } = await prepareMessages(request.body, context.gateway, deps.config, betas);
    const id = request.query.message_id !== undefined ? checkRunId(request.query.message_id) : newRunId();
    const created = await runner.submit({
      organisation: request.auth!.organisation,
      id,
      kind: MESSAGES_RUN_KIND,
      priority: info.priority,
      model: info.model.id,
      request: storeMessagesRequest(request.body, betas),
      userId: info.userId,
      correlationId: info.correlationId,
      keyId: request.auth!.key?.id,
    });
    if (!created) throw new GatewayError('conflict', `An async message with id '${id}' already exists`, { param: 'message_id', code: 'message_id_exists' });
    if (info.correlationId) reply.header('x-correlation-id', info.correlationId);
    return reply.status(202).send({ message_id: id, status: 'pending', message: 'Request initiated successfully' });
  });

  app.get<RunRoute>('/v1/messages/async/*', async (request, reply) => {
    const path = request.params['*'];
    if (path.endsWith('/events')) return observeEvents(request, reply, await findRun(request, path.slice(0, -'/events'.length)));
    return statusBody(store, await findRun(request, path));
  });

  app.delete<RunRoute>('/v1/messages/async/*', async (request) => {
    const run = await findRun(request, request.params['*']);
    if (run.status !== 'pending' && run.status !== 'running') {
      throw new GatewayError('conflict', `The async message '${run.id}' has already ended (${run.status})`, { param: 'message_id', code: 'message_already_ended' });
    }
    const ended = await runner.cancel(run.organisation, run.id);
    return statusBody(store, ended ?? run);
  });

  const observeEvents = async (request: FastifyRequest<RunRoute>, reply: FastifyReply, run: AsyncRunRecord): Promise<void> => {
    const after = resumeAfter(request);
    reply.hijack();
    const writer = new StreamWriter(reply);
    writer.start(200, { ...SSE_HEADERS, 'x-request-id': String(request.id), 'request-id': String(request.id) });
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    const signal = AbortSignal.any([gone.signal, runner.stopped]);
    try {
      for await (const event of observeRun(store, runner.hub, run.organisation, run.id, after, signal)) {
        if (writer.isClosed) break;
        await writer.write(formatSse({ id: event.seq, event: event.event, data: event.data }));
      }
    } catch (err) {
      context.logger.error({ err, reqId: request.id }, 'async observe failed');
    } finally {
      writer.end();
    }
  };
}
