// The PostgreSQL store of async runs and tool executions, directly: the SQLite suite's cases
// (test/async-store.test.mjs) plus what sharing one database adds — concurrent claims, owner
// leases, and recovery of a dead process's runs by the survivors.
// Build first: npx tsc -p tsconfig.json
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunNotRunningError } from '../dist/store/async-runs.js';
import { openPool } from '../dist/store/postgres-pool.js';
import { POSTGRES_ASYNC_RUNS_SCHEMA, PostgresAsyncRunStore } from '../dist/store/postgres-async-runs.js';
import { POSTGRES_TOOL_EXECUTIONS_SCHEMA, PostgresToolExecutionStore } from '../dist/store/postgres-tool-executions.js';
import { parseAsyncConfig } from '../dist/core/async/config.js';
import { POSTGRES_URL, dropSchema, serviceSkip, uniqueSchema } from './helpers/services.mjs';

const skip = await serviceSkip('PostgreSQL', POSTGRES_URL);

const run = (organisation, id, priority = 0) => ({ organisation, id, kind: 'messages', priority, model: 'm', request: '{}' });
const crashed = () => ({
  status: 'failed',
  error: { type: 'api_error', message: 'crashed' },
  finalEvent: { event: 'error', data: '{"crashed":true}' },
});

/**
 * A schema of its own for one test (the queue spans every organisation, so tests sharing one would
 * claim each other's runs), and its "processes": each a small pool of its own. All of it goes when
 * the test ends, so suites running side by side stay within the server's connections.
 */
async function database(t) {
  const schema = uniqueSchema();
  const pools = [];
  const stores = [];
  t.after(async () => {
    // A crashed process's store cannot give up its lease (its pool is gone): nothing to do about it.
    await Promise.allSettled(stores.map((store) => store.close()));
    await Promise.all(pools.filter((pool) => !pool.ended).map((pool) => pool.end()));
    await dropSchema(schema);
  });
  const connect = () => {
    const pool = openPool(POSTGRES_URL, { schema, max: 4 });
    pools.push(pool);
    return pool;
  };
  const asyncStore = (pool, options) => {
    const store = new PostgresAsyncRunStore(pool, options);
    stores.push(store);
    return store;
  };
  const pool = connect();
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await pool.query(POSTGRES_ASYNC_RUNS_SCHEMA + POSTGRES_TOOL_EXECUTIONS_SCHEMA);
  return { pool, connect, asyncStore };
}

