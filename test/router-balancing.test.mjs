// Load balancing and health over HTTP against fake OpenAI upstreams: weighted shares,
// least-busy preferring the idle deployment, lowest-latency learning the fast one, the circuit
// breaker opening and closing, and GET /v1/router/status (admin only).
// Build first: npx tsc -p tsconfig.json

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { postJson, startServer } from './helpers/server.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

const ADMIN = 'admin-secret';
const COOL_OFF_MS = 250;
let server;
const fakes = {};

before(async () => {
  for (const name of ['w1', 'w2', 'idle1', 'idle2', 'fast', 'laggy', 'flaky', 'steady']) fakes[name] = await startFakeOpenAI();
  const dep = (name, extra = {}) => ({ name, provider: 'openai', model: `${name}-up`, baseUrl: fakes[name].url, ...extra });
  server = await startServer({
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
    config: {
      router: { backoff: { baseMs: 1, maxMs: 5 } },
      models: [
        { id: 'weighted', deployments: [dep('w1', { weight: 3 }), dep('w2', { weight: 1 })], routing: { strategy: 'weighted' } },
        { id: 'least-busy', deployments: [dep('idle1'), dep('idle2')], routing: { strategy: 'least-busy' } },
        { id: 'lowest-latency', deployments: [dep('laggy'), dep('fast')], routing: { strategy: 'lowest-latency' } },
        {
          id: 'guarded',
          deployments: [dep('flaky'), dep('steady')],
          routing: { strategy: 'ordered', retries: 1, breaker: { failureThreshold: 2, coolOffMs: COOL_OFF_MS } },
        },
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

async function routerStatus(key = ADMIN) {
  const res = await fetch(`${server.url}/v1/router/status`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: res.status, body: await res.json() };
}

async function deploymentStatus(model, name) {
  const { body } = await routerStatus();
  return body.models.find((m) => m.id === model).deployments.find((d) => d.name === name);
}

test('weighted routing shares 200 HTTP requests 3:1 within statistical bounds', async () => {
  const n = 200;
  for (let i = 0; i < n; i += 20) await Promise.all(Array.from({ length: 20 }, () => complete('weighted')));
  assert.equal(count('w1') + count('w2'), n);
  // Binomial(200, 0.75): mean 150, σ ≈ 6.1; 5σ bounds never fail by chance in practice.
  assert.ok(Math.abs(count('w1') - 150) <= 31, `w1 got ${count('w1')} of ${n}`);
});

test('least-busy sends a request to the idle deployment while the other is busy', async () => {
  let release;
  const released = new Promise((resolve) => (release = resolve));
  const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  fakes.idle1.enqueue({
    type: 'handler',
    async handle(_req, res) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk({ role: 'assistant', content: 'busy' }));
      await released;
      res.end(chunk({}, 'stop') + 'data: [DONE]\n\n');
    },
  });
  // Both idle: the tie goes to the first; it stays busy until released.
  const long = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'least-busy', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
  });
  assert.equal(long.headers.get('x-switchboard-deployment'), 'idle1');
  assert.equal((await deploymentStatus('least-busy', 'idle1')).inFlight, 1);
  const second = await complete('least-busy');
  assert.equal(second.headers.get('x-switchboard-deployment'), 'idle2');
  release();
  await long.text();
  assert.equal((await deploymentStatus('least-busy', 'idle1')).inFlight, 0);
  const third = await complete('least-busy');
  assert.equal(third.headers.get('x-switchboard-deployment'), 'idle1', 'both idle again: the first');
});

test('lowest-latency learns which deployment answers first', async () => {
  fakes.laggy.setDefault({ type: 'text', text: 'slow', firstByteDelayMs: 300 });
  const served = [];
  for (let i = 0; i < 4; i++) served.push((await complete('lowest-latency')).headers.get('x-switchboard-deployment'));
  // Each unmeasured deployment is tried once, then the faster one wins.
  assert.deepEqual(served, ['laggy', 'fast', 'fast', 'fast']);
  const laggy = await deploymentStatus('lowest-latency', 'laggy');
  const fast = await deploymentStatus('lowest-latency', 'fast');
  assert.ok(laggy.ttftAverageMs > fast.ttftAverageMs, `${laggy.ttftAverageMs} vs ${fast.ttftAverageMs}`);
});

test('the circuit breaker opens after consecutive failures and closes after a good trial', async () => {
  fakes.flaky.setDefault({ type: 'error', status: 500 });
  for (let i = 0; i < 2; i++) {
    const res = await complete('guarded');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-deployment'), 'steady');
  }
  assert.equal(count('flaky'), 2);
  let flaky = await deploymentStatus('guarded', 'flaky');
  assert.equal(flaky.circuit.state, 'open');
  assert.equal(flaky.circuit.consecutiveFailures, 2);
  assert.ok(Date.parse(flaky.circuit.openUntil) > Date.now());

  // Open: requests go straight to the healthy deployment.
  const res = await complete('guarded');
  assert.equal(res.headers.get('x-switchboard-attempts'), '1');
  assert.equal(count('flaky'), 2, 'no request reached the open deployment');

  // After the cool-off one trial goes through; it succeeds and the circuit closes.
  fakes.flaky.setDefault({ type: 'text', text: 'recovered' });
  await delay(Date.parse(flaky.circuit.openUntil) - Date.now() + 20);
  assert.equal((await deploymentStatus('guarded', 'flaky')).circuit.state, 'half-open');
  const trial = await complete('guarded');
  assert.equal(trial.headers.get('x-switchboard-deployment'), 'flaky');
  flaky = await deploymentStatus('guarded', 'flaky');
  assert.equal(flaky.circuit.state, 'closed');
  assert.equal(flaky.circuit.consecutiveFailures, 0);
});

test('GET /v1/router/status needs the admin key', async () => {
  const anonymous = await routerStatus(null);
  assert.equal(anonymous.status, 403);
  const wrong = await routerStatus('not-the-key');
  assert.equal(wrong.status, 403);
  const admin = await routerStatus();
  assert.equal(admin.status, 200);
  assert.deepEqual(admin.body.models.map((m) => m.id), ['weighted', 'least-busy', 'lowest-latency', 'guarded']);
  assert.equal(admin.body.models[0].strategy, 'weighted');
  assert.deepEqual(Object.keys(admin.body.models[0].deployments[0]).sort(), ['circuit', 'failures', 'inFlight', 'maxConcurrent', 'model', 'name', 'provider', 'requests', 'ttftAverageMs', 'weight']);
});
