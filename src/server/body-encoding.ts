// Request bodies sent compressed (`Content-Encoding: gzip`, `deflate` or `br`) are decompressed
// before they are parsed; Fastify alone would parse the compressed bytes as JSON and answer
// "not valid JSON". The body limit counts the decompressed bytes (Fastify checks the stream this
// returns), so a small compressed body cannot expand past it.

import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../core/errors.js';

const DECODERS: Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

export function decodeCompressedBodies(app: FastifyInstance): void {
  app.addHook('preParsing', async (request, _reply, payload) => {
    const header = request.headers['content-encoding'];
    const encoding = (Array.isArray(header) ? header.join(',') : header ?? '').trim().toLowerCase();
    if (encoding === '' || encoding === 'identity') return payload;
    const decoder = DECODERS[encoding];
    if (!decoder) {
      const message = `Content-Encoding '${encoding}' is not supported: send the body uncompressed, or as gzip, deflate or br`;
      throw new GatewayError('bad_request', message, { code: 'unsupported_content_encoding', status: 415 });
    }
    return decoded(payload, decoder(), encoding);
  });
}

/** The decompressed stream, with what Fastify needs: the compressed length read, and a 400 for bad bytes. */
function decoded(payload: Readable, stream: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress, encoding: string): Readable {
  const out = stream as typeof stream & { receivedEncodedLength: number };
  // Fastify compares this with Content-Length (the compressed size).
  out.receivedEncodedLength = 0;
  payload.on('data', (chunk: Buffer) => (out.receivedEncodedLength += chunk.length));
  payload.on('error', (err) => out.destroy(err));
  out.on('error', (err: Error & { statusCode?: number; code?: string }) => {
    if (err.statusCode !== undefined) return;
    // zlib's own errors ("incorrect header check"): the client's bytes, not the server.
    Object.assign(err, { statusCode: 400, code: 'invalid_content_encoding', message: `The body is not valid ${encoding}: ${err.message}` });
  });
  return payload.pipe(out);
}
