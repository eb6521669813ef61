// Request-log retention: rows older than limits.requestLog.retentionDays are deleted when the
// server starts (and hourly); 0 keeps them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../dist/core/config.js';
import { createServer } from '../dist/server/app.js';
import { SqliteStore } from '../dist/store/sqlite.js';

const ADMIN = 'admin-secret-for-retention-tests';
const dirs = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const DAY = 86_400_000;

/** A data directory whose request log holds one row 40 days old and one 1 day old. */
async function seededDataDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-retention-'));
  dirs.push(dir);
  const store = SqliteStore.inDataDir(dir);
  for (const [id, age] of [['old', 40 * DAY], ['recent', DAY]]) {
    await store.logRequest({ id, createdAt: Date.now() - age, organisation: 'acme', dialect: 'openai', route: '/v1/chat/completions', model: 'gm', attempts: 1, status: 200, latencyMs: 5, inputTokens: 1, outputTokens: 1, totalTokens: 2, cost: 0, stream: false });
  }
  await store.close();
  return dir;
}

async function loggedIds(retentionDays) {
  const dataDir = await seededDataDir();
  const configFile = path.join(dataDir, 'switchboard.json');
  fs.writeFileSync(configFile, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, models: [{ id: 'gm', provider: 'openai', model: 'x', baseUrl: 'http://127.0.0.1:9' }], limits: { requestLog: { retentionDays } } }));
  const config = loadConfig({ configFile, dataDir }, {});
  const server = await createServer({ config, env: { SWITCHBOARD_ADMIN_KEY: ADMIN }, logger: pino({ level: 'silent' }) });
  try {
    const url = await server.listen();
    const res = await fetch(`${url}/admin/requests?organisation=acme`, { headers: { authorization: `Bearer ${ADMIN}` } });
    return (await res.json()).data.map((r) => r.id).sort();
  } finally {
    await server.close();
  }
}

test('rows older than the retention are deleted at start', async () => {
  assert.deepEqual(await loggedIds(30), ['recent']);
});

test('retention 0 keeps every row', async () => {
  assert.deepEqual(await loggedIds(0), ['old', 'recent']);
});
