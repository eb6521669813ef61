// The admin API answers only to the admin key (env SWITCHBOARD_ADMIN_KEY by default); an
// organisation's API key is refused, as is every request when no admin key is configured.

import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../../core/errors.js';
import { bearerToken, OPEN_ORGANISATION } from '../auth.js';
import type { ServerContext } from '../context.js';

export function requireAdmin(context: ServerContext, request: FastifyRequest): void {
  const token = bearerToken(request);
  if (context.auth.isAdminToken(token)) {
    request.auth = { mode: 'admin', organisation: OPEN_ORGANISATION };
    return;
  }
  throw new GatewayError('auth', `The admin API needs the admin key (from ${context.config.server.adminKeyEnv}) as "Authorization: Bearer <key>"`, {
    code: token ? 'invalid_admin_key' : 'admin_key_required',
  });
}
