// Schema migrations (src/store/migrations.ts): a database written before a change is brought up to
// date when a store opens it, its rows kept; processes opening it together apply each step once;
// a database from a newer Switchboard is refused. On the SQLite file and on PostgreSQL (skipped
// without PostgreSQL unless SWITCHBOARD_REQUIRE_SERVICES is set).
// Build first: npx tsc -p tsconfig.json
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SqliteStore } from '../dist/store/sqlite.js';
import { PostgresStore } from '../dist/store/postgres.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from '../dist/store/migrations.js';
import { POSTGRES_URL, dropSchema, serviceSkip, uniqueSchema } from './helpers/services.mjs';

const pgSkip = await serviceSkip('PostgreSQL', POSTGRES_URL);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-migrations-'));
const schemas = [];
after(async () => {
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const schema of schemas) await dropSchema(schema);
});

// request_log as Switchboard created it before the first migration (the baseline release).
const OLD_REQUEST_LOG = (real, bigint) => `
CREATE TABLE request_log (
  id TEXT PRIMARY KEY, created_at ${bigint} NOT NULL, organisation TEXT NOT NULL, key_id TEXT, correlation_id TEXT,
  dialect TEXT NOT NULL, route TEXT NOT NULL, model TEXT, provider TEXT, deployment TEXT, attempts INTEGER NOT NULL,
  status INTEGER NOT NULL, error_kind TEXT, latency_ms ${real} NOT NULL, ttft_ms ${real}, input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, cost ${real} NOT NULL, stream INTEGER NOT NULL, body TEXT
);
INSERT INTO request_log VALUES ('req_old', ${Date.now() - 1000}, 'acme', NULL, NULL, 'openai', '/v1/chat/completions', 'm1', 'openai', NULL, 1, 200, NULL, 10.5, 2.5, 30, 7, 37, 0.25, 1, NULL);
`;

const NEW_ROW = {
  id: 'req_new',
  organisation: 'acme',
  dialect: 'messages',
  route: '/v1/messages',
  model: 'm1',
  provider: 'anthropic',
  attempts: 1,
  status: 200,
  latencyMs: 5,
  inputTokens: 100,
  outputTokens: 9,
  totalTokens: 109,
  cacheReadTokens: 60,
  cacheWriteTokens: 30,
  reasoningTokens: 4,
  serverToolUse: { web_search_requests: 3 },
  cost: 0.5,
  stream: false,
};

async function assertUpToDateWithRows(store) {
  // Stamped now: the old row is stamped a second before its schema is made, and a module-load
  // stamp could come before that when the tests before this one take over a second.
  await store.logRequest({ ...NEW_ROW, createdAt: Date.now() });
  const rows = await store.queryRequests({ organisation: 'acme' });
  assert.deepEqual(rows.map((r) => r.id), ['req_new', 'req_old']);
  const [fresh, old] = rows;
  assert.deepEqual(
    [old.inputTokens, old.outputTokens, old.cost, old.cacheReadTokens, old.cacheWriteTokens, old.reasoningTokens, old.serverToolUse],
    [30, 7, 0.25, 0, 0, 0, undefined],
    'a row written before the change reads back with zero counts',
  );
  assert.deepEqual(
    [fresh.cacheReadTokens, fresh.cacheWriteTokens, fresh.reasoningTokens, fresh.serverToolUse],
    [60, 30, 4, { web_search_requests: 3 }],
  );
}

