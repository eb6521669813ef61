// The router's parts on their own (compiled code from dist/): strategies, weighted routing over
// 1000 requests through Router.route, backoff with full jitter, the circuit breaker on a fake
// clock, and settings validation. Build first: npx tsc -p tsconfig.json

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Router } from '../dist/core/router/router.js';
import { pickLeastBusy, pickLowestLatency, pickWeighted } from '../dist/core/router/strategies.js';
import { backoffDelayMs, sleep } from '../dist/core/router/backoff.js';
import { Cancellation } from '../dist/core/router/cancellation.js';
import { CircuitBreaker } from '../dist/core/router/breaker.js';
import { GatewayError } from '../dist/core/errors.js';
import { seeded } from './helpers/fuzz.mjs';

function deployment(name, extra = {}) {
  return { name, provider: 'fake', model: name, weight: 1, maxConcurrent: 0, options: {}, ...extra };
}

function registryOf(models) {
  return {
    models,
    resolve(name) {
      const m = models.find((x) => x.id === name);
      if (!m) throw new GatewayError('not_found', `no model ${name}`);
      return m;
    },
  };
}

const model = (id, deployments, routing = {}) => ({ id, aliases: [], deployments, routing, pricing: { input: 0, output: 0, cachedInput: 0, cacheWrite: 0 } });

const textParts = [
  { type: 'start' },
  { type: 'text-delta', id: 't', delta: 'ok' },
  { type: 'finish', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } },
];

async function* replay(parts) {
  for (const p of parts) yield p;
}

async function drain(stream) {
  for await (const _ of stream);
}

/** Deployments `a` and `b` scripted with outcomes in call order (an error each), then a text answer. */
function scriptedDeployments() {
  const script = { a: [], b: [] };
  const calls = [];
  const attempt = (_m, d) => {
    calls.push(d.name);
    const outcome = script[d.name].shift();
    if (!outcome) return replay(textParts);
    return (async function* () {
      throw outcome;
    })();
  };
  return { script, calls, attempt };
}

/** Within `k` standard deviations of a binomial(n, p) mean. */
function assertBinomial(count, n, p, k, label) {
  const mean = n * p;
  const sigma = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(count - mean) <= k * sigma, `${label}: ${count} not within ${k}σ of ${mean} (σ=${sigma.toFixed(1)})`);
}

describe('strategies', () => {
  test('weighted random follows the weights over 1000 picks', () => {
    const random = seeded(42);
    const candidates = [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }, { name: 'c', weight: 7 }];
    const counts = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 1000; i++) counts[pickWeighted(candidates, random).name]++;
    assertBinomial(counts.a, 1000, 0.1, 4, 'a');
    assertBinomial(counts.b, 1000, 0.2, 4, 'b');
    assertBinomial(counts.c, 1000, 0.7, 4, 'c');
  });

  test('least-busy takes the fewest in flight, ties in config order', () => {
    assert.equal(pickLeastBusy([{ n: 'a', inFlight: 3 }, { n: 'b', inFlight: 0 }, { n: 'c', inFlight: 1 }]).n, 'b');
    assert.equal(pickLeastBusy([{ n: 'a', inFlight: 1 }, { n: 'b', inFlight: 1 }]).n, 'a');
  });

  test('lowest-latency tries an unmeasured deployment first, then the fastest', () => {
    assert.equal(pickLowestLatency([{ n: 'a', ttftAverageMs: 50 }, { n: 'b', ttftAverageMs: undefined }]).n, 'b');
    assert.equal(pickLowestLatency([{ n: 'a', ttftAverageMs: 50 }, { n: 'b', ttftAverageMs: 20 }, { n: 'c', ttftAverageMs: 80 }]).n, 'b');
  });
});

