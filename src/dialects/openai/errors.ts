// GatewayError → OpenAI's {error:{message,type,param,code}}.

import { blamesUpstream, type GatewayError } from '../../core/errors.js';

function errorType(error: GatewayError): string {
  if (blamesUpstream(error)) return 'upstream_error';
  switch (error.kind) {
    case 'auth':
      return 'authentication_error';
    case 'permission':
      return 'permission_error';
    case 'rate_limit':
    case 'budget_exceeded':
      return 'rate_limit_error';
    case 'timeout':
      return 'timeout_error';
    case 'upstream_5xx':
    case 'upstream_invalid':
    case 'unavailable':
      return 'upstream_error';
    case 'internal':
      return 'server_error';
    default:
      return 'invalid_request_error';
  }
}

export function openAIErrorBody(error: GatewayError): { error: { message: string; type: string; param: string | null; code: string } } {
  return { error: { message: error.message, type: errorType(error), param: error.param ?? null, code: error.code } };
}
