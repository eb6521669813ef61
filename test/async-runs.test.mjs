// Seed 003 async runs over HTTP against the scripted provider, with a concurrency of 1 so the
// queue order is observable: ids, 409, observe with replay (byte-identical observers,
// Last-Event-ID / starting_after), status through every state, cancel, priority, organisations.
// Build first: npx tsc -p tsconfig.json
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { GatewayError } from '../dist/core/errors.js';
import { generateApiKey, hashApiKey, keyPrefix } from '../dist/core/keys.js';
import { startServer, postJson } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';

let s;
let scripted;

before(async () => {
  scripted = createScriptedFactory({ GatewayError });
  s = await startServer({
    providers: { scripted: scripted.factory },
    config: {
      defaultModel: 'm1',
      router: { retries: 0 },
      async: { concurrency: 1 },
      models: [{ id: 'm1', provider: 'scripted', model: 'x' }],
    },
  });
});
after(() => s.close());

const body = (text, extra = {}) => ({ model: 'm1', max_tokens: 50, messages: [{ role: 'user', content: text }], ...extra });
const submit = (text, { id, extra, headers } = {}) =>
  postJson(`${s.url}/v1/messages/async${id === undefined ? '' : `?message_id=${encodeURIComponent(id)}`}`, body(text, extra), headers);
const status = async (id, headers = {}) => {
  const res = await fetch(`${s.url}/v1/messages/async/${id}`, { headers });
  return { status: res.status, body: await res.json() };
};
const cancel = async (id, headers = {}) => {
  const res = await fetch(`${s.url}/v1/messages/async/${id}`, { method: 'DELETE', headers });
  return { status: res.status, body: await res.json() };
};

/** Reads an observe stream as it arrives; `until(n)` resolves once n events have come. */
function observe(id, { headers = {}, query = '' } = {}) {
  const events = [];
  const waiters = [];
  let text = '';
  const check = () => {
    for (const w of [...waiters]) if (w.test()) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  };
  const done = (async () => {
    const res = await fetch(`${s.url}/v1/messages/async/${id}/events${query}`, { headers });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      const piece = decoder.decode(chunk, { stream: true });
      text += piece;
      buffer += piece;
      let cut;
      while ((cut = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const e = {};
        for (const line of block.split('\n')) {
          const i = line.indexOf(': ');
          e[line.slice(0, i)] = line.slice(i + 2);
        }
        events.push({ id: Number(e.id), event: e.event, data: JSON.parse(e.data) });
      }
      check();
    }
    for (const w of waiters) w.reject(new Error(`stream ended after ${events.length} events`));
    return text;
  })();
  return {
    events,
    done,
    until(test) {
      const fn = typeof test === 'number' ? () => events.length >= test : () => events.some(test);
      if (fn()) return Promise.resolve();
      return new Promise((resolve, reject) => waiters.push({ test: fn, resolve, reject }));
    },
  };
}

const isDelta = (e) => e.event === 'content_block_delta';