/** Polls `check` until it returns something truthy; fails after `ms`. */
async function eventually(check, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('claimNext takes the highest priority first, FIFO within; ids are unique per organisation', { skip }, async (t) => {
  const { pool, asyncStore } = await database(t);
  const store = asyncStore(pool);
  for (const [id, p] of [['a', 0], ['b', 5], ['c', 0], ['d', 5]]) assert.equal(await store.create(run('o1', id, p)), true);
  assert.equal(await store.create(run('o1', 'a')), false);
  assert.equal(await store.create(run('o2', 'a')), true);
  assert.equal(await store.queuePosition('o1', 'c'), 4);
  assert.equal(await store.queuePosition('o2', 'a'), 5);
  assert.equal(await store.countPending(), 5);
  assert.equal(await store.get('o3', 'a'), undefined);
  const order = [];
  for (let r; (r = await store.claimNext('me')); ) order.push(`${r.organisation}/${r.id}`);
  assert.deepEqual(order, ['o1/b', 'o1/d', 'o1/a', 'o1/c', 'o2/a']);
  const b = await store.get('o1', 'b');
  assert.equal(b.status, 'running');
  assert.equal(b.owner, 'me');
  assert.equal(typeof b.startedAt, 'number');
  assert.equal(typeof b.createdAt, 'number');
  assert.equal(await store.queuePosition('o1', 'b'), undefined);
  assert.equal(await store.countPending(), 0);
});

test('retention: prune deletes finished runs (and their events) older than the cut-off, never live ones', { skip }, async (t) => {
  const { pool, asyncStore } = await database(t);
  const store = asyncStore(pool);
  await store.create(run('o', 'done'));
  await store.create(run('o', 'live'));
  await store.claimNext('me');
  await store.appendEvent('o', 'done', 'ping', '{}');
  assert.equal(await store.finish('o', 'done', ['running'], { status: 'completed', finalEvent: { event: 'message_stop', data: '{}' } }), true);
  assert.equal(await store.finish('o', 'done', ['running'], { status: 'failed' }), false, 'an ended run does not end twice');
  assert.deepEqual((await store.readEvents('o', 'done', 0, 10)).map((e) => [e.seq, e.event]), [[1, 'ping'], [2, 'message_stop']]);
  assert.equal(await store.prune(Date.now() - 60_000), 0);
  assert.equal(await store.prune(Date.now() + 1), 1);
  assert.equal(await store.get('o', 'done'), undefined);
  assert.deepEqual(await store.readEvents('o', 'done', 0, 10), []);
  assert.equal((await store.get('o', 'live')).status, 'pending');
  assert.equal(parseAsyncConfig({ retentionHours: 2 }).retentionHours, 2);
  assert.throws(() => parseAsyncConfig({ concurrency: 0 }), /async\.concurrency/);
});

test('finish and events: COALESCE of usage and model, JSON round-trips, numbers, errors, request metadata', { skip }, async (t) => {
  const { pool, asyncStore } = await database(t);
  const store = asyncStore(pool);
  await store.create({ ...run('o', 'r'), userId: 'u', correlationId: 'c', keyId: 'k' });
  await assert.rejects(store.appendEvent('o', 'missing', 'ping', '{}'), /No async run 'missing'/);
  await assert.rejects(store.appendEvent('o', 'r', 'ping', '{}'), RunNotRunningError, 'a pending run has no events yet');
  await store.claimNext('me');
  await store.setModel('o', 'r', 'resolved');
  const usage = { inputTokens: 3, outputTokens: 4, totalTokens: 7 };
  assert.equal(await store.appendEvent('o', 'r', 'a', '1'), 1);
  assert.equal(await store.appendEvent('o', 'r', 'b', '2'), 2);
  const result = { id: 'msg', content: [{ type: 'text', text: 'hi' }] };
  assert.equal(await store.finish('o', 'r', ['running'], { status: 'completed', usage, result, finalEvent: { event: 'c', data: '3' } }), true);
  const done = await store.get('o', 'r');
  assert.equal(done.status, 'completed');
  assert.equal(done.model, 'resolved', 'no model in the finish keeps the one set');
  assert.deepEqual(done.usage, usage);
  assert.deepEqual(done.result, result);
  assert.equal(done.error, undefined);
  assert.equal(done.eventCount, 3);
  assert.deepEqual([done.userId, done.correlationId, done.keyId], ['u', 'c', 'k']);
  assert.equal(typeof done.finishedAt, 'number');
  await assert.rejects(store.appendEvent('o', 'r', 'late', '{}'), RunNotRunningError, 'nothing follows the final event');
  assert.deepEqual(await store.readEvents('o', 'r', 1, 1), [{ seq: 2, event: 'b', data: '2' }]);
  assert.deepEqual(await store.readEvents('other', 'r', 0, 10), []);

  const meta = { requestId: 'req', organisation: 'o', createdAt: Date.now(), userId: 'u', serviceTier: 'standard', priority: 2 };
  await store.recordMessagesRequest(meta);
  await store.recordMessagesRequest({ ...meta, serviceTier: 'priority', inferenceGeo: 'eu' });
  assert.deepEqual(await store.readMessagesRequest('o', 'req'), {
    ...meta,
    serviceTier: 'priority',
    inferenceGeo: 'eu',
    correlationId: undefined,
  });
  assert.equal(await store.readMessagesRequest('other', 'req'), undefined);
  assert.equal(await store.prune(meta.createdAt + 1), 1);
  assert.equal(await store.readMessagesRequest('o', 'req'), undefined);
});

test('appenders from two processes get distinct, gap-free sequence numbers', { skip }, async (t) => {
  const { pool, connect, asyncStore } = await database(t);
  const a = asyncStore(pool);
  const b = asyncStore(connect());
  await a.create(run('o', 'r'));
  await a.claimNext('a');
  const seqs = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).appendEvent('o', 'r', 'e', String(i))));
  assert.deepEqual([...seqs].sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.equal((await a.get('o', 'r')).eventCount, 40);
});

