// The router behind every dialect, over HTTP, against fault-injecting fake OpenAI upstreams:
// Retry-After honoured (from the upstream's request log), retries landing on another
// deployment, fallback chains, context-window fallback, TTFT and idle timeouts, served-by
// headers with real overhead, and cost. Build first: npx tsc -p tsconfig.json

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { postJson, readSse, startServer } from './helpers/server.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

let server;
const fakes = {};
const NAMES = ['solo', 'a', 'b', 'small', 'big', 'primary', 'second', 'third', 'stally', 'backup', 'slow', 'capped', 'c', 'd', 'strict'];

before(async () => {
  for (const name of NAMES) fakes[name] = await startFakeOpenAI();
  const dep = (name, extra = {}) => ({ name, provider: 'openai', model: `${name}-up`, baseUrl: fakes[name].url, ...extra });
  const single = (id, routing = {}, extra = {}) => ({ id, deployments: [dep(id)], routing, ...extra });
  server = await startServer({
    env: { SWITCHBOARD_ADMIN_KEY: 'admin' },
    config: {
      // Tiny backoffs keep retries fast; Retry-After is still honoured in full.
      router: { retries: 0, backoff: { baseMs: 1, maxMs: 5 } },
      models: [
        single('solo', { retries: 2 }, { pricing: { input: 3, output: 15 } }),
        { id: 'pair', deployments: [dep('a'), dep('b')], routing: { retries: 1 } },
        single('small', { contextWindowFallbacks: ['big'], fallbacks: ['backup'] }, { contextLength: 1000 }),
        single('big', {}, { contextLength: 100000 }),
        single('primary', { fallbacks: ['second', 'third'] }),
        single('second'),
        single('third'),
        single('stally', { fallbacks: ['backup'], timeouts: { ttftMs: 300, idleMs: 300 } }),
        single('backup', {}, { pricing: { input: 1, output: 4 } }),
        single('slow'),
        single('capped', { retries: 3, timeouts: { totalMs: 250 } }),
        { id: 'duo', deployments: [dep('c'), dep('d')], routing: { retries: 1 } },
        single('strict', { contentPolicyFallbacks: ['backup'] }, { pricing: { input: 2, output: 10 } }),
      ],
    },
  });
});
after(async () => {
  await server.close();
  for (const fake of Object.values(fakes)) await fake.close();
});
beforeEach(() => {
  for (const fake of Object.values(fakes)) fake.reset();
});

const complete = (model, extra = {}) => postJson(`${server.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'Hi' }], ...extra });
const count = (name) => fakes[name].requests.length;

describe('retries', () => {
  test('a 429 then success: the retry waits out Retry-After (measured at the upstream)', async () => {
    fakes.solo.enqueue({ type: 'error', status: 429, headers: { 'retry-after': '1' } }, { type: 'text', text: 'finally' });
    const res = await complete('solo');
    assert.equal(res.status, 200);
    assert.equal(res.body.choices[0].message.content, 'finally');
    assert.equal(res.headers.get('x-switchboard-attempts'), '2');
    const [first, second] = fakes.solo.requests;
    const gap = second.time - first.time;
    assert.ok(gap >= 1000, `retried after ${gap.toFixed(0)} ms, before Retry-After's 1000`);
    assert.ok(gap < 4000, `retried after ${gap.toFixed(0)} ms: far past Retry-After`);
  });

  test('retries stop after the configured count and the last error reaches the client', async () => {
    fakes.solo.setDefault({ type: 'error', status: 503 });
    const res = await complete('solo');
    assert.equal(res.status, 502);
    assert.equal(count('solo'), 3, 'one try and two retries');
    const log = await fetch(`${server.url}/admin/requests?model=solo`, { headers: { authorization: 'Bearer admin' } }).then((r) => r.json());
    const entry = log.data.find((e) => e.id === res.headers.get('x-request-id'));
    assert.equal(entry.attempts, 3);
    assert.equal(entry.status, 502);
    assert.equal(res.headers.get('x-switchboard-attempts'), '3', 'the error says how many attempts failed, as the log does');
  });

  test('a 500 retries on the other deployment; a 400 is never retried', async () => {
    fakes.a.enqueue({ type: 'error', status: 500 });
    let res = await complete('pair');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-deployment'), 'b');
    assert.equal(res.headers.get('x-switchboard-attempts'), '2');
    fakes.a.enqueue({ type: 'error', status: 400 });
    res = await complete('pair');
    assert.equal(res.status, 400);
    assert.equal(count('b'), 1, 'b was not tried for a bad request');
  });
});

