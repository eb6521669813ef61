// Graceful shutdown (src/server/shutdown.ts): requests in flight finish; a kept-alive client
// connection does not hold the close; past the grace period a stream still running ends with an
// in-stream `server_shutting_down` error and [DONE], a buffered one with a 503, and their upstream
// calls are cancelled. Through the real server and a loopback OpenAI-compatible upstream.
// Build first: npx tsc -p tsconfig.json
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startServer } from './helpers/server.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

let upstream;
let s;
afterEach(async () => {
  await upstream?.close();
  // The server is closed by each test; close() again is harmless and removes the data directory.
  await s?.close();
});

async function start(graceSeconds) {
  upstream = await startFakeOpenAI();
  s = await startServer({
    config: {
      server: { shutdownGraceSeconds: graceSeconds },
      defaultModel: 'up',
      models: [{ id: 'up', provider: 'openai', model: 'gpt', baseUrl: upstream.url, routing: { retries: 0 } }],
    },
  });
}

/** A streaming chat request over a keep-alive agent that never drops idle connections by itself. */
function openStream(agent, body = { model: 'up', stream: true, messages: [{ role: 'user', content: 'hi' }] }) {
  return new Promise((resolve, reject) => {
    const { port } = new URL(s.url);
    const req = http.request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        let firstChunk;
        const first = new Promise((r) => (firstChunk = r));
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
          if (text.includes('"content"')) firstChunk();
        });
        const ended = new Promise((r) => res.on('end', () => r(text)));
        resolve({ status: res.statusCode, first, ended });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('requests in flight finish, and a kept-alive client connection does not hold the close', { timeout: 20_000 }, async () => {
  await start(30);
  upstream.enqueue({ type: 'text', text: 'one two three four', chunks: 4, delayMs: 100 });
  const agent = new http.Agent({ keepAlive: true });
  const stream = await openStream(agent);
  assert.equal(stream.status, 200);
  await stream.first;
  let closed = false;
  const closing = s.server.close().then(() => (closed = true));
  const text = await stream.ended;
  assert.equal(closed, false, 'the close waited for the stream');
  const deltas = [...text.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]).join('');
  assert.equal(deltas, 'one two three four', 'the stream was finished, not cut');
  assert.match(text, /data: \[DONE\]\n\n$/);
  // The agent keeps its connection open: only the server closing idle connections ends the wait.
  await closing;
  agent.destroy();
});

test('past the grace period a stream still running ends with server_shutting_down and [DONE]; its upstream call is cancelled', { timeout: 20_000 }, async () => {
  await start(0.2);
  // One content chunk, then nothing: the stream can only end by the shutdown.
  upstream.enqueue({
    type: 'handler',
    handle(req, res) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt', choices: [{ index: 0, delta: { role: 'assistant', content: 'Hel' }, finish_reason: null }] };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    },
  });
  const agent = new http.Agent({ keepAlive: true });
  const stream = await openStream(agent);
  await stream.first;
  const upstreamCall = upstream.requests.at(-1);
  const closing = s.server.close();
  const text = await stream.ended;
  const events = text.split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  const error = JSON.parse(events.at(-2).slice('data: '.length)).error;
  assert.equal(error.code, 'server_shutting_down');
  assert.match(error.message, /shutting down/);
  assert.deepEqual(await upstreamCall.closed, { completed: false }, 'the upstream call was cancelled');
  await closing;
  agent.destroy();
});

test('past the grace period a buffered request still waiting gets a 503 with Retry-After', { timeout: 20_000 }, async () => {
  await start(0.2);
  upstream.enqueue({ type: 'stall', phase: 'headers' });
  const pending = fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'up', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await upstream.nextRequest();
  const closing = s.server.close();
  const res = await pending;
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '1');
  assert.equal((await res.json()).error.code, 'server_shutting_down');
  await closing;
});

