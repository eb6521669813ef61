// GatewayError → Anthropic's {type:"error", error:{type, message}} with Anthropic's type names.

import { blamesUpstream, type GatewayError } from '../../core/errors.js';

export function anthropicErrorType(error: GatewayError): string {
  // An upstream's refusal of the gateway's own key or model name (a 502) is not the caller's
  // authentication_error: Anthropic sends that with a 401 only.
  if (blamesUpstream(error)) return 'api_error';
  switch (error.kind) {
    case 'auth':
      return 'authentication_error';
    case 'permission':
      return 'permission_error';
    case 'not_found':
      return 'not_found_error';
    case 'conflict':
      return 'conflict_error';
    case 'payload_too_large':
      return 'request_too_large';
    case 'rate_limit':
    case 'budget_exceeded':
      return 'rate_limit_error';
    case 'timeout':
      return 'timeout_error';
    case 'unavailable':
      return 'overloaded_error';
    case 'upstream_5xx':
    case 'upstream_invalid':
    case 'internal':
      return 'api_error';
    case 'cancelled':
      return 'cancelled_error';
    default:
      return error.status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string; details?: Record<string, unknown> };
  request_id?: string;
}

export function anthropicErrorBody(error: GatewayError, requestId?: string): AnthropicErrorBody {
  // Name the field in the message too: Anthropic's shape has no `param`.
  const message = error.param && !error.message.includes(error.param) ? `${error.param}: ${error.message}` : error.message;
  const body: AnthropicErrorBody = { type: 'error', error: { type: anthropicErrorType(error), message, ...(error.details ? { details: error.details } : {}) } };
  if (requestId) body.request_id = requestId;
  return body;
}
