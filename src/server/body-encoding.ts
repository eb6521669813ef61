// Request bodies sent compressed (`Content-Encoding: gzip`, `deflate` or `br`) are decompressed
// before they are parsed; Fastify alone would parse the compressed bytes as JSON and answer
// "not valid JSON". Done in the JSON parser rather than a preParsing hook, so an uncompressed
// request pays nothing for it. The body limit holds on both sides: Fastify counts the compressed
// bytes as they arrive, and decompression stops at the same limit, so a small compressed body
// cannot expand past it.

import zlib from 'node:zlib';
import { GatewayError } from '../core/errors.js';

const DECODERS: Record<string, (body: Buffer, options: zlib.ZlibOptions & zlib.BrotliOptions) => Buffer> = {
  gzip: zlib.gunzipSync,
  'x-gzip': zlib.gunzipSync,
  deflate: zlib.inflateSync,
  br: zlib.brotliDecompressSync,
};

/** The body's bytes as the client meant them: decompressed when it says it compressed them. */
export function decodedBody(header: string | string[] | undefined, body: Buffer, limit: number): Buffer {
  const encoding = (Array.isArray(header) ? header.join(',') : header ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return body;
  const decode = DECODERS[encoding];
  if (!decode) {
    const message = `Content-Encoding '${encoding}' is not supported: send the body uncompressed, or as gzip, deflate or br`;
    throw new GatewayError('bad_request', message, { code: 'unsupported_content_encoding', status: 415 });
  }
  try {
    return decode(body, { maxOutputLength: limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new GatewayError('payload_too_large', "The request body is larger than the server's limit (server.bodyLimit, 25 MB by default) once decompressed", { code: 'payload_too_large' });
    }
    // zlib's own errors ("incorrect header check"): the client's bytes, not the server.
    throw new GatewayError('bad_request', `The body is not valid ${encoding}: ${(err as Error).message}`, { code: 'invalid_content_encoding' });
  }
}
