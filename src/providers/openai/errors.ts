// Upstream failures → GatewayError. Three sources: an HTTP error status with its body, an error
// event inside a 200 stream, and the transport itself (refused, reset, timed out, aborted).

import { GatewayError, upstreamRedirect, upstreamTlsError } from '../../core/errors.js';
import { proxyRefusal, refusedTunnelStatus } from '../../core/proxy.js';
import type { OpenAIErrorObject } from './api.js';

const PROVIDER = 'openai';
const MAX_MESSAGE = 1000;

export type ResponseHeaders = Record<string, string | string[] | undefined>;

interface UpstreamError {
  message: string;
  code?: string;
  type?: string;
  param?: string;
  /** A numeric code, which OpenRouter and vLLM use for the HTTP status. */
  status?: number;
}

function header(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Seconds to wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an HTTP date). */
export function parseRetryAfter(headers: ResponseHeaders, now = Date.now()): number | undefined {
  const ms = Number(header(headers, 'retry-after-ms'));
  // Whole seconds: the value ends up in a Retry-After header, which takes no fractions.
  if (header(headers, 'retry-after-ms') && Number.isFinite(ms) && ms >= 0) return Math.ceil(ms / 1000);
  const value = header(headers, 'retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value));
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

function fromObject(error: OpenAIErrorObject | string | undefined, fallback: string): UpstreamError {
  if (typeof error === 'string') return { message: error };
  if (!error || typeof error !== 'object') return { message: fallback };
  return {
    message: typeof error.message === 'string' && error.message ? error.message : fallback,
    code: typeof error.code === 'string' ? error.code : undefined,
    type: typeof error.type === 'string' ? error.type : undefined,
    param: typeof error.param === 'string' ? error.param : undefined,
    status: typeof error.code === 'number' ? error.code : undefined,
  };
}

/** Reads OpenAI's `{error:{…}}`, vLLM's flat `{message, type, code}`, or plain text. */
export function parseErrorBody(text: string, status: number): UpstreamError {
  const fallback = text.trim().slice(0, MAX_MESSAGE) || `HTTP ${status}`;
  try {
    const body = JSON.parse(text) as { error?: OpenAIErrorObject | string; message?: string; detail?: unknown };
    if (body && typeof body === 'object') {
      if (body.error !== undefined) return fromObject(body.error, fallback);
      if (typeof body.message === 'string') return fromObject(body as OpenAIErrorObject, fallback);
      if (typeof body.detail === 'string') return { message: body.detail };
    }
  } catch {
    // Not JSON (an HTML error page from a proxy, say): the text itself is the message.
  }
  return { message: fallback };
}

const CONTEXT_PATTERN = /context[ _-]?(length|window)|maximum context|too many tokens|prompt is too long|reduce the length/i;
const CONTENT_PATTERN = /content[ _-]?(filter|policy|management)|safety system|flagged/i;

function isContextError(e: UpstreamError): boolean {
  return e.code === 'context_length_exceeded' || CONTEXT_PATTERN.test(e.message);
}

function isContentError(e: UpstreamError): boolean {
  return e.code === 'content_filter' || e.code === 'content_policy_violation' || CONTENT_PATTERN.test(e.message);
}

function describe(status: number | undefined, e: UpstreamError): string {
  return `Upstream ${status ? `answered ${status}` : 'reported an error'}: ${e.message.slice(0, MAX_MESSAGE)}`;
}

/** Maps an upstream status (from the HTTP response or a stream error's numeric code). */
export function errorFromStatus(status: number, e: UpstreamError, headers: ResponseHeaders = {}): GatewayError {
  const message = describe(status, e);
  const retryAfter = parseRetryAfter(headers);
  const base = { provider: PROVIDER, ...(retryAfter !== undefined ? { retryAfter } : {}) };
  if (status === 429) return new GatewayError('rate_limit', message, { ...base, code: e.code ?? 'rate_limit_exceeded' });
  if (status === 401 || status === 403) {
    // The gateway's credentials for this upstream failed, not the client's: answering 401 would
    // tell the client its own key is bad. Retryable so another deployment (other key) is tried.
    return new GatewayError('auth', message, { ...base, status: 502, code: 'upstream_auth_failed', retryable: true });
  }
  if (status === 404) {
    // The upstream does not know the configured model: a deployment problem another may not have.
    return new GatewayError('not_found', message, { ...base, code: 'model_not_found', retryable: true });
  }
  if (status === 408 || status === 409 || status >= 500) return new GatewayError('upstream_5xx', message, { ...base, status: 502 });
  if (status === 413) return new GatewayError('payload_too_large', message, base);
  if (status === 400 || status === 422) {
    if (isContextError(e)) return new GatewayError('context_window', message, { ...base, code: 'context_length_exceeded', param: e.param });
    if (isContentError(e)) return new GatewayError('content_policy', message, { ...base, code: 'content_filter', param: e.param });
    return new GatewayError('bad_request', message, { ...base, code: e.code ?? 'invalid_request', param: e.param });
  }
  if (status >= 300 && status < 400) return upstreamRedirect(status, headers.location, PROVIDER);
  // The remaining 4xx: the upstream is not speaking the API.
  return new GatewayError('upstream_invalid', message, { ...base, code: 'upstream_unexpected_status' });
}

export function errorFromResponse(status: number, headers: ResponseHeaders, bodyText: string, path?: string): GatewayError {
  const e = parseErrorBody(bodyText, status);
  if (status === 404 && path && e.code === undefined && e.type === undefined) {
    // Not the API's "model not found" (which carries a code or type): most likely no such route,
    // a baseUrl without the /v1 the server expects.
    e.message = `nothing at ${path}: is the deployment's baseUrl right? OpenAI-compatible servers usually serve under /v1 (it said: ${e.message.slice(0, 200)})`;
  }
  return errorFromStatus(status, e, headers);
}

/** An `{"error": …}` event inside a 200 stream. */
export function errorFromStreamEvent(error: OpenAIErrorObject | string | undefined): GatewayError {
  const e = fromObject(error, 'unknown error');
  if (e.status && e.status >= 400) return errorFromStatus(e.status, e);
  const message = describe(undefined, e);
  if (e.code === 'rate_limit_exceeded' || e.type === 'rate_limit_error') return new GatewayError('rate_limit', message, { provider: PROVIDER });
  if (isContextError(e)) return new GatewayError('context_window', message, { provider: PROVIDER, code: 'context_length_exceeded' });
  if (isContentError(e)) return new GatewayError('content_policy', message, { provider: PROVIDER, code: 'content_filter' });
  return new GatewayError('upstream_5xx', message, { provider: PROVIDER, code: e.code ?? 'upstream_stream_error' });
}

export function invalidUpstream(message: string, cause?: unknown): GatewayError {
  return new GatewayError('upstream_invalid', message, { provider: PROVIDER, code: 'upstream_invalid_response', cause });
}

export interface TimeoutSettings {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
}

const CONNECTION_CODES = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
]);

