#!/usr/bin/env node
// Do server-held conversations keep their promises under a crowd, with failing upstreams and
// clients that hang up? Two kinds, CONVERSATIONS of each, run side by side, each turn on a gateway
// picked at random (two gateways sharing PostgreSQL + Redis with SHARED_STORE=1, else one on SQLite):
// - sessions (`X-Session-ID` on chat completions, docs/openai.md): a turn's user message and answer
//   are appended once the answer is complete; later turns get them after their own system message;
//   GET /v1/sessions/{id} reads them back; another organisation's session is a 404;
// - message threads (`thread` on /v1/messages, docs/messages.md): create, then continue from the
//   newest reply; the held conversation (system, messages, replies) is put back in front; one
//   continuation per reply; a reply that failed or was hung up on is not held, and the reply it
//   continued may be continued again; another organisation's thread is a 404.
// Each turn at random: an answer (buffered or streamed), an upstream 500, a hang-up after the first
// streamed word; for threads also two continues of one reply at once, a continue of an older reply,
// of a reply that was hung up on, and from another organisation; for sessions two turns at once.
// Checked: every answer's upstream call got exactly the conversation the client built from what it
// was told (system, then each kept turn in order, then the new message); what was refused was
// refused with the documented status and code; the session read back equals the kept turns; the
// request log and the metrics agree. Exits 1 on any broken promise, each printed.
//
// Usage: node bench/conversation-chaos.mjs   (env: CONVERSATIONS=30 TURNS=8 SEED=1 SHARED_STORE=1)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { logAgainstMetrics, requestLog } from './lib/accounting.mjs';
import { closeServers, dropSharedStore, runCheck, seededRandom, sharedStore, sseEvents, startGateway } from './lib/gateways.mjs';
import { chunkMaker, startJsonServer } from './lib/word-upstream.mjs';

const CONVERSATIONS = Number(process.env.CONVERSATIONS ?? 30);
const TURNS = Number(process.env.TURNS ?? 8);
const { random, pick } = seededRandom(Number(process.env.SEED ?? 1));
const SHARED = process.env.SHARED_STORE ? sharedStore('conversations') : undefined;
const ADMIN = 'admin-key-for-the-conversation-chaos-check';
const problems = [];
let gateways = [];
const keys = {};

/** What the upstream was sent, by the marker of the turn (the last user message). */
const seen = new Map();
let answers = 0;

const textOf = (content) => (typeof content === 'string' ? content : (content ?? []).map((p) => p.text ?? '').join(''));

/** The upstream: its answer names the turn; the turn's marker says how to behave (ok, fail, stall). */
function answer(req, res, body) {
  const messages = body.messages.map((m) => [m.role, textOf(m.content)]);
  const marker = messages.at(-1)[1];
  const mode = /\b(ok|fail|stall)$/.exec(marker)?.[1] ?? 'ok';
  seen.set(marker, [...(seen.get(marker) ?? []), messages]);
  if (mode === 'fail') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom","type":"server_error","code":null}}');
  const text = `answer ${++answers} to ${marker}`;
  const usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };
  if (!body.stream) {
    if (mode === 'stall') return;
    const message = { role: 'assistant', content: text, refusal: null };
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message, logprobs: null, finish_reason: 'stop' }], usage }));
  }
  const chunk = chunkMaker(body.model, usage);
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const words = text.split(/(?<= )/);
  res.write(chunk({ role: 'assistant', content: '' }) + chunk({ content: words[0] }));
  if (mode === 'stall') return; // until the client's hang-up reaches it
  res.end(words.slice(1).map((w) => chunk({ content: w })).join('') + chunk({}, 'stop') + chunk(null, null, true) + 'data: [DONE]\n\n');
}

const gateway = () => pick(gateways).url;

/** How long each whole call took: the load the release times are to be read against. */
const callTimes = [];

async function call(route, body, { key = keys.acme, headers = {}, hangUp = false } = {}) {
  const controller = new AbortController();
  const t0 = performance.now();
  const res = await fetch(gateway() + route, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'anthropic-version': '2023-06-01', ...headers },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  if (!hangUp) {
    const raw = await res.text();
    callTimes.push(performance.now() - t0);
    return { status: res.status, raw, requestId: res.headers.get('x-request-id') };
  }
  // Read up to the first word, then hang up: the gateway has started the turn and cannot finish it.
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let raw = '';
  while (!/"(?:text|content)":"answer/.test(raw)) {
    const { value, done } = await reader.read();
    if (done) break;
    raw += decoder.decode(value, { stream: true });
  }
  controller.abort();
  await reader.cancel().catch(() => undefined);
  return { status: res.status, raw, hungUp: true };
}