describe('Router.route', () => {
  test('weighted routing distributes 1000 requests within statistical bounds', async () => {
    const deployments = [deployment('a', { weight: 1 }), deployment('b', { weight: 3 })];
    const m = model('w', deployments, { strategy: 'weighted' });
    const router = new Router(registryOf([m]), {}, { now: Date.now, random: seeded(7) });
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 1000; i++) {
      const result = await router.route(m, () => replay(textParts), { signal: new AbortController().signal });
      counts[result.deployment.name]++;
      await drain(result.stream);
    }
    assertBinomial(counts.a, 1000, 0.25, 4, 'a');
    assert.equal(counts.a + counts.b, 1000);
    const status = router.status().models[0];
    assert.equal(status.strategy, 'weighted');
    assert.deepEqual(status.deployments.map((d) => d.inFlight), [0, 0], 'in-flight counts return to zero');
  });

  test('a retryable failure retries on another deployment; a bad request is never retried', async () => {
    const deployments = [deployment('a'), deployment('b')];
    const m = model('r', deployments, { backoff: { baseMs: 0 } });
    const router = new Router(registryOf([m]));
    const calls = [];
    const attempt = (kind) => (_m, d) => {
      calls.push(d.name);
      return d.name === 'a' ? (async function* () { throw new GatewayError(kind, 'boom'); })() : replay(textParts);
    };
    const ok = await router.route(m, attempt('upstream_5xx'), { signal: new AbortController().signal });
    assert.equal(ok.deployment.name, 'b');
    assert.equal(ok.attempts.length, 2);
    assert.equal(ok.attempts[0].error.kind, 'upstream_5xx');
    await drain(ok.stream);
    calls.length = 0;
    await assert.rejects(router.route(m, attempt('bad_request'), { signal: new AbortController().signal }), { kind: 'bad_request' });
    assert.deepEqual(calls, ['a']);
  });

  test('a deployment at maxConcurrent is skipped; all saturated is unavailable', async () => {
    const m = model('cap', [deployment('a', { maxConcurrent: 1 }), deployment('b', { maxConcurrent: 1 })]);
    const router = new Router(registryOf([m]));
    const signal = new AbortController().signal;
    const attempt = () => replay(textParts);
    const first = await router.route(m, attempt, { signal });
    const second = await router.route(m, attempt, { signal });
    assert.deepEqual([first.deployment.name, second.deployment.name], ['a', 'b']);
    await assert.rejects(router.route(m, attempt, { signal }), { kind: 'unavailable', code: 'no_deployment_available' });
    await drain(first.stream);
    const third = await router.route(m, attempt, { signal });
    assert.equal(third.deployment.name, 'a');
    await drain(second.stream);
    await drain(third.stream);
  });

  test("a deployment cooling down after its Retry-After is not called while another is ready, even by a retry that has tried the others", async () => {
    let now = 1_000_000;
    const clock = { now: () => now, random: Math.random };
    const signal = new AbortController().signal;
    const { script, calls, attempt } = scriptedDeployments();
    const boom = () => new GatewayError('upstream_5xx', 'boom');
    const slowDown = () => new GatewayError('rate_limit', 'slow down', { retryAfter: 1 });

    const pair = model('cool', [deployment('a'), deployment('b')], { backoff: { baseMs: 0, maxMs: 0 } });
    const router = new Router(registryOf([pair]), {}, clock);
    // a fails, b says Retry-After 1 s, a answers.
    script.a.push(boom());
    script.b.push(slowDown());
    await drain((await router.route(pair, attempt, { signal })).stream);
    assert.deepEqual(calls, ['a', 'b', 'a']);
    // Within b's second: a fails again; the retry goes back to a, not to b (which this request has not tried).
    calls.length = 0;
    now += 500;
    script.a.push(boom());
    const served = await router.route(pair, attempt, { signal });
    await drain(served.stream);
    assert.deepEqual(calls, ['a', 'a']);
    // Its second over, b is called again.
    now += 600;
    calls.length = 0;
    script.a.push(boom());
    await drain((await router.route(pair, attempt, { signal })).stream);
    assert.deepEqual(calls, ['a', 'b']);

    // A lone deployment cooling down still gets a new request: one answer's Retry-After does not
    // block the model at the gateway, the caller gets the upstream's own answer.
    const single = model('one', [deployment('s')], { retries: 0 });
    const lone = new Router(registryOf([single]), {}, clock);
    script.s = [slowDown()];
    calls.length = 0;
    await assert.rejects(lone.route(single, attempt, { signal }), { kind: 'rate_limit', retryAfter: 1 });
    await drain((await lone.route(single, attempt, { signal })).stream);
    assert.deepEqual(calls, ['s', 's']);
  });

  test("a deployment whose own setup failed (its key refused) is never called again by that request, even when the other cannot take it now", async () => {
    const { script, calls, attempt } = scriptedDeployments();
    const pair = model('keys', [deployment('a'), deployment('b')], { strategy: 'ordered', retries: 2, backoff: { baseMs: 0, maxMs: 0 } });
    const router = new Router(registryOf([pair]));
    const signal = new AbortController().signal;
    // b asks to be left alone for a minute (past maxRetryAfterMs).
    script.a.push(new GatewayError('upstream_5xx', 'boom'));
    script.b.push(new GatewayError('rate_limit', 'slow down', { retryAfter: 60 }));
    await drain((await router.route(pair, attempt, { signal })).stream);
    assert.deepEqual(calls, ['a', 'b', 'a']);
    // a's key is refused: the request does not go back to a (it did, once per retry), and b is cooling.
    calls.length = 0;
    script.a.push(new GatewayError('auth', 'key revoked', { status: 502, code: 'upstream_auth', retryable: true }));
    await assert.rejects(router.route(pair, attempt, { signal }), { kind: 'auth' });
    assert.deepEqual(calls, ['a']);
  });

  test('refusals for want of room (a 429 with Retry-After, a full local queue) never open the circuit; other failures do', async () => {
    const signal = new AbortController().signal;
    const failWith = (error) => () => (async function* () { throw error; })();
    const settings = { retries: 0, breaker: { failureThreshold: 3, coolOffMs: 60_000 } };
    const busy = [
      new GatewayError('rate_limit', 'slow down', { retryAfter: 1 }),
      new GatewayError('unavailable', 'queue full', { code: 'local_queue_full', retryAfter: 1, busy: true }),
    ];
    for (const error of busy) {
      const single = model('busy', [deployment('s')], settings);
      const router = new Router(registryOf([single]));
      for (let i = 0; i < 6; i++) await assert.rejects(router.route(single, failWith(error), { signal }), { code: error.code }, `refusal ${i + 1}`);
      assert.equal(router.status().models[0].deployments[0].circuit.state, 'closed', error.code);
    }
    // A 429 without Retry-After, like a 500, counts: the third in a row opens the circuit.
    for (const error of [new GatewayError('rate_limit', 'quota'), new GatewayError('upstream_5xx', 'boom')]) {
      const single = model('broken', [deployment('s')], settings);
      const router = new Router(registryOf([single]));
      for (let i = 0; i < 3; i++) await assert.rejects(router.route(single, failWith(error), { signal }), { code: error.code });
      // Retry-After says when the open circuit lets a trial through (60 s cool-off), not 1 s.
      await assert.rejects(router.route(single, () => replay(textParts), { signal }), (err) => err.code === 'no_deployment_available' && err.retryAfter >= 59 && err.retryAfter <= 60);
    }
  });

  test('settings are validated: auth and bad_request cannot be retried, fallbacks must exist', () => {
    const m = model('v', [deployment('a')], { retryOn: ['bad_request'] });
    assert.throws(() => new Router(registryOf([m])), /models\[v\]\.routing: retryOn/);
    const f = model('f', [deployment('a')], { fallbacks: ['ghost'] });
    assert.throws(() => new Router(registryOf([f])), /fallback model 'ghost' does not exist/);
    assert.throws(() => new Router(registryOf([]), { strategy: 'random' }), /router: strategy/);
  });
});

