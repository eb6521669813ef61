// Graceful shutdown. The listener closes at once (new connections are refused, a request on a
// kept-alive connection gets 503 `server_shutting_down` with `connection: close`); requests in
// flight go on until they finish or the grace period ends, when each still running is ended with a 503
// `server_shutting_down` — an in-stream error event when its stream had begun — so a client sees
// why, never a silent cut, and its upstream call is cancelled.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { GatewayError } from '../core/errors.js';
import type { Cancellation } from '../core/router/cancellation.js';

/** Chat requests being served (their cancellations), so a shutdown can end those that outlast it. */
export class InFlightRequests {
  private readonly live = new Set<Cancellation>();
  /** Set once the shutdown begins: a request arriving after it is refused (refuseDuringShutdown). */
  closing = false;

  track(cancellation: Cancellation, reply: FastifyReply, onClose: () => void): void {
    this.live.add(cancellation);
    reply.raw.once('close', () => {
      this.live.delete(cancellation);
      onClose();
    });
  }

  get size(): number {
    return this.live.size;
  }

  /** Ends every request still running with `error`; returns how many there were. */
  endAll(error: GatewayError): number {
    const ended = this.live.size;
    for (const cancellation of [...this.live]) cancellation.abort(error);
    return ended;
  }
}

export function shutdownError(): GatewayError {
  return new GatewayError('unavailable', 'The server is shutting down; send the request again', { code: 'server_shutting_down', retryAfter: 1 });
}

/**
 * Closes the app, letting requests in flight finish for up to `graceMs`. Connections that go idle
 * meanwhile are closed as they do: a client's kept-alive connection would otherwise hold the
 * close until the client dropped it.
 */
export async function drain(app: FastifyInstance, inFlight: InFlightRequests, graceMs: number, onDeadline: (ended: number) => void): Promise<void> {
  inFlight.closing = true;
  const sweep = setInterval(() => app.server.closeIdleConnections(), 100).unref();
  const deadline = setTimeout(() => onDeadline(inFlight.endAll(shutdownError())), graceMs).unref();
  try {
    await app.close();
  } finally {
    clearInterval(sweep);
    clearTimeout(deadline);
  }
}

/**
 * A request arriving on a kept-alive connection once the shutdown has begun: a 503
 * `server_shutting_down` with Retry-After, in its dialect's error shape (Fastify's own answer,
 * turned off, had a shape of its own), and the connection closed after it.
 */
export function refuseDuringShutdown(reply: FastifyReply): never {
  reply.header('connection', 'close');
  throw shutdownError();
}
