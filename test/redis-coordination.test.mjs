// Redis coordination, directly: rate-limit windows shared by several processes (each a connection
// of its own here) are checked and counted atomically, and signals reach every subscriber.
// Skipped without Redis unless SWITCHBOARD_REQUIRE_SERVICES is set (then it must be reachable).
// Build first: npx tsc -p tsconfig.json
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { REDIS_URL, serviceSkip, uniquePrefix } from './helpers/services.mjs';

const skip = await serviceSkip('Redis', REDIS_URL);
const { RedisCoordination } = await import('../dist/store/redis-coordination.js');
const keyPrefix = uniquePrefix();
const opened = [];

async function connect() {
  const coordination = await RedisCoordination.connect(REDIS_URL, { keyPrefix, onError: (err) => assert.fail(err) });
  opened.push(coordination);
  return coordination;
}

after(async () => {
  await Promise.all(opened.map((c) => c.close()));
  if (skip) return;
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const scope = (id, limits) => ({ id: `org:${id}`, ...limits });

test('requests per minute hold across processes: 7 of 20 concurrent requests from two processes pass', { skip }, async () => {
  const [a, b] = [await connect(), await connect()];
  const limits = [scope('rpm-race', { rpm: 7 })];
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).admit(limits, 0)));
  const admitted = results.filter((r) => 'ticket' in r);
  assert.equal(admitted.length, 7);
  const rejected = results.find((r) => 'rejected' in r).rejected;
  assert.equal(rejected.limit, 'rpm');
  assert.equal(rejected.scope, 0);
  assert.ok(rejected.retryAfter >= 1 && rejected.retryAfter <= 60, `retryAfter ${rejected.retryAfter}`);
});

test('an admitted request gets each scope window back: requests and tokens counted, ms until the oldest leaves', { skip }, async () => {
  const [a, b] = [await connect(), await connect()];
  const limits = [scope('windows-key', { rpm: 5, tpm: 1000 }), scope('windows-org', { rpm: 9 })];
  const first = await a.admit(limits, 30);
  const second = await b.admit(limits, 20);
  assert.deepEqual(first.windows.map((w) => [w.requests, w.tokens]), [[1, 30], [1, 30]]);
  assert.deepEqual(second.windows.map((w) => [w.requests, w.tokens]), [[2, 50], [2, 50]]);
  for (const w of second.windows) {
    assert.ok(w.requestsResetMs > 55_000 && w.requestsResetMs <= 60_000, String(w.requestsResetMs));
    assert.ok(w.tokensResetMs > 55_000 && w.tokensResetMs <= 60_000, String(w.tokensResetMs));
  }
});

test('tokens per minute: the estimate counts until release replaces it with the real count', { skip }, async () => {
  const [a, b] = [await connect(), await connect()];
  const limits = [scope('tpm', { tpm: 100 })];
  const first = await a.admit(limits, 60);
  assert.ok('ticket' in first);
  const refused = await b.admit(limits, 60);
  assert.equal(refused.rejected.limit, 'tpm');
  assert.equal(refused.rejected.usedTokens, 60);
  assert.ok(refused.rejected.retryAfter >= 1 && refused.rejected.retryAfter <= 60);
  a.release(first.ticket, 10);
  // The release is a command on a's connection; b sees it once it has been applied.
  await a.ping();
  const second = await b.admit(limits, 60);
  assert.ok('ticket' in second, JSON.stringify(second));
  const third = await a.admit(limits, 40);
  assert.equal(third.rejected?.usedTokens, 70, 'the window holds 10 + 60');
});

test('concurrency slots are freed by release; withdraw takes a request back out of every window', { skip }, async () => {
  const [a, b] = [await connect(), await connect()];
  const limits = [scope('conc', { concurrent: 2, rpm: 3 })];
  const one = await a.admit(limits, 0);
  const two = await b.admit(limits, 0);
  assert.ok('ticket' in one && 'ticket' in two);
  assert.equal((await a.admit(limits, 0)).rejected.limit, 'concurrent');
  b.release(two.ticket, 0);
  await b.ping();
  const three = await a.admit(limits, 0);
  assert.ok('ticket' in three, 'a released slot is free again');
  // rpm 3 is now used up; withdrawing one admitted request gives its place back.
  a.release(three.ticket, 0);
  await a.ping();
  assert.equal((await b.admit(limits, 0)).rejected.limit, 'rpm');
  a.withdraw(one.ticket);
  await a.ping();
  assert.ok('ticket' in (await b.admit(limits, 0)));
});

test('several scopes are one step: a request refused by one scope is counted in none', { skip }, async () => {
  const a = await connect();
  const wide = scope('multi-wide', { rpm: 3 });
  const narrow = scope('multi-narrow', { rpm: 1 });
  assert.ok('ticket' in (await a.admit([wide, narrow], 0)));
  const refused = await a.admit([wide, narrow], 0);
  assert.equal(refused.rejected.scope, 1, 'the second scope refused it');
  // The wide scope counted only the first request: two more fit, the next does not.
  assert.ok('ticket' in (await a.admit([wide], 0)));
  assert.ok('ticket' in (await a.admit([wide], 0)));
  assert.equal((await a.admit([wide], 0)).rejected?.limit, 'rpm');
});

