// HTTP tools: the model's input is POSTed as JSON to a configured URL; the response (JSON,
// text, or a file such as an image) is the result. Headers come from env vars.

import { request as httpRequest, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import { mediaKindOf, normaliseMediaType } from '../media.js';
import type { HttpToolConfig } from './config.js';
import { assertPublicUrl, publicOnlyAgent } from './address-guard.js';
import type { ExecutableTool, ToolOutput } from './types.js';
import { textOutput } from './types.js';

let sharedPublicAgent: Dispatcher | undefined;

function headersFrom(names: Record<string, string>, env: NodeJS.ProcessEnv): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [header, variable] of Object.entries(names)) {
    const value = env[variable];
    if (value !== undefined) headers[header] = value;
  }
  return headers;
}

async function readLimited(body: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limit) throw new GatewayError('upstream_invalid', `The tool's response is larger than ${limit} bytes`, { code: 'tool_result_too_large' });
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

function outputFromResponse(status: number, contentType: string, bytes: Buffer): ToolOutput {
  const mediaType = normaliseMediaType(contentType || 'application/octet-stream');
  if (status >= 400) return textOutput(`The tool failed with HTTP ${status}: ${bytes.toString('utf8').slice(0, 2000)}`, undefined, true);
  // Redirects are not followed (the tool's URL is the one the operator allowed): no result came.
  if (status >= 300) return textOutput(`The tool answered HTTP ${status} (a redirect, not followed): it returned no result`, undefined, true);
  // Nothing to show (204, or an empty body): done, with no output — never a 0-byte file.
  if (bytes.length === 0) return textOutput('The tool completed with no output');
  if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
    const text = bytes.toString('utf8');
    try {
      return textOutput(text, JSON.parse(text));
    } catch {
      return textOutput(text);
    }
  }
  if (mediaType.startsWith('text/')) return textOutput(bytes.toString('utf8'));
  return { content: [{ type: mediaKindOf(mediaType), mediaType, data: new Uint8Array(bytes) }] };
}

export function httpTool(config: HttpToolConfig, env: NodeJS.ProcessEnv, maxResultBytes: number): ExecutableTool {
  return {
    name: config.name,
    description: config.description,
    parameters: config.inputSchema,
    source: 'http',
    async: config.async,
    async execute(input, context) {
      if (!config.allowPrivateNetwork) await assertPublicUrl(config.url);
      const dispatcher = config.allowPrivateNetwork ? undefined : (sharedPublicAgent ??= publicOnlyAgent());
      const signal = AbortSignal.any([context.signal, AbortSignal.timeout(config.timeoutMs)]);
      let response: Dispatcher.ResponseData;
      try {
        response = await httpRequest(config.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': context.requestId, ...headersFrom(config.headersFromEnv, env) },
          body: JSON.stringify(input),
          signal,
          dispatcher,
        });
      } catch (err) {
        if (err instanceof GatewayError) throw err;
        const timedOut = signal.aborted && !context.signal.aborted;
        return textOutput(timedOut ? `The tool timed out after ${config.timeoutMs} ms` : `The tool could not be reached: ${(err as Error).message}`, undefined, true);
      }
      const bytes = await readLimited(response.body, maxResultBytes);
      const contentType = String(response.headers['content-type'] ?? '');
      return outputFromResponse(response.statusCode, contentType, bytes);
    },
  };
}
