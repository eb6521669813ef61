#!/usr/bin/env node
// Does a key created or revoked through one process apply in another at once (docs/scale-out.md)?
// Two gateways share PostgreSQL + Redis; each keeps copies of keys for up to 5 s, cleared by a
// signal on every write. ROUNDS times: a key is created on A and used at once on B (must pass),
// then revoked on A and used at once on B (must be refused), while LOAD clients keep B busy with
// another key. Exits 1 if any round broke the promise.
//
// Usage: node bench/revoke-race.mjs   (env: ROUNDS=300 LOAD=16)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropSharedStore, sharedStore, startGateway } from './lib/gateways.mjs';
import { startJsonServer, answerWithWords } from './lib/word-upstream.mjs';
const ADMIN = 'admin-key-revoke-exp';
const shared = sharedStore('revoke');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-revoke-'));
const up = await startJsonServer((req, res, body) => answerWithWords(res, body, { interval: () => 0, words: 2 }));
const config = path.join(dir, 'c.yaml');
fs.writeFileSync(config, `server:\n  logLevel: error\n${shared.config}defaultModel: up\nmodels:\n  - id: up\n    provider: openai\n    model: up\n    baseUrl: 'http://127.0.0.1:${up.port}/v1'\n`);
const a = await startGateway(config, dir, { SWITCHBOARD_ADMIN_KEY: ADMIN });
const bDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-revoke-b-'));
const b = await startGateway(config, bDir, { SWITCHBOARD_ADMIN_KEY: ADMIN });
const admin = (url, method, route, body) => fetch(url + route, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
const chat = (url, key) => fetch(url + '/v1/chat/completions', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'up', messages: [{ role: 'user', content: 'hi' }] }) }).then(async (r) => (await r.text(), r.status));
let passedAfterRevoke = 0;
let passedAfterCreate = 0;
const steady = await (await admin(a.url, 'POST', '/admin/keys', { organisation: 'load' })).json();
let loading = true;
const load = Promise.all(Array.from({ length: Number(process.env.LOAD ?? 16) }, async () => { while (loading) await chat(b.url, steady.key); }));
const ROUNDS = Number(process.env.ROUNDS ?? 300);
for (let i = 0; i < ROUNDS; i++) {
  const created = await (await admin(a.url, 'POST', '/admin/keys', { organisation: 'acme' })).json();
  // Created on A, used at once on B.
  if ((await chat(b.url, created.key)) !== 200) passedAfterCreate++;
  const del = await admin(a.url, 'DELETE', `/admin/keys/${created.id}`);
  if (!del.ok) throw new Error(`delete ${del.status}`);
  if ((await chat(b.url, created.key)) === 200) passedAfterRevoke++;
}
loading = false; await load;
console.log(`of ${ROUNDS} rounds under ${process.env.LOAD ?? 16} busy clients: a key created on A refused on B at once: ${passedAfterCreate}; a key revoked on A still served on B at once: ${passedAfterRevoke}`);
a.child.kill(); b.child.kill(); up.server.close(); up.server.closeAllConnections();
await dropSharedStore(shared);
fs.rmSync(dir, { recursive: true, force: true });
fs.rmSync(bDir, { recursive: true, force: true });
process.exit(passedAfterCreate + passedAfterRevoke ? 1 : 0);
