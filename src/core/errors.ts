// One error class carries every failure to the edge. Each dialect maps `kind` to its own
// status and JSON shape; `code` is the stable, searchable name of the failure.

import type { RateHeadroom } from './limits/admission.js';

export type ErrorKind =
  | 'bad_request'
  | 'auth'
  | 'permission'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limit'
  | 'budget_exceeded'
  | 'context_window'
  | 'content_policy'
  | 'timeout'
  | 'upstream_5xx'
  | 'upstream_invalid'
  | 'unavailable'
  | 'cancelled'
  | 'internal';

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  bad_request: 400,
  auth: 401,
  permission: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limit: 429,
  budget_exceeded: 429,
  context_window: 400,
  content_policy: 400,
  timeout: 504,
  upstream_5xx: 502,
  upstream_invalid: 502,
  unavailable: 503,
  cancelled: 499,
  internal: 500,
};

/**
 * For providers whose conversation must open with a user turn (Anthropic, Bedrock's Converse):
 * the 400, before any call, when the converted one is empty or opens with the assistant (an
 * empty user message is left out in converting).
 */
export function checkStartsWithUser(provider: string, roles: readonly (string | undefined)[]): void {
  if (roles[0] === 'user') return;
  const why = roles.length === 0 ? 'this one has no message with content to send' : 'this one starts with an assistant turn (an empty user message is left out)';
  throw badRequest(`${provider} needs the conversation to start with a non-empty user message; ${why}`, 'messages');
}

/** Kinds whose wire types name the caller's mistake (a bad key, a missing model, a bad field). */
const CALLER_KINDS = new Set<ErrorKind>(['auth', 'permission', 'not_found', 'bad_request', 'conflict', 'context_window', 'content_policy']);

/**
 * An error of a caller's kind sent with a 5xx status: the upstream refused the gateway (its key,
 * its model name), so dialects give it their server-error type, not the caller's.
 */
export function blamesUpstream(error: GatewayError): boolean {
  return error.status >= 500 && CALLER_KINDS.has(error.kind);
}

const RETRYABLE_KINDS = new Set<ErrorKind>(['rate_limit', 'timeout', 'upstream_5xx', 'unavailable']);

export interface GatewayErrorOptions {
  /** The request field at fault, for 400s. */
  param?: string;
  /** Stable machine-readable code; defaults to the kind. */
  code?: string;
  /** Seconds the client should wait (429, 503). */
  retryAfter?: number;
  retryable?: boolean;
  /**
   * The deployment is healthy but has no room now (a full local queue): the router may try
   * another and lets it cool for `retryAfter`, but its circuit breaker does not count it.
   */
  busy?: boolean;
  status?: number;
  cause?: unknown;
  /** Provider that raised it, when upstream. */
  provider?: string;
  /** Field -> problems, for dialects that report validation per field (Eden). */
  fieldErrors?: Record<string, string[]>;
  /** For a refusal by a rate limit: the limit that refused, for the rate-limit headers. */
  rateLimit?: RateHeadroom;
  /** Machine-readable facts a client library acts on (Anthropic's `error.details`). */
  details?: Record<string, unknown>;
}

export class GatewayError extends Error {
  readonly kind: ErrorKind;
  readonly status: number;
  readonly param?: string;
  readonly code: string;
  readonly retryAfter?: number;
  readonly retryable: boolean;
  readonly busy: boolean;
  readonly provider?: string;
  readonly fieldErrors?: Record<string, string[]>;
  readonly rateLimit?: RateHeadroom;
  readonly details?: Record<string, unknown>;

  constructor(kind: ErrorKind, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.kind = kind;
    this.status = options.status ?? STATUS_BY_KIND[kind];
    this.param = options.param;
    this.code = options.code ?? kind;
    this.retryAfter = options.retryAfter;
    this.retryable = options.retryable ?? RETRYABLE_KINDS.has(kind);
    this.busy = options.busy ?? false;
    this.provider = options.provider;
    this.fieldErrors = options.fieldErrors;
    this.rateLimit = options.rateLimit;
    this.details = options.details;
  }
}

/** The code of an upstream event a converter could not read (logged with its cause by the gateway). */
export const UNREADABLE_EVENT = 'upstream_invalid_event';

/**
 * What an exception thrown while converting an upstream's event means: that event was malformed
 * (a field of the wrong type, a null where an object belongs). Converters turn such exceptions
 * into this 502 so a strange upstream answer is reported as the upstream's, never as a 500.
 */