describe('backoff', () => {
  test('full jitter: uniform below min(max, base·2^n)', () => {
    assert.equal(backoffDelayMs(0, 100, 5000, () => 0.999999) < 100, true);
    assert.equal(Math.round(backoffDelayMs(3, 100, 5000, () => 0.5)), 400);
    assert.equal(Math.round(backoffDelayMs(10, 100, 5000, () => 0.5)), 2500);
    assert.equal(backoffDelayMs(2, 100, 5000, () => 0), 0);
  });
});

describe('circuit breaker', () => {
  test('opens after N consecutive failures, half-opens after the cool-off, closes on a good trial', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 3, coolOffMs: 1000 }, () => now);
    breaker.onFailure();
    breaker.onFailure();
    assert.equal(breaker.state(), 'closed');
    breaker.onSuccess();
    breaker.onFailure();
    breaker.onFailure();
    assert.equal(breaker.state(), 'closed', 'a success resets the count');
    breaker.onFailure();
    assert.equal(breaker.state(), 'open');
    assert.equal(breaker.canRequest(), false);
    now = 999;
    assert.equal(breaker.canRequest(), false);
    now = 1000;
    assert.equal(breaker.state(), 'half-open');
    assert.equal(breaker.canRequest(), true);
    breaker.onRequest();
    assert.equal(breaker.canRequest(), false, 'one trial at a time');
    breaker.onFailure();
    assert.equal(breaker.state(), 'open', 'a failed trial re-opens');
    now = 2000;
    breaker.onRequest();
    breaker.onNeutral();
    assert.equal(breaker.canRequest(), true, 'a neutral outcome (client gone) frees the trial slot');
    breaker.onRequest();
    breaker.onSuccess();
    assert.equal(breaker.state(), 'closed');
    assert.equal(breaker.canRequest(), true);
  });
});

