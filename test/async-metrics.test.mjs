// The async queue's depth is visible in /metrics while runs wait behind a busy runner.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../dist/core/errors.js';
import { startServer, postJson } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';

let s;
let scripted;
before(async () => {
  scripted = createScriptedFactory({ GatewayError });
  s = await startServer({
    providers: { scripted: scripted.factory },
    config: { async: { concurrency: 1 }, defaultModel: 'm1', models: [{ id: 'm1', provider: 'scripted', model: 'x' }] },
  });
});
after(async () => s?.close());

async function queueDepth() {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('switchboard_async_queue_depth'));
  return Number(line.split(' ').at(-1));
}

const submit = (content) => postJson(`${s.url}/v1/messages/async`, { model: 'm1', max_tokens: 16, messages: [{ role: 'user', content }] });

test('switchboard_async_queue_depth counts runs waiting for the runner', async () => {
  assert.equal(await queueDepth(), 0);
  const first = await submit('script:gated hold');
  assert.equal(first.status, 202);
  const waiting = [];
  for (const name of ['second', 'third']) {
    const res = await submit(`script:text ${name}`);
    assert.equal(res.status, 202);
    waiting.push(res.body.message_id);
  }
  assert.equal(await queueDepth(), 2);
  const status = await (await fetch(`${s.url}/v1/messages/async/${first.body.message_id}`)).json();
  assert.equal(status.status, 'running');
  scripted.release('script:gated hold');
  // The observe stream ends when its run ends: read the last queued run's to the end.
  await (await fetch(`${s.url}/v1/messages/async/${waiting[1]}/events`)).text();
  assert.equal(await queueDepth(), 0);
});
