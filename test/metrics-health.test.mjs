// GET /health (liveness) and GET /health/ready (store reachable, default model loaded).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startServer } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';

const servers = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function start(warmUp) {
  const gated = createGatedFactory();
  const factory = () => ({ ...gated.factory(), warmUp });
  const server = await startServer({ config: { models: [{ id: 'gm', provider: 'gated', model: 'gated-1' }] }, providers: { gated: factory } });
  servers.push(server);
  return server;
}

test('liveness and readiness are 200 when the store answers and the default model loads', async () => {
  let loads = 0;
  const server = await start(async () => {
    loads++;
  });
  const live = await fetch(`${server.url}/health`);
  assert.equal(live.status, 200);
  assert.deepEqual(await live.json(), { status: 'ok' });
  const ready = await fetch(`${server.url}/health/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready', checks: { store: 'ok', defaultModel: 'ok' } });
  assert.equal(loads, 1, 'readiness loads the default model');
});

test('readiness is 503 naming the check when the default model cannot load', async () => {
  const server = await start(async () => {
    throw new Error('model file missing');
  });
  assert.equal((await fetch(`${server.url}/health`)).status, 200, 'still alive');
  const ready = await fetch(`${server.url}/health/ready`);
  assert.equal(ready.status, 503);
  const body = await ready.json();
  assert.equal(body.status, 'not_ready');
  assert.equal(body.checks.store, 'ok');
  assert.match(body.checks.defaultModel, /model file missing/);
});

test('while the default model loads (a first download), readiness answers 503 loading at once, then 200', async () => {
  let finish;
  const loading = new Promise((resolve) => (finish = resolve));
  const server = await start(() => loading);
  const during = await fetch(`${server.url}/health/ready`);
  assert.equal(during.status, 503);
  assert.deepEqual((await during.json()).checks, { store: 'ok', defaultModel: 'loading' });
  finish();
  const after = await fetch(`${server.url}/health/ready`);
  assert.equal(after.status, 200);
});

test('a failed load whose retry outlasts the probe is reported as the failure, not as loading', async () => {
  // The first load fails at once; the retry a probe starts never ends.
  let calls = 0;
  const server = await start(() => (++calls === 1 ? Promise.reject(new Error('no binary for this GPU')) : new Promise(() => {})));
  const first = await (await fetch(`${server.url}/health/ready`)).json();
  assert.match(first.checks.defaultModel, /no binary for this GPU/);
  const second = await fetch(`${server.url}/health/ready`);
  assert.equal(second.status, 503);
  assert.match((await second.json()).checks.defaultModel, /^error: no binary for this GPU/);
  assert.ok(calls >= 2, 'the probe retried the load');
});

test('readiness is 503 when the store is unreachable', async () => {
  const server = await start(async () => {});
  await server.server.context.store.close();
  const ready = await fetch(`${server.url}/health/ready`);
  assert.equal(ready.status, 503);
  assert.match((await ready.json()).checks.store, /^error: /);
});
