#!/usr/bin/env node
// Do limits hold when a crowd arrives at once, on every dialect, buffered, streamed and hung up?
// Each phase makes an organisation of its own through the admin API, sends a crowd to any gateway,
// then checks what docs/operations.md promises:
// - rpm: two keys of one organisation (organisation rpm 30, each key rpm 20) send 40 requests
//   each at once: exactly 30 are admitted, at most 20 per key; every other answer is a 429 in its
//   dialect's shape with a Retry-After.
// - concurrent: a key with `concurrent: 4` sends 60 slow streams, half hung up after the first
//   chunk, more starting as others end: the upstream never has more than 4 of them open at once;
//   refusals are 429 concurrent_requests_exceeded; once all ended, 4 more at once are all admitted
//   (every slot came back, hung-up ones too).
// - budget: an organisation with a day budget of 20 requests' worth sends 60 slow requests at
//   once, then one at a time until refused: the request log's cost never exceeds the budget by
//   more than one request's reservation, every refusal is a 429 budget_exceeded, and the budget is
//   used to within one request's reservation (settled reservations are given back).
// Then the request log's rows, tokens and cost must add up to the gateways' metrics.
// Exits 1 on any broken promise, each printed.
//
// With SHARED_STORE=1 two gateways share PostgreSQL and Redis and every call goes to either one:
// the limits must hold for both together.
//
// Usage: node bench/limits-chaos.mjs   (env: SEED=1 SHARED_STORE= PHASES=rpm,concurrent,budget)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { logAgainstMetrics, requestLog } from './lib/accounting.mjs';
import { dropSharedStore, seededRandom, sharedStore, startGateway } from './lib/gateways.mjs';
import { answerWithWords, startJsonServer } from './lib/word-upstream.mjs';

const SHARED = process.env.SHARED_STORE ? sharedStore('limits') : undefined;
const { random, pick, between } = seededRandom(Number(process.env.SEED ?? 1));
const ADMIN = 'admin-key-for-the-limits-chaos-check';
// USD per million tokens: a request of 5 prompt tokens and 10 output tokens costs 0.015.
const PRICE = 1000;

/**
 * An OpenAI-compatible upstream streaming `max_tokens` words, one every 5 ms for the slow model.
 * It counts the requests open at once (GET /stats, POST /stats/reset). It runs in a process of its
 * own: in this one, busy with the crowd, it would see a connection's close late.
 */
function serveUpstream() {
  const open = { now: 0, max: 0 };
  const running = new Set();
  void startJsonServer((req, res, body) => {
    if (req.url.startsWith('/stats')) {
      if (req.method === 'POST') open.max = open.now;
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(open));
    }
    // Counted 10 ms after it arrives, with the requests then still open that were open before
    // it: a connection the gateway closed just before it sent this one may reach this process's
    // event loop a moment later (seen: up to ≈ 7 ms on this VM).
    const before = [...running];
    const me = {};
    running.add(me);
    open.now++;
    setTimeout(() => {
      if (running.has(me)) open.max = Math.max(open.max, 1 + before.filter((r) => running.has(r)).length);
    }, 10);
    res.once('close', () => {
      open.now--;
      running.delete(me);
    });
    answerWithWords(res, body, { interval: (model) => (model === 'slow-upstream' ? 5 : 0) });
  }).then(({ port }) => console.log(port));
}

if (process.argv[2] === 'upstream') serveUpstream();

/** The upstream process, and its counts of open requests. */
async function startUpstream() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'upstream'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => readline.createInterface({ input: child.stdout }).once('line', resolve));
  const url = `http://127.0.0.1:${port}`;
  return {
    child,
    port,
    resetMax: () => fetch(`${url}/stats`, { method: 'POST' }).then((r) => r.json()),
    open: () => fetch(`${url}/stats`).then((r) => r.json()),
  };
}

const problems = [];
const problem = (phase, what) => problems.push(`${phase}: ${what}`);
let urls = [];

