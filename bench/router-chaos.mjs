#!/usr/bin/env node
// Does the router keep its promises (docs/router.md) when upstreams misbehave under load? One
// model has three deployments, each a loopback OpenAI-compatible upstream that answers every
// request at random: a stream (6 words), a 500, a 429 with Retry-After 1 s, a connection reset
// before the headers, a reset after two words, a stall before the first word (past `ttftMs`), or
// an HTML page; its fallback model's upstream always answers. REQUESTS requests, CONCURRENCY at
// a time, on chat completions and Messages, buffered and streamed. Then:
// - each client got one upstream answer whole (its text is exactly one answer's text, never two
//   attempts' text run together), or a stream cut by a reset after output began, ending with the
//   dialect's error event after a prefix of one answer, or an error status (429/502/503/504) in its
//   dialect's shape; never a hang or a stream that just stops;
// - no upstream got a request while it was cooling down after its own Retry-After and another
//   deployment was ready (the breaker is off here, so "ready" is known from outside; when all are
//   cooling, a new request may still go to one: docs/router.md);
// - `x-switchboard-attempts` never exceeds 1 + retries on the model, plus its fallback's;
// - afterwards every deployment has nothing in flight (GET /v1/router/status);
// - every request has its request-log row (matched by x-request-id) with the client's status (or
//   the error's, for a stream cut after it began), its attempts and, for a whole answer, the
//   upstream's token counts, which the client was told too; the log's token and cost totals equal the metrics'.
// Exits 1 on any broken promise, each printed.
//
// Usage: node bench/router-chaos.mjs   (env: REQUESTS=200 CONCURRENCY=8 SEED=1)
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { logAgainstMetrics, requestLog } from './lib/accounting.mjs';
import { closeServers, crowd, runCheck, seededRandom, sseEvents, startGateway } from './lib/gateways.mjs';
import { chunkMaker } from './lib/word-upstream.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 200);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8);
const { random, pick } = seededRandom(Number(process.env.SEED ?? 1));
const ADMIN = 'admin-key-for-the-router-chaos-check';
const RETRY_AFTER_S = 1;
/** Requests this soon after a 429 may have crossed it on the wire. */
const RACE_MS = 100;
const problems = [];

const BEHAVIOURS = [
  ['ok', 45],
  ['500', 10],
  ['429', 9],
  ['reset-before', 9],
  ['reset-mid', 9],
  ['stall', 9],
  ['garbage', 9],
];
function behaviour() {
  let r = random() * 100;
  for (const [name, weight] of BEHAVIOURS) if ((r -= weight) < 0) return name;
  return 'ok';
}

let answers = 0;
/** Every answer text an upstream began, by text: whether it was sent whole. */
const sentTexts = new Map();

/** The flaky model's deployments' logs: a request to one that is cooling down is a fault only while another is ready. */
const siblings = [];

/** One upstream; `always` fixes its behaviour. Records arrivals and its Retry-After windows. */
function startUpstream(name, always) {
  const log = { name, arrivals: [], coolingUntil: 0, violations: [] };
  if (!always) siblings.push(log);
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      const now = performance.now();
      // A request that arrives just after the 429 left may have been sent before the gateway read
      // it; another deployment counts as ready once its own window is over by as much.
      const cooling = now < log.coolingUntil && now > log.coolingUntil - RETRY_AFTER_S * 1000 + RACE_MS;
      const readyOther = siblings.find((other) => other !== log && other.coolingUntil + RACE_MS < now);
      if (cooling && readyOther) log.violations.push(`${name} got a request ${Math.round(log.coolingUntil - now)} ms before its Retry-After ran out, while ${readyOther.name} was ready`);
      log.arrivals.push(now);
      const body = JSON.parse(text);
      const kind = always ?? behaviour();
      const words = Array.from({ length: 6 }, (_, i) => `${name}${++answers}w${i} `);
      const answer = words.join('');
      if (kind === '500') return void res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'boom', type: 'server_error', code: null } }));
      if (kind === '429') {
        log.coolingUntil = performance.now() + RETRY_AFTER_S * 1000;
        return void res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(RETRY_AFTER_S) }).end(JSON.stringify({ error: { message: 'slow down', type: 'requests', code: 'rate_limit_exceeded' } }));
      }
      if (kind === 'reset-before') return void req.socket.destroy();
      if (kind === 'garbage') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Bad gateway</body></html>');
      const usage = { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 };
      if (!body.stream) {
        if (kind === 'stall' || kind === 'reset-mid') return void (kind === 'reset-mid' ? req.socket.destroy() : undefined);
        sentTexts.set(answer, true);
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: 'chatcmpl-r', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: answer, refusal: null }, logprobs: null, finish_reason: 'stop' }], usage }));
      }
      const chunk = chunkMaker(body.model, usage);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk({ role: 'assistant', content: '' }));
      if (kind === 'stall') return; // nothing more until the router gives up on it (ttftMs)
      sentTexts.set(answer, false);
      let i = 0;
      const timer = setInterval(() => {
        if (kind === 'reset-mid' && i === 2) {
          clearInterval(timer);
          return void req.socket.destroy();
        }
        if (i < words.length) return void res.write(chunk({ content: words[i++] }));
        clearInterval(timer);
        sentTexts.set(answer, true);
        res.end(chunk({}, 'stop') + chunk(null, null, true) + 'data: [DONE]\n\n');
      }, 2);
      res.once('close', () => clearInterval(timer));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, log, port: server.address().port })));
}

