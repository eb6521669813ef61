// Anthropic failures → GatewayError: HTTP errors before the stream, `error` events inside it,
// and transport failures (timeouts, resets, aborts).
//
// | upstream                                   | kind             | status | retryable |
// |--------------------------------------------|------------------|--------|-----------|
// | 400 invalid_request_error "prompt is too long" | context_window | 400   | no        |
// | 400 invalid_request_error                  | bad_request      | 400    | no        |
// | 401 authentication_error, 403 permission_error, 402 billing_error | auth | 502 | another deployment |
// | 404 not_found_error                        | not_found        | 502    | another deployment |
// | 413 request_too_large                      | payload_too_large| 413    | no        |
// | 429 rate_limit_error (+ retry-after)       | rate_limit       | 429    | yes       |
// | 500 api_error, other 5xx                   | upstream_5xx     | 502    | yes       |
// | 504 timeout_error                          | timeout          | 504    | yes       |
// | 529 overloaded_error                       | unavailable      | 503    | yes       |
// | 3xx (not followed), other 4xx without a type | upstream_invalid | 502  | no        |
// | a refused proxy tunnel; a TLS failure      | auth (407) / upstream_5xx | 502 | 5xx only / yes |
// "another deployment": a failure of one deployment's own setup (its key, its model name) moves
// the request to a deployment it has not tried (router.ts), never back to this one.

import { GatewayError, upstreamRedirect, upstreamTlsError } from '../../core/errors.js';
import { proxyRefusal, refusedTunnelStatus } from '../../core/proxy.js';
import type { AnthropicErrorBody } from './api.js';

const PROVIDER = 'anthropic';

const CONTEXT_WINDOW = /prompt is too long|too many (input )?tokens|context (window|length)|exceeds? the (maximum|model'?s) context/i;

/** Seconds from a `retry-after` header (delta-seconds or HTTP date). */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(v);
  if (Number.isFinite(date)) return Math.max(0, Math.ceil((date - Date.now()) / 1000));
  return undefined;
}

export interface AnthropicErrorContext {
  status?: number;
  retryAfter?: number;
  requestId?: string;
  cause?: unknown;
}

/** Maps an Anthropic error type (HTTP body or in-stream `error` event) to a GatewayError. */
export function anthropicError(type: string | undefined, message: string, ctx: AnthropicErrorContext = {}): GatewayError {
  const status = ctx.status;
  const base = { provider: PROVIDER, cause: ctx.cause };
  const detail = `${message}${ctx.requestId ? ` (request id ${ctx.requestId})` : ''}`;
  const t = type ?? '';
  if (t === 'rate_limit_error' || status === 429) {
    return new GatewayError('rate_limit', `Anthropic rate limit: ${detail}`, { ...base, code: 'upstream_rate_limited', retryAfter: ctx.retryAfter });
  }
  if (t === 'overloaded_error' || status === 529) {
    return new GatewayError('unavailable', `Anthropic is overloaded: ${detail}`, { ...base, code: 'upstream_overloaded', retryAfter: ctx.retryAfter });
  }
  if (t === 'invalid_request_error' || status === 400 || status === 422) {
    if (CONTEXT_WINDOW.test(message)) return new GatewayError('context_window', message, { ...base, code: 'context_length_exceeded' });
    return new GatewayError('bad_request', `Anthropic rejected the request: ${detail}`, { ...base, code: 'upstream_invalid_request' });
  }
  if (t === 'authentication_error' || t === 'permission_error' || t === 'billing_error' || status === 401 || status === 402 || status === 403) {
    // The upstream refused OUR credentials: a gateway-side fault, not the caller's.
    return new GatewayError('auth', `Anthropic refused the gateway's credentials: ${detail}`, { ...base, status: 502, code: 'upstream_auth', retryable: true });
  }
  if (t === 'not_found_error' || status === 404) {
    return new GatewayError('not_found', `Anthropic does not know the configured model or route: ${detail}`, { ...base, status: 502, code: 'upstream_not_found', retryable: true });
  }
  if (t === 'request_too_large' || status === 413) {
    return new GatewayError('payload_too_large', `Anthropic: ${detail}`, { ...base, code: 'upstream_request_too_large' });
  }
  if (t === 'timeout_error' || status === 504 || status === 408) {
    return new GatewayError('timeout', `Anthropic timed out: ${detail}`, { ...base, code: 'upstream_timeout' });
  }
  if (t === 'api_error' || (status !== undefined && status >= 500)) {
    return new GatewayError('upstream_5xx', `Anthropic failed: ${detail}`, { ...base, code: 'upstream_error', retryAfter: ctx.retryAfter });
  }
  if (status !== undefined && status >= 400) {
    // Any other 4xx without Anthropic's error type (405, 406, 410…): not the API answering, and
    // nothing the client's request could fix.
    return new GatewayError('upstream_invalid', `Anthropic answered ${status}: ${detail}`, { ...base, code: 'upstream_unexpected_status' });
  }
  return new GatewayError('upstream_5xx', `Anthropic stream error${t ? ` (${t})` : ''}: ${detail}`, { ...base, code: 'upstream_error' });
}

/** An HTTP error response: `{type:"error", error:{type, message}}`, or whatever a proxy sent. */
export function anthropicHttpError(status: number, headers: Record<string, string | string[] | undefined>, bodyText: string): GatewayError {
  if (status >= 300 && status < 400) return upstreamRedirect(status, headers.location, PROVIDER);
  let body: Partial<AnthropicErrorBody> | undefined;
  try {
    body = JSON.parse(bodyText) as Partial<AnthropicErrorBody>;
  } catch {
    body = undefined;
  }
  const message = body?.error?.message ?? (bodyText.trim().slice(0, 500) || `HTTP ${status}`);
  const requestId = (headers['request-id'] as string | undefined) ?? body?.request_id;
  return anthropicError(body?.error?.type, message, { status, retryAfter: parseRetryAfter(headers['retry-after']), requestId });
}

/** Transport failures from undici, or the caller's abort. */
export function anthropicTransportError(err: unknown, signal: AbortSignal): GatewayError {
  if (err instanceof GatewayError) return err;
  if (signal.aborted) {
    // The router aborts with its own GatewayError (a total or time-to-first-token timeout).
    if (signal.reason instanceof GatewayError) return signal.reason;
    return new GatewayError('cancelled', 'The request was cancelled', { provider: PROVIDER, cause: err });
  }
  const refused = refusedTunnelStatus(err);
  if (refused !== undefined) return proxyRefusal(refused, PROVIDER, err);
  const tls = upstreamTlsError(err, PROVIDER);
  if (tls) return tls;
  const e = err as { code?: string; name?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  const base = { provider: PROVIDER, cause: err };
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new GatewayError('timeout', 'Timed out connecting to Anthropic', { ...base, code: 'upstream_connect_timeout' });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new GatewayError('timeout', 'Anthropic did not answer in time (first byte)', { ...base, code: 'upstream_first_byte_timeout' });
    case 'UND_ERR_BODY_TIMEOUT':
      return new GatewayError('timeout', 'The Anthropic stream stalled (idle timeout)', { ...base, code: 'upstream_idle_timeout' });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new GatewayError('unavailable', `Cannot reach Anthropic: ${e?.message ?? code}`, { ...base, code: 'upstream_unreachable' });
    default:
      return new GatewayError('upstream_5xx', `The connection to Anthropic failed: ${e?.message ?? String(err)}`, { ...base, code: 'upstream_connection_error' });
  }
}
