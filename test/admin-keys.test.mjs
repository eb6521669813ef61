// The admin API over HTTP: keys shown once and stored hashed, revoked and expired keys refused
// at once, allowed-models refusal, organisations, and the request log with filters.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServer, postJson } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';

const ADMIN = 'admin-secret-for-admin-tests';
const gated = createGatedFactory();
let server;

async function call(method, path, { token = ADMIN, body } = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

function chat(key, model = 'gm', headers = {}) {
  return postJson(`${server.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }, { authorization: `Bearer ${key}`, ...headers });
}

before(async () => {
  server = await startServer({
    config: {
      models: [
        { id: 'gm', aliases: ['gm-alias'], provider: 'gated', model: 'gated-1', pricing: { input: 1, output: 2 } },
        { id: 'other', provider: 'gated', model: 'gated-2' },
      ],
      limits: { organisations: { 'config-org': { rpm: 100 } } },
    },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
});
after(() => server?.close());

describe('keys', () => {
  test('a created key is shown once, listed without it, and stored only as a hash', async () => {
    const created = await call('POST', '/admin/keys', { body: { organisation: 'acme', name: 'ci' } });
    assert.equal(created.status, 201);
    assert.match(created.body.key, /^sb-/);
    assert.equal(created.body.prefix, created.body.key.slice(0, 8));
    assert.equal(created.body.state, 'active');
    const listed = await call('GET', '/admin/keys?organisation=acme');
    const row = listed.body.data.find((k) => k.id === created.body.id);
    assert.ok(row);
    assert.equal(row.key, undefined);
    assert.ok(!JSON.stringify(listed.body).includes(created.body.key));
    const one = await call('GET', `/admin/keys/${created.body.id}`);
    assert.equal(one.body.key, undefined);
    assert.equal(one.body.hash, undefined);
    assert.equal((await chat(created.body.key)).status, 200);
  });

  test('a revoked key is refused (401) on the very next request', async () => {
    const created = await call('POST', '/admin/keys', { body: { organisation: 'acme' } });
    assert.equal((await chat(created.body.key)).status, 200);
    const revoked = await call('DELETE', `/admin/keys/${created.body.id}`);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.state, 'revoked');
    const refused = await chat(created.body.key);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, 'api_key_revoked_or_expired');
  });

  test('a DELETE sent as the Python SDKs send it (content-type: application/json, no body) is served; an empty POST body is still refused', async () => {
    const created = await call('POST', '/admin/keys', { body: { organisation: 'acme' } });
    const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const revoked = await fetch(`${server.url}/admin/keys/${created.body.id}`, { method: 'DELETE', headers });
    assert.equal(revoked.status, 200);
    assert.equal((await revoked.json()).state, 'revoked');
    const broken = await fetch(`${server.url}/admin/keys/${created.body.id}`, { method: 'DELETE', headers, body: '{' });
    assert.equal(broken.status, 400, 'a body that is there must still be JSON');
    const empty = await fetch(`${server.url}/admin/keys`, { method: 'POST', headers });
    assert.equal(empty.status, 400);
    assert.match((await empty.json()).error.message, /empty/i);
  });

  test('an expired key is refused (401) at once', async () => {
    const created = await call('POST', '/admin/keys', { body: { organisation: 'acme', expires_in: '1h' } });
    assert.equal((await chat(created.body.key)).status, 200);
    const patched = await call('PATCH', `/admin/keys/${created.body.id}`, { body: { expires_at: new Date(Date.now() - 1000).toISOString() } });
    assert.equal(patched.body.state, 'expired');
    const refused = await chat(created.body.key);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.type, 'authentication_error');
    // A key created already expired is refused too.
    const past = await call('POST', '/admin/keys', { body: { organisation: 'acme', expires_at: Date.now() - 1 } });
    assert.equal((await chat(past.body.key)).status, 401);
  });

  test('a key with allowed models gets 403 for any other model, and may use its models by id or alias', async () => {
    const created = await call('POST', '/admin/keys', { body: { organisation: 'acme', allowed_models: ['gm'] } });
    const refused = await chat(created.body.key, 'other');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.type, 'permission_error');
    assert.equal(refused.body.error.code, 'model_not_allowed');
    assert.equal(refused.body.error.param, 'model');
    assert.equal((await chat(created.body.key, 'gm')).status, 200);
    assert.equal((await chat(created.body.key, 'gm-alias')).status, 200);
    // Lifting the restriction takes effect at once.
    await call('PATCH', `/admin/keys/${created.body.id}`, { body: { allowed_models: null } });
    assert.equal((await chat(created.body.key, 'other')).status, 200);
  });

  test('the admin API refuses organisation keys, wrong keys and no key', async () => {
    const created = await call('POST', '/admin/keys', { body: { organisation: 'acme' } });
    assert.equal((await call('GET', '/admin/keys', { token: created.body.key })).status, 401);
    assert.equal((await call('GET', '/admin/keys', { token: 'not-the-admin-key' })).status, 401);
    const none = await call('GET', '/admin/keys', { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'admin_key_required');
  });

  test('bad admin input is a 400 that names the field', async () => {
    const bad = await call('POST', '/admin/keys', { body: { organisation: 'acme', limits: { rpm: -1 } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'limits.rpm');
    const unknown = await call('PATCH', '/admin/keys/key_nope', { body: { name: 'x' } });
    assert.equal(unknown.status, 404);
    // A key limited to a model this server does not serve could never be used for it.
    const nosuch = await call('POST', '/admin/keys', { body: { organisation: 'acme', allowed_models: ['gm-alias', 'nosuch'] } });
    assert.equal(nosuch.status, 400);
    assert.equal(nosuch.body.error.param, 'allowed_models[1]');
    const created = await call('POST', '/admin/keys', { body: { organisation: 'acme', allowed_models: ['gm-alias'] } });
    assert.equal((await call('PATCH', `/admin/keys/${created.body.id}`, { body: { allowed_models: ['nosuch'] } })).status, 400);
  });

  test("no key may belong to 'default', where the admin key's and open mode's sessions and runs are kept", async () => {
    const sid = `admin-only-${Date.now()}`;
    assert.equal((await chat(ADMIN, 'gm', { 'x-session-id': sid })).status, 200);
    const refused = await call('POST', '/admin/keys', { body: { organisation: 'default' } });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.param, 'organisation');
    assert.match(refused.body.error.message, /reserved/);
    // Any other organisation's key cannot read the admin's session.
    const other = await call('POST', '/admin/keys', { body: { organisation: 'Default' } });
    const read = await fetch(`${server.url}/v1/sessions/${sid}`, { headers: { authorization: `Bearer ${other.body.key}` } });
    assert.equal(read.status, 404);
  });
});

describe('organisations', () => {
  test('lists organisations with their limits, from the config or set by the admin API', async () => {
    await call('POST', '/admin/keys', { body: { organisation: 'listed-org' } });
    const set = await call('PATCH', '/admin/organisations/listed-org', { body: { limits: { rpm: 5, budget: { day: 1 } }, log_bodies: true } });
    assert.equal(set.status, 200);
    assert.deepEqual(set.body.limits, { rpm: 5, budget: { day: 1 } });
    assert.equal(set.body.log_bodies, true);
    const list = await call('GET', '/admin/organisations');
    const listed = list.body.data.find((o) => o.organisation === 'listed-org');
    assert.equal(listed.limits_source, 'admin');
    assert.equal(listed.active_keys, 1);
    const configured = list.body.data.find((o) => o.organisation === 'config-org');
    assert.deepEqual(configured.limits, { rpm: 100 });
    assert.equal(configured.limits_source, 'config');
    // null returns to the config's limits.
    const cleared = await call('PATCH', '/admin/organisations/listed-org', { body: { limits: null } });
    assert.equal(cleared.body.limits_source, 'none');
  });
});

describe('request log', () => {
  test('every request is logged with its organisation, key, correlation, status and usage; filters and time range apply', async () => {
    const since = Date.now();
    const a = await call('POST', '/admin/keys', { body: { organisation: 'log-org' } });
    const ok = await chat(a.body.key);
    assert.equal(ok.status, 200);
    const refusedModel = await chat(a.body.key, 'nope');
    assert.equal(refusedModel.status, 404);
    const rows = await call('GET', `/admin/requests?organisation=log-org&since=${since}`);
    assert.equal(rows.status, 200);
    const row = rows.body.data.find((r) => r.id === ok.headers.get('x-request-id'));
    assert.ok(row, JSON.stringify(rows.body));
    assert.equal(row.key_id, a.body.id);
    assert.equal(row.dialect, 'openai');
    assert.equal(row.model, 'gm');
    assert.equal(row.provider, 'gated');
    assert.equal(row.status, 200);
    assert.equal(row.input_tokens, ok.body.usage.prompt_tokens);
    assert.equal(row.output_tokens, ok.body.usage.completion_tokens);
    assert.equal(row.cost, ok.body.usage.cost);
    assert.equal(row.body, null, 'bodies are not logged unless enabled');
    const byStatus = await call('GET', `/admin/requests?organisation=log-org&status=200`);
    assert.ok(byStatus.body.data.every((r) => r.status === 200));
    const byKey = await call('GET', `/admin/requests?key_id=${a.body.id}`);
    assert.ok(byKey.body.data.length >= 1 && byKey.body.data.every((r) => r.key_id === a.body.id));
    const future = await call('GET', `/admin/requests?organisation=log-org&since=${new Date(Date.now() + 60_000).toISOString()}`);
    assert.equal(future.body.data.length, 0);
    const before = await call('GET', `/admin/requests?organisation=log-org&until=${since}`);
    assert.equal(before.body.data.length, 0);
  });
});
