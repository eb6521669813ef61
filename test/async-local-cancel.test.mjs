// Cancelling an async run on the local provider (the tiny test model): the generation stops —
// its sequence is freed and no more tokens are produced or stored.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalProvider } from '../dist/providers/local/index.js';
import { startServer, postJson, readSse } from './helpers/server.mjs';
import { ensureTestModel } from './helpers/model.mjs';

let s;

/** Resolves once `check()` holds, re-checking after each turn of the event loop (no event exists for it). */
async function until(check, what) {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

before(async () => {
  s = await startServer({
    providers: { local: createLocalProvider },
    config: {
      local: { threads: 1, parallel: 2, contextSize: 4096 },
      defaultModel: 'tiny',
      models: [{ id: 'tiny', provider: 'local', model: ensureTestModel(), contextLength: 4096 }],
    },
  });
});
after(() => s.close());

test('DELETE of a running local generation stops it: the sequence is released, the token count stops', async () => {
  const submitted = await postJson(`${s.url}/v1/messages/async`, {
    model: 'tiny',
    max_tokens: 3000,
    temperature: 1,
    seed: 7,
    messages: [{ role: 'user', content: 'Write a very long story.' }],
  });
  assert.equal(submitted.status, 202);
  const id = submitted.body.message_id;

  // Read the live stream until a few tokens have been generated.
  const res = await fetch(`${s.url}/v1/messages/async/${id}/events`);
  const reader = res.body.getReader();
  let text = '';
  while ((text.match(/content_block_delta/g) ?? []).length < 5) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the run ended before it could be cancelled: ${text.slice(-300)}`);
    text += new TextDecoder().decode(value);
  }
  const local = s.server.context.gateway.provider('local');
  assert.equal(local.stats().local_active_sequences, 1);

  const cancelled = await (await fetch(`${s.url}/v1/messages/async/${id}`, { method: 'DELETE' })).json();
  assert.equal(cancelled.status, 'cancelled');
  // The generation stops: its sequence is freed (the provider releases it as it unwinds).
  await until(() => local.stats().local_active_sequences === 0, 'the sequence to be released');

  const countAfterCancel = cancelled.event_count;
  const { events } = await readSse(await fetch(`${s.url}/v1/messages/async/${id}/events`));
  assert.equal(events.length, countAfterCancel);
  assert.equal(events.at(-1).event, 'error');
  assert.equal(JSON.parse(events.at(-1).data).error.type, 'cancelled_error');
  assert.ok(!events.some((e) => e.event === 'message_stop'));
  const deltas = events.filter((e) => e.event === 'content_block_delta').length;
  assert.ok(deltas < 3000, `${deltas} deltas`);
  // Nothing is appended after the cancel.
  const later = await (await fetch(`${s.url}/v1/messages/async/${id}`)).json();
  assert.equal(later.event_count, countAfterCancel);
  await reader.cancel().catch(() => undefined);
});