describe('submit', () => {
  test('a generated id: 202 pending at once, then the run completes with the streaming events', async () => {
    const res = await submit('script:text');
    assert.equal(res.status, 202);
    assert.match(res.body.message_id, /^msg_[A-Za-z0-9]+$/);
    assert.deepEqual({ ...res.body, message_id: 'x' }, { message_id: 'x', status: 'pending', message: 'Request initiated successfully' });
    const obs = observe(res.body.message_id);
    await obs.done;
    assert.deepEqual(
      obs.events.map((e) => e.event),
      ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.deepEqual(obs.events.map((e) => e.id), [1, 2, 3, 4, 5, 6, 7, 8]);
    const st = await status(res.body.message_id);
    assert.equal(st.body.status, 'completed');
    assert.equal(st.body.model, 'm1');
    assert.equal(st.body.message.id, res.body.message_id);
    assert.deepEqual(st.body.message.content, [{ type: 'text', text: 'Hello world', citations: null }]);
    assert.equal(st.body.usage.input_tokens, 7);
    assert.equal(st.body.usage.output_tokens, 2);
    assert.equal(st.body.error, null);
    for (const field of ['created_at', 'started_at', 'finished_at']) assert.ok(!Number.isNaN(Date.parse(st.body[field])), field);
    assert.ok(Date.parse(st.body.created_at) <= Date.parse(st.body.started_at));
    assert.ok(Date.parse(st.body.started_at) <= Date.parse(st.body.finished_at));
  });

  test('the anthropic-beta header is kept with the run and reaches the provider when it runs', async () => {
    const res = await submit('script:text', { headers: { 'anthropic-beta': 'context-1m-2025-08-07, fine-grained-tool-streaming-2025-05-14' } });
    assert.equal(res.status, 202);
    await observe(res.body.message_id).done;
    assert.equal((await status(res.body.message_id)).body.status, 'completed');
    assert.deepEqual(scripted.requests.at(-1).anthropicBetas, ['context-1m-2025-08-07', 'fine-grained-tool-streaming-2025-05-14']);
    // Without the header, none.
    const plain = await submit('script:text');
    await observe(plain.body.message_id).done;
    assert.equal(scripted.requests.at(-1).anthropicBetas, undefined);
  });

  test('a custom id is used; the same id again is a 409; a bad id or a bad body is a 400', async () => {
    const id = 'my.run_1-A';
    const first = await submit('script:text', { id });
    assert.equal(first.status, 202);
    assert.equal(first.body.message_id, id);
    const again = await submit('script:text', { id });
    assert.equal(again.status, 409);
    assert.equal(again.body.type, 'error');
    assert.equal(again.body.error.type, 'conflict_error');
    for (const bad of ['has space', 'x'.repeat(129), 'slash/no']) {
      const res = await submit('script:text', { id: bad });
      assert.equal(res.status, 400, bad);
      assert.match(res.body.error.message, /message_id/);
    }
    assert.equal((await submit('script:text', { id: 'x'.repeat(128) })).status, 202);
    const invalid = await postJson(`${s.url}/v1/messages/async?message_id=never-made`, { model: 'm1', messages: [] });
    assert.equal(invalid.status, 400);
    assert.equal((await status('never-made')).status, 404);
    await observe(id).done;
    await observe('x'.repeat(128)).done;
  });
});

describe('observe, status, cancel', () => {
  test('status through pending → running → completed; two observers are byte-identical; Last-Event-ID gets exactly the rest', async () => {
    const held = 'script:gated hold-1';
    const a = (await submit(held)).body.message_id;
    const first = observe(a);
    await first.until(isDelta); // running, 'before ' emitted, now held at the gate
    const b = (await submit('script:text queued-behind')).body.message_id;

    const runningA = await status(a);
    assert.equal(runningA.body.status, 'running');
    assert.ok(runningA.body.started_at);
    assert.equal(runningA.body.finished_at, null);
    assert.equal(runningA.body.message, null);
    const pendingB = await status(b);
    assert.equal(pendingB.body.status, 'pending');
    assert.equal(pendingB.body.queue_position, 1);
    assert.equal(pendingB.body.started_at, null);

    // A second observer joins mid-run and replays from the start.
    const second = observe(a);
    await second.until(isDelta);
    scripted.release(held);
    const [t1, t2] = await Promise.all([first.done, second.done]);
    assert.equal(t1, t2);
    assert.equal(first.events.at(-1).event, 'message_stop');

    const cut = 4;
    const rest = first.events.slice(cut);
    for (const resumed of [observe(a, { headers: { 'last-event-id': String(cut) } }), observe(a, { query: `?starting_after=${cut}` })]) {
      await resumed.done;
      assert.deepEqual(resumed.events, rest);
    }
    const expectedTail = t1.slice(t1.indexOf(`id: ${cut + 1}\n`));
    assert.equal(await observe(a, { headers: { 'last-event-id': String(cut) } }).done, expectedTail);

    await observe(b).done;
    assert.equal((await status(a)).body.status, 'completed');
    assert.equal((await status(a)).body.message.content[0].text, 'before after');
    assert.equal((await status(b)).body.status, 'completed');
    const badResume = await fetch(`${s.url}/v1/messages/async/${a}/events`, { headers: { 'last-event-id': 'abc' } });
    assert.equal(badResume.status, 400);
  });

  test('a run that fails before its first token: one error event, status failed with the error', async () => {
    const id = (await submit('script:fail-before')).body.message_id;
    const obs = observe(id);
    await obs.done;
    assert.deepEqual(obs.events.map((e) => e.event), ['error']);
    assert.equal(obs.events[0].data.error.type, 'rate_limit_error');
    const st = await status(id);
    assert.equal(st.body.status, 'failed');
    assert.deepEqual(st.body.error, { type: 'rate_limit_error', message: 'slow down' });
  });

  test('cancelling a running generation stops it: the provider stops producing tokens', async () => {
    const id = (await submit('script:slow')).body.message_id;
    const obs = observe(id);
    await obs.until((e) => isDelta(e) && obs.events.filter(isDelta).length >= 3);
    const res = await cancel(id);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'cancelled');
    assert.ok(res.body.finished_at);
    await obs.done;
    const last = obs.events.at(-1);
    assert.equal(last.event, 'error');
    assert.equal(last.data.error.type, 'cancelled_error');
    const call = scripted.calls.findLast((c) => c.script === 'slow');
    // The generation has stopped (its generator ended) well before its 2000 deltas.
    assert.equal(call.ended, true);
    assert.ok(call.yielded < 2000, `yielded ${call.yielded}`);
    const yielded = call.yielded;
    const deltas = obs.events.filter(isDelta).length;
    // Nothing more is produced or stored after the cancel.
    await observe(id).done;
    assert.equal(call.yielded, yielded);
    assert.equal((await status(id)).body.event_count, obs.events.length);
    assert.ok(deltas <= yielded);
    const again = await cancel(id);
    assert.equal(again.status, 409);
  });

  test('cancelling a pending run: it never starts and its observers get a cancelled error event', async () => {
    const held = 'script:gated hold-2';
    const blocker = (await submit(held)).body.message_id;
    await observe(blocker).until(isDelta);
    const id = (await submit('script:text never-runs')).body.message_id;
    assert.equal((await status(id)).body.status, 'pending');
    const res = await cancel(id);
    assert.equal(res.body.status, 'cancelled');
    assert.equal(res.body.started_at, null);
    const obs = observe(id);
    await obs.done;
    assert.deepEqual(obs.events.map((e) => [e.id, e.event, e.data.error.type]), [[1, 'error', 'cancelled_error']]);
    scripted.release(held);
    await observe(blocker).done;
    assert.ok(!scripted.requests.some((r) => r.messages.at(-1).content[0].text === 'script:text never-runs'));
  });

  test('priority: higher first, FIFO within a priority, positions visible while pending', async () => {
    const held = 'script:gated hold-3';
    const blocker = (await submit(held)).body.message_id;
    await observe(blocker).until(isDelta);
    const order = [
      ['low', 0],
      ['high-a', 10],
      ['mid', 5],
      ['high-b', 10],
      ['neg', -3],
    ];
    const ids = {};
    for (const [name, priority] of order) ids[name] = (await submit(`script:text ${name}`, { extra: { priority } })).body.message_id;
    const positions = {};
    for (const name of Object.keys(ids)) positions[name] = (await status(ids[name])).body.queue_position;
    assert.deepEqual(positions, { 'high-a': 1, 'high-b': 2, mid: 3, low: 4, neg: 5 });
    const before = scripted.requests.length;
    scripted.release(held);
    for (const id of Object.values(ids)) await observe(id).done;
    const ran = scripted.requests.slice(before).map((r) => r.messages.at(-1).content[0].text.replace('script:text ', ''));
    assert.deepEqual(ran, ['high-a', 'high-b', 'mid', 'low', 'neg']);
  });
});