test('signals reach every process that subscribed to the topic, the sender included', { skip }, async () => {
  const [a, b] = [await connect(), await connect()];
  const heard = (c, topic) => new Promise((resolve) => {
    const off = c.subscribe(topic, (message) => {
      off();
      resolve(message);
    });
  });
  const atA = heard(a, 'runs');
  const atB = heard(b, 'runs');
  const other = [];
  b.subscribe('queue', (m) => other.push(m));
  a.publish('runs', 'org\u0000run-1');
  assert.deepEqual(await Promise.all([atA, atB]), ['org\u0000run-1', 'org\u0000run-1']);
  assert.deepEqual(other, [], 'another topic heard nothing');
});

test('budgets: a period is seeded once from the log, then reservations from every process share it', { skip }, async () => {
  const [a, b] = [await connect(), await connect()];
  const loads = [];
  const loadSpent = async (scope, since) => {
    loads.push([scope, since]);
    return 0.5;
  };
  const [keepA, keepB] = [a.budgets(loadSpent), b.budgets(loadSpent)];
  const lines = [{ scope: 'org:budget', period: 'day', amount: 1 }];
  // 0.5 spent before: two reservations of 0.2 fit (0.9), a third would not (1.1).
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? keepA : keepB).reserve(lines, 0.2)));
  const tickets = results.filter((r) => 'ticket' in r).map((r) => r.ticket);
  assert.equal(tickets.length, 2);
  const refused = results.find((r) => 'refused' in r).refused;
  assert.equal(refused.line, 0);
  assert.ok(Math.abs(refused.spent - 0.5) < 1e-9 && Math.abs(refused.reserved - 0.4) < 1e-9, JSON.stringify(refused));
  assert.ok(loads.length >= 1 && loads.every(([scope]) => scope === 'org:budget'));
  const dayStart = new Date();
  dayStart.setUTCHours(0, 0, 0, 0);
  assert.equal(loads[0][1], dayStart.getTime(), 'seeded with the spend since the start of the UTC day');
  const seeded = loads.length;

  // A call that cost less than it reserved gives the rest back, for another process to use.
  keepA.settle(tickets[0], 0.05);
  await a.ping();
  const next = await keepB.reserve(lines, 0.2);
  assert.ok('ticket' in next, JSON.stringify(next)); // 0.55 + 0.2 + 0.2 = 0.95
  assert.equal((await keepB.reserve(lines, 0.2)).refused?.line, 0);
  assert.equal(loads.length, seeded, 'a seeded period is not read from the log again');
});

test('budgets: every line must fit; a refusal on one line reserves on none', { skip }, async () => {
  const a = await connect();
  const keep = a.budgets(async () => 0);
  const wide = { scope: 'org:two-lines', period: 'month', amount: 10 };
  const narrow = { scope: 'key:two-lines', period: 'day', amount: 1 };
  assert.ok('ticket' in (await keep.reserve([wide, narrow], 0.6)));
  const refused = await keep.reserve([wide, narrow], 0.6);
  assert.equal(refused.refused.line, 1);
  // The wide line holds only the first reservation: 0.6 + 9.4 fits exactly.
  assert.ok('ticket' in (await keep.reserve([wide], 9.4)));
  assert.equal((await keep.reserve([wide], 0.01)).refused?.line, 0);
});

test('with Redis gone, limits are not waived: admission and budgets refuse with a 503 that says why', { skip }, async () => {
  const a = await connect();
  await a.close();
  for (const attempt of [() => a.admit([scope('gone', { rpm: 5 })], 0), () => a.budgets(async () => 0).reserve([{ scope: 'org:gone', period: 'day', amount: 1 }], 0.1)]) {
    await assert.rejects(attempt(), (err) => {
      assert.equal(err.name, 'GatewayError');
      assert.equal(err.status, 503);
      assert.equal(err.code, 'limits_unavailable');
      assert.match(err.message, /cannot be checked: Redis is unreachable/);
      return true;
    });
  }
});

test('a Redis outage warns once per interval, with the count of failures it did not repeat', async () => {
  const { warnAtMostEvery } = await import('../dist/store/redis-coordination.js');
  const warnings = [];
  const listener = (warning) => warnings.push(warning.message);
  process.on('warning', listener);
  try {
    const warn = warnAtMostEvery(60_000);
    for (let i = 0; i < 5; i++) warn(new Error('Connection is closed.'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings, ['Redis: Connection is closed.']);
    const soon = warnAtMostEvery(0);
    soon(new Error('a'));
    soon(new Error('b'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings.slice(1), ['Redis: a', 'Redis: b'], 'once the interval has passed, the next failure warns again');
  } finally {
    process.off('warning', listener);
  }
});
