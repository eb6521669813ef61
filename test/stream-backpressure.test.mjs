// Back-pressure end to end: a streaming client that stops reading must stop Switchboard reading
// the upstream, so the upstream's own socket fills and its writes stay blocked; when the client
// reads again, every chunk arrives, in order. (A gateway that reads on regardless is slower than
// this upstream, so the upstream's writes block now and then there too, but they drain within
// milliseconds and it finishes: what tells the two apart is a write that stays blocked.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { startServer } from './helpers/server.mjs';

// Far more than every buffer between the two ends (sockets, stream buffers) can hold.
const CHUNKS = 40_000;
const WORD = 'x'.repeat(1000);

let upstream;
let s;
/** A write to the gateway's socket blocked this long without draining: the gateway has stopped reading. */
const STALL_MS = 500;
/** Resolves 'stalled' (see STALL_MS), or 'finished' when every chunk was written. */
let upstreamOutcome;
/** Resolves when the gateway closes the upstream response. */
let upstreamClosed;

function startUpstream() {
  const server = http.createServer(async (req, res) => {
    for await (const _ of req);
    let settle;
    upstreamOutcome = new Promise((resolve) => (settle = resolve));
    upstreamClosed = once(res, 'close');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const frame = (delta, finish = null) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
    res.write(frame({ role: 'assistant', content: '' }));
    for (let i = 0; i < CHUNKS; i++) {
      if (!res.write(frame({ content: `${i}:${WORD}|` }))) {
        const stall = setTimeout(() => settle('stalled'), STALL_MS);
        await once(res, 'drain');
        clearTimeout(stall);
      }
    }
    res.end(frame({}, 'stop') + 'data: [DONE]\n\n');
    settle('finished');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  upstream = await startUpstream();
  s = await startServer({
    config: {
      defaultModel: 'up',
      models: [
        {
          id: 'up',
          provider: 'openai',
          model: 'up',
          baseUrl: `http://127.0.0.1:${upstream.address().port}/v1`,
          // The paused client must not look like a silent upstream.
          options: { firstByteTimeoutMs: 60_000, idleTimeoutMs: 60_000 },
          routing: { retries: 0 },
        },
      ],
    },
  });
});
after(async () => {
  await s?.close();
  upstream?.closeAllConnections();
  upstream?.close();
});

test('a client that stops reading stops the upstream read; reading again delivers every chunk in order', async () => {
  const url = new URL(`${s.url}/v1/chat/completions`);
  const res = await new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'up', messages: [{ role: 'user', content: 'go' }], stream: true }));
  });
  assert.equal(res.statusCode, 200);
  res.pause();

  assert.equal(await upstreamOutcome, 'stalled', 'the upstream wrote everything: the gateway read on while its client did not');

  res.setEncoding('utf8');
  let text = '';
  res.on('data', (chunk) => (text += chunk));
  res.resume();
  await once(res, 'end');
  const contents = text
    .split('\n\n')
    .filter((event) => event.startsWith('data: {'))
    .map((event) => JSON.parse(event.slice('data: '.length)).choices[0]?.delta?.content)
    .filter(Boolean);
  assert.equal(contents.length, CHUNKS);
  contents.forEach((content, i) => assert.equal(content, `${i}:${WORD}|`));
  assert.ok(text.endsWith('data: [DONE]\n\n'));
});

test('a client that stops reading for server.streamStallSeconds is closed, and the upstream call with it', async () => {
  const impatient = await startServer({
    config: {
      server: { streamStallSeconds: 1, logLevel: 'warn' },
      defaultModel: 'up',
      models: [{ id: 'up', provider: 'openai', model: 'up', baseUrl: `http://127.0.0.1:${upstream.address().port}/v1`, options: { firstByteTimeoutMs: 60_000, idleTimeoutMs: 60_000 }, routing: { retries: 0 } }],
    },
  });
  try {
    const res = await new Promise((resolve, reject) => {
      const req = http.request(new URL(`${impatient.url}/v1/chat/completions`), { method: 'POST', headers: { 'content-type': 'application/json' } }, resolve);
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'up', messages: [{ role: 'user', content: 'go' }], stream: true }));
    });
    assert.equal(res.statusCode, 200);
    res.pause();
    res.on('error', () => undefined);
    // Without the stall limit the stream waits for the reader for ever (until router.timeouts.totalMs, 10 minutes).
    const within = (promise, what) => Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: not within 30 s`)), 30_000).unref())]);
    await within(upstreamClosed, 'the upstream call closed');
    assert.ok(impatient.logLines.some((l) => JSON.parse(l).msg?.includes('the client stopped reading the stream')));
    // The client learns of it once it reads again: what was sent, then the end, without [DONE].
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => (text += chunk));
    res.resume();
    // (It also emits 'error' "aborted", which would reject once(res, 'close').)
    await within(new Promise((resolve) => res.on('close', resolve)), 'the client seeing the connection closed');
    assert.equal(res.complete, false);
    assert.ok(text.startsWith('data: {') && !text.includes('[DONE]'));
  } finally {
    await impatient.close();
  }
});
