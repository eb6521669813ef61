// n > 1 on the local model: the choices run side by side on the sequences the request took at
// once, and choices beyond local.parallel start as earlier ones end. (The core's one call per
// choice took sequences one by one and held the first choices' while later ones waited: n above
// local.parallel never answered, and two such requests could wait on each other.) A client that
// leaves frees every sequence.

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

const chat = (body, signal = AbortSignal.timeout(30_000)) =>
  fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', ...body }), signal });

test('n above local.parallel answers every choice, buffered and streamed (it waited forever)', async () => {
  const buffered = await (await chat({ messages: [{ role: 'user', content: 'hi' }], n: 3, max_tokens: 4, seed: 7 })).json();
  assert.deepEqual(buffered.choices.map((c) => [c.index, c.finish_reason]), [[0, 'length'], [1, 'length'], [2, 'length']]);
  assert.equal(buffered.usage.completion_tokens, 12);
  const streamed = await (await chat({ messages: [{ role: 'user', content: 'hi' }], n: 3, max_tokens: 4, seed: 7, stream: true })).text();
  const finishes = streamed.split('\n').filter((l) => l.startsWith('data: {')).flatMap((l) => JSON.parse(l.slice(6)).choices.filter((c) => c.finish_reason).map((c) => c.index));
  assert.deepEqual(finishes.sort(), [0, 1, 2]);
  // The same seed gives the same choices, each its own (choice i samples with seed + i).
  const texts = buffered.choices.map((c) => c.message.content);
  assert.equal(new Set(texts).size, 3, JSON.stringify(texts));
  const again = await (await chat({ messages: [{ role: 'user', content: 'hi' }], n: 3, max_tokens: 4, seed: 7 })).json();
  assert.deepEqual(again.choices.map((c) => c.message.content), texts);
  assert.deepEqual(await localStats(), { active: 0, queued: 0 });
});

test('without a seed, choices and requests made in the same second differ (node-llama-cpp seeds with the time in seconds)', async () => {
  const ask = async () => (await (await chat({ messages: [{ role: 'user', content: 'hi' }], n: 3, max_tokens: 8, temperature: 1 })).json()).choices.map((c) => c.message.content);
  const [first, second] = await Promise.all([ask(), ask()]);
  // Each of the six texts was the same answer when they were sampled within one second.
  assert.ok(new Set(first).size > 1, JSON.stringify(first));
  assert.ok(new Set([...first, ...second]).size > 3, JSON.stringify([first, second]));
});

test('a client that leaves an n = 2 request while its second choice waits for the first one\'s sequence frees it', async () => {
  const client = new AbortController();
  const request = chat({ messages: [{ role: 'user', content: 'Two long answers, please.' }], n: 2, max_tokens: 1500 }, client.signal);
  request.catch(() => undefined);
  await until(async () => (await localStats()).active === 1, 'the first choice generating');
  client.abort();
  await until(async () => {
    const { active, queued } = await localStats();
    return active === 0 && queued === 0;
  }, 'both choices to let go of the model');
  // And the model serves the next request.
  const res = await chat({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).usage.completion_tokens, 4);
});
