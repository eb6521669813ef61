// `switchboard keys` uses the same store as the admin API: limits set from the CLI apply to the
// running server at once, and a key revoked from the CLI is refused at once.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { startServer, postJson } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';

const run = promisify(execFile);
const gated = createGatedFactory();
let server;

const cli = async (...args) => (await run(process.execPath, ['bin/switchboard.js', 'keys', ...args, '--data-dir', server.dataDir], { cwd: new URL('..', import.meta.url).pathname })).stdout;
const chat = (key) => postJson(`${server.url}/v1/chat/completions`, { model: 'gm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }, { authorization: `Bearer ${key}` });

before(async () => {
  server = await startServer({ config: { models: [{ id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 1, output: 1 } }] }, providers: { gated: gated.factory } });
});
after(() => server?.close());

test('a key created with limits by the CLI is limited by the server; limits and revocation apply at once', async () => {
  const created = await cli('create', '--org', 'cli-org', '--rpm', '1');
  const key = created.trim().split('\n').pop();
  const id = /Created key (\S+)/.exec(created)[1];
  assert.equal((await chat(key)).status, 200);
  const refused = await chat(key);
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, 'requests_per_minute_exceeded');

  assert.match(await cli('limits', id, '--clear'), /none/);
  assert.equal((await chat(key)).status, 200);

  assert.match(await cli('limits', id, '--concurrent', '3', '--budget-day', '0'), /"budget":\{"day":0\}/);
  assert.equal((await chat(key)).body.error.code, 'budget_exceeded');

  await assert.rejects(cli('limits', id, '--rpm', '-2'), /Invalid limits: rpm/);
  await cli('revoke', id);
  assert.equal((await chat(key)).status, 401);
});