describe('routes', () => {
  test('only {id} and {id}/events are routes: any other path under the prefix is the 404 of an unknown route, in Anthropic\'s shape', async () => {
    const id = (await submit('script:text', { id: 'routes-run' })).body.message_id;
    await observe(id).done;
    const unknown = async (method, path) => {
      const res = await fetch(`${s.url}${path}`, { method });
      const body = await res.json();
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'not_found_error', `${method} ${path}`);
      return body.error.message;
    };
    // As for any other unknown path under /v1/messages.
    assert.equal(await unknown('GET', '/v1/messages/asyncx'), 'Unknown route GET /v1/messages/asyncx');
    for (const path of [`/v1/messages/async/${id}/foo`, `/v1/messages/async/${id}/status`, `/v1/messages/async/${id}/events/`, `/v1/messages/async/${id}/events/x`, '/v1/messages/async/', '/v1/messages/async//events']) {
      assert.equal(await unknown('GET', path), `Unknown route GET ${path}`);
    }
    for (const path of [`/v1/messages/async/${id}/events`, `/v1/messages/async/${id}/foo`]) {
      assert.equal(await unknown('DELETE', path), `Unknown route DELETE ${path}`);
    }
    // The routes themselves are unchanged: a bad id there is still a 400, an unknown one a 404.
    assert.equal((await status(id)).body.status, 'completed');
    assert.equal((await fetch(`${s.url}/v1/messages/async/${id}/events`)).status, 200);
    assert.equal((await status('has%20space')).status, 400);
    assert.equal((await status('no-such-run')).body.error.type, 'not_found_error');
    assert.equal((await cancel(id)).status, 409);
  });
});

