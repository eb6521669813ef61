// Message threads of POST /v1/messages (src/dialects/messages/threads.ts) over both places a
// conversation is held between turns (src/store/threads.ts): this process's memory, and Redis
// for processes sharing a store. The same behaviour is required of both: the conversation put
// back in front of a continue, one continuation per reply, a failed continuation freeing it,
// organisations apart. Then what only one of them does: expiry and budgets on a fake clock in
// memory; the time to live and atomic claims across connections in Redis. The wire behaviour
// with the Anthropic SDK is in sdk-helpers-local.test.mjs and scale-out.test.mjs.
// Redis suites are skipped without Redis unless SWITCHBOARD_REQUIRE_SERVICES is set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { MessageThreads } from '../dist/dialects/messages/threads.js';
import { MemoryThreadStore } from '../dist/store/threads.js';
import { RedisCoordination } from '../dist/store/redis-coordination.js';
import { REDIS_URL, serviceSkip, uniquePrefix } from './helpers/services.mjs';

const redisSkip = await serviceSkip('Redis', REDIS_URL);
const keyPrefix = uniquePrefix();
const opened = [];

async function redisThreads() {
  const coordination = await RedisCoordination.connect(REDIS_URL, { keyPrefix, onError: (err) => assert.fail(err) });
  opened.push(coordination);
  return coordination.threads;
}

after(async () => {
  await Promise.all(opened.map((c) => c.close()));
  if (redisSkip) return;
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const failOnHold = (err) => assert.fail(err);
let unique = 0;
/** Reply ids are unique per test, as the server's are, so tests sharing a Redis prefix never meet. */
const newId = (name) => `msg_${name}_${++unique}`;
const reply = (text) => ({ content: [{ type: 'text', text }] });
async function create(threads, id, org = 'acme') {
  const turn = await threads.begin({ model: 'm', system: 'S', tools: [{ name: 't' }], messages: [{ role: 'user', content: 'one' }], thread: { type: 'create' } }, org);
  await turn.keep(id, reply('first'));
  await turn.abandon();
}
const continueFrom = (threads, id, org = 'acme') =>
  threads.begin({ model: 'm', messages: [{ role: 'user', content: 'two' }], thread: { type: 'continue', previous_message_id: id } }, org);
const refusal = async (promise) => {
  try {
    await promise;
  } catch (err) {
    return { status: err.status, code: err.details?.error_code ?? err.code };
  }
  return 'no error';
};

const stores = [
  ['memory', { skip: false }, async () => new MemoryThreadStore()],
  ['Redis', { skip: redisSkip }, redisThreads],
];

for (const [name, options, open] of stores) {
  test(`${name}: a continue gets the held system, tools and conversation in front of its messages, without thread`, options, async () => {
    const threads = new MessageThreads(await open(), failOnHold);
    assert.equal(await threads.begin({ model: 'm', messages: [] }, 'acme'), undefined, 'no thread, nothing to do');
    const id = newId('put-back');
    await create(threads, id);
    const turn = await continueFrom(threads, id);
    assert.deepEqual(turn.body, {
      model: 'm',
      system: 'S',
      tools: [{ name: 't' }],
      messages: [{ role: 'user', content: 'one' }, { role: 'assistant', content: [{ type: 'text', text: 'first' }] }, { role: 'user', content: 'two' }],
    });
  });

  test(`${name}: one continuation per reply (400 in flight, then 400 continued); a failed continuation frees it again`, options, async () => {
    const threads = new MessageThreads(await open(), failOnHold);
    const id = newId('once');
    await create(threads, id);
    const turn = await continueFrom(threads, id);
    assert.deepEqual(await refusal(continueFrom(threads, id)), { status: 400, code: 'thread_continue_in_flight' });
    await turn.abandon();
    const retry = await continueFrom(threads, id);
    const next = newId('once-next');
    await retry.keep(next, reply('second'));
    await retry.abandon();
    assert.deepEqual(await refusal(continueFrom(threads, id)), { status: 400, code: 'thread_already_continued' });
    assert.equal((await continueFrom(threads, next)).body.messages.length, 5, 'user, reply, user, reply, and the new user turn');
  });

  test(`${name}: another organisation's thread and an unknown id are 404 thread_not_found; a malformed thread or a repeated system is 400`, options, async () => {
    const threads = new MessageThreads(await open(), failOnHold);
    const id = newId('orgs');
    await create(threads, id);
    assert.deepEqual(await refusal(continueFrom(threads, id, 'other-org')), { status: 404, code: 'thread_not_found' });
    assert.deepEqual(await refusal(continueFrom(threads, newId('nothing'))), { status: 404, code: 'thread_not_found' });
    const repeat = threads.begin({ model: 'm', system: 'S', messages: [], thread: { type: 'continue', previous_message_id: id } }, 'acme');
    assert.deepEqual(await refusal(repeat), { status: 400, code: 'invalid_thread' });
    assert.deepEqual(await refusal(threads.begin({ model: 'm', messages: [], thread: { type: 'resume' } }, 'acme')), { status: 400, code: 'invalid_thread' });
    await (await continueFrom(threads, id)).abandon();
  });

  test(`${name}: of many requests continuing one reply at once, exactly one gets it`, options, async () => {
    // Two stores over the same place: two processes' connections for Redis, one map in memory.
    const shared = await open();
    const second = name === 'Redis' ? await open() : shared;
    const [a, b] = [new MessageThreads(shared, failOnHold), new MessageThreads(second, failOnHold)];
    const id = newId('race');
    await create(a, id);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => continueFrom(i % 2 ? a : b, id)));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    for (const o of outcomes.filter((o) => o.status === 'rejected')) assert.equal(o.reason.details.error_code, 'thread_continue_in_flight');
  });
}

