// Fastify's JSON parser, except that a DELETE (or OPTIONS) with an empty body parses to no body,
// a compressed body is decompressed first (body-encoding.ts), and a body nested deeper than any
// API needs is refused. The official Python SDKs send
// `content-type: application/json` on every request, a DELETE without a body included; Fastify
// would refuse that as an empty JSON body.

import type { FastifyInstance } from 'fastify';
import { badRequest } from '../core/errors.js';
import { contentEncodingOf, decompressBody } from './body-encoding.js';

const BODY_OPTIONAL = new Set(['DELETE', 'OPTIONS']);
/**
 * Levels of arrays and objects a body may nest. A JSON schema sixty levels deep fits; past a few
 * thousand, code that walks a value recursively (JSON.stringify, schema compilers, prompt
 * templates) overflows the stack, which was a 500 where the client deserves a 400.
 */
export const MAX_JSON_DEPTH = 128;
/**
 * Keys one object may have. Objects with very many keys are slow for V8 at every step: a 24 MB
 * `metadata` of 1.7 million keys held the event loop 7.9 s (parsing 1.4 s, the rest validating and
 * copying it). The largest an API allows is a schema's 5,000 properties.
 */
export const MAX_JSON_KEYS = 10_000;

export function acceptEmptyJsonBodies(app: FastifyInstance): void {
  // The default parser, with its prototype-poisoning checks ('error' for both, Fastify's defaults).
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  const limit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw, done) => {
    const parseText = (body: string): void => {
      if (body.length === 0 && BODY_OPTIONAL.has(request.method)) return done(null, undefined);
      parse(request, body, (err, value) => {
        const shape = err ? 'ok' : oversizedShape(value);
        if (shape === 'too-deep') {
          return done(badRequest(`The JSON body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`, undefined, 'json_too_deep'), undefined);
        }
        if (shape === 'too-many-keys') {
          return done(badRequest(`The JSON body has an object with more than ${MAX_JSON_KEYS} keys`, undefined, 'json_too_many_keys'), undefined);
        }
        done(err, value);
      });
    };
    const encoding = contentEncodingOf(request.headers['content-encoding']);
    if (encoding === '') return parseText((raw as Buffer).toString('utf8'));
    decompressBody(encoding, raw as Buffer, limit).then(
      (body) => parseText(body.toString('utf8')),
      (err: Error) => done(err, undefined),
    );
  });
}

/** Walks without recursion, so the check itself cannot overflow. */
function oversizedShape(root: unknown): 'ok' | 'too-deep' | 'too-many-keys' {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth + 1 > MAX_JSON_DEPTH) return 'too-deep';
    let children: unknown[];
    if (Array.isArray(value)) {
      children = value;
    } else {
      // Counting keys first: listing the values of 1.7 million keys alone took 2 s.
      const keys = Object.keys(value);
      if (keys.length > MAX_JSON_KEYS) return 'too-many-keys';
      children = keys.map((key) => (value as Record<string, unknown>)[key]);
    }
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return 'ok';
}