/**
 * Maps what the HTTP client threw. A cancelled call (client gone) is 'cancelled' whatever undici
 * reports; unknown errors (bugs) pass through unchanged so they are not disguised as upstream.
 */
export function errorFromTransport(err: unknown, timeouts: TimeoutSettings, signal: AbortSignal): unknown {
  if (err instanceof GatewayError) return err;
  if (signal.aborted) return new GatewayError('cancelled', 'The request was cancelled', { provider: PROVIDER, cause: err });
  // undici reports a refused tunnel as an aborted request, which would otherwise read as a 499.
  const refused = refusedTunnelStatus(err);
  if (refused !== undefined) return proxyRefusal(refused, PROVIDER, err);
  const code = (err as { code?: unknown } | null)?.code;
  const detail = (err as Error | null)?.message ?? String(err);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new GatewayError('timeout', `Could not connect to the upstream within ${timeouts.connectTimeoutMs} ms`, { provider: PROVIDER, code: 'upstream_connect_timeout', cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new GatewayError('timeout', `The upstream sent no response within ${timeouts.firstByteTimeoutMs} ms`, { provider: PROVIDER, code: 'upstream_first_byte_timeout', cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new GatewayError('timeout', `The upstream sent nothing for ${timeouts.idleTimeoutMs} ms`, { provider: PROVIDER, code: 'upstream_idle_timeout', cause: err });
  }
  if (typeof code === 'string' && code.startsWith('HPE_')) return invalidUpstream(`The upstream sent malformed HTTP (${code}): ${detail}`, err);
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) {
    return new GatewayError('upstream_5xx', `Upstream connection failed (${code}): ${detail}`, { provider: PROVIDER, status: 502, code: 'upstream_connection_failed', cause: err });
  }
  return upstreamTlsError(err, PROVIDER) ?? err;
}
