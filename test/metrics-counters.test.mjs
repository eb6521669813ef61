// GET /metrics over HTTP: counters move by exactly what the calls did, on every dialect;
// histograms count every call; gauges show calls in flight and the router's breaker state.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';
import { dialectCalls } from './helpers/dialects.mjs';

const ADMIN = 'admin-secret-for-metrics-tests';
const gated = createGatedFactory();
let server;
let key;
let limitedKey;

const DIALECT_LABEL = { openai: 'openai', 'openai-stream': 'openai', org: 'org', 'org-stream': 'org', messages: 'messages', eden: 'eden' };

/** Prometheus text → Map of `name{sorted labels}` → value. */
async function scrape() {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const samples = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = match[2] ? match[2].match(/\w+="(?:[^"\\]|\\.)*"/g).sort().join(',') : '';
    samples.set(`${match[1]}{${labels}}`, Number(match[3]));
  }
  return samples;
}

const series = (name, labels = {}) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',')}}`;
const delta = (before, after, name, labels) => (after.get(series(name, labels)) ?? 0) - (before.get(series(name, labels)) ?? 0);

before(async () => {
  server = await startServer({
    config: { models: [{ id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 1_000_000, output: 3_000_000 } }] },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
  const create = (limits) =>
    fetch(`${server.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ organisation: 'metrics-org', limits }),
    }).then((r) => r.json());
  key = await create();
  limitedKey = await create({ rpm: 1 });
});
after(() => server?.close());

test('request, error, token, cost and histogram series move by exactly what each dialect did', async () => {
  const before = await scrape();
  const expected = {};
  for (const dialect of dialectCalls) {
    const label = DIALECT_LABEL[dialect.name];
    const e = (expected[label] ??= { ok: 0, input: 0, output: 0 });
    for (const text of ['one', 'one two three']) {
      const res = await dialect.send(server.url, { key: key.key, model: 'gm', text, maxTokens: 2, organisation: 'metrics-org' });
      assert.equal(res.status, 200);
      e.ok++;
      e.input += res.usage.input;
      e.output += res.usage.output;
    }
  }
  // One refused call: a 429 on the openai dialect.
  const first = await dialectCalls[0].send(server.url, { key: limitedKey.key, model: 'gm', text: 'x', organisation: 'metrics-org' });
  const refused = await dialectCalls[0].send(server.url, { key: limitedKey.key, model: 'gm', text: 'x', organisation: 'metrics-org' });
  assert.equal(first.status, 200);
  assert.equal(refused.status, 429);
  expected.openai.ok++;
  expected.openai.input += first.usage.input;
  expected.openai.output += first.usage.output;

  const after = await scrape();
  let input = 0;
  let output = 0;
  for (const [dialect, e] of Object.entries(expected)) {
    const labels = { dialect, model: 'gm', provider: 'gated' };
    assert.equal(delta(before, after, 'switchboard_chat_requests_total', { ...labels, status: '200' }), e.ok, `${dialect} requests`);
    assert.equal(delta(before, after, 'switchboard_chat_latency_seconds_count', labels), e.ok, `${dialect} latency count`);
    assert.equal(delta(before, after, 'switchboard_chat_ttft_seconds_count', labels), e.ok, `${dialect} ttft count`);
    input += e.input;
    output += e.output;
  }
  assert.equal(delta(before, after, 'switchboard_chat_requests_total', { dialect: 'openai', model: 'gm', provider: 'none', status: '429' }), 1);
  assert.equal(delta(before, after, 'switchboard_chat_errors_total', { dialect: 'openai', model: 'gm', provider: 'none', status: '429', kind: 'rate_limit' }), 1);
  assert.equal(delta(before, after, 'switchboard_tokens_total', { direction: 'input', model: 'gm', provider: 'gated' }), input);
  assert.equal(delta(before, after, 'switchboard_tokens_total', { direction: 'output', model: 'gm', provider: 'gated' }), output);
  // $1 per input token, $3 per output token.
  assert.equal(delta(before, after, 'switchboard_cost_usd_total', { organisation: 'metrics-org', model: 'gm', provider: 'gated' }), input + 3 * output);
  const admitted = Object.values(expected).reduce((n, e) => n + e.ok, 0);
  const overheadCount = [...after.keys()].filter((k) => k.startsWith('switchboard_gateway_overhead_seconds_count')).reduce((n, k) => n + after.get(k) - (before.get(k) ?? 0), 0);
  assert.equal(overheadCount, admitted);
});

test('in-flight gauges count held calls and return to zero', { timeout: 30_000 }, async () => {
  gated.close();
  const enteredBefore = gated.entered;
  const pending = [1, 2, 3].map(() => dialectCalls[0].send(server.url, { key: key.key, model: 'gm', text: 'hold', organisation: 'metrics-org' }));
  await gated.waitForEntered(enteredBefore + 3);
  const during = await scrape();
  assert.equal(during.get('switchboard_chat_in_flight{}'), 3);
  // The three calls and this scrape.
  assert.equal(during.get('switchboard_http_requests_in_flight{}'), 4);
  gated.release();
  assert.ok((await Promise.all(pending)).every((r) => r.status === 200));
  const afterwards = await scrape();
  assert.equal(afterwards.get('switchboard_chat_in_flight{}'), 0);
  assert.equal(afterwards.get('switchboard_http_requests_in_flight{}'), 1);
});

test('queue depths and the router breaker state are exported', async () => {
  const samples = await scrape();
  assert.equal(samples.get('switchboard_local_queue_depth{}'), 0);
  assert.equal(samples.get('switchboard_async_queue_depth{}'), 0);
  const breaker = [...samples.entries()].filter(([k]) => k.startsWith('switchboard_router_breaker_state{') && k.includes('model="gm"'));
  assert.equal(breaker.length, 3, 'closed, half-open and open series');
  assert.equal(breaker.find(([k]) => k.includes('state="closed"'))[1], 1);
  assert.equal(breaker.filter(([, v]) => v === 1).length, 1);
});