async function admin(method, pathname, body) {
  const res = await fetch(pick(urls) + pathname, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const answer = await res.json();
  if (!res.ok) throw new Error(`${method} ${pathname}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

const str = (v) => typeof v === 'string';
/** Each route: the request, and whether a refusal's body is in its dialect's shape. */
const routes = [
  { name: 'chat completions', path: () => '/v1/chat/completions', body: (model, n, stream) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: n, stream }), refused: (b) => str(b?.error?.type) && 'param' in b.error && str(b.error.code) },
  { name: 'messages', path: () => '/v1/messages', body: (model, n, stream) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: n, stream }), refused: (b) => b?.type === 'error' && str(b.error?.type) },
  { name: 'organisation chat', path: (org, stream) => `/api/v3/organizations/${org}/ai/chat${stream ? '/stream' : ''}`, body: (model, n) => ({ modelId: model, messages: [{ role: 'user', content: 'hi' }], maxTokens: n }), refused: (b) => str(b?.error?.type) && str(b.requestId) },
  { name: 'eden', path: (org, stream) => `/v2/text/chat${stream ? '/stream' : ''}`, body: (model, n) => ({ providers: model, text: 'hi', max_tokens: n }), refused: (b) => str(b?.error?.type) },
];

/**
 * One request on a random route and gateway; a streamed one may hang up after its first chunk.
 * Resolves with {status, code (a refusal's), retryAfter, admitted}.
 */
async function send(key, org, model, { maxTokens, hangUp = false }) {
  const route = pick(routes);
  const stream = hangUp || random() < 0.5;
  const controller = new AbortController();
  const res = await fetch(pick(urls) + route.path(org, stream), {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(route.body(model, maxTokens, stream)),
    signal: controller.signal,
  });
  if (res.status === 200) {
    const reader = res.body.getReader();
    if (hangUp) {
      await reader.read();
      controller.abort();
    } else while (!(await reader.read()).done);
    return { status: 200, admitted: true };
  }
  const body = await res.json().catch(() => undefined);
  const code = body?.error?.code ?? body?.error?.type;
  if (!route.refused(body)) problem(route.name, `a ${res.status} not in the dialect's shape: ${JSON.stringify(body)}`);
  if (res.status === 429 && !(Number(res.headers.get('retry-after')) > 0)) problem(route.name, `a 429 with retry-after ${res.headers.get('retry-after')}`);
  return { status: res.status, code, body, admitted: false };
}

/** The refusal's kind, as far as each dialect says it (OpenAI and the organisation route name the code; the message says it everywhere). */
const refusedFor = (result, code, words) => result.status === 429 && (result.code === code || JSON.stringify(result.body).includes(words));

async function inFlight() {
  let total = 0;
  for (const url of urls) {
    const text = await fetch(`${url}/metrics`).then((r) => r.text());
    total += Number(/^switchboard_chat_in_flight (\S+)/m.exec(text)?.[1] ?? 0);
  }
  return total;
}

async function settled() {
  for (let i = 0; (await inFlight()) > 0; i++) {
    if (i > 400) throw new Error('requests still in flight after 20 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rpmPhase() {
  const org = 'rpm-org';
  await admin('PATCH', `/admin/organisations/${org}`, { limits: { rpm: 30 } });
  const keys = [await admin('POST', '/admin/keys', { organisation: org, limits: { rpm: 20 } }), await admin('POST', '/admin/keys', { organisation: org, limits: { rpm: 20 } })];
  const results = await Promise.all(keys.flatMap((k) => Array.from({ length: 40 }, () => send(k.key, org, 'fast', { maxTokens: 4, hangUp: random() < 0.2 }).then((r) => ({ ...r, key: k.id })))));
  const admitted = results.filter((r) => r.admitted);
  const perKey = keys.map((k) => admitted.filter((r) => r.key === k.id).length);
  if (admitted.length !== 30) problem('rpm', `${admitted.length} admitted, the organisation's rpm is 30`);
  if (perKey.some((n) => n > 20)) problem('rpm', `admitted per key ${perKey.join(' / ')}, each key's rpm is 20`);
  for (const r of results.filter((r) => !r.admitted)) if (!refusedFor(r, 'requests_per_minute_exceeded', 'per minute')) problem('rpm', `refused with ${r.status} ${JSON.stringify(r.body)}`);
  return `rpm: ${admitted.length} of 80 admitted (per key ${perKey.join(' / ')})`;
}

async function concurrentPhase(upstream) {
  const org = 'concurrent-org';
  const { key } = await admin('POST', '/admin/keys', { organisation: org, limits: { concurrent: 4 } });
  await settled();
  await upstream.resetMax();
  let started = 0;
  const results = [];
  // 6 senders, 10 requests each: new ones arrive as earlier ones end.
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let i = 0; i < 10; i++) {
        started++;
        results.push(await send(key, org, 'slow', { maxTokens: between(5, 30), hangUp: random() < 0.5 }));
        await new Promise((r) => setTimeout(r, between(0, 20)));
      }
    }),
  );
  const admitted = results.filter((r) => r.admitted).length;
  const { max } = await upstream.open();
  if (max > 4) problem('concurrent', `the upstream had ${max} requests open at once; the key's limit is 4`);
  for (const r of results.filter((r) => !r.admitted)) if (!refusedFor(r, 'concurrent_requests_exceeded', 'concurrent')) problem('concurrent', `refused with ${r.status} ${JSON.stringify(r.body)}`);
  await settled();
  const after = await Promise.all(Array.from({ length: 4 }, () => send(key, org, 'slow', { maxTokens: 5 })));
  const again = after.filter((r) => r.admitted).length;
  if (again !== 4) problem('concurrent', `after every call ended, ${again} of 4 at once were admitted: ${JSON.stringify(after.filter((r) => !r.admitted).map((r) => r.body))}`);
  return `concurrent: ${admitted} of ${started} admitted, at most ${max} open upstream; then ${again} of 4`;
}

