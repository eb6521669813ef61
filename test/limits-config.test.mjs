// Limits from the config file: per-organisation limits, default key limits, the default max
// tokens a budget reserves, and a clear start-up error for a bad `limits:` block.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, postJson } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';

const ADMIN = 'admin-secret-for-config-limit-tests';
const gated = createGatedFactory();
let server;

async function newKey(organisation, limits) {
  const res = await postJson(`${server.url}/admin/keys`, { organisation, limits }, { authorization: `Bearer ${ADMIN}` });
  assert.equal(res.status, 201);
  return res.body.key;
}

const chat = (key, body = {}) => postJson(`${server.url}/v1/chat/completions`, { model: 'gm', messages: [{ role: 'user', content: 'hi' }], ...body }, { authorization: `Bearer ${key}` });

before(async () => {
  server = await startServer({
    config: {
      models: [{ id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 125000, output: 125000 } }],
      limits: {
        defaultMaxTokens: 3,
        keys: { rpm: 4 },
        organisations: { 'cfg-org': { rpm: 2 }, 'budget-org': { budget: { day: 1 } } },
      },
    },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
});
after(() => server?.close());

test('an organisation limit from the config applies to all its keys', async () => {
  const [a, b] = [await newKey('cfg-org'), await newKey('cfg-org')];
  const results = await Promise.all([chat(a), chat(b), chat(a), chat(b)]);
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 429, 429]);
});

test('keys without limits of their own get the config default; their own replace it', async () => {
  const plain = await newKey('plain-org');
  const results = await Promise.all(Array.from({ length: 6 }, () => chat(plain)));
  assert.equal(results.filter((r) => r.status === 200).length, 4);
  const own = await newKey('plain-org', { rpm: 5 });
  const mine = await Promise.all(Array.from({ length: 6 }, () => chat(own)));
  assert.equal(mine.filter((r) => r.status === 200).length, 5);
});

test('a request without max tokens reserves the configured default', { timeout: 30_000 }, async () => {
  // 1 prompt word + 3 default max tokens = 4 tokens × $0.125 = $0.5 reserved: two fit in $1.
  const key = await newKey('budget-org');
  gated.close();
  const enteredBefore = gated.entered;
  const pending = [chat(key), chat(key), chat(key)];
  // Hold the two admitted calls until the third has been refused.
  const firstRefusal = new Promise((resolve) => pending.forEach((p) => p.then((r) => r.status === 429 && resolve(r))));
  const [refused] = await Promise.all([firstRefusal, gated.waitForEntered(enteredBefore + 2)]);
  gated.release();
  const results = await Promise.all(pending);
  assert.equal(results.filter((r) => r.status === 200).length, 2);
  assert.equal(refused.status, 429);
  assert.match(refused.body.error.message, /this request reserves \$0\.5\)/);
});

test('a bad limits block stops the server with the field named', async () => {
  await assert.rejects(
    startServer({ config: { models: [{ id: 'gm', provider: 'gated', model: 'x' }], limits: { organisations: { x: { rpm: 'many' } } } }, providers: { gated: gated.factory } }),
    /limits\.organisations\.x\.rpm/,
  );
});