test('memory: threads expire five minutes after their reply', async () => {
  let now = 1_000_000;
  const threads = new MessageThreads(new MemoryThreadStore({ now: () => now }), failOnHold);
  await create(threads, 'msg_1');
  now += 5 * 60_000 - 1;
  await (await continueFrom(threads, 'msg_1')).abandon();
  now += 1;
  assert.deepEqual(await refusal(continueFrom(threads, 'msg_1')), { status: 404, code: 'thread_not_found' });
});

test('memory: the oldest threads go first when the count or the size budget is exceeded; a continued reply stops counting', async () => {
  const hold = async (threads, id, text) => (await threads.begin({ model: 'm', messages: [{ role: 'user', content: text }], thread: { type: 'create' } }, 'acme')).keep(id, reply('r'));
  const notFound = async (threads, id) => assert.deepEqual(await refusal(continueFrom(threads, id)), { status: 404, code: 'thread_not_found' });
  const byCount = new MessageThreads(new MemoryThreadStore({ maxThreads: 2 }), failOnHold);
  for (const id of ['a', 'b', 'c']) await hold(byCount, id, 'x');
  await notFound(byCount, 'a');
  await (await continueFrom(byCount, 'b')).abandon();

  const bySize = new MessageThreads(new MemoryThreadStore({ maxCharacters: 2500 }), failOnHold);
  await hold(bySize, 'big1', 'y'.repeat(1000));
  await hold(bySize, 'big2', 'y'.repeat(1000));
  await hold(bySize, 'big3', 'y'.repeat(1000));
  await notFound(bySize, 'big1');
  // A continued reply's copy is released at once: here it is what keeps an older thread held.
  const released = new MessageThreads(new MemoryThreadStore({ maxCharacters: 2500 }), failOnHold);
  await hold(released, 'older', 'o'.repeat(300));
  await hold(released, 'long', 'l'.repeat(1000));
  await (await continueFrom(released, 'long')).keep('long2', reply('r'));
  await (await continueFrom(released, 'older')).abandon();
  assert.equal((await continueFrom(released, 'long2')).body.messages.length, 5, 'user, reply, user, reply, and the new user turn');
  await hold(bySize, 'huge', 'z'.repeat(3000));
  await notFound(bySize, 'huge');
});

test('Redis: a held conversation expires with its key five minutes after the reply; a continued reply keeps only its state', { skip: redisSkip }, async () => {
  const threads = new MessageThreads(await redisThreads(), failOnHold);
  const id = newId('ttl');
  await create(threads, id);
  const redis = new Redis(REDIS_URL);
  try {
    const ttl = await redis.pttl(`${keyPrefix}thread:${id}`);
    assert.ok(ttl > 5 * 60_000 - 10_000 && ttl <= 5 * 60_000, `time to live ${ttl} ms`);
    const next = newId('ttl-next');
    await (await continueFrom(threads, id)).keep(next, reply('second'));
    assert.deepEqual(await redis.hgetall(`${keyPrefix}thread:${id}`), { organisation: 'acme', state: 'continued' });
    assert.equal(JSON.parse(await redis.hget(`${keyPrefix}thread:${next}`, 'conversation')).messages.length, 4);
  } finally {
    await redis.quit();
  }
});

test('Redis: a continue while Redis is unreachable is a 503 that says so; a reply that cannot be held is reported, not thrown', { skip: redisSkip }, async () => {
  const coordination = await RedisCoordination.connect(REDIS_URL, { keyPrefix, onError: () => undefined });
  const failures = [];
  const threads = new MessageThreads(coordination.threads, (err) => failures.push(err));
  const turn = await threads.begin({ model: 'm', messages: [{ role: 'user', content: 'one' }], thread: { type: 'create' } }, 'acme');
  await coordination.close();
  await turn.keep(newId('down'), reply('r'));
  assert.equal(failures.length, 1);
  const down = await refusal(continueFrom(threads, newId('down')));
  assert.deepEqual(down, { status: 503, code: 'threads_unavailable' });
});
