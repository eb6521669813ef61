// Seed 003's async runs: POST /v1/messages/async, GET …/{id} (status), GET …/{id}/events
// (observe, with replay), DELETE …/{id} (cancel); any other path under the prefix is a 404.
// Everything is scoped by organisation.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, badRequest } from '../../core/errors.js';
import { checkRunId, newRunId } from '../../core/async/ids.js';
import { observeRun } from '../../core/async/observe.js';
import type { AsyncRunner } from '../../core/async/runner.js';
import { TERMINAL_STATUSES, type AsyncRunEvent, type AsyncRunRecord, type AsyncRunStore } from '../../store/async-runs.js';
import { unknownRouteError } from '../../server/client-errors.js';
import { SSE_HEADERS, StreamWriter, formatSse } from '../../server/sse.js';
import { MESSAGES_RUN_KIND, storeMessagesRequest } from './async-run-kind.js';
import { anthropicErrorBody } from './errors.js';
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

/**
 * What a path under /v1/messages/async/ names: `{id}` (the run) or `{id}/events`; undefined for
 * anything else (`{id}/foo`, `{id}/events/`, an empty id), which is no route.
 */
function runPath(path: string): { id: string; events: boolean } | undefined {
  const parts = path.split('/');
  if (!parts[0]) return undefined;
  if (parts.length === 1) return { id: parts[0], events: false };
  if (parts.length === 2 && parts[1] === 'events') return { id: parts[0], events: true };
  return undefined;
}

/**
 * The last event of an observer's stream cut by this server's shutdown while the run has not
 * ended (still queued, or left to be re-queued at the next start): never a silent end. It has no
 * `id`: it is not one of the run's events, so a client reconnecting with Last-Event-ID resumes
 * after the last real one.
 */
function shutdownEvent(run: AsyncRunRecord, owner: string, requestId: string): string {
  const state =
    run.status === 'pending'
      ? 'this message is still queued and will run after the restart'
      : run.owner === owner
        ? 'this message had not started answering and will run again after the restart'
        : 'this message is still running on another server';
  const error = new GatewayError('unavailable', `The server is shutting down; ${state}. Reconnect to its events to follow it (Last-Event-ID resumes where this stream stopped)`, {
    code: 'server_shutting_down',
  });
  return formatSse({ event: 'error', data: JSON.stringify(anthropicErrorBody(error, requestId)) });
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
    const prepared = await prepareMessages(request.body, context.gateway, deps.config, betas);
    const { info } = prepared;
    // A model the key may not use is the 403 /v1/messages answers, now, not a failed run later.
    await context.gateway.admission?.checkModel(prepared.request, info.model, { keyId: request.auth!.key?.id });
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
    const route = runPath(request.params['*']);
    if (!route) throw unknownRouteError(request.method, request.url);
    if (route.events) return observeEvents(request, reply, await findRun(request, route.id));
    return statusBody(store, await findRun(request, route.id));
  });

  app.delete<RunRoute>('/v1/messages/async/*', async (request) => {
    const route = runPath(request.params['*']);
    if (!route || route.events) throw unknownRouteError(request.method, request.url);
    const run = await findRun(request, route.id);
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
    let cursor = after;
    const send = async (events: AsyncIterable<AsyncRunEvent>) => {
      for await (const event of events) {
        if (writer.isClosed) break;
        cursor = event.seq;
        await writer.write(formatSse({ id: event.seq, event: event.event, data: event.data }));
      }
    };
    try {
      // A shutdown ends the stream after what is stored, never silently: a run that has ended by
      // then ends it with its own last events; one that has not, with the shutdown's error event.
      await send(observeRun(store, runner.hub, run.organisation, run.id, after, gone.signal, runner.stopped));
      if (runner.stopped.aborted && !gone.signal.aborted && !writer.isClosed) {
        const now = await store.get(run.organisation, run.id);
        if (now && TERMINAL_STATUSES.includes(now.status)) await send(observeRun(store, runner.hub, run.organisation, run.id, cursor, gone.signal));
        else if (now) await writer.write(shutdownEvent(now, runner.owner, String(request.id)));
      }
    } catch (err) {
      context.logger.error({ err, reqId: request.id }, 'async observe failed');
    } finally {
      writer.end();
    }
  };
}
