// How long a client may take to send its request (`server.requestTimeoutSeconds`): a body trickled
// past it is a 408 and the connection closed, while an answer that takes longer than it — a long
// generation — is never cut, and the server goes on serving.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readSse, startServer } from './helpers/server.mjs';

const PAUSE_MS = 300;
const WORDS = 5; // 1.5 s of answer against a 1 s request timeout
let s;

/** Answers word by word, PAUSE_MS apart. */
const slowProvider = () => ({
  name: 'slow',
  capabilities: () => ({ modalities: ['text'], tools: false, structuredOutput: 'none', reasoning: false, multipleChoices: false, logprobs: false, sampling: ['temperature'] }),
  async *stream(_request, call) {
    yield { type: 'start', model: 'slow' };
    yield { type: 'text-start', id: 't' };
    for (let i = 0; i < WORDS; i++) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, PAUSE_MS);
        call.signal.addEventListener('abort', () => (clearTimeout(timer), reject(call.signal.reason)), { once: true });
      });
      yield { type: 'text-delta', id: 't', delta: `w${i} ` };
    }
    yield { type: 'text-end', id: 't' };
    yield { type: 'finish', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: WORDS, totalTokens: WORDS + 1 } };
  },
});

before(async () => {
  s = await startServer({ config: { server: { requestTimeoutSeconds: 1 }, defaultModel: 'slow', models: [{ id: 'slow', provider: 'slow', model: 'slow' }] }, providers: { slow: slowProvider } });
});
after(async () => {
  await s.close();
});

const chat = (stream) =>
  fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'hi' }], stream }) });

test('an answer that takes longer than the request timeout is not cut, streamed or buffered', async () => {
  const t0 = performance.now();
  const { events } = await readSse(await chat(true));
  assert.equal(events.at(-1).data, '[DONE]');
  const text = events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'w0 w1 w2 w3 w4 ');
  const buffered = await chat(false);
  assert.equal(buffered.status, 200);
  assert.equal((await buffered.json()).choices[0].message.content, 'w0 w1 w2 w3 w4 ');
  assert.ok(performance.now() - t0 > 2 * WORDS * PAUSE_MS - 100, 'both answers took longer than the request timeout');
});

/** Sends the head of a request and part of its body over a raw socket; resolves with what came back once the server closes it. */
async function trickle(path, headers = '', sent = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${headers}Content-Length: 100\r\n\r\n{"model":"slow",`) {
  const socket = net.connect(new URL(s.url).port, '127.0.0.1');
  socket.write(sent);
  let answer = '';
  socket.on('data', (chunk) => (answer += chunk));
  const t0 = performance.now();
  let bound;
  const closed = await Promise.race([
    new Promise((resolve) => socket.once('close', () => resolve(true))),
    new Promise((resolve) => (bound = setTimeout(resolve, 10_000, false))),
  ]);
  clearTimeout(bound);
  socket.destroy();
  assert.ok(closed, 'the connection was still open 10 s after the request began');
  assert.ok(performance.now() - t0 >= 900, 'not before the timeout');
  const [head, body] = answer.split('\r\n\r\n');
  return { head, body: JSON.parse(body) };
}

test("a body still unsent after the request timeout: 408 in the dialect's shape, the connection closed, and the server goes on", async () => {
  const openai = await trickle('/v1/chat/completions');
  assert.match(openai.head, /^HTTP\/1\.1 408 /);
  assert.match(openai.head, /\r\nx-request-id: req-/i);
  assert.equal(openai.body.error.type, 'timeout_error');
  assert.equal(openai.body.error.code, 'request_timeout');
  assert.match(openai.body.error.message, /within 1 s/);
  const messages = await trickle('/v1/messages', 'anthropic-version: 2023-06-01\r\n');
  assert.match(messages.head, /^HTTP\/1\.1 408 /);
  assert.equal(messages.body.type, 'error');
  assert.equal(messages.body.error.type, 'timeout_error');
  const res = await chat(false);
  assert.equal(res.status, 200);
});

test('headers still unfinished after their limit: 408 saying so, in the generic shape', async () => {
  const stalled = await trickle('/v1/chat/completions', '', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: appl');
  assert.match(stalled.head, /^HTTP\/1\.1 408 /);
  assert.equal(stalled.body.error.code, 'request_timeout');
  assert.match(stalled.body.error.message, /The request headers were not received within 1 s/);
});
