// Executes an async Messages run: the same request path and the same events as a streaming
// /v1/messages, appended to the run's log instead of written to one client.

import type { GatewayError } from '../../core/errors.js';
import { toGatewayError } from '../../core/errors.js';
import type { RequestContext } from '../../core/gateway.js';
import { newRequestId } from '../../core/gateway.js';
import type { RunExecution, RunKind, RunOutcome } from '../../core/async/runner.js';
import type { AnthropicErrorBody } from './errors.js';
import { anthropicErrorBody, anthropicErrorType } from './errors.js';
import { messageEvents } from './message-events.js';
import { prepareMessages } from './prepare.js';
import { eventJson, MessageEventRenderer } from './render-events.js';
import type { MessagesDeps } from './start.js';
import { startMessages } from './start.js';

export const MESSAGES_RUN_KIND = 'messages';

/**
 * What a Messages run keeps of its request (the store holds it as opaque text): the body, and
 * the `anthropic-beta` values it came with, which the run needs as much as the body. Runs stored
 * before the betas were kept hold the bare body.
 */
interface StoredMessagesRequest {
  messagesRun: 1;
  body: unknown;
  betas: string[];
}

export function storeMessagesRequest(body: unknown, betas: string[]): string {
  return JSON.stringify({ messagesRun: 1, body, betas } satisfies StoredMessagesRequest);
}

function readMessagesRequest(text: string): { body: unknown; betas: string[] } {
  const parsed = JSON.parse(text) as Partial<StoredMessagesRequest> | null;
  if (parsed?.messagesRun === 1) return { body: parsed.body, betas: Array.isArray(parsed.betas) ? parsed.betas : [] };
  return { body: parsed, betas: [] };
}

function failure(error: GatewayError): RunOutcome['error'] {
  return { type: anthropicErrorType(error), message: error.message };
}

async function execute(deps: MessagesDeps, { run, signal, emit, setModel }: RunExecution): Promise<RunOutcome> {
  const requestId = newRequestId('run');
  try {
    const { admission } = deps.context.gateway;
    // Admitted for execution only while the key that queued it still authenticates (not revoked
    // or expired meanwhile) and may still use the model: else it fails here, before any call,
    // so nothing runs or is charged to that key.
    await admission?.checkKey({ keyId: run.keyId });
    const { body, betas } = readMessagesRequest(run.request);
    const prepared = await prepareMessages(body, deps.context.gateway, deps.config, betas);
    const { info } = prepared;
    await admission?.checkModel(prepared.request, info.model, { keyId: run.keyId });
    const ctx: RequestContext = {
      requestId,
      organisation: run.organisation,
      keyId: run.keyId,
      dialect: 'messages',
      route: '/v1/messages/async',
      correlationId: info.correlationId,
      stream: true,
      signal,
      startedAt: performance.now(),
    };
    const started = await startMessages(prepared, ctx, deps);
    const model = started.modelId;
    await setModel(model);
    // The message id is the run's id, so the final message and the run name each other.
    const renderer = new MessageEventRenderer({ id: run.id, model, omitThinking: info.omitThinking });
    let failed: RunOutcome['error'];
    let finalEvent: RunOutcome['finalEvent'];
    for await (const event of messageEvents(started.stream, renderer, requestId)) {
      if (signal.aborted) break;
      if (event.event === 'error') failed = (event.data as unknown as AnthropicErrorBody).error;
      // The last event (message_stop or error) is stored with the run's end, in one step: whoever
      // reads it, in any process, then reads a finished run.
      if (event.event === 'message_stop' || event.event === 'error') finalEvent = { event: event.event, data: eventJson(event) };
      else await emit(event.event, eventJson(event));
    }
    const usage = renderer.totalUsage;
    if (signal.aborted) return { status: 'failed', usage };
    if (failed) return { status: 'failed', usage, error: failed, model, finalEvent };
    return { status: 'completed', usage, result: renderer.message(), model, finalEvent };
  } catch (err) {
    if (signal.aborted) return { status: 'failed' };
    const error = toGatewayError(err);
    // A failure before the first byte is an HTTP error on /v1/messages; here it is the only event.
    return { status: 'failed', error: failure(error), finalEvent: { event: 'error', data: JSON.stringify(anthropicErrorBody(error, requestId)) } };
  }
}

export function messagesRunKind(deps: MessagesDeps): RunKind {
  return {
    execute: (execution) => execute(deps, execution),
    terminalEvent: (reason, message) => ({
      event: 'error',
      data: JSON.stringify({ type: 'error', error: { type: reason === 'cancelled' ? 'cancelled_error' : 'api_error', message } }),
    }),
  };
}