describe('the router\'s request cancellation', () => {
  test('abort runs each listener once, in order, and keeps the first reason', () => {
    const c = new Cancellation();
    const calls = [];
    const removed = () => calls.push('removed');
    c.addEventListener('abort', () => calls.push('a'), { once: true });
    c.addEventListener('abort', removed);
    c.addEventListener('abort', () => calls.push('b'));
    c.removeEventListener('abort', removed);
    assert.equal(c.aborted, false);
    const first = new GatewayError('timeout', 'too slow');
    c.abort(first);
    c.abort(new GatewayError('cancelled', 'later'));
    c.addEventListener('abort', () => calls.push('late'));
    assert.deepEqual(calls, ['a', 'b']);
    assert.equal(c.aborted, true);
    assert.equal(c.reason, first);
  });

  test('a backoff sleep ends early with the reason, and one that finishes leaves no listener behind', async () => {
    const c = new Cancellation();
    const slept = sleep(60_000, c);
    const reason = new GatewayError('cancelled', 'gone');
    c.abort(reason);
    await assert.rejects(slept, (err) => err === reason);
    const calm = new Cancellation();
    await sleep(1, calm);
    assert.equal(calm.listeners.length, 0, 'the finished sleep removed its abort listener');
    calm.abort(new GatewayError('cancelled', 'x'));
    await assert.rejects(sleep(5, calm), (err) => err.kind === 'cancelled');
  });
});

describe('a request whose client is already gone', () => {
  // A caller may reach the router after its client left (a tool loop's next round, a request that
  // waited on a limit): an abort listener added then never runs, so the attempt must not start.
  test('is cancelled without calling a deployment', async () => {
    const m = model('gone', [deployment('a')], { fallbacks: ['spare'] });
    const spare = model('spare', [deployment('b')]);
    const router = new Router(registryOf([m, spare]), {}, { now: Date.now, random: Math.random });
    let called = 0;
    const attempt = () => {
      called++;
      return replay(textParts);
    };
    const client = new AbortController();
    client.abort();
    await assert.rejects(router.route(m, attempt, { signal: client.signal }), (err) => err.kind === 'cancelled');
    assert.equal(called, 0);
    assert.equal(router.status().models.flatMap((s) => s.deployments).reduce((n, d) => n + d.requests, 0), 0);
  });
});

describe('a stopped call ends after its upstream has stopped', () => {
  // The end of a call gives its concurrency slot back (limits, the router's in-flight count): given
  // back while the upstream connection is still open, it lets one call more reach the upstream
  // than the limit allows.
  const m = model('stop', [deployment('a')]);

  /** An upstream that sends its first part, then waits until aborted (or for ever), and takes a turn of the event loop to stop. */
  function upstream(log, { stuck = false } = {}) {
    return async function* (_model, _deployment, signal) {
      try {
        yield { type: 'start' };
        yield { type: 'text-delta', id: 't', delta: 'first' };
        await new Promise((_resolve, reject) => {
          if (!stuck) signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      } finally {
        await new Promise((resolve) => setImmediate(resolve));
        log.push('upstream stopped');
      }
    };
  }

  async function routed(log, client, options) {
    const router = new Router(registryOf([m]), {}, { now: Date.now, random: Math.random });
    const result = await router.route(m, upstream(log, options), { signal: client.signal });
    return { router, iterator: result.stream.observe({ end: () => log.push('call ended') })[Symbol.asyncIterator]() };
  }

  test('the client gone while the call waits on the upstream', async () => {
    const log = [];
    const client = new AbortController();
    const { router, iterator } = await routed(log, client);
    await iterator.next();
    await iterator.next();
    const waiting = iterator.next();
    client.abort();
    const last = await waiting;
    assert.equal(last.value.type, 'error');
    assert.equal(last.value.error.kind, 'cancelled');
    assert.equal((await iterator.next()).done, true);
    assert.deepEqual(log, ['upstream stopped', 'call ended']);
    assert.equal(router.status().models[0].deployments[0].inFlight, 0);
  });

  test('the consumer stopping between parts (a route whose client has gone)', async () => {
    const log = [];
    const { iterator } = await routed(log, new AbortController());
    await iterator.next();
    await iterator.return();
    assert.deepEqual(log, ['upstream stopped', 'call ended']);
  });

  test('an upstream that never stops is left behind: the call still ends', async () => {
    const log = [];
    const client = new AbortController();
    const { iterator } = await routed(log, client, { stuck: true });
    await iterator.next();
    await iterator.next();
    const waiting = iterator.next();
    client.abort();
    assert.equal((await waiting).value.error.kind, 'cancelled');
    assert.deepEqual(log, ['call ended']);
  });
});
