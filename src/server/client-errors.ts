// Errors Node raises on a connection rather than on a request: a request still not received
// after server.requestTimeoutSeconds (a trickled body), headers too large, bytes that are not
// HTTP. Fastify answers them in its own JSON; here a request whose headers have arrived gets its
// dialect's error shape (by its path, as an unknown route does), and anything else the generic one.

import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../core/errors.js';

export type RenderClientError = (error: GatewayError, request: FastifyRequest | undefined) => { status: number; body: unknown; headers: Record<string, string> };

export class ClientErrors {
  /** The last request whose headers each connection delivered. */
  private readonly latest = new WeakMap<Socket, FastifyRequest>();

  constructor(
    private readonly render: RenderClientError,
    private readonly requestTimeoutSeconds: number,
  ) {}

  received(request: FastifyRequest): void {
    this.latest.set(request.raw.socket, request);
  }

  /** The request the connection is still receiving: one whose body has not all arrived. */
  private receiving(socket: Socket): FastifyRequest | undefined {
    const request = this.latest.get(socket);
    return request && !request.raw.complete ? request : undefined;
  }

  /** Fastify's `clientErrorHandler`: answers once, in the right shape, and closes the connection. */
  readonly handle = (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const request = this.receiving(socket);
    const { status, body, headers } = this.render(this.errorOf(err, request !== undefined), request);
    const text = JSON.stringify(body);
    const lines = Object.entries({ ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), connection: 'close' });
    if (socket.writable) socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${text}`);
    socket.destroy(err);
  };

  private errorOf(err: NodeJS.ErrnoException, headersArrived: boolean): GatewayError {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      // Node times the headers apart, within the whole request's limit (app.ts, requestTimeouts).
      const message = headersArrived
        ? `The request was not received in full within ${this.requestTimeoutSeconds} s (server.requestTimeoutSeconds)`
        : `The request headers were not received within ${this.requestTimeoutSeconds > 0 ? Math.min(60, this.requestTimeoutSeconds) : 60} s`;
      return new GatewayError('timeout', message, { code: 'request_timeout', status: 408 });
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') return new GatewayError('bad_request', 'The request headers are too large', { code: 'headers_too_large', status: 431 });
    return new GatewayError('bad_request', 'The request is not valid HTTP', { code: 'malformed_request' });
  }
}

/** A path no route serves ("Unknown route METHOD PATH"), with `hint` naming a route near it. */
export function unknownRouteError(method: string, url: string, hint = ''): GatewayError {
  return new GatewayError('not_found', `Unknown route ${method} ${url.split('?')[0]!}${hint}`, { code: 'unknown_route' });
}