const routes = [
  { name: 'chat completions', stream: false, path: '/v1/chat/completions', body: { model: 'flaky', messages: [{ role: 'user', content: 'hi' }] } },
  { name: 'chat completions stream', stream: true, path: '/v1/chat/completions', body: { model: 'flaky', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } } },
  { name: 'messages', stream: false, path: '/v1/messages', body: { model: 'flaky', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] } },
  { name: 'messages stream', stream: true, path: '/v1/messages', body: { model: 'flaky', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }], stream: true } },
];

/** One request: the text the client got, and how it ended. */
async function one(url) {
  const route = pick(routes);
  const res = await fetch(url + route.path, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(route.body) });
  const attempts = Number(res.headers.get('x-switchboard-attempts') ?? 0);
  const requestId = res.headers.get('x-request-id');
  const raw = await res.text();
  const messages = route.path === '/v1/messages';
  if (res.status !== 200) {
    const body = JSON.parse(raw);
    const shaped = messages ? body.type === 'error' && typeof body.error?.type === 'string' : typeof body.error?.type === 'string' && 'code' in body.error;
    if (![429, 502, 503, 504].includes(res.status) || !shaped) return { route, problem: `status ${res.status}: ${raw.slice(0, 200)}` };
    return { route, outcome: `error ${res.status}`, status: res.status, attempts, requestId };
  }
  if (!route.stream) {
    const body = JSON.parse(raw);
    const usage = messages ? [body.usage.input_tokens, body.usage.output_tokens] : [body.usage.prompt_tokens, body.usage.completion_tokens];
    return { route, outcome: 'whole', text: messages ? body.content.map((b) => b.text).join('') : body.choices[0].message.content, usage, attempts, requestId };
  }
  const events = sseEvents(raw);
  let text = '';
  let error;
  let ended = false;
  let usage;
  for (const e of events) {
    if (messages) {
      const data = JSON.parse(e.data);
      if (e.event === 'content_block_delta') text += data.delta.text ?? '';
      if (e.event === 'error') error = data.error;
      if (e.event === 'message_stop') ended = true;
      if (e.event === 'message_delta') usage = [data.usage.input_tokens, data.usage.output_tokens];
    } else if (e.data === '[DONE]') ended = !error;
    else {
      const data = JSON.parse(e.data);
      if (data.error) error = data.error;
      text += data.choices?.[0]?.delta?.content ?? '';
      if (data.usage) usage = [data.usage.prompt_tokens, data.usage.completion_tokens];
    }
  }
  if (error) return { route, outcome: 'cut', text, error, attempts, requestId };
  if (!ended) return { route, problem: `a stream that just stopped after ${JSON.stringify(text)}` };
  return { route, outcome: 'whole', text, usage, attempts, requestId };
}