test('on the local model, a generation still running at the deadline is stopped and ends with server_shutting_down', { timeout: 60_000 }, async () => {
  const { ensureTestModel } = await import('./helpers/model.mjs');
  const model = ensureTestModel();
  s = await startServer({
    config: {
      server: { shutdownGraceSeconds: 0.2 },
      local: { threads: 1, parallel: 2, contextSize: 2048 },
      defaultModel: 'tiny',
      models: [{ id: 'tiny', provider: 'local', model, contextLength: 2048 }],
    },
  });
  const agent = new http.Agent({ keepAlive: true });
  // Far more tokens than the grace period leaves time for (≈ 20 ms each here); with this seed the
  // random-weight model does not end its turn early.
  const stream = await openStream(agent, { model: 'tiny', stream: true, max_tokens: 1900, temperature: 1, seed: 11, messages: [{ role: 'user', content: 'Write a long story.' }] });
  await stream.first;
  await s.server.close();
  const events = (await stream.ended).split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.equal(JSON.parse(events.at(-2).slice('data: '.length)).error.code, 'server_shutting_down');
  const tokens = events.filter((e) => e.includes('"content"')).length;
  assert.ok(tokens < 1900, `stopped early: ${tokens} content chunks`);
  agent.destroy();
});

/** An async Messages run on the scripted provider, held after its first delta until released; and an observer of its events. */
async function heldAsyncRun(graceSeconds) {
  const { GatewayError } = await import('../dist/core/errors.js');
  const { createScriptedFactory } = await import('./helpers/scripted-provider.mjs');
  const scripted = createScriptedFactory({ GatewayError });
  s = await startServer({
    providers: { scripted: scripted.factory },
    config: { server: { shutdownGraceSeconds: graceSeconds }, defaultModel: 'sc', models: [{ id: 'sc', provider: 'scripted', model: 'x' }] },
  });
  const text = 'script:gated hold me';
  const created = await fetch(`${s.url}/v1/messages/async`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sc', max_tokens: 20, messages: [{ role: 'user', content: text }] }),
  }).then((r) => r.json());
  const res = await fetch(`${s.url}/v1/messages/async/${created.message_id}/events`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let events = '';
  const readUntil = async (test) => {
    while (!test(events)) {
      const { done, value } = await reader.read();
      if (done) return events;
      events += decoder.decode(value, { stream: true });
    }
    return events;
  };
  await readUntil((t) => t.includes('content_block_delta'));
  return { release: () => scripted.release(text), ended: () => readUntil(() => false) };
}

test('an async run in progress at shutdown finishes within the grace period; its observer gets message_stop', { timeout: 20_000 }, async () => {
  const run = await heldAsyncRun(30);
  const closing = s.server.close();
  run.release();
  const events = await run.ended();
  assert.match(events, /event: message_stop\n/);
  assert.doesNotMatch(events, /event: error\n/);
  await closing;
});

test('an async run still running when the grace period ends is failed, saying the server shut down', { timeout: 20_000 }, async () => {
  const run = await heldAsyncRun(0.2);
  await s.server.close();
  const events = await run.ended();
  const last = events.trim().split('\n\n').at(-1);
  assert.match(last, /^id: \d+\nevent: error\n/);
  assert.match(last, /shut down before this message finished/);
});

test("a request arriving on a busy kept-alive connection after the shutdown began gets a 503 server_shutting_down in its dialect's shape", { timeout: 20_000 }, async () => {
  await start(30);
  upstream.enqueue({ type: 'text', text: 'one two three four', chunks: 4, delayMs: 100 });
  const { port } = new URL(s.url);
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => (received += d));
  const ended = new Promise((resolve) => socket.on('close', resolve));
  const request = (path, body, extra = '') =>
    `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  // A stream keeps the connection busy (not idle, so the shutdown does not close it)…
  socket.write(request('/v1/chat/completions', JSON.stringify({ model: 'up', stream: true, messages: [{ role: 'user', content: 'hi' }] })));
  while (!received.includes('"content"')) await new Promise((r) => socket.once('data', r));
  const closing = s.server.close();
  // …and the next request on it arrives once the shutdown has begun.
  socket.write(request('/v1/messages', JSON.stringify({ model: 'up', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), 'anthropic-version: 2023-06-01\r\n'));
  await ended;
  await closing;
  const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
  assert.match(first, /^HTTP\/1\.1 200/);
  assert.match(first, /data: \[DONE\]/, 'the stream in flight was finished');
  assert.match(second, /^HTTP\/1\.1 503/);
  assert.match(second, /\r\nretry-after: 1\r\n/i);
  assert.match(second, /\r\nconnection: close\r\n/i);
  assert.match(second, /\r\nx-request-id: req-/i, 'the refusal has its request id, as every answer does');
  const body = JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4));
  assert.equal(body.type, 'error', 'the Messages error shape');
  assert.match(body.error.message, /shutting down/);
});
