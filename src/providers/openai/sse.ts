// An SSE response body → canonical parts: bytes are parsed into events and events converted into
// parts synchronously as each network chunk arrives. The provider's own generator yields them,
// so a part crosses one async generator, not one per layer (bytes → events → chunks → parts).

import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';
import type { StreamPart } from '../../core/types.js';
import type { OpenAIErrorObject } from './api.js';
import { errorFromStreamEvent, invalidUpstream } from './errors.js';
import { parseChunk, type ChunkConverter } from './stream.js';

/**
 * Use: `for (const part of reader.feed(chunk)) yield part; reader.check();` per network chunk,
 * then the same with `end()`. Reading continues after `[DONE]` until the body ends, so the
 * connection goes back to the pool instead of being torn down.
 */
export class EventStreamReader {
  private out: StreamPart[] = [];
  private sawDone = false;
  private failure: unknown;
  /** The first line that is not SSE at all (an HTML page, bare JSON) explains a stream that then ended without a result. */
  private invalidLine?: string;
  private readonly parser: EventSourceParser;
  private readonly decoder = new TextDecoder();

  constructor(private readonly converter: ChunkConverter) {
    this.parser = createParser({
      onEvent: (event) => this.onEvent(event),
      onError: (error) => (this.invalidLine ??= error.line ?? error.message),
    });
  }

  /** The parts this network chunk completed. */
  feed(chunk: Uint8Array | string): StreamPart[] {
    this.parser.feed(typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true }));
    return this.take();
  }

  /** Throws what an event carried (an error event, data that is not a JSON chunk), after the parts before it are out. */
  check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** The body ended: the last parts (the finish parts), or the reason the stream is incomplete. */
  end(): StreamPart[] {
    this.parser.feed(this.decoder.decode());
    if (this.failure !== undefined) return this.take();
    try {
      this.converter.end(this.sawDone, this.out);
    } catch (err) {
      // The better explanation of an incomplete stream is a body that was not SSE at all.
      if (this.invalidLine !== undefined) throw invalidUpstream(`The upstream did not send server-sent events: ${this.invalidLine.slice(0, 200)}`, err);
      throw err;
    }
    return this.take();
  }

  private take(): StreamPart[] {
    const ready = this.out;
    if (ready.length > 0) this.out = [];
    return ready;
  }

  private onEvent(event: EventSourceMessage): void {
    // Blank data lines are keep-alives on some proxies; nothing after [DONE] counts.
    if (this.failure !== undefined || this.sawDone || event.data.trim() === '') return;
    if (event.data === '[DONE]') {
      this.sawDone = true;
      return;
    }
    try {
      const chunk = parseChunk(event.data);
      if (chunk.error !== undefined || event.event === 'error') throw errorFromStreamEvent(chunk.error ?? (chunk as OpenAIErrorObject));
      this.converter.push(chunk, this.out);
    } catch (err) {
      this.failure = err;
    }
  }
}
