// The organisation in the path must be the key's (403 otherwise). Open mode (no keys) and the
// admin key accept any organisation, which is then the one the request is recorded under.

import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../../core/errors.js';

const ORGANISATION = /^[A-Za-z0-9._-]{1,128}$/;

export function organisationFor(request: FastifyRequest, pathOrganisation: string): string {
  if (!ORGANISATION.test(pathOrganisation)) {
    throw new GatewayError('bad_request', 'The organisation in the path is 1-128 letters, digits, ".", "_" or "-"', { param: 'organisation', code: 'invalid_organisation' });
  }
  const auth = request.auth!;
  if (auth.mode === 'open' || auth.mode === 'admin') return pathOrganisation;
  if (auth.organisation !== pathOrganisation) {
    throw new GatewayError('permission', `This API key belongs to another organisation than '${pathOrganisation}'`, { param: 'organisation', code: 'organisation_mismatch' });
  }
  return pathOrganisation;
}
