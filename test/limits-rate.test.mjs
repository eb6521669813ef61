// Rate limits per key and per organisation over HTTP: requests per minute, concurrent requests
// and tokens per minute (estimated before, corrected after), 50 clients at once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServer, postJson } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';

const ADMIN = 'admin-secret-for-limits-tests';
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

async function createKey(organisation, limits) {
  const res = await admin('POST', '/admin/keys', { organisation, limits });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

function chat(key, text = 'hello there', extra = {}) {
  return postJson(`${server.url}/v1/chat/completions`, { model: 'gm', messages: [{ role: 'user', content: text }], max_tokens: 2, ...extra }, { authorization: `Bearer ${key}` });
}

function eden(key, text = 'hello there') {
  return postJson(`${server.url}/v2/text/chat`, { providers: 'gm', text, max_tokens: 2 }, { authorization: `Bearer ${key}` });
}

const count = (results, status) => results.filter((r) => r.status === status).length;

/** Resolves once `n` of the pending responses have come back with `status`. */
function answered(pending, status, n) {
  return new Promise((resolve) => {
    let seen = 0;
    if (n === 0) resolve();
    for (const p of pending) p.then((r) => r.status === status && ++seen === n && resolve());
  });
}

before(async () => {
  server = await startServer({
    config: { models: [{ id: 'gm', provider: 'gated', model: 'gated-1', pricing: { input: 125000, output: 125000 } }] },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
});
after(() => server?.close());

describe('requests per minute', () => {
  test('50 concurrent clients on a key with rpm 10: exactly 10 pass, 40 get 429 with Retry-After in the OpenAI shape', async () => {
    const { key } = await createKey('rpm-org', { rpm: 10 });
    const results = await Promise.all(Array.from({ length: 50 }, () => chat(key)));
    assert.equal(count(results, 200), 10);
    assert.equal(count(results, 429), 40);
    const refused = results.find((r) => r.status === 429);
    assert.equal(refused.body.error.type, 'rate_limit_error');
    assert.equal(refused.body.error.code, 'requests_per_minute_exceeded');
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
    // The refusal names the limit in OpenAI's rate-limit headers too.
    assert.equal(refused.headers.get('x-ratelimit-limit-requests'), '10');
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.equal(refused.headers.get('x-ratelimit-reset-requests'), retryAfter === 60 ? '1m0s' : `${retryAfter}s`);
  });

  test('an organisation limit is shared by all its keys', async () => {
    await admin('PATCH', '/admin/organisations/shared-org', { limits: { rpm: 6 } });
    const a = await createKey('shared-org');
    const b = await createKey('shared-org');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(i % 2 ? a.key : b.key)));
    assert.equal(count(results, 200), 6);
    assert.equal(count(results, 429), 14);
    // Another organisation is not affected.
    const other = await createKey('other-org');
    assert.equal((await chat(other.key)).status, 200);
  });

  test('the Eden dialect refuses over the limit in its own error shape', async () => {
    const { key } = await createKey('eden-org', { rpm: 1 });
    assert.equal((await eden(key)).status, 200);
    const refused = await eden(key);
    assert.equal(refused.status, 429);
    assert.ok(refused.headers.get('retry-after'));
    assert.equal(typeof refused.body.error.type, 'string');
    assert.equal(refused.body.error.message.includes('requests per minute'), true, JSON.stringify(refused.body));
    // With the same rate-limit headers as every other route.
    assert.equal(refused.headers.get('x-ratelimit-limit-requests'), '1');
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
  });
});

describe('concurrent requests', () => {
  test('50 concurrent clients on a key with concurrent 5: exactly 5 run, 45 get 429 at once', { timeout: 30_000 }, async () => {
    const { key } = await createKey('conc-org', { concurrent: 5 });
    gated.close();
    const enteredBefore = gated.entered;
    const pending = Array.from({ length: 50 }, () => chat(key));
    // Hold the admitted calls until every other client has had its answer.
    await Promise.all([gated.waitForEntered(enteredBefore + 5), answered(pending, 429, 45)]);
    gated.release();
    const results = await Promise.all(pending);
    assert.equal(gated.entered - enteredBefore, 5);
    assert.equal(count(results, 200), 5);
    assert.equal(count(results, 429), 45);
    const sample = results.find((r) => r.status === 429);
    assert.equal(sample.body.error.code, 'concurrent_requests_exceeded');
    assert.equal(sample.headers.get('retry-after'), '1');
    // Slots are released when the calls end.
    assert.equal((await chat(key)).status, 200);
  });
});

describe('tokens per minute', () => {
  test('the prompt estimate admits exactly floor(tpm / estimate) at once; real usage then counts', { timeout: 30_000 }, async () => {
    // Prompt of 5 words: estimated 5 tokens before; 5 in + 2 out = 7 after.
    const { key } = await createKey('tpm-org', { tpm: 20 });
    gated.close();
    const enteredBefore = gated.entered;
    const pending = Array.from({ length: 50 }, () => chat(key, 'one two three four five'));
    await Promise.all([gated.waitForEntered(enteredBefore + 4), answered(pending, 429, 46)]);
    gated.release();
    const results = await Promise.all(pending);
    assert.equal(count(results, 200), 4, 'four estimates of 5 fit in 20');
    assert.equal(count(results, 429), 46);
    assert.equal(results.find((r) => r.status === 429).body.error.code, 'tokens_per_minute_exceeded');
    // Corrected to 4 × 7 = 28 tokens: even a 1-word prompt no longer fits.
    const after = await chat(key, 'one');
    assert.equal(after.status, 429);
    assert.match(after.body.error.message, /used 28/);
    assert.equal(after.headers.get('x-ratelimit-limit-tokens'), '20');
    assert.equal(after.headers.get('x-ratelimit-remaining-tokens'), '0');
  });
});

describe('rate-limit response headers', () => {
  test("OpenAI's x-ratelimit-* say what the tightest limit leaves; a key without limits gets none", async () => {
    const { key } = await createKey('org-headers', { rpm: 3, tpm: 5000 });
    const first = await chat(key);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-limit-requests'), '3');
    assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '2');
    assert.match(first.headers.get('x-ratelimit-reset-requests'), /^(\d+ms|\d+(\.\d+)?s|1m0s)$/);
    assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '5000');
    const tokensLeft = Number(first.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(tokensLeft > 0 && tokensLeft < 5000, String(tokensLeft));
    const second = await chat(key);
    assert.equal(second.headers.get('x-ratelimit-remaining-requests'), '1');
    const { key: unlimited } = await createKey('org-headers-free', undefined);
    const free = await chat(unlimited);
    assert.equal(free.status, 200);
    assert.equal(free.headers.get('x-ratelimit-limit-requests'), null);
  });

  test("the organisation's limit shows when it is the tighter one; streams carry the headers too", async () => {
    await admin('PATCH', '/admin/organisations/org-tight', { limits: { rpm: 2 } });
    const { key } = await createKey('org-tight', { rpm: 50 });
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, stream: true }),
    });
    await res.text();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '1');
  });

  test("the Messages API answers with Anthropic's anthropic-ratelimit-* (reset as an RFC 3339 time)", async () => {
    const { key } = await createKey('org-anthropic-headers', { rpm: 4, tpm: 8000 });
    const res = await postJson(`${server.url}/v1/messages`, { model: 'gm', max_tokens: 2, messages: [{ role: 'user', content: 'hello there' }] }, { 'x-api-key': key, 'anthropic-version': '2023-06-01' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('anthropic-ratelimit-requests-limit'), '4');
    assert.equal(res.headers.get('anthropic-ratelimit-requests-remaining'), '3');
    const reset = Date.parse(res.headers.get('anthropic-ratelimit-requests-reset'));
    assert.ok(reset > Date.now() - 1000 && reset <= Date.now() + 61_000, res.headers.get('anthropic-ratelimit-requests-reset'));
    assert.equal(res.headers.get('anthropic-ratelimit-tokens-limit'), '8000');
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), null);
    // A refusal in the Messages shape carries Anthropic's names too.
    for (let i = 0; i < 3; i++) await postJson(`${server.url}/v1/messages`, { model: 'gm', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': key, 'anthropic-version': '2023-06-01' });
    const refused = await postJson(`${server.url}/v1/messages`, { model: 'gm', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': key, 'anthropic-version': '2023-06-01' });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.type, 'rate_limit_error');
    assert.equal(refused.headers.get('anthropic-ratelimit-requests-remaining'), '0');
    assert.equal(refused.headers.get('anthropic-ratelimit-requests-limit'), '4');
  });
});