/** Did the upstream get exactly `expected` for the turn `marker` (each call, when it was called more than once)? */
function checkSeen(what, marker, expected, alternatives = []) {
  const calls = seen.get(marker) ?? [];
  if (calls.length === 0) return void problems.push(`${what}: the upstream never got ${marker}`);
  for (const got of calls) {
    if ([expected, ...alternatives].some((e) => isDeepStrictEqual(got, e))) continue;
    problems.push(`${what}: the upstream got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
  }
}

// ---- sessions --------------------------------------------------------------------------------

async function sessionConversation(c) {
  const id = `chaos-session-${c}-${Math.random().toString(36).slice(2, 8)}`;
  const system = ['system', `sys session ${c}`];
  let history = []; // [role, text] pairs the gateway should hold
  for (let k = 0; k < TURNS; k++) {
    const kind = pick(['ok', 'ok', 'ok', 'ok', 'fail', 'hangup', 'double']);
    const stream = kind === 'hangup' || random() < 0.5;
    const send = (marker, hangUp) =>
      call('/v1/chat/completions', { model: 'up', messages: [{ role: 'system', content: system[1] }, { role: 'user', content: marker }], stream, ...(stream && { stream_options: { include_usage: true } }) }, { headers: { 'x-session-id': id }, hangUp });
    const what = `session ${c} turn ${k} (${kind}${stream ? ', stream' : ''})`;
    if (kind === 'double') {
      const markers = [`turn s${c}.${k}a ok`, `turn s${c}.${k}b ok`];
      const results = await Promise.all(markers.map((m) => send(m, false)));
      const texts = results.map((r, i) => answerText(r, stream, what, markers[i]));
      if (texts.some((t) => t === undefined)) continue;
      const pairs = markers.map((m, i) => [['user', m], ['assistant', texts[i]]]);
      // Each saw the kept turns, and perhaps the other's if it ended first.
      checkSeen(`${what} a`, markers[0], [system, ...history, ['user', markers[0]]], [[system, ...history, ...pairs[1], ['user', markers[0]]]]);
      checkSeen(`${what} b`, markers[1], [system, ...history, ['user', markers[1]]], [[system, ...history, ...pairs[0], ['user', markers[1]]]]);
      const held = await readSession(id, what);
      const orders = [[...history, ...pairs[0], ...pairs[1]], [...history, ...pairs[1], ...pairs[0]]];
      if (held && !orders.some((o) => isDeepStrictEqual(held, o))) problems.push(`${what}: the session holds ${JSON.stringify(held.slice(history.length))} after the kept turns, expected both pairs whole`);
      history = held && orders.some((o) => isDeepStrictEqual(held, o)) ? held : orders[0];
      continue;
    }
    const marker = `turn s${c}.${k} ${kind === 'hangup' ? 'stall' : kind}`;
    const result = await send(marker, kind === 'hangup');
    if (kind === 'ok') {
      const text = answerText(result, stream, what, marker);
      if (text === undefined) continue;
      checkSeen(what, marker, [system, ...history, ['user', marker]]);
      history = [...history, ['user', marker], ['assistant', text]];
    } else if (kind === 'fail' && result.status !== 502) {
      problems.push(`${what}: status ${result.status} for an upstream 500`);
    }
    const held = await readSession(id, what);
    if (held && !isDeepStrictEqual(held, history)) problems.push(`${what}: the session holds ${JSON.stringify(held)}, expected ${JSON.stringify(history)}`);
  }
  const other = await fetch(`${gateway()}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${keys.globex}` } });
  if (history.length && other.status !== 404) problems.push(`session ${c}: another organisation read it (${other.status})`);
}

function answerText(result, stream, what, marker) {
  if (result.status !== 200) return void problems.push(`${what} ${marker}: status ${result.status} ${result.raw.slice(0, 200)}`);
  if (!stream) return JSON.parse(result.raw).choices[0].message.content;
  let text = '';
  let done = false;
  for (const e of sseEvents(result.raw)) {
    if (e.data === '[DONE]') done = true;
    else text += JSON.parse(e.data).choices?.[0]?.delta?.content ?? '';
  }
  if (!done) problems.push(`${what}: a stream without [DONE]`);
  return text;
}

/** The session as [role, text] pairs (undefined for a 404 before any turn was kept). */
async function readSession(id, what) {
  const res = await fetch(`${gateway()}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${keys.acme}` } });
  if (res.status === 404) return [];
  if (res.status !== 200) return void problems.push(`${what}: reading the session answered ${res.status}`);
  return (await res.json()).messages.map((m) => [m.role, textOf(m.content)]);
}

// ---- message threads ---------------------------------------------------------------------------

/** One /v1/messages call: the reply's id and text, or the refusal. */
async function message(body, options = {}) {
  const result = await call('/v1/messages', body, options);
  if (result.hungUp) {
    const start = sseEvents(result.raw).find((e) => e.event === 'message_start');
    return { hungUp: true, id: start && JSON.parse(start.data).message.id };
  }
  if (result.status !== 200) {
    const error = JSON.parse(result.raw).error;
    return { status: result.status, code: error?.details?.error_code ?? error?.type, message: error?.message };
  }
  if (!body.stream) {
    const reply = JSON.parse(result.raw);
    return { status: 200, id: reply.id, text: reply.content.map((b) => b.text ?? '').join('') };
  }
  let id;
  let text = '';
  let stopped = false;
  for (const e of sseEvents(result.raw)) {
    const data = JSON.parse(e.data);
    if (e.event === 'message_start') id = data.message.id;
    if (e.event === 'content_block_delta') text += data.delta.text ?? '';
    if (e.event === 'message_stop') stopped = true;
    if (e.event === 'error') return { status: 200, error: data.error };
  }
  if (!stopped) problems.push(`a thread stream without message_stop: ${result.raw.slice(-200)}`);
  return { status: 200, id, text };
}

function expectRefusal(what, got, status, codes) {
  if (got.status !== status || !codes.includes(got.code)) problems.push(`${what}: expected ${status} ${codes.join(' or ')}, got ${got.status} ${got.code} ${got.message ?? ''}`);
}

async function threadConversation(c) {
  const system = `sys thread ${c}`;
  let conversation = []; // [role, text] of the held thread
  let last; // the newest held reply's id
  let older; // a reply already continued
  const turnBody = (marker, stream) => ({ model: 'up', max_tokens: 50, stream, messages: [{ role: 'user', content: marker }] });
  const create = async (k) => {
    const marker = `turn t${c}.${k} ok`;
    const got = await message({ ...turnBody(marker, random() < 0.5), system, thread: { type: 'create' } });
    if (got.status !== 200 || !got.id) return void problems.push(`thread ${c} turn ${k}: create answered ${JSON.stringify(got)}`);
    checkSeen(`thread ${c} turn ${k} (create)`, marker, [['system', system], ['user', marker]]);
    conversation = [['user', marker], ['assistant', got.text]];
    last = got.id;
  };
  await create(0);
  for (let k = 1; k < TURNS && last; k++) {
    const kind = pick(['ok', 'ok', 'ok', 'fail', 'hangup', 'double', 'older', 'other-org']);
    const stream = kind === 'hangup' || random() < 0.5;
    const what = `thread ${c} turn ${k} (${kind}${stream ? ', stream' : ''})`;
    const continueFrom = (id, marker, options) => message({ ...turnBody(marker, stream), thread: { type: 'continue', previous_message_id: id } }, options);
    const expectedView = (marker) => [['system', system], ...conversation, ['user', marker]];
    if (kind === 'ok') {
      const marker = `turn t${c}.${k} ok`;
      const got = await continueFrom(last, marker);
      if (got.status !== 200 || got.error) {
        problems.push(`${what}: ${JSON.stringify(got)}`);
        continue;
      }
      checkSeen(what, marker, expectedView(marker));
      conversation = [...conversation, ['user', marker], ['assistant', got.text]];
      [older, last] = [last, got.id];
    } else if (kind === 'fail') {
      const marker = `turn t${c}.${k} fail`;
      const got = await continueFrom(last, marker);
      if (got.status !== 502 && !(got.status === 200 && got.error)) problems.push(`${what}: ${JSON.stringify(got)} for an upstream 500`);
      checkSeen(what, marker, expectedView(marker));
      // `last` was released: the next turn continues it.
    } else if (kind === 'hangup') {
      const marker = `turn t${c}.${k} stall`;
      const got = await continueFrom(last, marker, { hangUp: true });
      checkSeen(what, marker, expectedView(marker));
      // The reply hung up on was not held; `last` is released once the gateway has seen the hang-up.
      if (got.id) expectRefusal(`${what}: continuing the reply hung up on`, await continueFrom(got.id, `turn t${c}.${k}x ok`), 404, ['thread_not_found']);
      await waitUntilFree(what, last, c, k);
    } else if (kind === 'double') {
      const markers = [`turn t${c}.${k}a ok`, `turn t${c}.${k}b ok`];
      const got = await Promise.all(markers.map((m) => continueFrom(last, m)));
      const winners = got.filter((g) => g.status === 200 && !g.error);
      if (winners.length !== 1) {
        problems.push(`${what}: ${winners.length} of two continues of one reply were served: ${JSON.stringify(got)}`);
        if (winners.length === 0) continue;
      }
      const w = got.indexOf(winners[0]);
      expectRefusal(`${what} (the loser)`, got[1 - w], 400, ['thread_continue_in_flight', 'thread_already_continued']);
      checkSeen(what, markers[w], expectedView(markers[w]));
      if (seen.has(markers[1 - w])) problems.push(`${what}: the refused continue reached the upstream`);
      conversation = [...conversation, ['user', markers[w]], ['assistant', winners[0].text]];
      [older, last] = [last, winners[0].id];
    } else if (kind === 'older') {
      if (!older) continue;
      const marker = `turn t${c}.${k} ok`;
      expectRefusal(what, await continueFrom(older, marker), 400, ['thread_already_continued']);
      if (seen.has(marker)) problems.push(`${what}: the refused continue reached the upstream`);
    } else if (kind === 'other-org') {
      const marker = `turn t${c}.${k} ok`;
      expectRefusal(what, await continueFrom(last, marker, { key: keys.globex }), 404, ['thread_not_found']);
      if (seen.has(marker)) problems.push(`${what}: the refused continue reached the upstream`);
    }
  }
}

/** After a hang-up the continued reply is released when the gateway has seen it go: until then a continue is in flight. */
const releaseWaits = [];
async function waitUntilFree(what, id, c, k) {
  const t0 = performance.now();
  for (let attempt = 0; ; attempt++) {
    const marker = `turn t${c}.${k}r${attempt} fail`;
    // A failing turn claims and releases the reply: a probe that changes nothing when it gets through.
    const got = await message({ model: 'up', max_tokens: 50, messages: [{ role: 'user', content: marker }], thread: { type: 'continue', previous_message_id: id } });
    if (got.code !== 'thread_continue_in_flight') {
      if (got.status !== 502) problems.push(`${what}: after the hang-up, a continue of the reply answered ${JSON.stringify(got)}`);
      releaseWaits.push(performance.now() - t0);
      return;
    }
    if (performance.now() - t0 > 2000) return void problems.push(`${what}: the reply was still claimed 2 s after the hang-up`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function admin(method, route, body) {
  const res = await fetch(gateways[0].url + route, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-conversations-'));
  const upstream = await startJsonServer(answer);
  const config = path.join(dir, 'switchboard.yaml');
  fs.writeFileSync(
    config,
    // The breaker off: the turns that fail on purpose would open it for the rest.
    `server:\n  logLevel: error\n${SHARED?.config ?? ''}router:\n  retries: 0\n  breaker: { failureThreshold: 0 }\ndefaultModel: up\nmodels:\n  - id: up\n    provider: openai\n    model: up\n    pricing: { input: 1, output: 2 }\n    baseUrl: 'http://127.0.0.1:${upstream.port}/v1'\n`,
  );
  try {
    gateways.push(await startGateway(config, dir, { SWITCHBOARD_ADMIN_KEY: ADMIN }));
    if (SHARED) gateways.push(await startGateway(config, fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-conversations-b-')), { SWITCHBOARD_ADMIN_KEY: ADMIN }));
    keys.acme = (await admin('POST', '/admin/keys', { organisation: 'acme' })).key;
    keys.globex = (await admin('POST', '/admin/keys', { organisation: 'globex' })).key;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CONVERSATIONS }, (_, c) => Promise.all([sessionConversation(c), threadConversation(c)])));
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    const rows = await requestLog(gateways.map((g) => g.url), ADMIN);
    problems.push(...(await logAgainstMetrics(rows, gateways.map((g) => g.url))));
    const spread = (list) => {
      const sorted = list.sort((a, b) => a - b);
      return `${Math.round(sorted[Math.floor(sorted.length / 2)])} ms (median), ${Math.round(sorted[Math.floor(sorted.length * 0.99)])} ms (p99), ${Math.round(sorted.at(-1))} ms (max)`;
    };
    const waitText = `; a call took ${spread(callTimes)}${releaseWaits.length ? `; a reply hung up on was free again after ${spread(releaseWaits)}` : ''}`;
    console.log(`${CONVERSATIONS} sessions and ${CONVERSATIONS} threads of ${TURNS} turns on ${gateways.length} gateway(s) in ${seconds} s: ${seen.size} upstream turns, ${rows.length} logged requests${waitText}; ${problems.length} broken promise(s)`);
    for (const p of problems.slice(0, 40)) console.log(`  ${p}`);
  } finally {
    for (const g of gateways) g.child.kill();
    closeServers(upstream);
    fs.rmSync(dir, { recursive: true, force: true });
    if (SHARED) await dropSharedStore(SHARED);
  }
  return problems.length;
}

runCheck(main);