describe('organisations', () => {
  test("another organisation's message_id is a 404 everywhere; the id is free for it; x-api-key works", async () => {
    const store = s.server.context.store;
    const keys = {};
    for (const org of ['acme', 'globex']) {
      const raw = generateApiKey();
      await store.createKey({ organisation: org, hash: hashApiKey(raw), prefix: keyPrefix(raw) });
      keys[org] = raw;
    }
    const acme = { 'x-api-key': keys.acme };
    const globex = { authorization: `Bearer ${keys.globex}` };

    assert.equal((await submit('script:text', { id: 'shared-id' })).status, 401);
    const created = await submit('script:text', { id: 'shared-id', headers: acme });
    assert.equal(created.status, 202);
    await observe('shared-id', { headers: acme }).done;
    assert.equal((await status('shared-id', acme)).body.status, 'completed');

    const other = await status('shared-id', globex);
    assert.equal(other.status, 404);
    assert.equal(other.body.error.type, 'not_found_error');
    assert.equal((await cancel('shared-id', globex)).status, 404);
    assert.equal((await fetch(`${s.url}/v1/messages/async/shared-id/events`, { headers: globex })).status, 404);
    // Ids are per organisation: globex may use the same one without learning about acme's.
    assert.equal((await submit('script:text', { id: 'shared-id', headers: globex })).status, 202);
    await observe('shared-id', { headers: globex }).done;

    const client = new Anthropic({ baseURL: s.url, apiKey: keys.acme, maxRetries: 0 });
    const message = await client.messages.create({ model: 'm1', max_tokens: 9, messages: [{ role: 'user', content: 'script:text' }] });
    assert.equal(message.content[0].text, 'Hello world');
    const bad = new Anthropic({ baseURL: s.url, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.messages.create({ model: 'm1', max_tokens: 9, messages: [{ role: 'user', content: 'x' }] }), Anthropic.AuthenticationError);
  });
});

/** A whole observe stream: its events [{id, event, data}] and its text. */
async function readEvents(url, id, headers = {}) {
  const res = await fetch(`${url}/v1/messages/async/${id}/events`, { headers });
  assert.equal(res.status, 200);
  const text = await res.text();
  const events = text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((block) => {
      const e = {};
      for (const line of block.split('\n')) e[line.slice(0, line.indexOf(': '))] = line.slice(line.indexOf(': ') + 2);
      return { id: e.id, event: e.event, data: JSON.parse(e.data) };
    });
  return { events, text };
}

describe('keys at submit and at start', () => {
  let k;
  let kScripted;
  const keys = {};
  before(async () => {
    kScripted = createScriptedFactory({ GatewayError });
    k = await startServer({
      providers: { scripted: kScripted.factory },
      config: {
        defaultModel: 'm1',
        router: { retries: 0 },
        async: { concurrency: 1 },
        models: [
          { id: 'm1', provider: 'scripted', model: 'x' },
          { id: 'm2', provider: 'scripted', model: 'y' },
        ],
      },
    });
    const store = k.server.context.store;
    for (const [name, extra] of [['main', {}], ['onlyM1', { allowedModels: ['m1'] }], ['revoked', {}], ['expired', {}]]) {
      const raw = generateApiKey();
      const record = await store.createKey({ organisation: 'acme', hash: hashApiKey(raw), prefix: keyPrefix(raw), ...extra });
      keys[name] = { raw, id: record.id, headers: { 'x-api-key': raw } };
    }
  });
  after(() => k.close());

  const ksubmit = (key, text, { id, model = 'm1' } = {}) =>
    postJson(`${k.url}/v1/messages/async${id ? `?message_id=${id}` : ''}`, { model, max_tokens: 20, messages: [{ role: 'user', content: text }] }, key.headers);
  const kstatus = async (key, id) => {
    const res = await fetch(`${k.url}/v1/messages/async/${id}`, { headers: key.headers });
    return { status: res.status, body: await res.json() };
  };

  test("a model the key may not use: the submit is the 403 /v1/messages answers, and no run is made", async () => {
    const sync = await postJson(`${k.url}/v1/messages`, { model: 'm2', max_tokens: 20, messages: [{ role: 'user', content: 'script:text' }] }, keys.onlyM1.headers);
    assert.equal(sync.status, 403);
    const queued = await ksubmit(keys.onlyM1, 'script:text', { id: 'not-allowed', model: 'm2' });
    assert.equal(queued.status, 403);
    assert.equal(queued.body.type, 'error');
    assert.equal(queued.body.error.type, 'permission_error');
    assert.deepEqual(queued.body.error, sync.body.error);
    assert.equal((await kstatus(keys.main, 'not-allowed')).status, 404);
    // The model it may use is accepted and runs.
    const allowed = await ksubmit(keys.onlyM1, 'script:text', { id: 'allowed' });
    assert.equal(allowed.status, 202);
    await readEvents(k.url, 'allowed', keys.main.headers);
    assert.equal((await kstatus(keys.main, 'allowed')).body.status, 'completed');
  });

  for (const [name, end] of [
    ['revoked', (store, id) => store.revokeKey(id)],
    ['expired', (store, id) => store.tenancy.updateKey(id, { expiresAt: Date.now() - 1 })],
  ]) {
    test(`a run queued by a key ${name} before it starts fails with authentication_error: never executed, nothing charged to the key`, async () => {
      const store = k.server.context.store;
      const held = `script:gated keys-hold-${name}`;
      const blocker = (await ksubmit(keys.main, held)).body.message_id;
      while ((await kstatus(keys.main, blocker)).body.status !== 'running') await new Promise((r) => setTimeout(r, 5));
      const text = `script:text queued-by-${name}`;
      const id = `by-${name}`;
      assert.equal((await ksubmit(keys[name], text, { id })).status, 202);
      assert.equal((await kstatus(keys.main, id)).body.status, 'pending');
      await end(store, keys[name].id);
      kScripted.release(held);
      const { events } = await readEvents(k.url, id, keys.main.headers);
      assert.deepEqual(events.map((e) => e.event), ['error']);
      assert.equal(events[0].data.error.type, 'authentication_error');
      assert.match(events[0].data.error.message, name === 'revoked' ? /revoked/ : /expired/);
      const st = (await kstatus(keys.main, id)).body;
      assert.equal(st.status, 'failed');
      assert.equal(st.error.type, 'authentication_error');
      assert.ok(!kScripted.requests.some((r) => r.messages.at(-1).content[0].text === text), 'the run was not executed');
      assert.deepEqual(await store.queryRequests({ keyId: keys[name].id }), [], 'nothing logged or billed to the key');
      await readEvents(k.url, blocker, keys.main.headers);
      // The key itself is refused as before.
      assert.equal((await ksubmit(keys[name], 'script:text')).status, 401);
    });
  }
});

describe('shutdown', () => {
  test("observers of runs that have not ended when the server shuts down get an error event, never a silent end", { timeout: 20_000 }, async () => {
    const sScripted = createScriptedFactory({ GatewayError });
    const sd = await startServer({
      providers: { scripted: sScripted.factory },
      config: {
        server: { shutdownGraceSeconds: 0.2 },
        defaultModel: 'm1',
        router: { retries: 0 },
        async: { concurrency: 2 },
        models: [{ id: 'm1', provider: 'scripted', model: 'x' }],
      },
    });
    const sdSubmit = (text, id) => postJson(`${sd.url}/v1/messages/async?message_id=${id}`, body(text));
    const sdStatus = async (id) => (await (await fetch(`${sd.url}/v1/messages/async/${id}`)).json()).status;
    let closed;
    try {
      assert.equal((await sdSubmit('script:gated sd-loud', 'loud')).status, 202);
      assert.equal((await sdSubmit('script:gated-quiet sd-quiet', 'quiet')).status, 202);
      assert.equal((await sdSubmit('script:text sd-queued', 'queued')).status, 202);
      while ((await sdStatus('loud')) !== 'running' || (await sdStatus('quiet')) !== 'running') await new Promise((r) => setTimeout(r, 5));
      assert.equal(await sdStatus('queued'), 'pending');
      const observers = {};
      for (const id of ['loud', 'quiet', 'queued']) {
        observers[id] = await fetch(`${sd.url}/v1/messages/async/${id}/events`);
        assert.equal(observers[id].status, 200);
      }
      // The loud run's first delta is out before the shutdown.
      const loudReader = observers.loud.body.getReader();
      let loudText = '';
      while (!loudText.includes('before ')) loudText += new TextDecoder().decode((await loudReader.read()).value);
      closed = sd.close();
      for (;;) {
        const { value, done } = await loudReader.read();
        if (done) break;
        loudText += new TextDecoder().decode(value);
      }
      const parse = (text) =>
        text.split('\n\n').filter((b) => b.trim()).map((block) => {
          const e = {};
          for (const line of block.split('\n')) e[line.slice(0, line.indexOf(': '))] = line.slice(line.indexOf(': ') + 2);
          return { id: e.id, event: e.event, data: JSON.parse(e.data) };
        });
      // A run that had emitted events ends with the shutdown's api_error, one of its own events.
      const loud = parse(loudText);
      assert.equal(loud.at(-1).event, 'error');
      assert.equal(loud.at(-1).data.error.type, 'api_error');
      assert.match(loud.at(-1).data.error.message, /shut down before this message finished/);
      assert.equal(loud.filter((e) => e.event === 'error').length, 1);

      // The queued run and the one that had emitted nothing are not over: their observers are
      // told the server is shutting down, with an event that is not one of the run's (no id).
      for (const [id, pattern] of [['queued', /still queued and will run after the restart/], ['quiet', /will run again after the restart/]]) {
        const text = await observers[id].text();
        const events = parse(text);
        assert.deepEqual(events.map((e) => e.event), ['error'], id);
        assert.equal(events[0].id, undefined, id);
        assert.equal(events[0].data.error.type, 'overloaded_error', id);
        assert.match(events[0].data.error.message, /server is shutting down/, id);
        assert.match(events[0].data.error.message, pattern, id);
        assert.match(events[0].data.error.message, /Reconnect/, id);
      }
    } finally {
      await (closed ?? sd.close());
    }
  });
});
