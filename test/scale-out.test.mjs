// Scale-out: two `switchboard serve` processes, each with a data directory of its own, sharing
// one PostgreSQL schema and one Redis prefix (and each an upstream of its own, to tell which one
// runs an async run). A key made by the CLI works on both, a rate limit holds for the pair, a
// session and an async run are read from the process that did not serve them, a cancel sent to
// one stops the run where it executes, a killed process's run is taken over by the other, and a
// message thread made on one is continued on the other.
// Skipped without PostgreSQL and Redis unless SWITCHBOARD_REQUIRE_SERVICES is set.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { readSse } from './helpers/server.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';
import { POSTGRES_URL, REDIS_URL, dropSchema, serviceSkip, uniquePrefix, uniqueSchema } from './helpers/services.mjs';

const skip = (await serviceSkip('PostgreSQL', POSTGRES_URL)) || (await serviceSkip('Redis', REDIS_URL));
const schema = uniqueSchema();
const keyPrefix = uniquePrefix();
const ADMIN_KEY = 'admin-secret-for-scale-out';
/** One upstream per process, so a test can tell which process executes a run. */
const fakes = {};
let root;
let key;
const servers = {};
/** Upstream requests held open, by prompt, until released. */
const held = new Map();

function configFor(name) {
  return path.join(root, `${name}.yaml`);
}

function startChild(name) {
  const dataDir = path.join(root, name);
  const child = spawn(process.execPath, ['bin/switchboard.js', 'serve', '--config', configFor(name), '--data-dir', dataDir, '--port', '0', '--no-warm-up'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SWITCHBOARD_ADMIN_KEY: ADMIN_KEY },
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /switchboard listening on (\S+)/.exec(out);
      if (match) resolve({ child, url: match[1] });
    });
    child.once('exit', (code) => reject(new Error(`server ${name} exited (${code}) before listening: ${out}`)));
  });
}

async function stopChild(server) {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  await once(server.child, 'exit');
}

before(async () => {
  if (skip) return;
  [fakes.a, fakes.b] = await Promise.all([startFakeOpenAI(), startFakeOpenAI()]);
  const scenario = (record) => {
    const prompt = record.body.messages.at(-1).content;
    const text = typeof prompt === 'string' ? prompt : prompt.map((p) => p.text).join('');
    // 'hold:…' answers 'partial ' and waits; 'silent:…' waits before answering anything.
    if (!text.startsWith('hold:') && !text.startsWith('silent:')) return { type: 'text', text: `echo ${text}`, chunks: 2 };
    return {
      type: 'handler',
      handle: (req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (delta, finish = null) => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta, finish_reason: finish }] });
        const first = `data: ${JSON.stringify(chunk({ role: 'assistant', content: 'partial ' }))}\n\n`;
        // A silent one sends not even its headers: the run has nothing to emit.
        if (text.startsWith('hold:')) res.write(first);
        held.set(text, () => {
          if (text.startsWith('silent:')) res.write(first);
          res.write(`data: ${JSON.stringify(chunk({ content: 'rest' }))}\n\n`);
          res.write(`data: ${JSON.stringify(chunk({}, 'stop'))}\n\ndata: [DONE]\n\n`);
          res.end();
        });
      },
    };
  };
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-scale-out-'));
  for (const name of ['a', 'b']) {
    fakes[name].setDefault(scenario);
    fs.writeFileSync(
      configFor(name),
      stringify({
        server: { host: '127.0.0.1', port: 0, logLevel: 'warn' },
        router: { retries: 0 },
        store: { postgres: { url: POSTGRES_URL, schema, leaseSeconds: 1 }, redis: { url: REDIS_URL, keyPrefix } },
        async: { concurrency: 4 },
        limits: { organisations: { limited: { rpm: 3 } } },
        defaultModel: 'up',
        models: [
          { id: 'up', provider: 'openai', model: 'up', baseUrl: fakes[name].url },
          // $1 per output token: a call reserves exactly max_tokens dollars.
          { id: 'priced', provider: 'openai', model: 'up', baseUrl: fakes[name].url, pricing: { input: 0, output: 1_000_000 } },
        ],
      }),
    );
  }
  // The CLI writes the key into the shared database: both servers must honour it.
  const { stdout } = await promisify(execFile)(process.execPath, ['bin/switchboard.js', 'keys', 'create', '--org', 'acme', '--config', configFor('a')]);
  key = stdout.trim().split('\n').at(-1);
  [servers.a, servers.b] = await Promise.all([startChild('a'), startChild('b')]);
});

