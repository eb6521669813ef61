// Request bodies sent compressed (`Content-Encoding: gzip`, `deflate` or `br`) are decompressed
// before they are parsed; Fastify alone would parse the compressed bytes as JSON and answer
// "not valid JSON". Done in the JSON parser rather than a preParsing hook, so an uncompressed
// request pays nothing for it. The body limit holds on both sides: Fastify counts the compressed
// bytes as they arrive, and decompression stops at the same limit, so a small compressed body
// cannot expand past it. Decompression runs on libuv's thread pool: it happens before the caller
// is authenticated, and 53 bytes of brotli expand to 25 MB in ≈ 46 ms that must not hold the
// event loop.

import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { GatewayError } from '../core/errors.js';

type Decompress = (body: Buffer, options: zlib.ZlibOptions & zlib.BrotliOptions) => Promise<Buffer>;

const DECODERS = new Map<string, Decompress>([
  ['gzip', promisify(zlib.gunzip)],
  ['x-gzip', promisify(zlib.gunzip)],
  ['deflate', promisify(zlib.inflate)],
  ['br', promisify(zlib.brotliDecompress)],
]);

/** The body's declared encoding, lower-cased; '' for none (or `identity`). */
export function contentEncodingOf(header: string | string[] | undefined): string {
  const encoding = (Array.isArray(header) ? header.join(',') : header ?? '').trim().toLowerCase();
  return encoding === 'identity' ? '' : encoding;
}

/** The body's bytes as the client meant them, for a body that declares an encoding. */
export async function decompressBody(encoding: string, body: Buffer, limit: number): Promise<Buffer> {
  const decompress = DECODERS.get(encoding);
  if (!decompress) {
    const message = `Content-Encoding '${encoding}' is not supported: send the body uncompressed, or as gzip, deflate or br`;
    throw new GatewayError('bad_request', message, { code: 'unsupported_content_encoding', status: 415 });
  }
  // An empty body (a DELETE's) stays empty: there is nothing to decompress.
  if (body.length === 0) return body;
  try {
    return await decompress(body, { maxOutputLength: limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new GatewayError('payload_too_large', "The request body is larger than the server's limit (server.bodyLimit, 25 MB by default) once decompressed", { code: 'payload_too_large' });
    }
    // zlib's own errors ("incorrect header check"): the client's bytes, not the server.
    throw new GatewayError('bad_request', `The body is not valid ${encoding}: ${(err as Error).message}`, { code: 'invalid_content_encoding' });
  }
}