test('a Retry-After on one deployment sends the retry to another at once', async () => {
  fakes.c.enqueue({ type: 'error', status: 429, headers: { 'retry-after': '30' } });
  const res = await complete('duo');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-switchboard-deployment'), 'd');
  const gap = fakes.d.requests[0].time - fakes.c.requests[0].time;
  assert.ok(gap < 1000, `waited ${gap.toFixed(0)} ms although another deployment was ready`);
  // The cooling deployment is avoided while its Retry-After runs.
  const next = await complete('duo');
  assert.equal(next.headers.get('x-switchboard-deployment'), 'd');
  assert.equal(count('c'), 1);
});

describe('fallbacks', () => {
  test('a failing model falls back along its chain, in order', async () => {
    fakes.primary.enqueue({ type: 'error', status: 500 });
    fakes.second.enqueue({ type: 'error', status: 502 });
    const res = await complete('primary');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-model'), 'third');
    assert.equal(res.headers.get('x-switchboard-attempts'), '3');
    assert.deepEqual([count('primary'), count('second'), count('third')], [1, 1, 1]);
    assert.equal(res.body.model, 'third');
  });

  test('a context-window error goes to the bigger model, not to the general fallback', async () => {
    fakes.small.enqueue({ type: 'error', status: 400, body: { error: { message: "This model's maximum context length is 1000 tokens", type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' } } });
    const res = await complete('small');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-model'), 'big');
    assert.equal(count('big'), 1);
    assert.equal(count('backup'), 0);
  });

  test('a content-policy refusal goes to contentPolicyFallbacks when configured', async () => {
    fakes.strict.enqueue({ type: 'error', status: 400, body: { error: { message: 'flagged by the content filter', type: 'invalid_request_error', code: 'content_filter' } } });
    const res = await complete('strict');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-model'), 'backup');
  });

  test('a refusal that comes as an empty answer (a classifier declining) goes to contentPolicyFallbacks too, streamed or not', async () => {
    fakes.strict.enqueue({ type: 'text', text: '', finishReason: 'content_filter' });
    fakes.backup.enqueue({ type: 'text', text: 'answered by backup' });
    const res = await complete('strict');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-model'), 'backup');
    assert.equal(res.body.choices[0].message.content, 'answered by backup');
    assert.equal(res.headers.get('x-switchboard-attempts'), '2');

    fakes.strict.enqueue({ type: 'text', text: '', finishReason: 'content_filter' });
    fakes.backup.enqueue({ type: 'text', deltas: ['streamed by backup'] });
    const streamed = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'strict', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(streamed.headers.get('x-switchboard-model'), 'backup');
    assert.match(await streamed.text(), /streamed by backup/);
  });

  test('a declined answer set aside is still paid for: the request log and the metrics count its tokens, the client sees the answer', async () => {
    const metric = async (name, labels) => {
      const text = await fetch(`${server.url}/metrics`).then((r) => r.text());
      const selector = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
      const line = text.split('\n').find((l) => l.startsWith(`${selector} `));
      return line ? Number(line.slice(selector.length + 1)) : 0;
    };
    const strictInput = await metric('switchboard_tokens_total', { direction: 'input', model: 'strict', provider: 'openai' });
    fakes.strict.enqueue({ type: 'text', text: '', finishReason: 'content_filter', usage: { prompt_tokens: 40, completion_tokens: 2, total_tokens: 42 } });
    fakes.backup.enqueue({ type: 'text', text: 'answered', usage: { prompt_tokens: 50, completion_tokens: 10, total_tokens: 60 } });
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'strict', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(res.status, 200);
    const { events } = await readSse(res);
    const usage = events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data)).find((chunk) => chunk.usage)?.usage;
    assert.deepEqual([usage.prompt_tokens, usage.completion_tokens, usage.cost], [50, 10, (50 * 1 + 10 * 4) / 1e6]);

    const log = await fetch(`${server.url}/admin/requests?model=backup`, { headers: { authorization: 'Bearer admin' } }).then((r) => r.json());
    const entry = log.data.find((e) => e.id === res.headers.get('x-request-id'));
    assert.ok(entry, 'logged');
    assert.deepEqual([entry.input_tokens, entry.output_tokens, entry.total_tokens, entry.attempts], [90, 12, 102, 2]);
    assert.equal(entry.cost, (40 * 2 + 2 * 10 + 50 * 1 + 10 * 4) / 1e6);
    const line = server.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.reqId === entry.id);
    assert.deepEqual([line?.inputTokens, line?.outputTokens, line?.cost], [90, 12, entry.cost]);
    assert.equal(await metric('switchboard_tokens_total', { direction: 'input', model: 'strict', provider: 'openai' }), strictInput + 40);
  });

  test('a refusal after content is an answer, not a failure; without a chain an empty refusal reaches the client as an answer too', async () => {
    fakes.strict.enqueue({ type: 'text', text: 'I started, but', finishReason: 'content_filter' });
    const partial = await complete('strict');
    assert.equal(partial.status, 200);
    assert.equal(partial.body.choices[0].finish_reason, 'content_filter');
    assert.equal(partial.body.choices[0].message.content, 'I started, but');
    assert.equal(count('backup'), 0);

    fakes.solo.enqueue({ type: 'text', text: '', finishReason: 'content_filter' });
    const alone = await complete('solo');
    assert.equal(alone.status, 200);
    assert.equal(alone.body.choices[0].finish_reason, 'content_filter');
  });

  test('content-policy fallbacks are off by default: the refusal reaches the client', async () => {
    fakes.small.enqueue({ type: 'error', status: 400, body: { error: { message: 'flagged by the content filter', type: 'invalid_request_error', code: 'content_filter' } } });
    const res = await complete('small');
    assert.equal(res.status, 400);
    assert.equal(count('big') + count('backup'), 0);
  });
});

describe('timeouts', () => {
  test('a stall before the first token hits the TTFT timeout and falls back', async () => {
    fakes.stally.enqueue({ type: 'stall', phase: 'headers' });
    fakes.backup.enqueue({ type: 'text', deltas: ['rescued'] });
    const started = performance.now();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stally', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-model'), 'backup');
    const { events } = await readSse(res);
    const text = events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data).choices?.[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'rescued');
    assert.ok(performance.now() - started >= 300);
    const stalled = await fakes.stally.requests[0].closed;
    assert.equal(stalled.completed, false, 'the stalled upstream call was aborted');
  });

  test('a buffered client gets a buffered upstream call: the TTFT limit does not cut a whole answer that takes longer', async () => {
    fakes.stally.enqueue({ type: 'text', text: 'worth the wait', firstByteDelayMs: 450 });
    const res = await complete('stally');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-model'), 'stally');
    assert.equal(res.body.choices[0].message.content, 'worth the wait');
    assert.equal(fakes.stally.requests[0].body.stream, false);
    assert.equal(count('backup'), 0);
  });

  test('a stall after the first token ends the stream with an in-stream error, no fallback', async () => {
    const chunk = (delta) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'stally-up', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    fakes.stally.enqueue({
      type: 'handler',
      handle(_req, res) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'Hal' }));
        // …and nothing more, ever.
      },
    });
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stally', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(res.status, 200);
    const { events } = await readSse(res);
    const payloads = events.map((e) => e.data);
    assert.equal(payloads.at(-1), '[DONE]');
    const error = JSON.parse(payloads.at(-2));
    assert.equal(error.error.type, 'timeout_error');
    assert.equal(error.error.code, 'idle_timeout');
    assert.ok(payloads.some((p) => p.includes('"Hal"')));
    assert.equal(count('backup'), 0);
  });
});