after(async () => {
  if (skip) return;
  await Promise.all(Object.values(servers).map(stopChild));
  await Promise.all(Object.values(fakes).map((f) => f.close()));
  fs.rmSync(root, { recursive: true, force: true });
  await dropSchema(schema);
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const auth = (k = key) => ({ authorization: `Bearer ${k}`, 'content-type': 'application/json' });
const chat = (url, text, headers = auth()) =>
  fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: 'up', messages: [{ role: 'user', content: text }] }) });
const submit = (url, text, id) =>
  fetch(`${url}/v1/messages/async?message_id=${id}`, {
    method: 'POST',
    headers: auth(),
    body: JSON.stringify({ model: 'up', max_tokens: 20, messages: [{ role: 'user', content: text }] }),
  });
const runStatus = async (url, id) => (await fetch(`${url}/v1/messages/async/${id}`, { headers: auth() })).json();

/**
 * Submits a run to A and waits for its upstream call. Both processes claim from the shared queue,
 * so either may execute it: returns which (`runner`), the other one, and the upstream call.
 */
async function submitAndFindRunner(text, id) {
  const calls = Object.entries(fakes).map(([name, fake]) => fake.nextRequest().then((call) => ({ name, call })));
  assert.equal((await submit(servers.a.url, text, id)).status, 202);
  const { name, call } = await Promise.race(calls);
  return { runner: servers[name], other: servers[name === 'a' ? 'b' : 'a'], call };
}

test('a key created by the CLI works on both processes; no key is refused by both', { skip, timeout: 30_000 }, async () => {
  for (const server of [servers.a, servers.b]) {
    const ok = await chat(server.url, 'hi');
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).choices[0].message.content, 'echo hi');
    const refused = await chat(server.url, 'hi', { 'content-type': 'application/json' });
    assert.equal(refused.status, 401);
    assert.equal((await refused.json()).error.code, 'missing_api_key');
  }
});

