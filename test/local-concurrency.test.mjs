// Concurrency on the local provider: requests share one context and decode together, the
// overflow waits in a bounded FIFO queue, and a client that goes away frees its sequence at once.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ensureTestModel, startLocalProvider, user } from './helpers/model.mjs';
import { startServer } from './helpers/server.mjs';

/** Resolves once `check()` holds, re-checking after each turn of the event loop. */
async function until(check, what) {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('local provider: batched sequences', () => {
  let local;
  before(async () => {
    local = await startLocalProvider({ parallel: 4, queueLimit: 4 });
    await local.provider.warmUp(local.deployment);
  });
  after(() => local.provider.close());

  it('runs 4 concurrent requests together, all to completion', async () => {
    let maxActive = 0;
    const one = async (seed) => {
      let tokens = 0;
      let finish;
      for await (const part of local.open({ messages: [user(`Request number ${seed}`)], maxTokens: 48, seed })) {
        maxActive = Math.max(maxActive, local.provider.stats().local_active_sequences);
        if (part.type === 'finish') finish = part;
        if (part.type === 'text-delta') tokens++;
      }
      return { finish, tokens };
    };
    const results = await Promise.all([1, 2, 3, 4].map(one));
    for (const r of results) {
      assert.equal(r.finish.finishReason, 'length');
      assert.equal(r.finish.usage.outputTokens, 48);
    }
    assert.equal(maxActive, 4, 'all four held a sequence at the same time');
    const { local_queue_depth, local_active_sequences } = local.provider.stats();
    assert.deepEqual({ local_queue_depth, local_active_sequences }, { local_queue_depth: 0, local_active_sequences: 0 });
  });

  it('has the sequences that generate together share every decode', async () => {
    // node-llama-cpp alone decodes them three at a time or alone (batch-gate.ts); on a GPU each
    // split decode is a lost step. Prefill rounds and each request's last token carry fewer.
    const before = local.provider.stats();
    await Promise.all([1, 2, 3, 4].map((seed) => local.run({ messages: [user(`Share ${seed}`)], maxTokens: 64, seed })));
    const after = local.provider.stats();
    const rounds = after.local_decode_rounds - before.local_decode_rounds;
    const sequences = after.local_decode_round_sequences - before.local_decode_round_sequences;
    assert.ok(rounds >= 64, `at least one decode per token step (${rounds})`);
    assert.ok(sequences / rounds >= 3.5, `mean sequences per decode ${(sequences / rounds).toFixed(2)} (${sequences} in ${rounds})`);
  });

  it('a request whose consumer stops reading does not stall the others, and resumes later', async () => {
    // The held one still counts as generating, so each round of the other waits the gate's
    // short maximum for it instead of forever.
    const held = local.open({ messages: [user('I read slowly')], maxTokens: 16, seed: 11 })[Symbol.asyncIterator]();
    while ((await held.next()).value.type !== 'text-delta');
    const other = await local.run({ messages: [user('I read at once')], maxTokens: 32, seed: 12 });
    assert.equal(other.finish.usage.outputTokens, 32);
    let finish;
    for (let step = await held.next(); !step.done; step = await held.next()) if (step.value.type === 'finish') finish = step.value;
    assert.equal(finish.usage.outputTokens, 16);
  });

  it('queues a fifth request and serves it when a sequence frees up', async () => {
    const running = [1, 2, 3, 4].map((seed) => local.run({ messages: [user('busy')], maxTokens: 64, seed }));
    await until(() => local.provider.stats().local_active_sequences === 4, 'four active sequences');
    const queued = local.run({ messages: [user('waiting')], maxTokens: 8, seed: 5 });
    await until(() => local.provider.stats().local_queue_depth === 1, 'one queued request');
    const results = await Promise.all([...running, queued]);
    assert.equal(results[4].finish.usage.outputTokens, 8);
  });
});

describe('local provider: queue limit and client disconnects', () => {
  let local;
  before(async () => {
    local = await startLocalProvider({ parallel: 1, queueLimit: 1 });
    await local.provider.warmUp(local.deployment);
  });
  after(() => local.provider.close());

  it('refuses a request past the queue limit with 503 and Retry-After', async () => {
    const first = new AbortController();
    const iterator = local.open({ messages: [user('long answer')], maxTokens: 100_000, seed: 1 }, first.signal)[Symbol.asyncIterator]();
    while ((await iterator.next()).value.type !== 'text-delta');
    const queued = local.run({ messages: [user('second')], maxTokens: 4, seed: 2 });
    await until(() => local.provider.stats().local_queue_depth === 1, 'the second request queued');
    await assert.rejects(local.run({ messages: [user('third')], maxTokens: 4 }), (err) => err.status === 503 && err.retryAfter === 1 && err.code === 'local_queue_full');
    first.abort();
    await assert.rejects(iterator.next(), (err) => err.kind === 'cancelled');
    assert.equal((await queued).finish.usage.outputTokens, 4);
  });

  it('an aborted request stops generating and the queued one starts promptly', async () => {
    const first = new AbortController();
    let firstTokens = 0;
    const firstDone = (async () => {
      for await (const part of local.open({ messages: [user('go on forever')], maxTokens: 100_000, seed: 3 }, first.signal)) {
        if (part.type === 'text-delta') firstTokens++;
      }
    })();
    await until(() => firstTokens > 0, 'the first request generating');
    const second = local.run({ messages: [user('next in line')], maxTokens: 5, seed: 4 });
    await until(() => local.provider.stats().local_queue_depth === 1, 'the second request queued');

    const abortedAt = performance.now();
    first.abort();
    await assert.rejects(firstDone, (err) => err.kind === 'cancelled');
    const tokensAtAbort = firstTokens;
    const r = await second;
    const waited = performance.now() - abortedAt;
    assert.equal(r.finish.usage.outputTokens, 5);
    assert.ok(waited < 2000, `the queued request finished ${Math.round(waited)} ms after the abort`);
    assert.equal(firstTokens, tokensAtAbort, 'no tokens after the abort');
    const { local_queue_depth, local_active_sequences } = local.provider.stats();
    assert.deepEqual({ local_queue_depth, local_active_sequences }, { local_queue_depth: 0, local_active_sequences: 0 });
  });

  it('a request aborted while queued leaves the queue', async () => {
    const first = new AbortController();
    const iterator = local.open({ messages: [user('hold the sequence')], maxTokens: 100_000, seed: 5 }, first.signal)[Symbol.asyncIterator]();
    while ((await iterator.next()).value.type !== 'text-delta');
    const waiting = new AbortController();
    const queued = local.run({ messages: [user('impatient')], maxTokens: 4 }, waiting.signal);
    await until(() => local.provider.stats().local_queue_depth === 1, 'the request queued');
    waiting.abort();
    await assert.rejects(queued, (err) => err.kind === 'cancelled');
    assert.equal(local.provider.stats().local_queue_depth, 0);
    first.abort();
    await assert.rejects(iterator.next(), (err) => err.kind === 'cancelled');
  });

  it('a consumer that stops reading frees the sequence too', async () => {
    for await (const part of local.open({ messages: [user('short')], maxTokens: 100_000, seed: 6 })) {
      if (part.type === 'text-delta') break;
    }
    // Once the token asked ahead has decoded (the response itself ends at once).
    await until(() => local.provider.stats().local_active_sequences === 0, 'the sequence freed');
    const r = await local.run({ messages: [user('after')], maxTokens: 3, seed: 7 });
    assert.equal(r.finish.usage.outputTokens, 3);
  });
});

describe('local model behind the router: a full queue is not a failing deployment', () => {
  let s;
  before(async () => {
    s = await startServer({
      config: {
        local: { threads: 1, parallel: 1, queueLimit: 1 },
        router: { retries: 0, breaker: { failureThreshold: 3, coolOffMs: 60_000 } },
        defaultModel: 'tiny',
        models: [{ id: 'tiny', provider: 'local', model: ensureTestModel(), contextLength: 1024 }],
      },
    });
  });
  after(() => s?.close());

  const chat = (extra, signal) =>
    fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, ...extra }),
      signal,
    });
  const queueDepth = async () => Number(/^switchboard_local_queue_depth (\d+)$/m.exec(await (await fetch(`${s.url}/metrics`)).text())?.[1]);

  it('every request past the queue gets local_queue_full, more of them than the breaker threshold, and the model serves on', async () => {
    const long = new AbortController();
    const holding = await chat({ max_tokens: 100_000, stream: true }, long.signal);
    const reader = holding.body.getReader();
    await reader.read();
    const queued = chat({});
    const deadline = Date.now() + 10_000;
    while ((await queueDepth()) !== 1) assert.ok(Date.now() < deadline, 'the second request never queued');
    // Old code counted each refusal as a failure: the circuit opened after three, and the rest
    // (and everyone for the next minute) got no_deployment_available.
    for (let i = 0; i < 6; i++) {
      const refused = await chat({});
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal((await refused.json()).error.code, 'local_queue_full', `refusal ${i + 1}`);
    }
    long.abort();
    assert.equal((await queued).status, 200);
    const after = await chat({});
    assert.equal(after.status, 200, await after.clone().text());
  });
});
