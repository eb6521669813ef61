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