test('two processes claiming at once never take the same run', { skip }, async (t) => {
  const { pool, connect, asyncStore } = await database(t);
  const processes = [asyncStore(pool), asyncStore(connect())];
  for (let i = 0; i < 20; i++) await processes[0].create(run('o', `r${i}`));
  const claimed = [];
  const claimAll = async (store, owner) => {
    for (let r; (r = await store.claimNext(owner)); ) claimed.push({ id: r.id, owner });
  };
  const claimOnce = async (store, owner) => {
    const r = await store.claimNext(owner);
    assert.ok(r, 'a claim made while runs are pending gets one (SKIP LOCKED passes over the locked rows)');
    claimed.push({ id: r.id, owner });
  };
  // Both connections open first, so that the claims below really are issued together.
  await Promise.all(processes.map((store) => store.countPending()));
  // Three claims per process at the same moment, as runners with concurrency 3 make them...
  await Promise.all(processes.flatMap((store, p) => [0, 1, 2].map(() => claimOnce(store, `p${p}`))));
  // ...then the same claimers race to drain the queue.
  await Promise.all(processes.flatMap((store, p) => [0, 1, 2].map(() => claimAll(store, `p${p}`))));
  assert.equal(claimed.length, 20);
  assert.equal(new Set(claimed.map((c) => c.id)).size, 20);
  for (const c of claimed) assert.equal((await processes[0].get('o', c.id)).owner, c.owner);
  assert.equal(await processes[0].countPending(), 0);
});

test('recovery: a live owner’s runs are left alone; once it is dead, runs with events fail (error appended), those without are re-queued; mine are untouched', { skip }, async (t) => {
  const { pool, connect, asyncStore } = await database(t);
  const deadPool = connect();
  const dead = asyncStore(deadPool);
  const alive = asyncStore(pool);
  for (const id of ['loud', 'quiet', 'mine']) await alive.create(run('o', id));
  await dead.claimNext('dead');
  await dead.claimNext('dead');
  await alive.claimNext('alive');
  await dead.appendEvent('o', 'loud', 'message_start', '{}');

  assert.deepEqual(await alive.recoverOrphans('alive', crashed), { failed: [], requeued: [] }, 'its lease is live');
  assert.equal((await alive.get('o', 'loud')).status, 'running');

  // The process dies: its heartbeat stops, and its lease is as old as if minutes had passed.
  await deadPool.end();
  await pool.query(`UPDATE async_run_owners SET seen_at = seen_at - 600000 WHERE owner = 'dead'`);

  const recovered = await alive.recoverOrphans('alive', crashed);
  assert.deepEqual(recovered, { failed: [{ organisation: 'o', id: 'loud' }], requeued: [{ organisation: 'o', id: 'quiet' }] });
  const loud = await alive.get('o', 'loud');
  assert.equal(loud.status, 'failed');
  assert.deepEqual(loud.error, { type: 'api_error', message: 'crashed' });
  assert.deepEqual((await alive.readEvents('o', 'loud', 0, 10)).map((e) => e.event), ['message_start', 'error']);
  const quiet = await alive.get('o', 'quiet');
  assert.equal(quiet.status, 'pending');
  assert.equal(quiet.startedAt, undefined);
  assert.equal(quiet.owner, undefined);
  assert.equal((await alive.get('o', 'mine')).status, 'running');
  assert.deepEqual(await alive.recoverOrphans('alive', crashed), { failed: [], requeued: [] }, 'nothing is handled twice');
});

