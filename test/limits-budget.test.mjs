// Budgets in money per period over HTTP, 50 clients at once: a call reserves its prompt (counted,
// or estimated for an upstream without a tokenizer) and max_tokens × price before it runs and
// settles its real cost after, so a budget is overspent only by what calls cost beyond that.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, postJson } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

const ADMIN = 'admin-secret-for-budget-tests';
const gated = createGatedFactory();
let server;
let upstream;

// $0.125 per token in and out. A 2-word prompt with max_tokens 2 reserves (2 + 2) × 0.125 = $0.5,
// and costs exactly that.
const RESERVATION = 0.5;
const BUDGET = 2.2;

async function admin(method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

function chat(key) {
  return postJson(`${server.url}/v1/chat/completions`, { model: 'gm', messages: [{ role: 'user', content: 'budget test' }], max_tokens: 2 }, { authorization: `Bearer ${key}` });
}

function answered(pending, status, n) {
  return new Promise((resolve) => {
    let seen = 0;
    for (const p of pending) p.then((r) => r.status === status && ++seen === n && resolve());
  });
}

const spentBy = (results) => results.filter((r) => r.status === 200).reduce((sum, r) => sum + r.body.usage.cost, 0);

before(async () => {
  upstream = await startFakeOpenAI();
  server = await startServer({
    config: {
      models: [
        { id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 125000, output: 125000 } },
        // An OpenAI-compatible upstream: no tokenizer here, the prompt is estimated.
        { id: 'compat', provider: 'openai', model: 'gpt-4o-mini', baseUrl: upstream.url, pricing: { input: 100000, output: 100000 } },
        // The router ends its calls at 300 ms, answering or not.
        { id: 'capped', provider: 'openai', model: 'gpt-4o-mini', baseUrl: upstream.url, pricing: { input: 100000, output: 100000 }, routing: { retries: 0, timeouts: { totalMs: 300 } } },
        // Free, but its upstream fails and the dear model answers instead.
        { id: 'cheap', provider: 'openai', model: 'cheap-up', baseUrl: upstream.url, pricing: { input: 0, output: 0 }, routing: { retries: 0, fallbacks: ['dear'] } },
        { id: 'dear', provider: 'openai', model: 'dear-up', baseUrl: upstream.url, pricing: { input: 100000, output: 100000 }, routing: { retries: 0 } },
      ],
    },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
});
after(async () => {
  await server?.close();
  await upstream?.close();
});

test("the prompt is counted for the reservation with the model's context as the limit: past it a lower bound will do", async () => {
  const created = await admin('POST', '/admin/keys', { organisation: 'bound-org' });
  await admin('PATCH', `/admin/keys/${created.body.id}`, { limits: { budget: { day: 100 } } });
  const before = gated.countLimits.length;
  assert.equal((await chat(created.body.key)).status, 200);
  // A local tokenizer holds the event loop: a 17 MB prompt was tokenized whole (5 s) before the provider refused it.
  assert.deepEqual(gated.countLimits.slice(before), [4096]);
});

test('a daily key budget admits exactly floor(budget / reservation) concurrent calls, then refuses', { timeout: 30_000 }, async () => {
  const created = await admin('POST', '/admin/keys', { organisation: 'budget-org' });
  const patched = await admin('PATCH', `/admin/keys/${created.body.id}`, { limits: { budget: { day: BUDGET } } });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.body.limits, { budget: { day: BUDGET } });

  gated.close();
  const enteredBefore = gated.entered;
  const pending = Array.from({ length: 50 }, () => chat(created.body.key));
  // 4 × 0.5 = 2.0 fits in 2.2; a 5th reservation would not. Hold the 4 until the 46 are answered.
  await Promise.all([gated.waitForEntered(enteredBefore + 4), answered(pending, 429, 46)]);
  gated.release();
  const results = await Promise.all(pending);
  assert.equal(results.filter((r) => r.status === 200).length, 4);
  assert.equal(gated.entered - enteredBefore, 4);
  const refused = results.find((r) => r.status === 429);
  assert.equal(refused.body.error.code, 'budget_exceeded');
  assert.equal(refused.body.error.type, 'rate_limit_error');
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.equal(spentBy(results), 2);
  // Settled at $2.0: another $0.5 would pass $2.2.
  const next = await chat(created.body.key);
  assert.equal(next.status, 429);
  assert.equal(next.body.error.code, 'budget_exceeded');
});

test('an organisation budget under 50 free-running clients is never overspent by more than one reservation', async () => {
  await admin('PATCH', '/admin/organisations/spend-org', { limits: { budget: { month: BUDGET } } });
  const keys = await Promise.all([0, 1, 2].map(() => admin('POST', '/admin/keys', { organisation: 'spend-org' })));
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => chat(keys[i % 3].body.key)));
  const spent = spentBy(results);
  assert.ok(spent <= BUDGET + RESERVATION, `spent ${spent}`);
  assert.ok(results.filter((r) => r.status === 200).length >= Math.floor(BUDGET / RESERVATION));
  assert.ok(results.every((r) => r.status === 200 || (r.status === 429 && r.body.error.code === 'budget_exceeded')));
  // What usage reports for the organisation is what the responses said they cost.
  const usage = await fetch(`${server.url}/v1/usage?organisation=spend-org`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json());
  assert.equal(usage.totals.cost, spent);
  assert.equal(usage.totals.requests, 50);
  assert.equal(usage.totals.errors, results.filter((r) => r.status === 429).length);
});

