// Fastify's JSON parser, except that a DELETE (or OPTIONS) with an empty body parses to no body,
// and a body nested deeper than any API needs is refused. The official Python SDKs send
// `content-type: application/json` on every request, a DELETE without a body included; Fastify
// would refuse that as an empty JSON body.

import type { FastifyInstance } from 'fastify';
import { badRequest } from '../core/errors.js';

const BODY_OPTIONAL = new Set(['DELETE', 'OPTIONS']);
/**
 * Levels of arrays and objects a body may nest. A JSON schema sixty levels deep fits; past a few
 * thousand, code that walks a value recursively (JSON.stringify, schema compilers, prompt
 * templates) overflows the stack, which was a 500 where the client deserves a 400.
 */
export const MAX_JSON_DEPTH = 128;

export function acceptEmptyJsonBodies(app: FastifyInstance): void {
  // The default parser, with its prototype-poisoning checks ('error' for both, Fastify's defaults).
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0 && BODY_OPTIONAL.has(request.method)) return done(null, undefined);
    parse(request, body as string, (err, value) => {
      if (!err && nestedDeeperThan(value, MAX_JSON_DEPTH)) {
        return done(badRequest(`The JSON body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`, undefined, 'json_too_deep'), undefined);
      }
      done(err, value);
    });
  });
}

/** Walks without recursion, so the check itself cannot overflow. */
function nestedDeeperThan(root: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(value) ? value : Object.values(value)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