async function budgetPhase() {
  const org = 'budget-org';
  const perRequest = (15 * PRICE) / 1e6;
  const budget = 20 * perRequest;
  await admin('PATCH', `/admin/organisations/${org}`, { limits: { budget: { day: budget } } });
  const { key } = await admin('POST', '/admin/keys', { organisation: org });
  const crowd = await Promise.all(Array.from({ length: 60 }, () => send(key, org, 'slow', { maxTokens: 10, hangUp: random() < 0.2 })));
  let refusedAlone = 0;
  let alone = 0;
  for (; alone < 40; alone++) {
    const r = await send(key, org, 'slow', { maxTokens: 10 });
    if (!r.admitted) {
      refusedAlone++;
      crowd.push(r);
      break;
    }
  }
  for (const r of crowd.filter((r) => !r.admitted)) if (!refusedFor(r, 'budget_exceeded', 'budget')) problem('budget', `refused with ${r.status} ${JSON.stringify(r.body)}`);
  await settled();
  const rows = (await admin('GET', `/admin/requests?organisation=${org}&limit=1000`)).data;
  const spent = rows.reduce((sum, row) => sum + (row.cost ?? 0), 0);
  // A reservation: the prompt estimated before the call, at most a few tokens here, plus 10 output tokens.
  const reservation = 30 * PRICE / 1e6;
  if (spent > budget + reservation + 1e-9) problem('budget', `spent ${spent.toFixed(4)}, the budget is ${budget.toFixed(4)}`);
  if (refusedAlone === 0) problem('budget', 'never refused one request at a time');
  if (spent < budget - reservation - 1e-9) problem('budget', `refused with ${spent.toFixed(4)} spent of ${budget.toFixed(4)}: a reservation was not given back`);
  const admitted = crowd.filter((r) => r.admitted).length;
  return `budget: crowd ${admitted} of 60 admitted, then ${alone} more one at a time; spent ${spent.toFixed(4)} of ${budget.toFixed(4)} (${rows.length} request-log rows)`;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-limits-'));
  const upstream = await startUpstream();
  const config = path.join(dir, 'switchboard.yaml');
  const model = (id) => `  - id: ${id}\n    provider: openai\n    model: ${id}-upstream\n    baseUrl: http://127.0.0.1:${upstream.port}/v1\n    pricing: { input: ${PRICE}, output: ${PRICE} }\n`;
  fs.writeFileSync(config, `server:\n  logLevel: warn\n${SHARED?.config ?? ''}defaultModel: fast\nmodels:\n${model('fast')}${model('slow')}`);
  const gateways = [];
  try {
    const env = { SWITCHBOARD_ADMIN_KEY: ADMIN };
    gateways.push(await startGateway(config, dir, env));
    if (SHARED) gateways.push(await startGateway(config, fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-limits-b-')), env));
    urls = gateways.map((g) => g.url);
    const phases = { rpm: rpmPhase, concurrent: () => concurrentPhase(upstream), budget: budgetPhase };
    for (const name of (process.env.PHASES ?? 'rpm,concurrent,budget').split(',')) console.log(await phases[name]());
    // Refused or admitted, hung up or not: every request has its row, and the rows add up to the metrics.
    await settled();
    for (const p of await logAgainstMetrics(await requestLog(urls, ADMIN), urls)) problem('accounting', p);
    console.log(`${gateways.length} gateway(s): ${problems.length} broken promise(s)`);
    for (const p of problems) console.log(`  ${p}`);
  } finally {
    for (const g of gateways) g.child.kill();
    upstream.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
    if (SHARED) await dropSharedStore(SHARED);
  }
  process.exit(problems.length ? 1 : 0);
}

if (process.argv[2] !== 'upstream') {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
