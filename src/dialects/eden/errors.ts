// GatewayError → Eden's {error:{type, message}}: message is a string, or an object of
// field → list of problems for validation errors.

import { blamesUpstream, type GatewayError } from '../../core/errors.js';

function errorType(error: GatewayError): string {
  if (blamesUpstream(error)) return 'provider_error';
  switch (error.kind) {
    case 'bad_request':
    case 'context_window':
    case 'content_policy':
    case 'payload_too_large':
      return 'invalid_request_error';
    case 'auth':
      return 'authentication_error';
    case 'permission':
      return 'permission_error';
    case 'not_found':
      return error.provider ? 'provider_error' : 'not_found_error';
    case 'rate_limit':
    case 'budget_exceeded':
      return 'rate_limit_error';
    case 'timeout':
      return 'timeout_error';
    case 'upstream_5xx':
    case 'upstream_invalid':
    case 'unavailable':
      return 'provider_error';
    default:
      return 'server_error';
  }
}

export function edenErrorObject(error: GatewayError): { type: string; message: string | Record<string, string[]>; code: string } {
  return { type: errorType(error), message: error.fieldErrors ?? error.message, code: error.code };
}

export function edenErrorBody(error: GatewayError): { error: ReturnType<typeof edenErrorObject> } {
  return { error: edenErrorObject(error) };
}
