// Server-sent events from a response body, yielded as the bytes arrive (nothing is buffered
// beyond the event being assembled).

import { createParser, type EventSourceMessage } from 'eventsource-parser';

/**
 * `onInvalidLine` hears about lines that are not SSE at all (an HTML page, bare JSON): the
 * caller uses the first one to explain why the stream then ended without a result.
 */
export async function* readServerSentEvents(
  body: AsyncIterable<Uint8Array | string>,
  onInvalidLine: (line: string) => void,
): AsyncGenerator<EventSourceMessage> {
  const pending: EventSourceMessage[] = [];
  const parser = createParser({
    onEvent: (event) => pending.push(event),
    onError: (error) => onInvalidLine(error.line ?? error.message),
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (pending.length === 0) continue;
    for (const event of pending.splice(0)) yield event;
  }
  parser.feed(decoder.decode());
  for (const event of pending.splice(0)) yield event;
}
