// Bedrock failures → GatewayError. The AWS SDK throws the same modelled exceptions for HTTP
// errors before the stream (x-amzn-errortype) and for exception events inside it (an
// `:exception-type` the model does not list arrives as an Error named after it).
//
// | exception                                                   | kind           | status | retryable |
// |-------------------------------------------------------------|----------------|--------|-----------|
// | ThrottlingException, ServiceQuotaExceededException          | rate_limit     | 429    | yes       |
// | ServiceUnavailableException, ModelNotReadyException         | unavailable    | 503    | yes       |
// | InternalServerException, ModelStreamErrorException, ModelErrorException | upstream_5xx | 502 | yes |
// | ModelTimeoutException                                       | timeout        | 504    | yes       |
// | ValidationException "too long" / context window             | context_window | 400    | no        |
// | ValidationException, ConflictException                      | bad_request    | 400    | no        |
// | AccessDeniedException, UnrecognizedClientException, signature/token errors, no credentials | auth | 502 | another deployment |
// | ResourceNotFoundException                                   | not_found      | 502    | another deployment |
// | a reset connection (the SDK's TimeoutError with ECONNRESET/EPIPE) | upstream_5xx | 502  | yes       |
// "another deployment": a failure of one deployment's own setup (its credentials, its region's
// model access) moves the request to a deployment it has not tried (router.ts), never back.

import { GatewayError, upstreamTlsError } from '../../core/errors.js';

const PROVIDER = 'bedrock';
const CONTEXT_WINDOW = /too long|context (window|length|limit)|maximum context|max(imum)? (input )?tokens? exceeded|model_context_window_exceeded/i;
const AUTH = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'ExpiredTokenException',
  'MissingAuthenticationTokenException',
  'CredentialsProviderError',
  'InvalidClientTokenId',
]);

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  $response?: { headers?: Record<string, string | undefined> };
  originalStatusCode?: number;
}

function retryAfterOf(e: SdkErrorShape): number | undefined {
  const v = e.$response?.headers?.['retry-after'];
  if (!v) return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? Math.ceil(n) : undefined;
}

/** `throttlingException` (an event-stream member name) → `ThrottlingException`. */
function exceptionName(name: string | undefined): string {
  if (!name) return '';
  return name.charAt(0).toUpperCase() + name.slice(1);
}

export interface BedrockErrorContext {
  signal: AbortSignal;
  /** Set when one of the provider's own timers fired. */
  timedOut?: 'first_byte' | 'idle';
}

export function bedrockError(err: unknown, ctx: BedrockErrorContext): GatewayError {
  if (err instanceof GatewayError) return err;
  const base = { provider: PROVIDER, cause: err };
  if (ctx.timedOut === 'first_byte') {
    return new GatewayError('timeout', 'Bedrock did not answer in time (first byte)', { ...base, code: 'upstream_first_byte_timeout' });
  }
  if (ctx.timedOut === 'idle') {
    return new GatewayError('timeout', 'The Bedrock stream stalled (idle timeout)', { ...base, code: 'upstream_idle_timeout' });
  }
  if (ctx.signal.aborted) {
    // The router aborts with its own GatewayError (a total or time-to-first-token timeout).
    if (ctx.signal.reason instanceof GatewayError) return ctx.signal.reason;
    return new GatewayError('cancelled', 'The request was cancelled', base);
  }

  const e = (err ?? {}) as SdkErrorShape;
  const name = exceptionName(e.name);
  const status = e.$metadata?.httpStatusCode;
  const requestId = e.$metadata?.requestId;
  const message = e.message || name || 'unknown error';
  const detail = `${message}${requestId ? ` (request id ${requestId})` : ''}`;

  if (name === 'ThrottlingException' || name === 'ServiceQuotaExceededException' || status === 429 || e.originalStatusCode === 429) {
    return new GatewayError('rate_limit', `Bedrock is throttling: ${detail}`, { ...base, code: 'upstream_rate_limited', retryAfter: retryAfterOf(e) });
  }
  if (name === 'ServiceUnavailableException' || name === 'ModelNotReadyException' || status === 503) {
    return new GatewayError('unavailable', `Bedrock is unavailable: ${detail}`, { ...base, code: 'upstream_unavailable', retryAfter: retryAfterOf(e) });
  }
  if (name === 'InternalServerException' || name === 'ModelStreamErrorException' || name === 'ModelErrorException') {
    return new GatewayError('upstream_5xx', `Bedrock failed (${name}): ${detail}`, { ...base, code: 'upstream_error' });
  }
  if (name === 'ModelTimeoutException' || status === 408) {
    return new GatewayError('timeout', `The Bedrock model timed out: ${detail}`, { ...base, code: 'upstream_timeout' });
  }
  if (name === 'ValidationException' || name === 'ConflictException') {
    if (CONTEXT_WINDOW.test(message)) return new GatewayError('context_window', `Bedrock: ${message}`, { ...base, code: 'context_length_exceeded' });
    return new GatewayError('bad_request', `Bedrock rejected the request: ${detail}`, { ...base, code: 'upstream_invalid_request' });
  }
  if (AUTH.has(name) || status === 401 || status === 403) {
    return new GatewayError('auth', `Bedrock refused the gateway's credentials: ${detail}`, { ...base, status: 502, code: 'upstream_auth', retryable: true });
  }
  if (name === 'ResourceNotFoundException' || status === 404) {
    return new GatewayError('not_found', `Bedrock does not know the configured model: ${detail}`, { ...base, status: 502, code: 'upstream_not_found', retryable: true });
  }
  if (name === 'TimeoutError') {
    // The SDK's HTTP/1.1 handler renames a reset connection (ECONNRESET, EPIPE) TimeoutError, for its retries.
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE') {
      return new GatewayError('upstream_5xx', `Bedrock closed the connection: ${message} (${e.code})`, { ...base, code: 'upstream_connection_error' });
    }
    return new GatewayError('timeout', `Bedrock timed out: ${message}`, { ...base, code: 'upstream_timeout' });
  }
  if (status !== undefined && status >= 500) return new GatewayError('upstream_5xx', `Bedrock failed (${status}): ${detail}`, { ...base, code: 'upstream_error' });
  if (status !== undefined && status >= 400) return new GatewayError('bad_request', `Bedrock rejected the request (${status}): ${detail}`, { ...base, code: 'upstream_invalid_request' });
  const code = e.code ?? '';
  // An endpoint that offers no HTTP/2 in its TLS handshake refuses the SDK's default transport so.
  const tls = upstreamTlsError(err, PROVIDER, (tlsCode) => (tlsCode.includes('NO_APPLICATION_PROTOCOL') ? '; the endpoint does not offer HTTP/2: set the deployment option http1' : ''));
  if (tls) return tls;
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) {
    return new GatewayError('unavailable', `Cannot reach Bedrock: ${message}`, { ...base, code: 'upstream_unreachable' });
  }
  return new GatewayError('upstream_5xx', `The Bedrock call failed: ${message}`, { ...base, code: 'upstream_connection_error' });
}
