// GET /v1/usage and `switchboard usage` over HTTP and the CLI: totals equal the sum of what the
// responses said, on every dialect; an organisation sees only its own keys; the admin sees all.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { startServer } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';
import { dialectCalls } from './helpers/dialects.mjs';

const ADMIN = 'admin-secret-for-usage-tests';
const gated = createGatedFactory();
let server;
const responses = { acme: [], globex: [] };
const keys = {};

async function get(path, token) {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

before(async () => {
  server = await startServer({
    config: {
      models: [
        { id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 1_000_000, output: 2_000_000 } },
        { id: 'small', provider: 'gated', model: 'gated-2', pricing: { input: 500_000, output: 500_000 } },
      ],
    },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
  const create = (organisation, extra = {}) =>
    fetch(`${server.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ organisation, ...extra }),
    }).then((r) => r.json());
  keys.acme1 = await create('acme');
  keys.acme2 = await create('acme', { allowed_models: ['small'] });
  keys.globex = await create('globex');
  // Every dialect, two models, two keys, prompts of different lengths; plus refused calls.
  let i = 0;
  for (const dialect of dialectCalls) {
    for (const [key, model] of [[keys.acme1, 'gm'], [keys.acme1, 'small'], [keys.acme2, 'small'], [keys.globex, 'gm']]) {
      const organisation = key.organisation;
      const text = 'word '.repeat(1 + (i++ % 5)).trim();
      const res = await dialect.send(server.url, { key: key.key, model, text, maxTokens: 1 + (i % 3), organisation });
      assert.equal(res.status, 200, `${dialect.name} ${JSON.stringify(res.body)}`);
      responses[organisation].push({ keyId: key.id, model, usage: res.usage });
    }
    const refused = await dialect.send(server.url, { key: keys.acme2.key, model: 'gm', text: 'no', organisation: 'acme' });
    assert.equal(refused.status, 403);
  }
});
after(() => server?.close());

const sum = (list, pick) => list.reduce((n, r) => n + pick(r), 0);

test("an organisation's usage totals equal the sum of its responses' usage, across every dialect", async () => {
  const { status, body } = await get('/v1/usage', keys.acme1.key);
  assert.equal(status, 200);
  assert.equal(body.organisation, 'acme');
  const mine = responses.acme;
  assert.equal(body.totals.input_tokens, sum(mine, (r) => r.usage.input));
  assert.equal(body.totals.output_tokens, sum(mine, (r) => r.usage.output));
  assert.equal(body.totals.requests, mine.length + dialectCalls.length);
  assert.equal(body.totals.errors, dialectCalls.length, 'the 403s count as errors');
  // gm: $1/token in, $2/token out; small: $0.5 both ways.
  const price = (r) => (r.model === 'gm' ? r.usage.input + 2 * r.usage.output : 0.5 * (r.usage.input + r.usage.output));
  assert.equal(body.totals.cost, sum(mine, price));
  assert.ok(body.data.every((row) => row.organisation === 'acme'));
});

test('rows split by day, key, model and provider add up, with p50 ≤ p95 latency', async () => {
  const { body } = await get('/v1/usage', keys.acme1.key);
  const today = new Date().toISOString().slice(0, 10);
  const row = body.data.find((r) => r.key_id === keys.acme1.id && r.model === 'small');
  const expected = responses.acme.filter((r) => r.keyId === keys.acme1.id && r.model === 'small');
  assert.equal(row.day, today);
  assert.equal(row.provider, 'gated');
  assert.equal(row.requests, expected.length);
  assert.equal(row.input_tokens, sum(expected, (r) => r.usage.input));
  assert.equal(row.output_tokens, sum(expected, (r) => r.usage.output));
  assert.equal(row.errors, 0);
  assert.ok(row.latency_p50_ms > 0 && row.latency_p50_ms <= row.latency_p95_ms);
  assert.equal(sum(body.data, (r) => r.requests), body.totals.requests);
  const refusedRow = body.data.find((r) => r.key_id === keys.acme2.id && r.model === 'gm');
  assert.equal(refusedRow.errors, dialectCalls.length);
  assert.equal(refusedRow.provider, null);
});

test('a key cannot see another organisation; the admin sees every one, or one by name', async () => {
  assert.equal((await get('/v1/usage?organisation=globex', keys.acme1.key)).status, 403);
  const all = await get('/v1/usage', ADMIN);
  assert.equal(all.body.organisation, null);
  assert.equal(all.body.totals.requests, responses.acme.length + responses.globex.length + dialectCalls.length);
  const globex = await get('/v1/usage?organisation=globex', ADMIN);
  assert.equal(globex.body.totals.input_tokens, sum(responses.globex, (r) => r.usage.input));
  assert.ok(globex.body.data.every((r) => r.organisation === 'globex'));
  const none = await get(`/v1/usage?since=${new Date(Date.now() + 60_000).toISOString()}`, ADMIN);
  assert.equal(none.body.totals.requests, 0);
  assert.equal(none.body.totals.latency_p50_ms, null);
  assert.equal((await get('/v1/usage?since=yesterday', ADMIN)).status, 400);
  // A model named by an alias ('default' is the first model here) is the model's rows.
  const byId = await get('/v1/usage?model=gm', ADMIN);
  assert.ok(byId.body.totals.requests > 0);
  assert.deepEqual((await get('/v1/usage?model=default', ADMIN)).body.totals, byId.body.totals);
});

test('`switchboard usage` prints the same report as a table', async () => {
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, ['bin/switchboard.js', 'usage', '--data-dir', server.dataDir, '--org', 'acme'], { cwd: new URL('..', import.meta.url).pathname });
  const lines = stdout.trim().split('\n');
  assert.match(lines[0], /^DAY\s+ORGANISATION\s+KEY\s+MODEL\s+PROVIDER\s+REQUESTS\s+ERRORS\s+INPUT\s+CACHED\s+OUTPUT\s+COST_USD\s+P50_MS\s+P95_MS$/);
  const { body } = await get('/v1/usage', keys.acme1.key);
  assert.equal(lines.length, 1 + body.data.length + 1);
  const total = lines.at(-1).split(/\s+/);
  assert.deepEqual(total.slice(0, 5), ['TOTAL', '-', '-', '-', String(body.totals.requests)]);
  assert.equal(Number(total[6]), body.totals.input_tokens);
  assert.equal(Number(total[7]), body.totals.cache_read_tokens);
  assert.equal(Number(total[8]), body.totals.output_tokens);
  assert.equal(Number(total[9]), Number(body.totals.cost.toFixed(6)));
  const json = JSON.parse((await run(process.execPath, ['bin/switchboard.js', 'usage', '--data-dir', server.dataDir, '--org', 'acme', '--json'], { cwd: new URL('..', import.meta.url).pathname })).stdout);
  assert.deepEqual(json.totals, body.totals);
});