/** Opens the store in `count` processes at once; each prints the versions its open applied. */
async function openInProcesses(count, args) {
  const script = `
    const [kind, target, schema] = process.argv.slice(1);
    const store = kind === 'sqlite'
      ? new (await import(${JSON.stringify(new URL('../dist/store/sqlite.js', import.meta.url).href)})).SqliteStore(target)
      : await (await import(${JSON.stringify(new URL('../dist/store/postgres.js', import.meta.url).href)})).PostgresStore.open(target, { schema });
    process.stdout.write(JSON.stringify(store.migrated.map((m) => m.version)));
    await store.close();
  `;
  const runs = Array.from({ length: count }, () =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}: ${err}`))));
    }),
  );
  return Promise.all(runs);
}

test('sqlite: a file from before the change is migrated on open, its rows kept; the next open has nothing to do', async () => {
  const file = path.join(tmp, 'old.db');
  const db = new Database(file);
  db.exec(OLD_REQUEST_LOG('REAL', 'INTEGER'));
  db.close();

  const store = new SqliteStore(file);
  assert.deepEqual(store.migrated.map((m) => m.version), MIGRATIONS.map((m) => m.version));
  await assertUpToDateWithRows(store);
  await store.close();

  const again = new SqliteStore(file);
  assert.deepEqual(again.migrated, []);
  const recorded = again.db.prepare('SELECT version, description FROM switchboard_schema_migrations ORDER BY version').all();
  assert.deepEqual(recorded, MIGRATIONS.map((m) => ({ version: m.version, description: m.description })));
  await again.close();
});

test('sqlite: a new file gets the same columns as a migrated one', async () => {
  const fresh = new SqliteStore(path.join(tmp, 'fresh.db'));
  const file = path.join(tmp, 'old-for-columns.db');
  const db = new Database(file);
  db.exec(OLD_REQUEST_LOG('REAL', 'INTEGER'));
  db.close();
  const migrated = new SqliteStore(file);
  const columns = (s) => s.db.prepare('PRAGMA table_info(request_log)').all().map((c) => [c.name, c.type, c.notnull, c.dflt_value]);
  assert.deepEqual(columns(migrated), columns(fresh));
  assert.ok(columns(fresh).some(([name]) => name === 'server_tool_use'));
  await fresh.close();
  await migrated.close();
});

test('sqlite: processes opening an old file together apply each step exactly once', async () => {
  const file = path.join(tmp, 'shared.db');
  const db = new Database(file);
  db.exec(OLD_REQUEST_LOG('REAL', 'INTEGER'));
  db.close();
  const applied = await openInProcesses(3, ['sqlite', file]);
  assert.deepEqual(applied.flat().sort(), MIGRATIONS.map((m) => m.version), JSON.stringify(applied));
  const store = new SqliteStore(file);
  await assertUpToDateWithRows(store);
  await store.close();
});

test('sqlite: a file from a newer Switchboard is refused, and left as it was', async () => {
  const file = path.join(tmp, 'newer.db');
  const first = new SqliteStore(file);
  first.db.prepare('INSERT INTO switchboard_schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(LATEST_SCHEMA_VERSION + 1, 'from the future', Date.now());
  await first.close();
  assert.throws(() => new SqliteStore(file), new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 1}, written by a newer Switchboard`));
  const db = new Database(file);
  assert.equal(db.prepare('SELECT MAX(version) AS v FROM switchboard_schema_migrations').get().v, LATEST_SCHEMA_VERSION + 1);
  db.close();
});

async function oldPostgresSchema() {
  const schema = uniqueSchema('sbmig');
  schemas.push(schema);
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    // An application sharing the database keeps its own migrations table (Rails' shape): not ours.
    await client.query(
      `CREATE SCHEMA ${schema}; SET search_path = ${schema}; ${OLD_REQUEST_LOG('DOUBLE PRECISION', 'BIGINT')}
       CREATE TABLE schema_migrations (version VARCHAR PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101000000');`,
    );
  } finally {
    await client.end();
  }
  return schema;
}

test('postgres: a database from before the change is migrated on open, its rows kept; the next open has nothing to do', { skip: pgSkip }, async () => {
  const schema = await oldPostgresSchema();
  const store = await PostgresStore.open(POSTGRES_URL, { schema });
  assert.deepEqual(store.migrated.map((m) => m.version), MIGRATIONS.map((m) => m.version));
  await assertUpToDateWithRows(store);
  await store.close();
  const again = await PostgresStore.open(POSTGRES_URL, { schema });
  assert.deepEqual(again.migrated, []);
  await again.close();
});

test('postgres: processes opening an old database together apply each step exactly once', { skip: pgSkip }, async () => {
  const schema = await oldPostgresSchema();
  const applied = await openInProcesses(3, ['postgres', POSTGRES_URL, schema]);
  assert.deepEqual(applied.flat().sort(), MIGRATIONS.map((m) => m.version), JSON.stringify(applied));
});

test('postgres: a database from a newer Switchboard is refused', { skip: pgSkip }, async () => {
  const schema = uniqueSchema('sbmig');
  schemas.push(schema);
  const first = await PostgresStore.open(POSTGRES_URL, { schema });
  await first.pool.query('INSERT INTO switchboard_schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)', [LATEST_SCHEMA_VERSION + 1, 'from the future', Date.now()]);
  await first.close();
  await assert.rejects(PostgresStore.open(POSTGRES_URL, { schema }), new RegExp(`\\(schema ${schema}\\) is at schema version ${LATEST_SCHEMA_VERSION + 1}`));
});
