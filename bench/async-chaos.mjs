#!/usr/bin/env node
// Do async message runs keep their promises under a crowd? RUNS runs are started at once (some
// with a chosen id, posted twice), each watched by observers who join at random moments, hang up
// after a few events and resume with Last-Event-ID or ?starting_after on any gateway, and about
// a third are cancelled at a random moment on any gateway. Then every run is checked:
// - every observer, resumes joined up, saw events 1..n with no gap or repeat, byte-identical to
//   every other observer's, in the order a Messages stream allows, ending with message_stop or error;
// - the final status agrees with the events: completed ↔ message_stop and the same text and
//   usage, cancelled ↔ an error event of type cancelled_error; event_count is n;
// - a DELETE answered 200 left the run cancelled, one answered 409 found it ended;
// - the second POST of a chosen id was a 409; nothing is left pending or running.
// Exits 1 on any broken promise (each is printed), so it can run in a loop.
//
// With SHARED_STORE=1 two gateway processes share PostgreSQL and Redis (a fresh schema and key
// prefix, dropped at the end) and every call goes to either one: runs execute on both, observers
// and cancels cross processes.
//
// With SHARED_STORE=1 KILL_AFTER=<ms> as well, the second gateway is killed (SIGKILL) that long
// after the first run starts; calls then go to the survivor, observers cut off resume there, and a
// run the dead process was executing must end as the lease rules say (docs/scale-out.md): run
// again from the start if it had emitted nothing, else `failed` with an api_error event saying the
// process stopped, observable as such. The lease is 2 s here.
//
// Usage: node bench/async-chaos.mjs   (env: RUNS=120 SEED=1 SHARED_STORE= KILL_AFTER= CONCURRENCY=3 HANG_UPS=0.6 CANCELS=0.35)
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createParser } from 'eventsource-parser';
import { closeServers, dropSharedStore, runCheck, seededRandom, sharedStore, startGateway } from './lib/gateways.mjs';
import { answerWithWords, startJsonServer } from './lib/word-upstream.mjs';

const RUNS = Number(process.env.RUNS ?? 120);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 3);
const KILL_AFTER = process.env.KILL_AFTER ? Number(process.env.KILL_AFTER) : undefined;
const HANG_UPS = Number(process.env.HANG_UPS ?? 0.6);
const CANCELS = Number(process.env.CANCELS ?? 0.35);
const SHARED = process.env.SHARED_STORE ? sharedStore('chaos', { leaseSeconds: 2 }) : undefined;
const { random, pick, between } = seededRandom(Number(process.env.SEED ?? 1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The upstream: `max_tokens` words, one every 4 ms for the slow model. */
const startUpstream = () => startJsonServer((_req, res, body) => answerWithWords(res, body, { interval: (model) => (model === 'slow-upstream' ? 4 : 0) }));

/** The gateways still alive; a killed one is taken out. */
const live = [];
/**
 * fetch on a live gateway; a connection refused or cut by the kill is retried on a survivor
 * (`retried` says so: the dead one may have done the work before it died).
 */
async function call(pathname, init = {}) {
  for (let retried = false; ; retried = true) {
    const url = pick(live);
    try {
      return Object.assign(await fetch(url + pathname, init), { retried });
    } catch (err) {
      if (err.name === 'AbortError' || live.includes(url)) throw err;
    }
  }
}

const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
const problems = [];
const problem = (run, what) => problems.push(`${run}: ${what}`);

/** Reads an observe stream; `hangUpAfter` events in, it aborts. Resolves with the events it read and whether the stream ended by itself. */
async function observe(id, { after, viaQuery, hangUpAfter }) {
  const controller = new AbortController();
  const query = after !== undefined && viaQuery ? `?starting_after=${after}` : '';
  const extra = after !== undefined && !viaQuery ? { 'last-event-id': String(after) } : {};
  const res = await call(`/v1/messages/async/${id}/events${query}`, { headers: { ...headers, ...extra }, signal: controller.signal });
  if (res.status !== 200) return { status: res.status, events: [], ended: false };
  const events = [];
  const parser = createParser({ onEvent: (e) => events.push({ id: Number(e.id), event: e.event, data: e.data }) });
  const decoder = new TextDecoder();
  // Read by hand: leaving a for-await early makes the body's return() throw an AbortError.
  const reader = res.body.getReader();
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      // Cut off by the kill: resume elsewhere, from the last whole event.
      if (KILL_AFTER === undefined) throw err;
      return { status: 200, events, ended: false };
    }
    const { done, value } = chunk;
    if (done) return { status: 200, events, ended: true };
    parser.feed(decoder.decode(value, { stream: true }));
    if (hangUpAfter !== undefined && events.length >= hangUpAfter) {
      controller.abort();
      return { status: 200, events: events.slice(0, hangUpAfter), ended: false };
    }
  }
}