export function unreadableUpstreamEvent(err: unknown, provider: string, what: string): GatewayError {
  if (err instanceof GatewayError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new GatewayError('upstream_invalid', `${what} could not be read (${reason})`, { provider, code: UNREADABLE_EVENT, cause: err });
}

/** A URL fit for an error message: scheme, host and path, never a user or password. */
export function withoutCredentials(url: string): string {
  try {
    const { protocol, host, pathname } = new URL(url);
    return `${protocol}//${host}${pathname === '/' ? '' : pathname}`;
  } catch {
    return '(an unparseable URL)';
  }
}

/** For a download that could not connect at all: what to do without a network, or behind a proxy. */
export function offlineHint(err: unknown): string {
  const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof code === 'string' && /^(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT)$/.test(code)
    ? ' (offline, pass a GGUF file you have: --model /path/to/model.gguf; behind an egress proxy, set HTTPS_PROXY)'
    : '';
}

/** fetch says only "fetch failed" or "terminated"; the cause's code (ECONNREFUSED, ENOTFOUND, …) is what helps. */
export function describeNetworkError(err: unknown): string {
  const { message, cause } = err as Error & { cause?: { code?: unknown; message?: string } };
  // undici's fetch gives some causes a numeric code 0; only a named code says more than the message.
  const detail = (typeof cause?.code === 'string' && cause.code) || cause?.message;
  // The Fetch standard blocks ports browsers must not reach (6000, 6665–6669, 10080…); "bad port" alone says none of that.
  if (detail === 'bad port') return `${message}: fetch refuses that port (one the Fetch standard blocks, such as 6000 or 10080); use another port`;
  return detail && !message.includes(detail) ? `${message}: ${detail}` : message;
}

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_)|CERT|SIGNATURE|HOSTNAME_MISMATCH|^EPROTO$/;

/**
 * A TLS failure with an upstream (an untrusted, expired or misnamed certificate, no protocol in
 * common), as a 502 that says so, or undefined when `err` (or its causes) is not one. Without
 * this such an error reached the edge unmapped, as a 500 "Internal error".
 */
export function upstreamTlsError(err: unknown, provider: string, hint: (code: string) => string = () => ''): GatewayError | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string' || !TLS_CODE.test(code)) continue;
    // OpenSSL's own text carries its source path; its reason alone reads better.
    const message = String((e as Error).message ?? '');
    const reason = /SSL routines:[^:]*:([^:\n]+)/.exec(message)?.[1] ?? message;
    const advice = /SELF_SIGNED|ISSUER|UNABLE_TO_VERIFY|UNTRUSTED/.test(code)
      ? "; a private CA's certificate goes in NODE_EXTRA_CA_CERTS"
      : /wrong version number|packet length too long/.test(reason)
        ? ': the server does not speak TLS there; should the baseUrl start with http://?'
        : '';
    return new GatewayError('upstream_5xx', `TLS with the ${provider} upstream failed: ${reason} (${code})${advice}${hint(code)}`, {
      provider,
      status: 502,
      code: 'upstream_tls_error',
      cause: err,
    });
  }
  return undefined;
}

/**
 * An upstream answered with a redirect. Not followed: it would resend the gateway's key to
 * wherever it points (an http baseUrl for an https-only API is the usual cause).
 */
export function upstreamRedirect(status: number, location: string | string[] | undefined, provider: string): GatewayError {
  const to = Array.isArray(location) ? location[0] : location;
  return new GatewayError('upstream_invalid', `The ${provider} upstream redirected (${status})${to ? ` to ${to}` : ''}; redirects are not followed: set the deployment's baseUrl to where it points`, {
    provider,
    status: 502,
    code: 'upstream_redirect',
    retryable: false,
  });
}

export function badRequest(message: string, param?: string, code = 'invalid_request'): GatewayError {
  return new GatewayError('bad_request', message, { param, code });
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** Normalises anything thrown into a GatewayError; Fastify's own errors keep their status. */
/**
 * Error codes that mean a backing service (the store's database, Redis) could not be reached or
 * dropped the connection: the network's, and PostgreSQL's SQLSTATE classes 08 (connection
 * exception) and 57P (the server shutting down or starting). Providers map their own upstream
 * failures; what arrives here raw is the gateway's own dependencies.
 */
const BACKING_SERVICE_DOWN = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN|08\d{3}|08P01|57P0[1-3])$/;

/** Fastify's codes for a JSON body it could not read: empty, or not JSON. */
const JSON_BODY_ERRORS = new Set(['FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY']);

/** A client error's own code, but never Fastify's internal names (FST_ERR_…): clients match on codes. */
function clientErrorCode(code: string | undefined, fallback: string): string {
  return code && !code.startsWith('FST_') ? code : fallback;
}

export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string; name?: string } | undefined;
  if (e && e.name === 'AbortError') return new GatewayError('cancelled', 'The request was cancelled', { cause: err });
  if (e && typeof e.code === 'string' && BACKING_SERVICE_DOWN.test(e.code)) {
    // A client can retry this, unlike an internal error: say so, with when.
    return new GatewayError('unavailable', `A service the gateway depends on is unreachable (${e.code}); try again shortly`, {
      code: 'service_unavailable',
      retryAfter: 1,
      retryable: false,
      cause: err,
    });
  }
  if (e && typeof e.statusCode === 'number') {
    const status = e.statusCode;
    if (status === 413) return new GatewayError('payload_too_large', 'The request body is larger than the server\'s limit (server.bodyLimit, 25 MB by default)', { code: 'payload_too_large', cause: err });
    if (status === 415) return new GatewayError('bad_request', e.message ?? 'Unsupported content type', { code: clientErrorCode(e.code, 'unsupported_media_type'), status: 415, cause: err });
    if (status >= 400 && status < 500) {
      const code = JSON_BODY_ERRORS.has(e.code ?? '') || /JSON/i.test(e.message ?? '') ? 'invalid_json' : clientErrorCode(e.code, 'invalid_request');
      return new GatewayError('bad_request', e.message ?? 'Bad request', { code, status, cause: err });
    }
  }
  return new GatewayError('internal', 'Internal error', { cause: err });
}
