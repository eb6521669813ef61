// A loopback stand-in for the Anthropic Messages API (POST /v1/messages, streaming, and
// POST /v1/messages/count_tokens).
//
// It answers with real Messages server-sent events — recorded streams under
// test/fixtures/anthropic/*.sse, or inline text — written event by event (optionally cut at
// arbitrary byte boundaries), records every request, and can misbehave on demand: HTTP errors
// with Anthropic's JSON error body (429 + retry-after, 500, 529…), a connection reset after N
// events, a stall before the headers or after N events, or a body that ends early.
//
// Scenario fields:
//   fixture: 'text.sse' | sse: '<raw SSE text>'   the stream to send
//   status, error: {type, message}, headers      an HTTP error instead of a stream
//   fault: 'reset-after' | 'stall-after' | 'end-after' | 'stall-before-headers', faultAfter: N
//   chunkSize: N                                 write the body in N-byte pieces
//   check(request)                               optional: returns a string to fail the request with a 400
//
// Recorded request: { method, url, headers, body (parsed JSON), remotePort (same port = same
// kept-alive connection), closed (resolves when the exchange is over, ended or cut) }.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'anthropic');

export function loadAnthropicFixture(name) {
  return fs.readFileSync(path.join(FIXTURES, name), 'utf8');
}

/** text.sse answering `text` in one delta, with its own token counts. */
export function anthropicAnswerSse(text, { input = 25, output = 6 } = {}) {
  return loadAnthropicFixture('text.sse')
    .replace('"text":"Hello"', `"text":${JSON.stringify(text)}`)
    .replace('"text":", wörld"', '"text":""')
    .replace('"text":"! 👋"', '"text":""')
    .replace('"input_tokens":25', `"input_tokens":${input}`)
    .replace('"output_tokens":6', `"output_tokens":${output}`);
}

/** Splits SSE text into its events (each with its trailing blank line). */
export function sseEvents(text) {
  return text
    .replace(/\r\n/g, '\n')
    .split(/\n\n+/)
    .filter((block) => block.trim() !== '')
    .map((block) => `${block}\n\n`);
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** What count_tokens accepts (Anthropic's MessageCountTokensParams); anything else is a 400. */
const COUNT_TOKENS_FIELDS = new Set(['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers', 'context_management', 'output_config', 'cache_control']);

/** The fake's own token count for a count_tokens body: one per 3 characters of its prompt fields. */
export function fakeTokenCount(body) {
  const { model: _model, ...prompt } = body;
  return Math.ceil(JSON.stringify(prompt).length / 3);
}

export async function startFakeAnthropic(options = {}) {
  const requests = [];
  const queue = [];
  const countQueue = [];
  let defaultScenario = { fixture: 'text.sse' };
  const sockets = new Set();
  const waiters = [];

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch(() => res.destroy());
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  function sendError(res, status, type, message, headers = {}) {
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_fake_error', ...headers });
    res.end(JSON.stringify({ type: 'error', error: { type, message }, request_id: 'req_fake_error' }));
  }

  async function handle(req, res, raw) {
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    // `closed` resolves when the response is over from the server's side (ended or cut by the client).
    const record = { method: req.method, url: req.url, headers: { ...req.headers }, body, remotePort: req.socket.remotePort, closed: new Promise((r) => res.on('close', r)) };
    requests.push(record);
    for (const w of waiters.splice(0)) w(record);

    const counting = req.url === '/v1/messages/count_tokens';
    if (req.method !== 'POST' || (req.url !== '/v1/messages' && !counting)) return sendError(res, 404, 'not_found_error', `Not found: ${req.method} ${req.url}`);
    if (options.apiKey && req.headers['x-api-key'] !== options.apiKey) return sendError(res, 401, 'authentication_error', 'invalid x-api-key');
    if (!req.headers['anthropic-version']) return sendError(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
    if (counting) return countTokens(res, body);
    if (!body || typeof body.max_tokens !== 'number') return sendError(res, 400, 'invalid_request_error', 'max_tokens: Field required');

    const scenario = queue.shift() ?? defaultScenario;
    const problem = scenario.check?.(record);
    if (problem) return sendError(res, 400, 'invalid_request_error', problem);
    if (scenario.fault === 'stall-before-headers') return; // never answers; close() ends it
    if (scenario.status) {
      const e = scenario.error ?? { type: 'api_error', message: 'Internal server error' };
      return sendError(res, scenario.status, e.type, e.message, scenario.headers);
    }

    const events = sseEvents(scenario.sse ?? loadAnthropicFixture(scenario.fixture));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'request-id': 'req_fake_stream',
    });
    const faultAfter = scenario.faultAfter ?? 1;
    for (let i = 0; i < events.length; i++) {
      if (scenario.fault && scenario.fault !== 'stall-before-headers' && i === faultAfter) break;
      const bytes = Buffer.from(events[i], 'utf8');
      const size = scenario.chunkSize ?? bytes.length;
      for (let at = 0; at < bytes.length; at += size) {
        res.write(bytes.subarray(at, at + size));
        if (scenario.chunkSize) await tick();
      }
      await tick();
    }
    if (scenario.fault === 'reset-after') {
      // A TCP reset in the middle of the body.
      res.socket?.resetAndDestroy();
      return;
    }
    if (scenario.fault === 'stall-after') return;
    res.end();
  }

  /** count_tokens as Anthropic validates it: the prompt's fields only; its own count (fakeTokenCount). */
  function countTokens(res, body) {
    const scenario = countQueue.shift();
    if (scenario?.fault === 'stall-before-headers') return;
    if (scenario?.status) {
      const e = scenario.error ?? { type: 'api_error', message: 'Internal server error' };
      return sendError(res, scenario.status, e.type, e.message, scenario.headers);
    }
    if (!body || typeof body.model !== 'string' || !Array.isArray(body.messages)) return sendError(res, 400, 'invalid_request_error', 'model, messages: Field required');
    const extra = Object.keys(body).find((k) => !COUNT_TOKENS_FIELDS.has(k));
    if (extra) return sendError(res, 400, 'invalid_request_error', `${extra}: Extra inputs are not permitted`);
    if (scenario?.body !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(scenario.body);
    }
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_fake_count' });
    res.end(JSON.stringify({ input_tokens: fakeTokenCount(body) }));
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    enqueue(scenario) {
      queue.push(scenario);
    },
    /** The next count_tokens answer: {status, error, headers}, {body: raw text}, or {fault: 'stall-before-headers'}. */
    enqueueCount(scenario) {
      countQueue.push(scenario);
    },
    setDefault(scenario) {
      defaultScenario = scenario;
    },
    /** Resolves with the next request the fake receives. */
    nextRequest() {
      return new Promise((resolve) => waiters.push(resolve));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
