// The SQLite store of async runs, directly: queue order, organisation scoping, retention, and
// the start-up recovery of runs a dead process left running.
// Build first: npx tsc -p tsconfig.json
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../dist/store/sqlite.js';
import { parseAsyncConfig } from '../dist/core/async/config.js';

const run = (organisation, id, priority = 0) => ({ organisation, id, kind: 'messages', priority, model: 'm', request: '{}' });

test('claimNext takes the highest priority first, FIFO within; ids are unique per organisation', async () => {
  const store = new SqliteStore(':memory:').asyncRuns;
  for (const [id, p] of [['a', 0], ['b', 5], ['c', 0], ['d', 5]]) assert.equal(await store.create(run('o1', id, p)), true);
  assert.equal(await store.create(run('o1', 'a')), false);
  assert.equal(await store.create(run('o2', 'a')), true);
  assert.equal(await store.queuePosition('o1', 'c'), 4);
  assert.equal(await store.queuePosition('o2', 'a'), 5);
  assert.equal(await store.get('o3', 'a'), undefined);
  const order = [];
  for (let r; (r = await store.claimNext('me')); ) order.push(`${r.organisation}/${r.id}`);
  assert.deepEqual(order, ['o1/b', 'o1/d', 'o1/a', 'o1/c', 'o2/a']);
  assert.equal((await store.get('o1', 'b')).status, 'running');
  assert.equal(await store.queuePosition('o1', 'b'), undefined);
});

test('retention: prune deletes finished runs (and their events) older than the cut-off, never live ones', async () => {
  const store = new SqliteStore(':memory:').asyncRuns;
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

test('recovery: a dead owner’s runs with events fail (error appended), those without are re-queued; mine are untouched', async () => {
  const store = new SqliteStore(':memory:').asyncRuns;
  for (const id of ['loud', 'quiet', 'mine']) await store.create(run('o', id));
  await store.claimNext('dead');
  await store.claimNext('dead');
  await store.claimNext('alive');
  await store.appendEvent('o', 'loud', 'message_start', '{}');
  const recovered = await store.recoverOrphans('alive', () => ({
    status: 'failed',
    error: { type: 'api_error', message: 'crashed' },
    finalEvent: { event: 'error', data: '{"crashed":true}' },
  }));
  assert.deepEqual(recovered, { failed: [{ organisation: 'o', id: 'loud' }], requeued: [{ organisation: 'o', id: 'quiet' }] });
  const loud = await store.get('o', 'loud');
  assert.equal(loud.status, 'failed');
  assert.deepEqual(loud.error, { type: 'api_error', message: 'crashed' });
  assert.deepEqual((await store.readEvents('o', 'loud', 0, 10)).map((e) => e.event), ['message_start', 'error']);
  const quiet = await store.get('o', 'quiet');
  assert.equal(quiet.status, 'pending');
  assert.equal(quiet.startedAt, undefined);
  assert.equal((await store.get('o', 'mine')).status, 'running');
});