test('the total timeout bounds the whole request, retries included', async () => {
    fakes.capped.setDefault({ type: 'error', status: 503, headers: { 'retry-after': '1' } });
    const started = performance.now();
    const res = await complete('capped');
    const elapsed = performance.now() - started;
    assert.equal(res.status, 504);
    assert.equal(res.body.error.code, 'total_timeout');
    assert.ok(elapsed >= 250, `answered after ${elapsed.toFixed(0)} ms`);
    assert.equal(count('capped'), 1, 'the Retry-After wait was cut short by the total timeout');
    assert.equal(res.headers.get('x-switchboard-attempts'), '1');
  });

describe('served-by headers and cost', () => {
  test('provider, model, attempts and an overhead that excludes the upstream wait', async () => {
    fakes.slow.enqueue({ type: 'text', text: 'late', firstByteDelayMs: 500 });
    const started = performance.now();
    const res = await complete('slow');
    const elapsed = performance.now() - started;
    assert.equal(res.headers.get('x-switchboard-provider'), 'openai');
    assert.equal(res.headers.get('x-switchboard-model'), 'slow');
    assert.equal(res.headers.get('x-switchboard-attempts'), '1');
    assert.match(res.headers.get('x-switchboard-overhead-ms') ?? '', /^\d+\.\d\d$/);
    const overhead = Number(res.headers.get('x-switchboard-overhead-ms'));
    assert.ok(Number.isFinite(overhead) && overhead >= 0, `overhead ${overhead}`);
    assert.ok(elapsed >= 500);
    assert.ok(overhead < 250, `overhead ${overhead} ms should not include the 500 ms upstream wait`);
  });

  test('every dialect says who served the request, after how many attempts, at what overhead', async () => {
    const calls = {
      openai: () => complete('pair'),
      messages: () => postJson(`${server.url}/v1/messages`, { model: 'pair', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }),
      org: () => postJson(`${server.url}/api/v3/organizations/acme/ai/chat`, { modelId: 'pair', messages: [{ role: 'user', content: 'Hi' }] }),
      eden: () => postJson(`${server.url}/v2/text/chat`, { providers: 'pair', text: 'Hi' }),
    };
    for (const [dialect, call] of Object.entries(calls)) {
      fakes.a.enqueue({ type: 'error', status: 500 });
      const res = await call();
      assert.equal(res.status, 200, `${dialect}: ${res.text}`);
      assert.equal(res.headers.get('x-switchboard-provider'), 'openai', dialect);
      assert.equal(res.headers.get('x-switchboard-model'), 'pair', dialect);
      assert.equal(res.headers.get('x-switchboard-deployment'), 'b', dialect);
      assert.equal(res.headers.get('x-switchboard-attempts'), '2', dialect);
      assert.match(res.headers.get('x-switchboard-overhead-ms') ?? '', /^\d+\.\d\d$/, dialect);
    }
  });

  test('the cost comes from the model price table', async () => {
    fakes.solo.enqueue({ type: 'text', text: 'x', usage: { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1100 } });
    const res = await complete('solo', { stream: false });
    assert.equal(res.body.usage.cost, (1000 * 3 + 100 * 15) / 1e6);
    // …and the same cost is in the request log, with the attempts.
    const log = await fetch(`${server.url}/admin/requests?model=solo`, { headers: { authorization: 'Bearer admin' } }).then((r) => r.json());
    const entry = log.data.find((e) => e.id === res.headers.get('x-request-id'));
    assert.ok(entry, 'logged');
    assert.equal(entry.cost, (1000 * 3 + 100 * 15) / 1e6);
    assert.equal(entry.attempts, 1);
    assert.equal(entry.deployment, 'solo');
  });
});
