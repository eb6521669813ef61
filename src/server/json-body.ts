// Fastify's JSON parser, except that a DELETE (or OPTIONS) with an empty body parses to no body.
// The official Python SDKs send `content-type: application/json` on every request, a DELETE
// without a body included; Fastify would refuse that as an empty JSON body.

import type { FastifyInstance } from 'fastify';

const BODY_OPTIONAL = new Set(['DELETE', 'OPTIONS']);

export function acceptEmptyJsonBodies(app: FastifyInstance): void {
  // The default parser, with its prototype-poisoning checks ('error' for both, Fastify's defaults).
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0 && BODY_OPTIONAL.has(request.method)) return done(null, undefined);
    parse(request, body as string, done);
  });
}
