// Limits live in the core, so every dialect refuses the same way, each in its own error shape:
// rate limit and budget (429 + Retry-After), model not allowed (403), revoked key (401).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServer } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';
import { dialectCalls } from './helpers/dialects.mjs';

const ADMIN = 'admin-secret-for-dialect-limit-tests';
const gated = createGatedFactory();
let server;

async function admin(method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

async function newKey(organisation, extra = {}) {
  const res = await admin('POST', '/admin/keys', { organisation, ...extra });
  assert.equal(res.status, 201);
  return res.body;
}

before(async () => {
  server = await startServer({
    config: {
      models: [
        { id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 125000, output: 125000 } },
        { id: 'other', provider: 'gated', model: 'gated-2' },
      ],
    },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
});
after(() => server?.close());

for (const dialect of dialectCalls) {
  describe(`${dialect.name} dialect`, () => {
    const organisation = `org-${dialect.name}`;
    const send = (key, model = 'gm') => dialect.send(server.url, { key, model, text: 'two words', organisation });

    test('over the requests-per-minute limit: 429 with Retry-After in the dialect shape', async () => {
      const { key } = await newKey(organisation, { limits: { rpm: 1 } });
      assert.equal((await send(key)).status, 200);
      const refused = await send(key);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      const error = dialect.error(refused.body);
      assert.match(error.type, /rate/);
      assert.match(error.message, /1 requests per minute/);
    });

    test('over budget: 429 with Retry-After in the dialect shape', async () => {
      // (2 + 2 tokens) × $0.125 = $0.5 reserved; the budget holds one call.
      const { key } = await newKey(organisation, { limits: { budget: { day: 0.7 } } });
      assert.equal((await send(key)).status, 200);
      const refused = await send(key);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.match(dialect.error(refused.body).message, /daily budget of \$0\.7/);
    });

    test('a model outside the key’s allowed models: 403', async () => {
      const { key } = await newKey(organisation, { allowed_models: ['gm'] });
      const refused = await send(key, 'other');
      assert.equal(refused.status, 403);
      assert.match(dialect.error(refused.body).message, /may not use the model 'other'/);
      assert.equal((await send(key, 'gm')).status, 200);
    });

    test('a revoked key: 401 on the next call', async () => {
      const created = await newKey(organisation);
      assert.equal((await send(created.key)).status, 200);
      await admin('DELETE', `/admin/keys/${created.id}`);
      assert.equal((await send(created.key)).status, 401);
    });
  });
}

describe('count_tokens (Messages)', () => {
  const countTokens = (key, model) =>
    fetch(`${server.url}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'two words' }] }),
    });

  test('a model outside the key’s allowed models: 403 permission_error; counting spends no request of the key’s limit', async () => {
    const { key } = await newKey('org-count', { allowed_models: ['gm'], limits: { rpm: 1 } });
    const refused = await countTokens(key, 'other');
    assert.equal(refused.status, 403);
    const body = await refused.json();
    assert.equal(body.error.type, 'permission_error');
    assert.match(body.error.message, /may not use the model 'other'/);
    for (let i = 0; i < 2; i++) {
      const counted = await countTokens(key, 'gm');
      assert.equal(counted.status, 200);
      assert.ok((await counted.json()).input_tokens > 0);
    }
    // The one request a minute is still there for a chat call.
    const chat = dialectCalls.find((d) => d.name === 'messages');
    assert.equal((await chat.send(server.url, { key, model: 'gm', text: 'two words', organisation: 'org-count' })).status, 200);
  });
});