test('a key revoked through one process is refused by the other at once, not when its cached copy expires', { skip, timeout: 30_000 }, async () => {
  const made = await (await fetch(`${servers.a.url}/admin/keys`, { method: 'POST', headers: auth(ADMIN_KEY), body: JSON.stringify({ organisation: 'revoked' }) })).json();
  // B reads the key now and keeps a copy for 5 s (src/store/read-cache.ts).
  const copied = Date.now();
  assert.equal((await chat(servers.b.url, 'before', auth(made.key))).status, 200);
  const revoked = await fetch(`${servers.a.url}/admin/keys/${made.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(revoked.status, 200);
  // A's signal reaches B through Redis and drops B's copy: the refusal comes before the copy expires.
  let status;
  while ((status = (await chat(servers.b.url, 'after', auth(made.key))).status) === 200 && Date.now() < copied + 4500) await new Promise((r) => setTimeout(r, 20));
  assert.equal(status, 401);
  assert.ok(Date.now() < copied + 4500, 'refused while the copy was still within its time-to-live');
});

test('a rate limit holds for the pair: 3 requests a minute, spread over both, then 429 from either', { skip, timeout: 30_000 }, async () => {
  const limitedKey = (
    await (await fetch(`${servers.a.url}/admin/keys`, { method: 'POST', headers: auth(ADMIN_KEY), body: JSON.stringify({ organisation: 'limited' }) })).json()
  ).key;
  const results = [];
  for (const server of [servers.a, servers.b, servers.a]) results.push((await chat(server.url, 'counted', auth(limitedKey))).status);
  assert.deepEqual(results, [200, 200, 200]);
  const refused = await chat(servers.b.url, 'one too many', auth(limitedKey));
  assert.equal(refused.status, 429);
  const retryAfter = Number(refused.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
  const body = await refused.json();
  assert.equal(body.error.code, 'requests_per_minute_exceeded');
  assert.equal((await chat(servers.a.url, 'still too many', auth(limitedKey))).status, 429);
});

test('a budget holds for the pair: what calls running in one process reserved counts in the other', { skip, timeout: 30_000 }, async () => {
  const created = await fetch(`${servers.a.url}/admin/keys`, {
    method: 'POST',
    headers: auth(ADMIN_KEY),
    body: JSON.stringify({ organisation: 'budgeted', limits: { budget: { day: 250 } } }),
  });
  const budgetKey = (await created.json()).key;
  const call = (server, text) =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: auth(budgetKey),
      body: JSON.stringify({ model: 'priced', max_tokens: 100, messages: [{ role: 'user', content: text }] }),
    });
  // One call held open upstream in each process: $100 reserved in each.
  const arrived = [fakes.a.nextRequest(), fakes.b.nextRequest()];
  const running = [call(servers.a, 'hold:budget-a'), call(servers.b, 'hold:budget-b')];
  await Promise.all(arrived);
  // $200 reserved over the pair: another $100 does not fit $250, in either process.
  const refused = await call(servers.a, 'one more');
  assert.equal(refused.status, 429);
  const body = await refused.json();
  assert.equal(body.error.code, 'budget_exceeded');
  assert.match(body.error.message, /\$200 reserved by running requests/);
  held.get('hold:budget-a')();
  held.get('hold:budget-b')();
  assert.deepEqual((await Promise.all(running)).map((r) => r.status), [200, 200]);
});

test('a session continued on the other process has its earlier turns; the request log is shared', { skip, timeout: 30_000 }, async () => {
  const sessionId = `s-${Date.now()}`;
  const first = await fetch(`${servers.a.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...auth(), 'x-session-id': sessionId },
    body: JSON.stringify({ model: 'up', messages: [{ role: 'user', content: 'remember me' }] }),
  });
  assert.equal(first.status, 200);
  await fetch(`${servers.b.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...auth(), 'x-session-id': sessionId },
    body: JSON.stringify({ model: 'up', messages: [{ role: 'user', content: 'and now?' }] }),
  });
  // B sent A's turns upstream before its own.
  const sent = fakes.b.requests.at(-1).body.messages.map((m) => m.content);
  assert.deepEqual(sent, ['remember me', 'echo remember me', 'and now?']);
  const session = await (await fetch(`${servers.a.url}/v1/sessions/${sessionId}`, { headers: auth() })).json();
  assert.equal(JSON.stringify(session).includes('echo and now?'), true, 'A reads the turn B recorded');

  const log = await (await fetch(`${servers.b.url}/admin/requests?organisation=acme&limit=100`, { headers: auth(ADMIN_KEY) })).json();
  const rows = log.data ?? log.requests ?? log;
  assert.ok(Array.isArray(rows) && rows.length >= 4, `request log rows: ${JSON.stringify(log).slice(0, 200)}`);
});

test('a message thread created on one process is continued on the other, turn after turn (Redis holds it)', { skip, timeout: 30_000 }, async () => {
  // The SDK's thread helper through a fetch that sends each request to the other process.
  const sent = [];
  let turn = 0;
  const alternating = (url, init) => {
    sent.push(JSON.parse(init.body));
    const target = turn++ % 2 ? servers.b.url : servers.a.url;
    return fetch(String(url).replace(servers.a.url, target), init);
  };
  const client = new Anthropic({ baseURL: servers.a.url, apiKey: key, maxRetries: 0, fetch: alternating });
  const thread = client.beta.messages.thread({ model: 'up', max_tokens: 20, system: 'Be brief.' });
  await thread.send({ role: 'user', content: 'first' });
  await thread.send({ role: 'user', content: 'second' });
  const third = await thread.send({ role: 'user', content: 'third' });
  assert.deepEqual(sent.map((b) => b.thread?.type), ['create', 'continue', 'continue'], 'no continue was refused and replayed');
  assert.deepEqual(sent.slice(1).map((b) => b.messages.length), [1, 1], 'each continue sent only its new message');
  assert.equal(third.content[0].text, 'echo third');
  // B served the second turn with A's first turn put back in front of it; A the third with B's.
  const upstream = (fake) => fake.requests.at(-1).body.messages.map((m) => m.content);
  assert.deepEqual(upstream(fakes.b), ['Be brief.', 'first', 'echo first', 'second']);
  assert.deepEqual(upstream(fakes.a), ['Be brief.', 'first', 'echo first', 'second', 'echo second', 'third']);
});

test('an async run executing in one process is observed live from the other, to its end', { skip, timeout: 30_000 }, async () => {
  const id = `live-${Date.now()}`;
  const { runner, other } = await submitAndFindRunner('hold:live', id);
  const res = await fetch(`${other.url}/v1/messages/async/${id}/events`, { headers: auth() });
  const reader = res.body.getReader();
  let seen = '';
  // The partial text reaches B while the upstream still holds the run open.
  while (!seen.includes('partial ')) seen += new TextDecoder().decode((await reader.read()).value);
  assert.equal((await runStatus(other.url, id)).status, 'running');
  held.get('hold:live')();
  while (!seen.includes('message_stop')) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  assert.match(seen, /event: message_stop/);
  const final = await runStatus(runner.url, id);
  assert.equal(final.status, 'completed');
  assert.equal(final.message.content[0].text, 'partial rest');
});

test('a cancel sent to the other process stops the run where it executes, and its upstream call is dropped', { skip, timeout: 30_000 }, async () => {
  const id = `cancel-${Date.now()}`;
  const { other, call } = await submitAndFindRunner('hold:cancel', id);
  // Everything the runner will emit until the upstream goes on is out: only the signal can stop it now.
  const watch = await fetch(`${other.url}/v1/messages/async/${id}/events`, { headers: auth() });
  const reader = watch.body.getReader();
  let seen = '';
  while (!seen.includes('partial ')) seen += new TextDecoder().decode((await reader.read()).value);
  const cancelled = await (await fetch(`${other.url}/v1/messages/async/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } })).json();
  assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
  // The runner heard of it and aborted its upstream request, which is never finished.
  assert.deepEqual(await call.closed, { completed: false });
  await reader.cancel();
  const { events } = await readSse(await fetch(`${other.url}/v1/messages/async/${id}/events`, { headers: auth() }));
  assert.equal(events.at(-1).event, 'error', 'the cancellation is the last event');
  assert.match(JSON.parse(events.at(-1).data).error.message, /cancelled/);
});

test('the process running a silent run is killed: the other takes it over once the lease lapses', { skip, timeout: 30_000 }, async () => {
  const id = `orphan-${Date.now()}`;
  const { runner, other } = await submitAndFindRunner('silent:orphan', id);
  const otherFake = fakes[other === servers.a ? 'a' : 'b'];
  assert.equal((await runStatus(other.url, id)).status, 'running');
  runner.child.kill('SIGKILL');
  await once(runner.child, 'exit');
  held.delete('silent:orphan');
  // The survivor's heartbeat finds the dead process's lease lapsed and re-queues the run (it had
  // emitted nothing); the survivor claims it and calls its own upstream.
  const again = await otherFake.nextRequest();
  assert.equal(again.body.messages.at(-1).content, 'silent:orphan');
  held.get('silent:orphan')();
  let final;
  while ((final = await runStatus(other.url, id)).status !== 'completed') await new Promise((r) => setTimeout(r, 50));
  assert.equal(final.message.content[0].text, 'partial rest');
});
