// An SSE response body → canonical parts, in one async generator: bytes are parsed into events
// and events converted into parts synchronously as each network chunk arrives, so a part costs
// one yield here rather than one per layer (bytes → events → chunks → parts).

import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { StreamPart } from '../../core/types.js';
import type { OpenAIErrorObject } from './api.js';
import { errorFromStreamEvent, invalidUpstream } from './errors.js';
import { parseChunk, type ChunkConverter } from './stream.js';

/**
 * Reading continues after `[DONE]` until the body ends, so the connection goes back to the pool
 * instead of being torn down.
 */
export async function* partsFromEventStream(body: AsyncIterable<Uint8Array | string>, converter: ChunkConverter): AsyncGenerator<StreamPart> {
  const out: StreamPart[] = [];
  let sawDone = false;
  let failure: unknown;
  // The first line that is not SSE at all (an HTML page, bare JSON) explains a stream that then
  // ended without a result.
  let invalidLine: string | undefined;
  const onEvent = (event: EventSourceMessage) => {
    // Blank data lines are keep-alives on some proxies; nothing after [DONE] counts.
    if (failure !== undefined || sawDone || event.data.trim() === '') return;
    if (event.data === '[DONE]') {
      sawDone = true;
      return;
    }
    try {
      const chunk = parseChunk(event.data);
      if (chunk.error !== undefined || event.event === 'error') throw errorFromStreamEvent(chunk.error ?? (chunk as OpenAIErrorObject));
      converter.push(chunk, out);
    } catch (err) {
      failure = err;
    }
  };
  const parser = createParser({ onEvent, onError: (error) => (invalidLine ??= error.line ?? error.message) });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (out.length > 0) {
      const ready = out.splice(0);
      for (const part of ready) yield part;
    }
    if (failure !== undefined) throw failure;
  }
  parser.feed(decoder.decode());
  if (failure !== undefined) {
    yield* out.splice(0);
    throw failure;
  }
  try {
    converter.end(sawDone, out);
  } catch (err) {
    // The better explanation of an incomplete stream is a body that was not SSE at all.
    if (invalidLine !== undefined) throw invalidUpstream(`The upstream did not send server-sent events: ${invalidLine.slice(0, 200)}`, err);
    throw err;
  }
  yield* out;
}