test('a budget of zero refuses the first call', async () => {
  const created = await admin('POST', '/admin/keys', { organisation: 'zero-org', limits: { budget: { day: 0 } } });
  const refused = await chat(created.body.key);
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, 'budget_exceeded');
});

test("short prompts to an OpenAI-compatible upstream, all at once: the estimate covers OpenAI's own count, so no overspend", async () => {
  // OpenAI counts one "hi" message as 8 prompt tokens (3 a message, 1 for the role, 1 for "hi", 3
  // to start the reply); the fake upstream says so. At $0.1 a token, 8 in + 2 out cost $1.
  upstream.setDefault({ type: 'text', text: 'ok', chunks: 1, delayMs: 200, usage: { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 } });
  const budget = 5.5;
  await admin('PATCH', '/admin/organisations/compat-org', { limits: { budget: { day: budget } } });
  const { body: key } = await admin('POST', '/admin/keys', { organisation: 'compat-org' });
  const results = await Promise.all(
    Array.from({ length: 30 }, () =>
      postJson(`${server.url}/v1/chat/completions`, { model: 'compat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }, { authorization: `Bearer ${key.key}` }),
    ),
  );
  assert.ok(results.every((r) => r.status === 200 || (r.status === 429 && r.body.error.code === 'budget_exceeded')));
  const spent = spentBy(results);
  assert.ok(spent <= budget, `spent ${spent} of ${budget}`);
  assert.equal(results.filter((r) => r.status === 200).length, 5);
});

test("a budget holds when the model falls back to a dearer one: the reservation is priced at the dearest model that may answer", async () => {
  const budget = 2.5;
  await admin('PATCH', '/admin/organisations/fallback-org', { limits: { budget: { day: budget } } });
  const { body: key } = await admin('POST', '/admin/keys', { organisation: 'fallback-org' });
  const results = [];
  for (let i = 0; i < 5; i++) {
    // 8 + 2 tokens at $0.1 each: the dear model's answer costs $1.
    upstream.enqueue((record) => (record.body.model === 'cheap-up' ? { type: 'error', status: 500 } : { type: 'text', text: 'ok', usage: { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 } }));
    upstream.enqueue((record) => (record.body.model === 'cheap-up' ? { type: 'error', status: 500 } : { type: 'text', text: 'ok', usage: { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 } }));
    results.push(await postJson(`${server.url}/v1/chat/completions`, { model: 'cheap', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }, { authorization: `Bearer ${key.key}` }));
  }
  upstream.reset();
  assert.ok(results.every((r) => r.status === 200 || (r.status === 429 && r.body.error.code === 'budget_exceeded')), JSON.stringify(results.map((r) => r.status)));
  assert.ok(results.some((r) => r.status === 200 && r.body.model === 'dear'), 'the fallback answered');
  const spent = spentBy(results);
  assert.ok(spent <= budget, `spent ${spent} of ${budget}`);
});

test('a stream its client cuts off before the usage arrives is still charged: the prompt and what was sent, estimated', async () => {
  // 40 deltas of 8 characters, 20 ms apart; the client reads 10 of them and hangs up.
  const deltas = Array.from({ length: 40 }, (_, i) => `word${String(i).padStart(3, '0')} `);
  upstream.enqueue({ type: 'text', deltas, delayMs: 20, usage: { prompt_tokens: 9, completion_tokens: 40, total_tokens: 49 } });
  const { body: key } = await admin('POST', '/admin/keys', { organisation: 'cutoff-org' });
  const abort = new AbortController();
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key.key}` },
    body: JSON.stringify({ model: 'compat', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Count for me, slowly.' }] }),
    signal: abort.signal,
  });
  const requestId = res.headers.get('x-request-id');
  let received = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    received += decoder.decode(chunk, { stream: true });
    if ((received.match(/"content":"word/g) ?? []).length >= 10) break;
  }
  abort.abort();
  const seen = (received.match(/"content":"word/g) ?? []).length;
  let row;
  while (!row) {
    const { body } = await admin('GET', '/admin/requests?organisation=cutoff-org');
    row = body.data.find((r) => r.id === requestId);
    if (!row) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(row.status, 499);
  assert.equal(row.error_kind, 'cancelled');
  // 'Count for me, slowly.' (21 characters) is 6 tokens at 4 a token, plus 4 for the message and 3.
  assert.equal(row.input_tokens, 13);
  // At least what the client was sent (8 characters a delta: 2 tokens each); at most all 40 deltas.
  assert.ok(row.output_tokens >= seen * 2 && row.output_tokens <= 80, `${row.output_tokens} output tokens for ${seen} deltas seen`);
  assert.ok(Math.abs(row.cost - (row.input_tokens + row.output_tokens) * 0.1) < 1e-9, `cost ${row.cost}`);
});

test("a stream the router's total timeout ends is charged as a cut-off one: its 504 row has the prompt and what was sent", async () => {
  // 40 deltas 20 ms apart take 800 ms; the timeout cuts the stream at 300 ms.
  const deltas = Array.from({ length: 40 }, (_, i) => `word${String(i).padStart(3, '0')} `);
  upstream.enqueue({ type: 'text', deltas, delayMs: 20, usage: { prompt_tokens: 9, completion_tokens: 40, total_tokens: 49 } });
  const { body: key } = await admin('POST', '/admin/keys', { organisation: 'timeout-org' });
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key.key}` },
    body: JSON.stringify({ model: 'capped', stream: true, messages: [{ role: 'user', content: 'Count for me, slowly.' }] }),
  });
  const requestId = res.headers.get('x-request-id');
  const text = await res.text();
  assert.match(text, /total_timeout/);
  const seen = (text.match(/"content":"word/g) ?? []).length;
  assert.ok(seen > 0, 'the stream had begun');
  let row;
  while (!row) {
    const { body } = await admin('GET', '/admin/requests?organisation=timeout-org');
    row = body.data.find((r) => r.id === requestId);
    if (!row) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(row.status, 504);
  assert.equal(row.input_tokens, 13);
  assert.ok(row.output_tokens >= seen * 2 && row.output_tokens <= 80, `${row.output_tokens} output tokens for ${seen} deltas seen`);
  assert.ok(row.cost > 0);
});

test('the estimate for a cut-off call takes the prompt as the provider counted it at the start, caches included, and adds unfinished choices only', async () => {
  const { withCutOffChoices } = await import('../dist/core/gateway.js');
  const { estimateTokens } = await import('../dist/core/truncate.js');
  const request = { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'Count for me, slowly.' }] }] };
  const none = { inputTokens: 0, outputTokens: 0, totalTokens: 0 };
  // Anthropic and the local provider say the prompt's size on `start`: kept, cache reads too.
  const started = { inputTokens: 900, outputTokens: 1, totalTokens: 901, cacheReadTokens: 8000 };
  assert.deepEqual(withCutOffChoices(none, request, started, new Map([[0, 40]]), new Set()), { inputTokens: 900, outputTokens: 10, totalTokens: 910, cacheReadTokens: 8000, reasoningTokens: undefined });
  // Without it, the estimate.
  assert.deepEqual(withCutOffChoices(none, request, undefined, new Map([[0, 40]]), new Set()), { inputTokens: estimateTokens(request), outputTokens: 10, totalTokens: estimateTokens(request) + 10 });
  // A choice that finished reported its own usage: only the unfinished one's output is added.
  const finished = { inputTokens: 12, outputTokens: 5, totalTokens: 17 };
  assert.deepEqual(withCutOffChoices(finished, request, started, new Map([[0, 20], [1, 8]]), new Set([0])), { inputTokens: 12, outputTokens: 7, totalTokens: 19 });
  assert.equal(withCutOffChoices(finished, request, started, new Map([[0, 20]]), new Set([0])), finished);
});
