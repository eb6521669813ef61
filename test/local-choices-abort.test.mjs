// n > 1 on a provider without native choices runs one call per choice. When one of them fails
// (here: the client leaves while the second choice still waits for a sequence of the local
// model), the others must be stopped too, or the first choice holds its sequence for good.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './helpers/server.mjs';
import { ensureTestModel } from './helpers/model.mjs';

let s;
before(async () => {
  s = await startServer({
    config: {
      local: { threads: 1, parallel: 1, queueLimit: 4, contextSize: 2048 },
      defaultModel: 'tiny',
      models: [{ id: 'tiny', provider: 'local', model: ensureTestModel(), contextLength: 2048 }],
    },
  });
});
after(async () => s?.close());

async function localStats() {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const stat = (name) => Number(new RegExp(`stat="${name}"\\} (\\d+)`).exec(text)?.[1] ?? NaN);
  return { active: stat('local_active_sequences'), queued: stat('local_queue_depth') };
}

async function until(check, what) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a client that leaves an n = 2 request while its second choice waits frees the first choice\'s sequence', async () => {
  const client = new AbortController();
  const request = fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Two long answers, please.' }], n: 2, max_tokens: 1500 }),
    signal: client.signal,
  });
  request.catch(() => undefined);
  await until(async () => {
    const { active, queued } = await localStats();
    return active === 1 && queued === 1;
  }, 'the first choice generating and the second queued');
  client.abort();
  await until(async () => {
    const { active, queued } = await localStats();
    return active === 0 && queued === 0;
  }, 'both choices to let go of the model');
  // And the model serves the next request.
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
  });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).usage.completion_tokens, 4);
});
