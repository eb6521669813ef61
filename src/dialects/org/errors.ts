// GatewayError → this dialect's `{error:{type, message, field?}, requestId}`.

import { blamesUpstream, type GatewayError } from '../../core/errors.js';

const TYPE_BY_KIND: Record<GatewayError['kind'], string> = {
  bad_request: 'validation_error',
  auth: 'authentication_error',
  permission: 'permission_denied',
  not_found: 'not_found',
  conflict: 'conflict',
  payload_too_large: 'payload_too_large',
  rate_limit: 'rate_limit_exceeded',
  budget_exceeded: 'budget_exceeded',
  context_window: 'context_length_exceeded',
  content_policy: 'content_filtered',
  timeout: 'upstream_timeout',
  upstream_5xx: 'upstream_error',
  upstream_invalid: 'upstream_error',
  unavailable: 'service_unavailable',
  cancelled: 'cancelled',
  internal: 'internal_error',
};

export interface OrgErrorBody {
  error: { type: string; message: string; field?: string; code: string };
  requestId: string;
}

export function orgErrorBody(error: GatewayError, requestId: string): OrgErrorBody {
  const type = blamesUpstream(error) ? 'upstream_error' : (TYPE_BY_KIND[error.kind] ?? 'internal_error');
  const body: OrgErrorBody = { error: { type, message: error.message, code: error.code }, requestId };
  if (error.param) body.error.field = error.param;
  return body;
}
