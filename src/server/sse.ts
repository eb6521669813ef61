// A small writer for streamed responses on the raw Node response: SSE framing (split multi-line
// data, refuse CR/LF in event/id, as Hono's writeSSE does) and back-pressure (await 'drain').

import { once } from 'node:events';
import type { ServerResponse } from 'node:http';

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
  private corked = false;

  constructor(private readonly res: ServerResponse) {
    res.once('close', () => {
      this.closed = true;
    });
  }

  /** True once the client has gone. */
  get isClosed(): boolean {
    return this.closed || this.res.destroyed;
  }

  /** Sends the status line and headers now (streams start before the body exists). */
  start(status: number, headers: Record<string, string | number>): void {
    this.res.writeHead(status, headers);
    this.res.flushHeaders();
  }

  /**
   * Writes a chunk, waiting for the socket to drain when its buffer is full. Chunks written in
   * the same turn of the event loop leave in one write (cork until setImmediate): a fast upstream
   * delivers many small events at once, and a syscall each was a visible cost.
   */
  async write(chunk: string): Promise<void> {
    if (this.isClosed) return;
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      setImmediate(() => {
        this.corked = false;
        this.res.uncork();
      });
    }
    if (!this.res.write(chunk)) {
      await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    }
  }

  async sse(event: SseEvent): Promise<void> {
    await this.write(formatSse(event));
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;