test('a gracefully closed process gives up its lease: its leftover runs are recoverable at once', { skip }, async (t) => {
  const { pool, connect, asyncStore } = await database(t);
  const leaving = asyncStore(connect());
  const staying = asyncStore(pool);
  await staying.create(run('o', 'quiet'));
  await staying.create(run('o', 'loud'));
  await leaving.claimNext('leaving');
  await leaving.claimNext('leaving');
  await leaving.appendEvent('o', 'loud', 'message_start', '{}');
  assert.deepEqual(await staying.recoverOrphans('staying', crashed), { failed: [], requeued: [] });

  await leaving.close();
  assert.deepEqual((await pool.query(`SELECT owner FROM async_run_owners`)).rows, [{ owner: 'staying' }]);
  assert.deepEqual(await staying.recoverOrphans('staying', crashed), {
    failed: [{ organisation: 'o', id: 'loud' }],
    requeued: [{ organisation: 'o', id: 'quiet' }],
  });
});

test('two processes recovering at once never both handle a run', { skip }, async (t) => {
  const { pool, connect, asyncStore } = await database(t);
  const processes = [asyncStore(pool), asyncStore(connect())];
  const ids = Array.from({ length: 40 }, (_, i) => `r${String(i).padStart(2, '0')}`);
  for (const id of ids) await processes[0].create(run('o', id));
  // Left running by a process that never had a lease; every other one had begun its answer.
  await pool.query(`UPDATE async_runs SET status = 'running', started_at = 1, owner = 'ghost'`);
  for (const [i, id] of ids.entries()) if (i % 2) await processes[0].appendEvent('o', id, 'message_start', '{}');
  await processes[1].countPending(); // both pools connected, so neither starts late
  const results = await Promise.all(processes.flatMap((store, p) => [0, 1, 2].map(() => store.recoverOrphans(`p${p}`, crashed))));
  const failed = results.flatMap((r) => r.failed.map((ref) => ref.id)).sort();
  const requeued = results.flatMap((r) => r.requeued.map((ref) => ref.id)).sort();
  assert.deepEqual(failed, ids.filter((_, i) => i % 2));
  assert.deepEqual(requeued, ids.filter((_, i) => i % 2 === 0));
  const events = await pool.query(`SELECT run_id, string_agg(event, ',' ORDER BY seq) AS events FROM async_run_events GROUP BY run_id`);
  for (const row of events.rows) assert.equal(row.events, 'message_start,error', row.run_id);
});

test('leases: a live process keeps its runs across many lease periods; when it dies, the survivors’ heartbeat recovers them unasked', { skip }, async (t) => {
  // Long enough that a heartbeat delayed by a loaded 2-core CI machine still lands inside it (200 ms did not, once).
  const leaseMs = 500;
  const { pool, connect, asyncStore } = await database(t);
  const survivor = asyncStore(pool, { leaseMs });
  assert.deepEqual(await survivor.recoverOrphans('survivor', crashed), { failed: [], requeued: [] });

  const victimPool = connect();
  const victim = asyncStore(victimPool, { leaseMs });
  await survivor.create(run('o', 'quiet'));
  await survivor.create(run('o', 'loud'));
  await victim.claimNext('victim');
  await victim.claimNext('victim');
  await victim.appendEvent('o', 'loud', 'message_start', '{}');

  // No event to wait for: the survivor's heartbeat recovers nothing for as long as the victim's keeps going.
  await new Promise((resolve) => setTimeout(resolve, 3 * leaseMs));
  for (const id of ['quiet', 'loud']) assert.equal((await survivor.get('o', id)).status, 'running', `${id} survives while its owner lives`);

  await victimPool.end();
  await eventually(async () => (await survivor.get('o', 'quiet')).status === 'pending');
  await eventually(async () => (await survivor.get('o', 'loud')).status === 'failed');
  assert.deepEqual((await survivor.readEvents('o', 'loud', 0, 10)).map((e) => e.event), ['message_start', 'error']);
  assert.deepEqual((await survivor.get('o', 'loud')).error, { type: 'api_error', message: 'crashed' });
});