/** An observer that hangs up and resumes up to three times, each time on a random gateway. */
async function watch(id) {
  const all = [];
  for (let leg = 0; ; leg++) {
    const last = all.at(-1)?.id;
    const hangUpAfter = leg < 3 && random() < HANG_UPS ? between(1, 6) : undefined;
    const got = await observe(id, { after: last, viaQuery: random() < 0.5, hangUpAfter });
    if (got.status !== 200) return { error: `observe answered ${got.status}` };
    all.push(...got.events);
    if (got.ended) return { events: all };
    await sleep(between(0, 30));
  }
}

/** Messages stream grammar: message_start, then blocks (start, deltas, stop), message_delta, message_stop; or an error at any point, last. */
function grammarProblem(events) {
  const names = events.map((e) => e.event);
  const errorAt = names.indexOf('error');
  if (errorAt !== -1 && errorAt !== names.length - 1) return 'an event after the error';
  const body = errorAt === -1 ? names : names.slice(0, -1);
  if (body.length === 0) return errorAt === -1 ? 'no events' : undefined;
  if (body[0] !== 'message_start') return `first event ${body[0]}`;
  let open = false;
  for (let i = 1; i < body.length; i++) {
    const name = body[i];
    if (name === 'ping') continue;
    if (name === 'content_block_start') {
      if (open) return `block started inside a block at ${i + 1}`;
      open = true;
    } else if (name === 'content_block_delta') {
      if (!open) return `delta outside a block at ${i + 1}`;
    } else if (name === 'content_block_stop') {
      if (!open) return `block stopped twice at ${i + 1}`;
      open = false;
    } else if (name === 'message_delta') {
      if (open || body[i + 1] !== 'message_stop') return `message_delta out of place at ${i + 1}`;
    } else if (name === 'message_stop') {
      if (i !== body.length - 1 || errorAt !== -1) return 'message_stop not last';
    } else return `unknown event ${name}`;
  }
  if (errorAt === -1 && body.at(-1) !== 'message_stop') return `ends with ${body.at(-1)}`;
  return undefined;
}

async function status(id) {
  const res = await call(`/v1/messages/async/${id}`, { headers });
  return { code: res.status, body: await res.json() };
}