/** The request log against what the clients saw, and against the metrics. */
async function accountingProblems(url, results) {
  const found = [];
  const rows = await requestLog(url, ADMIN);
  const byId = new Map(rows.map((row) => [row.id, row]));
  if (rows.length !== results.length) found.push(`${rows.length} request-log rows for ${results.length} requests`);
  for (const r of results) {
    const row = byId.get(r.requestId);
    if (!row) {
      found.push(`${r.route.name}: no request-log row for ${r.requestId}`);
      continue;
    }
    const what = `${r.route.name} ${r.requestId} (${r.outcome})`;
    if (row.attempts !== r.attempts) found.push(`${what}: ${row.attempts} attempts logged, the header said ${r.attempts}`);
    if (r.outcome === 'whole' && (row.status !== 200 || row.input_tokens !== 5 || row.output_tokens !== 6)) found.push(`${what}: logged ${row.status} with ${row.input_tokens}/${row.output_tokens} tokens, the upstream said 5/6`);
    if (r.outcome === 'whole' && (r.usage?.[0] !== 5 || r.usage?.[1] !== 6)) found.push(`${what}: the client was told ${JSON.stringify(r.usage)} tokens, the upstream said 5/6`);
    if (r.outcome?.startsWith('error') && row.status !== r.status) found.push(`${what}: logged status ${row.status}`);
    if (r.outcome === 'cut' && (row.status < 500 || !row.error_kind)) found.push(`${what}: logged ${row.status} ${row.error_kind}`);
  }
  found.push(...(await logAgainstMetrics(rows, [url])));
  return found;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-router-'));
  const upstreams = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)));
  const backup = await startUpstream('z', 'ok');
  const deployment = (u) => `      - { name: ${u.log.name}, provider: openai, model: up, baseUrl: 'http://127.0.0.1:${u.port}/v1' }\n`;
  const config = path.join(dir, 'switchboard.yaml');
  fs.writeFileSync(
    config,
    `server:\n  logLevel: error\nrouter:\n  retries: 2\n  backoff: { baseMs: 20, maxMs: 100, maxRetryAfterMs: 1500 }\n  timeouts: { totalMs: 8000, ttftMs: 300, idleMs: 1000 }\n  breaker: { failureThreshold: 0 }\n` +
      `defaultModel: flaky\nmodels:\n  - id: flaky\n    pricing: { input: 1, output: 2 }\n    routing: { strategy: weighted, fallbacks: [backup] }\n    deployments:\n${upstreams.map(deployment).join('')}` +
      `  - id: backup\n    provider: openai\n    model: up\n    pricing: { input: 1, output: 2 }\n    baseUrl: 'http://127.0.0.1:${backup.port}/v1'\n`,
  );
  const gateway = await startGateway(config, dir, { SWITCHBOARD_ADMIN_KEY: ADMIN });
  try {
    const t0 = performance.now();
    const results = (await crowd(REQUESTS, CONCURRENCY, () => one(gateway.url))).map(([, result]) => result);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    for (const r of results) {
      if (r.problem) problems.push(`${r.route.name}: ${r.problem}`);
      if (r.attempts > 3 + 3) problems.push(`${r.route.name}: ${r.attempts} attempts`);
      if (r.outcome === 'whole' && sentTexts.get(r.text) !== true) problems.push(`${r.route.name}: got ${JSON.stringify(r.text)}, not one upstream answer sent whole`);
      if (r.outcome === 'cut' && ![...sentTexts.keys()].some((t) => t.startsWith(r.text) && r.text.length > 0)) problems.push(`${r.route.name}: cut after ${JSON.stringify(r.text)}, not the start of one upstream answer`);
    }
    for (const u of [...upstreams, backup]) problems.push(...u.log.violations);
    const status = await fetch(`${gateway.url}/v1/router/status`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json());
    for (const model of status.models) for (const d of model.deployments) if (d.inFlight !== 0) problems.push(`${model.id}/${d.name}: ${d.inFlight} in flight after the run`);
    problems.push(...(await accountingProblems(gateway.url, results)));
    const tally = {};
    for (const r of results) tally[r.outcome ?? 'broken'] = (tally[r.outcome ?? 'broken'] ?? 0) + 1;
    const calls = Object.fromEntries([...upstreams, backup].map((u) => [u.log.name, u.log.arrivals.length]));
    console.log(`${REQUESTS} requests in ${seconds} s: ${JSON.stringify(tally)}; upstream calls ${JSON.stringify(calls)}; ${problems.length} broken promise(s)`);
    for (const p of problems.slice(0, 40)) console.log(`  ${p}`);
  } finally {
    gateway.child.kill();
    closeServers(...upstreams, backup);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return problems.length;
}

runCheck(main);
