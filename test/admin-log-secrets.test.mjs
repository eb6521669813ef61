// Logs never carry secrets: not the admin key, not API keys (headers, bodies, query strings),
// not upstream credentials. Every request writes exactly one JSON line with what operators
// need. Bodies land in the request log only for organisations that enabled it, redacted.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, postJson } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';
import { dialectCalls } from './helpers/dialects.mjs';

const ADMIN = 'admin-secret-4f9d2c-never-logged';
const UPSTREAM_KEY = 'sk-upstream-credential-7c1e9a5b3d';
const gated = createGatedFactory();
let server;
const secrets = [ADMIN, UPSTREAM_KEY];
const requestIds = [];

async function admin(method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  requestIds.push(res.headers.get('x-request-id'));
  return { status: res.status, body: await res.json() };
}

before(async () => {
  server = await startServer({
    logLevel: 'trace',
    config: {
      models: [
        { id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 1, output: 1 } },
        // An upstream that refuses connections: its failure path must not log its credential.
        { id: 'remote', provider: 'openai', model: 'gpt-x', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'UPSTREAM_KEY', routing: { retries: 0 } },
      ],
    },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN, UPSTREAM_KEY },
  });
  await admin('PATCH', '/admin/organisations/logged-org', { log_bodies: true });
  const logged = await admin('POST', '/admin/keys', { organisation: 'logged-org' });
  const quiet = await admin('POST', '/admin/keys', { organisation: 'quiet-org' });
  secrets.push(logged.body.key, quiet.body.key);
  for (const { body } of [logged, quiet]) {
    for (const dialect of dialectCalls) {
      // The prompt itself carries a key: a body log must redact it.
      const res = await dialect.send(server.url, { key: body.key, model: 'gm', text: `my key is ${body.key} and apiKey ${UPSTREAM_KEY}`, organisation: body.organisation });
      assert.equal(res.status, 200);
      requestIds.push(res.headers.get('x-request-id'));
    }
    const failed = await postJson(`${server.url}/v1/chat/completions?api_key=${body.key}`, { model: 'remote', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${body.key}` });
    assert.ok(failed.status >= 500, String(failed.status));
    requestIds.push(failed.headers.get('x-request-id'));
    const badKey = await postJson(`${server.url}/v1/chat/completions`, { model: 'gm', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${body.key}x` });
    assert.equal(badKey.status, 401);
    requestIds.push(badKey.headers.get('x-request-id'));
  }
});
after(() => server?.close());

test('no log line contains the admin key, an API key or an upstream credential', async () => {
  const parsedLines = server.logLines.map((line) => JSON.parse(line));
  assert.ok(parsedLines.length >= requestIds.length);
  for (const line of server.logLines) {
    for (const secret of secrets) assert.ok(!line.includes(secret), `a log line contains a secret: ${line.slice(0, 300)}`);
    assert.ok(!/authorization|x-api-key/i.test(line), `a log line carries headers: ${line.slice(0, 300)}`);
  }
});

test('every request writes exactly one JSON line with the fields operators need', async () => {
  const lines = server.logLines.map((line) => JSON.parse(line)).filter((l) => l.msg === 'request');
  for (const id of requestIds) assert.equal(lines.filter((l) => l.reqId === id).length, 1, `one line for ${id}`);
  const chats = lines.filter((l) => l.status === 200 && l.route !== '/admin/keys' && l.method === 'POST');
  assert.equal(chats.length, 2 * dialectCalls.length, 'one line per chat call on every dialect');
  for (const chat of chats) {
    for (const field of ['reqId', 'method', 'route', 'url', 'status', 'ms', 'org', 'keyId', 'dialect', 'model', 'provider', 'inputTokens', 'outputTokens', 'cost', 'ttftMs']) {
      assert.ok(field in chat, `field ${field} in ${JSON.stringify(chat)}`);
    }
    assert.equal(chat.model, 'gm');
    assert.equal(chat.provider, 'gated');
    assert.ok(chat.inputTokens > 0);
  }
  const failed = lines.find((l) => l.model === 'remote');
  assert.ok(failed.status >= 500 && failed.errorKind, JSON.stringify(failed));
  assert.ok(!lines.some((l) => l.url.includes('?')), 'query strings are not logged');
});

test('bodies are logged only for organisations that enabled it, with secrets redacted', async () => {
  const logged = await admin('GET', '/admin/requests?organisation=logged-org&model=gm');
  assert.equal(logged.body.data.length, dialectCalls.length);
  for (const row of logged.body.data) {
    assert.ok(row.body, 'body logged');
    assert.match(row.body, /my key is \[redacted\]/);
    for (const secret of secrets) assert.ok(!row.body.includes(secret), 'no secret in a logged body');
  }
  const quiet = await admin('GET', '/admin/requests?organisation=quiet-org');
  assert.ok(quiet.body.data.length > 0);
  assert.ok(quiet.body.data.every((row) => row.body === null));
  // The whole request log, as the admin API shows it, holds no secret either.
  const all = JSON.stringify((await admin('GET', '/admin/requests?limit=10000')).body);
  for (const secret of secrets) assert.ok(!all.includes(secret));
});
