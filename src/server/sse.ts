// A small writer for streamed responses on the raw Node response: SSE framing (split multi-line
// data, refuse CR/LF in event/id, as Hono's writeSSE does) and back-pressure (await 'drain').

import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

export interface SseEvent {
  id?: string | number;
  event?: string;
  data: string;
}

function assertSingleLine(value: string, field: string): void {
  if (/[\r\n]/.test(value)) throw new Error(`SSE ${field} must not contain CR or LF`);
}

export function formatSse(event: SseEvent): string {
  let out = '';
  if (event.id !== undefined) {
    assertSingleLine(String(event.id), 'id');
    out += `id: ${event.id}\n`;
  }
  if (event.event !== undefined) {
    assertSingleLine(event.event, 'event');
    out += `event: ${event.event}\n`;
  }
  // JSON data has no line breaks: skip the split on the hot path.
  if (!event.data.includes('\n') && !event.data.includes('\r')) out += `data: ${event.data}\n`;
  else for (const line of event.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

export class StreamWriter {
  private closed = false;
  /** Text written during this turn of the event loop, not yet handed to the socket. */
  private pending = '';
  private flushScheduled = false;
  private contentSent = false;
  /** writeHead stored the headers but nothing has carried them out yet (Node's headersSent is already true then). */
  private headersWaiting = false;

  private readonly res: ServerResponse;

  /** On a hijacked reply: the headers hooks set on it (x-request-id, CORS) are sent with the stream's own. */
  constructor(private readonly reply: FastifyReply) {
    const res = (this.res = reply.raw);
    res.once('close', () => {
      this.closed = true;
    });
  }

  /** True once the client has gone. */
  get isClosed(): boolean {
    return this.closed || this.res.destroyed;
  }

  /**
   * Sends the status line and headers at the end of this turn of the event loop (streams start
   * before the body exists), together with whatever is written in the meantime: one write, not two.
   */
  start(status: number, headers: Record<string, string | number>): void {
    this.res.writeHead(status, { ...this.reply.getHeaders(), ...headers } as Record<string, string | number>);
    this.headersWaiting = true;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushQueued);
  }

  /**
   * Queues a chunk; what is written in one turn of the event loop leaves as one write (one chunk
   * of the chunked encoding, one syscall): a fast upstream delivers many small events at once,
   * and a write each was a visible cost. Returns a promise only when the socket's buffer is full
   * (await it: back-pressure); otherwise nothing, so a token costs no promise here.
   */
  write(chunk: string): Promise<void> | undefined {
    if (this.isClosed) return undefined;
    this.pending += chunk;
    this.scheduleFlush();
    if (!this.res.writableNeedDrain) return undefined;
    const drained = Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    const { ms: stallMs, logger } = this.reply.server.streamStall;
    if (stallMs <= 0) return drained.then(() => undefined);
    // A client that stopped reading would hold what feeds this stream (a local sequence, an
    // upstream call) for as long as it likes: close it after server.streamStallSeconds.
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        logger.warn({ reqId: this.reply.request.id, stallSeconds: stallMs / 1000 }, 'the client stopped reading the stream: closing it (server.streamStallSeconds)');
        this.res.destroy();
        resolve();
      }, stallMs);
    });
    return Promise.race([drained, stalled]).then(() => clearTimeout(timer));
  }

  private readonly flushQueued = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Hands queued text to the socket now (before the caller touches the socket itself). */
  flush(): void {
    if (this.isClosed || this.res.writableEnded) return;
    if (this.pending === '') {
      // Nothing to write this turn (an observer waiting for a queued run's first event): the
      // headers leave alone, so the client knows the stream is open.
      if (this.headersWaiting) this.res.flushHeaders();
      this.headersWaiting = false;
      return;
    }
    const text = this.pending;
    this.pending = '';
    this.headersWaiting = false;
    this.res.write(text);
  }

  /**
   * Tells the writer the response's first content (the first token) is queued: it leaves now, with
   * the headers and whatever preceded it, instead of at the end of the turn — a fast upstream's
   * first token must not wait while the rest of the same read is converted. Later writes
   * coalesce per turn as before.
   */
  contentWritten(): void {
    if (this.contentSent) return;
    this.contentSent = true;
    this.flush();
  }

  /** One event; like write(), returns a promise only under back-pressure. */
  sse(event: SseEvent): Promise<void> | undefined {
    return this.write(formatSse(event));
  }

  /** Ends the response; text still queued leaves with the end in one write. */
  end(): void {
    if (this.res.writableEnded) return;
    const text = this.pending;
    this.pending = '';
    if (text !== '' && !this.isClosed) this.res.end(text);
    else this.res.end();
  }
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;
