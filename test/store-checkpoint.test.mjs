// A server's connection never checkpoints the SQLite WAL (a checkpoint copies pages and fsyncs on
// the thread that runs it); a worker thread does, every second. One-shot CLI commands keep
// SQLite's automatic checkpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../dist/store/sqlite.js';
import { openStore } from '../dist/store/index.js';
import { startServer } from './helpers/server.mjs';

const row = (i) => ({
  id: `req-${i}`,
  createdAt: Date.now(),
  organisation: 'acme',
  dialect: 'openai',
  route: '/v1/chat/completions',
  model: 'm',
  attempts: 1,
  status: 200,
  latencyMs: 1,
  inputTokens: 10,
  outputTokens: 20,
  totalTokens: 30,
  cost: 0,
  stream: false,
});

test('request-log pages reach the database file through the worker, not through commits', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-checkpoint-'));
  const file = path.join(dir, 'switchboard.db');
  const store = new SqliteStore(file, { backgroundCheckpoints: true });
  try {
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 0, 'the serving connection does not checkpoint');
    const before = fs.statSync(file).size;
    // Enough rows for several hundred WAL pages (an automatic checkpoint would have run at 1000).
    for (let i = 0; i < 3000; i++) await store.logRequest(row(i));
    store.flushRequestLog();
    assert.ok(fs.statSync(`${file}-wal`).size > 100 * 4096, 'the rows are in the WAL');
    assert.equal(fs.statSync(file).size, before, 'nothing was copied into the database by the commits');
    // The worker's next checkpoint copies them (it runs every second).
    const deadline = Date.now() + 5000;
    while (fs.statSync(file).size === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(fs.statSync(file).size > before, 'the worker checkpointed the WAL into the database file');
    assert.equal((await store.queryRequests({ limit: 5000 })).length, 3000);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the server opens its store with background checkpoints; one-shot commands keep SQLite's own", async () => {
  const s = await startServer({ config: { defaultModel: 'm', models: [{ id: 'm', provider: 'openai', model: 'x', baseUrl: 'http://127.0.0.1:9/v1' }] } });
  try {
    assert.equal(s.server.context.store.db.pragma('wal_autocheckpoint', { simple: true }), 0);
  } finally {
    await s.close();
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-checkpoint-'));
  const store = await openStore({}, dir);
  try {
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 1000, "SQLite's default");
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