test('tool executions: scoped by organisation, JSON round-trips', { skip }, async (t) => {
  const { pool } = await database(t);
  const store = new PostgresToolExecutionStore(pool, { owner: 'tools-me', leaseMs: 15_000 });
  const record = {
    id: 'exec-1',
    organisation: 'o',
    requestId: 'req',
    toolUseId: 'tu',
    toolName: 'search',
    input: { query: 'q', n: 3, nested: [true, null] },
    status: 'pending',
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
  };
  await store.createExecution(record);
  assert.deepEqual(await store.getExecution('o', 'exec-1'), { ...record, result: undefined, error: undefined });
  assert.equal(await store.getExecution('other', 'exec-1'), undefined);
  assert.equal(await store.getExecution('o', 'missing'), undefined);

  const result = { result: 'done', images: [{ mediaType: 'image/png', data: 'AA==' }], s3Urls: [] };
  await store.updateExecution('exec-1', { status: 'complete', result });
  const complete = await store.getExecution('o', 'exec-1');
  assert.equal(complete.status, 'complete');
  assert.deepEqual(complete.result, result);
  assert.equal(complete.error, undefined);
  assert.equal(typeof complete.updatedAt, 'number');
  assert.ok(complete.updatedAt > record.updatedAt);

  await store.updateExecution('exec-1', { status: 'failed', error: 'tool "search" said: ✗ no' });
  const failed = await store.getExecution('o', 'exec-1');
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error, 'tool "search" said: ✗ no');
  assert.equal(failed.result, undefined);
  await assert.rejects(store.createExecution(record), /duplicate key/);
});

test('tool executions of a process whose lease lapsed are failed by a survivor, then and on every heartbeat; a live one’s never', { skip }, async (t) => {
  const { connect, asyncStore } = await database(t);
  const execution = (id) => ({
    id,
    organisation: 'o',
    requestId: 'req',
    toolUseId: 'tu',
    toolName: 'slow',
    input: {},
    status: 'running',
    createdAt: Date.now(),
    updatedAt: Date.now(),
  });
  // Two live processes, each holding its lease through its async-run store's heartbeat.
  const stores = {};
  for (const name of ['a', 'b']) {
    const pool = connect();
    // As in the lease test above: long enough that a loaded CI machine's late heartbeat still lands.
    const runs = asyncStore(pool, { leaseMs: 600 });
    const tools = new PostgresToolExecutionStore(pool, { owner: `tools-${name}`, leaseMs: 600 });
    await runs.holdLease(`tools-${name}`);
    runs.onHeartbeat(() => tools.recoverGone());
    stores[name] = { pool, runs, tools };
  }
  await stores.a.tools.createExecution(execution('a-1'));
  await stores.b.tools.createExecution(execution('b-1'));
  // Both alive: nothing is failed, not even after several lease periods.
  assert.equal(await stores.b.tools.abandonUnfinished('gone'), 0);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal((await stores.b.tools.getExecution('o', 'a-1')).status, 'running');
  assert.equal((await stores.a.tools.getExecution('o', 'b-1')).status, 'running');

  // A dies (its pool goes, its heartbeat stops, its lease is not given up): B's heartbeat fails
  // A's execution without being asked again, and leaves its own alone.
  await stores.a.runs.close().catch(() => undefined);
  await stores.b.pool.query(`INSERT INTO async_run_owners (owner, seen_at) VALUES ('tools-a', 0)
    ON CONFLICT (owner) DO UPDATE SET seen_at = 0`);
  await eventually(async () => (await stores.b.tools.getExecution('o', 'a-1')).status === 'failed');
  const failed = await stores.b.tools.getExecution('o', 'a-1');
  assert.equal(failed.error, 'gone');
  assert.equal((await stores.b.tools.getExecution('o', 'b-1')).status, 'running');
});