/** One run's whole life: start, watch, maybe cancel, then check every promise. */
async function oneRun(index) {
  const chosen = random() < 0.3 ? `chaos-${index}-${randomBytes(3).toString('hex')}` : undefined;
  const slow = random() < 0.7;
  const body = { model: slow ? 'slow' : 'fast', max_tokens: between(1, 40), priority: between(0, 3), messages: [{ role: 'user', content: `run ${index}` }] };
  const started = await call(`/v1/messages/async${chosen ? `?message_id=${chosen}` : ''}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const answer = await started.json();
  // The killed gateway stored the run, then died before it answered: the retry finds it.
  if (started.status === 409 && started.retried && chosen) answer.message_id = chosen;
  else if (started.status !== 202 || answer.status !== 'pending') return problem(index, `start answered ${started.status} ${JSON.stringify(answer)}`);
  const id = answer.message_id;
  if (chosen) {
    const again = await call(`/v1/messages/async?message_id=${chosen}`, { method: 'POST', headers, body: JSON.stringify(body) });
    if (again.status !== 409) problem(id, `a second POST of the id answered ${again.status}`);
  }
  const watchers = Array.from({ length: between(1, 3) }, async () => {
    await sleep(between(0, 200));
    return watch(id);
  });
  let cancel;
  if (random() < CANCELS) {
    cancel = (async () => {
      await sleep(between(0, 250));
      const res = await call(`/v1/messages/async/${id}`, { method: 'DELETE', headers });
      return { code: res.status, body: await res.json(), retried: res.retried };
    })();
  }
  const seen = await Promise.all(watchers);
  const cancelled = await cancel;
  // A late observer joins after the end: the whole replay.
  seen.push(await watch(id));
  const final = await status(id);
  const { body: run } = final;
  if (final.code !== 200) return problem(id, `status answered ${final.code}`);
  if (!['completed', 'cancelled', 'failed'].includes(run.status)) return problem(id, `status ${run.status} after every observer's stream ended`);
  let reference;
  for (const [i, watched] of seen.entries()) {
    if (watched.error) {
      problem(id, `observer ${i}: ${watched.error}`);
      continue;
    }
    const ids = watched.events.map((e) => e.id);
    if (ids.some((n, k) => n !== k + 1)) problem(id, `observer ${i} saw ids ${ids.join(',')}`);
    const grammar = grammarProblem(watched.events);
    if (grammar) problem(id, `observer ${i}: ${grammar} (${watched.events.map((e) => e.event).join(',')})`);
    const text = JSON.stringify(watched.events);
    if (reference === undefined) reference = text;
    else if (text !== reference) problem(id, `observer ${i} saw other events than observer 0`);
  }
  const events = (seen.find((w) => w.events)?.events ?? []).map((e) => ({ ...e, data: JSON.parse(e.data) }));
  if (run.event_count !== events.length) problem(id, `event_count ${run.event_count}, observers saw ${events.length}`);
  const last = events.at(-1);
  if (run.status === 'completed') {
    if (last?.event !== 'message_stop') problem(id, `completed, but the last event is ${last?.event}`);
    const streamed = events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text ?? '').join('');
    const kept = (run.message?.content ?? []).map((b) => b.text ?? '').join('');
    if (streamed !== kept) problem(id, `completed message text ${JSON.stringify(kept)} != streamed ${JSON.stringify(streamed)}`);
    const usage = events.find((e) => e.event === 'message_delta')?.data.usage;
    if (usage?.output_tokens !== run.usage?.output_tokens) problem(id, `status usage ${JSON.stringify(run.usage)} != streamed ${JSON.stringify(usage)}`);
    if (run.message?.usage?.output_tokens !== body.max_tokens) problem(id, `output_tokens ${run.message?.usage?.output_tokens}, the upstream sent ${body.max_tokens}`);
  } else if (run.status === 'cancelled') {
    if (last?.event !== 'error' || last.data.error?.type !== 'cancelled_error') problem(id, `cancelled, but the last event is ${JSON.stringify(last)}`);
  } else if (KILL_AFTER !== undefined && run.error?.type === 'api_error' && /stopped before it finished/.test(run.error.message)) {
    if (last?.event !== 'error' || last.data.error?.message !== run.error.message) problem(id, `failed by the kill, but the last event is ${JSON.stringify(last)}`);
    if (!events.some((e) => e.event === 'message_start')) problem(id, 'failed by the kill before any event: it should have run again');
  } else problem(id, `failed: ${JSON.stringify(run.error)}`);
  if (cancelled) {
    if (cancelled.code === 200 && run.status !== 'cancelled') problem(id, `DELETE answered 200 (${cancelled.body.status}) but the run ended ${run.status}`);
    if (cancelled.code === 200 && cancelled.body.status !== 'cancelled') problem(id, `DELETE answered 200 with status ${cancelled.body.status}`);
    // (Unless the killed gateway cancelled it and died before it answered.)
    if (cancelled.code === 409 && run.status === 'cancelled' && !cancelled.retried) problem(id, 'DELETE answered 409 but the run ended cancelled');
    if (cancelled.code !== 200 && cancelled.code !== 409) problem(id, `DELETE answered ${cancelled.code} ${JSON.stringify(cancelled.body)}`);
  }
  return run.status;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-chaos-'));
  const upstream = await startUpstream();
  const config = path.join(dir, 'switchboard.yaml');
  const store = SHARED?.config ?? '';
  const model = (id) => `  - id: ${id}\n    provider: openai\n    model: ${id}-upstream\n    baseUrl: http://127.0.0.1:${upstream.port}/v1\n`;
  fs.writeFileSync(config, `server:\n  logLevel: warn\n${store}async:\n  concurrency: ${CONCURRENCY}\ndefaultModel: fast\nmodels:\n${model('fast')}${model('slow')}`);
  const gateways = [];
  try {
    gateways.push(await startGateway(config, dir));
    if (SHARED) gateways.push(await startGateway(config, fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-chaos-b-'))));
    live.push(...gateways.map((g) => g.url));
    const t0 = performance.now();
    if (SHARED && KILL_AFTER !== undefined) {
      setTimeout(() => {
        live.pop();
        gateways[1].child.kill('SIGKILL');
        console.log(`killed the second gateway at ${Math.round(performance.now() - t0)} ms`);
      }, KILL_AFTER);
    }
    const outcomes = await Promise.all(Array.from({ length: RUNS }, (_, i) => oneRun(i).catch((err) => problem(i, `threw ${err.stack}`))));
    const counts = {};
    for (const o of outcomes) counts[o ?? 'broken'] = (counts[o ?? 'broken'] ?? 0) + 1;
    console.log(`${RUNS} runs on ${gateways.length} gateway(s) in ${Math.round(performance.now() - t0)} ms: ${JSON.stringify(counts)}; ${problems.length} broken promise(s)`);
    for (const p of problems) console.log(`  ${p}`);
  } finally {
    for (const g of gateways) g.child.kill();
    closeServers(upstream);
    fs.rmSync(dir, { recursive: true, force: true });
    if (SHARED && process.env.KEEP_STATE) console.log(`kept PostgreSQL schema ${SHARED.schema}, Redis prefix ${SHARED.keyPrefix}`);
    else if (SHARED) await dropSharedStore(SHARED);
  }
  return problems.length;
}

runCheck(main);
