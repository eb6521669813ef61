// The event sequence of one Messages response, shared by the streaming /v1/messages and the
// async runs (whose observers must see exactly what a streaming client would).

import { randomUUID } from 'node:crypto';
import { toGatewayError } from '../../core/errors.js';
import type { MessagesPart } from './fallbacks.js';
import type { MessageEvent, MessageEventRenderer } from './render-events.js';

/** `msg_` and 24 hex digits. randomUUID draws from a pooled entropy buffer; randomBytes was a getrandom call per message. */
export function newMessageId(): string {
  return `msg_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
}

/** Ends with message_stop, or with an `error` event when the stream fails after it began. */
export async function* messageEvents(stream: AsyncIterable<MessagesPart>, renderer: MessageEventRenderer, requestId?: string): AsyncGenerator<MessageEvent> {
  let begun = false;
  for await (const part of stream) {
    if (!begun) {
      // The first part is normally `start`, whose usage message_start reports.
      begun = true;
      yield* renderer.begin(part.type === 'start' ? part.usage : undefined);
    }
    if (part.type === 'error') {
      yield* renderer.fail(toGatewayError(part.error), requestId);
      return;
    }
    let events;
    try {
      events = renderer.push(part);
    } catch (err) {
      // What the renderer refuses (a tool call whose input is no JSON object) is the upstream's
      // fault, told to the client as any upstream failure is.
      yield* renderer.fail(toGatewayError(err), requestId);
      return;
    }
    yield* events;
  }
  if (!begun) yield* renderer.begin();
  yield* renderer.end();
}
