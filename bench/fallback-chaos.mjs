#!/usr/bin/env node
// Do Messages `fallbacks` keep their promises (docs/messages.md) under a crowd, with models that
// decline, fail and cannot be reached, and clients that hang up? Four models on a loopback
// OpenAI-compatible upstream and one whose upstream is down. Each request has a plan: what each
// model does when asked — answer, decline after writing a few words (`content_filter`), decline
// at once, or fail with a 500 — and a chain of 1–3 fallbacks (the down model among them at times).
// REQUESTS requests, CONCURRENCY at a time, buffered and streamed, some hung up. Checked:
// - the models were asked in chain order, each at most once, and no further once one answered;
//   one that failed or could not be reached was passed over; the first model failing is the
//   response's error (no fallback: only a refusal falls back);
// - the content is what each declining model wrote, a `fallback` block {from, to} at each boundary,
//   then the answer — or, when no fallback could take over, the last refusal as it came
//   (`stop_reason: "refusal"`);
// - `model` (buffered) is the answering model, `usage` its tokens, and `usage.iterations` each
//   started model's tokens in order (`message` for each that declined, `fallback_message` last);
// - the request log has a row per model asked (`<id>`, `<id>-f1`, …), the down one included, and
//   its totals equal the metrics';
// - after a hang-up no model is asked once the gateway has cut a call of the request.
// Exits 1 on any broken promise, each printed.
//
// Usage: node bench/fallback-chaos.mjs   (env: REQUESTS=200 CONCURRENCY=8 SEED=1 HANGUPS=0.15)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { logAgainstMetrics, requestLog } from './lib/accounting.mjs';
import { closeServers, crowd, hangUpSignal, runCheck, seededRandom, sseEvents, startGateway } from './lib/gateways.mjs';
import { chunkMaker, startJsonServer, trackRequest, writePaced } from './lib/word-upstream.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 200);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8);
const HANGUPS = Number(process.env.HANGUPS ?? 0.15);
const { random, pick, between } = seededRandom(Number(process.env.SEED ?? 1));
const ADMIN = 'admin-key-for-the-fallback-chaos-check';
const MODELS = ['m0', 'm1', 'm2', 'm3'];
const DOWN = 'down';
const BEHAVIOURS = ['answer', 'answer', 'decline', 'decline', 'decline-at-once', 'fail'];
const problems = [];
const plans = new Map();

const usageOf = (model, words) => ({ prompt_tokens: 10 + MODELS.indexOf(model), completion_tokens: words, total_tokens: 10 + MODELS.indexOf(model) + words });
const wordsOf = (plan, model) => Array.from({ length: plan.behaviour[model] === 'decline-at-once' ? 0 : 3 }, (_, i) => `${model}.${plan.n}.${i} `);

function makePlan(n) {
  const chain = [];
  const pool = [...MODELS.slice(1), DOWN];
  for (let i = between(1, 3); i > 0; i--) chain.push(...pool.splice(Math.floor(random() * pool.length), 1));
  return {
    n,
    chain,
    behaviour: Object.fromEntries(MODELS.map((m) => [m, pick(BEHAVIOURS)])),
    stream: random() < 0.5,
    hangUpAfterMs: n >= 2 * CONCURRENCY && random() < HANGUPS ? between(0, 60) : undefined,
    asked: [],
  };
}

/** The upstream: every model's answer comes from the plan named in the prompt. */
function answer(req, res, body) {
  const model = body.model.replace(/^up-/, '');
  const plan = plans.get(Number(/plan:(\d+)/.exec(JSON.stringify(body.messages))?.[1]));
  trackRequest(plan?.asked ?? [], req, res, { model });
  const behaviour = plan?.behaviour[model] ?? 'answer';
  if (behaviour === 'fail') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom","type":"server_error","code":null}}');
  const words = wordsOf(plan, model);
  const finish = behaviour === 'answer' ? 'stop' : 'content_filter';
  const usage = usageOf(model, words.length);
  if (!body.stream) {
    const message = { role: 'assistant', content: words.join(''), refusal: null };
    const timer = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage })), between(1, 15));
    return void res.once('close', () => clearTimeout(timer));
  }
  const chunk = chunkMaker(body.model, usage);
  const pieces = [chunk({ role: 'assistant', content: '' }), ...words.map((w) => chunk({ content: w })), chunk({}, finish) + chunk(null, null, true) + 'data: [DONE]\n\n'];
  writePaced(res, pieces, () => between(0, 5));
}

/** What the plan should give: the models asked, the started ones, and how it ends. */
function expected(plan) {
  const asked = ['m0'];
  const first = plan.behaviour.m0;
  if (first === 'fail') return { asked, error: true };
  const started = ['m0'];
  if (first === 'answer') return { asked, started, refusal: false };
  for (const hop of plan.chain) {
    asked.push(hop);
    if (hop === DOWN || plan.behaviour[hop] === 'fail') continue; // passed over, no boundary
    started.push(hop);
    if (plan.behaviour[hop] === 'answer') return { asked, started, refusal: false };
  }
  return { asked, started, refusal: true };
}

function judge(plan, result, found) {
  const what = `plan ${plan.n} (${plan.behaviour.m0} → ${plan.chain.map((m) => `${m}:${plan.behaviour[m] ?? 'down'}`).join(', ')}${plan.stream ? ', stream' : ''})`;
  const want = expected(plan);
  const asked = plan.asked.map((a) => a.model);
  const reachable = want.asked.filter((m) => m !== DOWN);
  if (!isDeepStrictEqual(asked, reachable)) found.push(`${what}: the upstream was asked ${asked}, expected ${reachable}`);
  if (want.error) {
    if (result.status !== 502 && !(result.status === 200 && result.error)) found.push(`${what}: ${result.status} ${JSON.stringify(result.error)}, expected the first model's failure`);
    return;
  }
  if (result.status !== 200 || result.error) return void found.push(`${what}: ${result.status} ${JSON.stringify(result.error)}`);
  const blocks = [];
  for (const [i, m] of want.started.entries()) {
    if (i > 0) blocks.push(`[fallback ${want.started[i - 1]}→${m}]`);
    const text = wordsOf(plan, m).join('');
    if (text) blocks.push(text);
  }
  if (!isDeepStrictEqual(result.blocks, blocks)) found.push(`${what}: content ${JSON.stringify(result.blocks)}, expected ${JSON.stringify(blocks)}`);
  const stop = want.refusal ? 'refusal' : 'end_turn';
  if (result.stopReason !== stop) found.push(`${what}: stop_reason ${result.stopReason}, expected ${stop}`);
  const serving = want.started.at(-1);
  if (!plan.stream && result.model !== serving) found.push(`${what}: model ${result.model}, the answering model is ${serving}`);
  const own = usageOf(serving, wordsOf(plan, serving).length);
  if (result.usage.input_tokens !== own.prompt_tokens || result.usage.output_tokens !== own.completion_tokens) found.push(`${what}: usage ${result.usage.input_tokens}/${result.usage.output_tokens}, the answering model's is ${own.prompt_tokens}/${own.completion_tokens}`);
  const iterations = want.started.length > 1 ? want.started.map((m, i) => [i === want.started.length - 1 ? 'fallback_message' : 'message', m, usageOf(m, wordsOf(plan, m).length).prompt_tokens]) : undefined;
  const got = result.usage.iterations?.map((it) => [it.type, it.model, it.input_tokens]);
  if (!isDeepStrictEqual(got, iterations)) found.push(`${what}: usage.iterations ${JSON.stringify(got)}, expected ${JSON.stringify(iterations)}`);
}

/** After a hang-up: no model asked once the gateway has cut one of the request's calls. */
function judgeHangUp(plan, found) {
  if (plan.hungUpAt === undefined) return;
  const cut = Math.min(...plan.asked.filter((a) => !a.answered && a.closed > plan.hungUpAt).map((a) => a.closed));
  for (const a of plan.asked) if (a.arrived > cut + 5) found.push(`plan ${plan.n}: ${a.model} was asked ${Math.round(a.arrived - cut)} ms after the gateway cut another call of the request`);
  for (const a of plan.asked) if (a.closed === undefined) found.push(`plan ${plan.n}: the call to ${a.model} was never closed after the hang-up`);
}

/** A Messages answer: its blocks as text ("[fallback a→b]" for a boundary), stop reason, model, usage. */
function readAnswer(plan, status, raw) {
  const modelOf = (m) => m?.replace(/^up-/, '');
  if (!plan.stream) {
    const body = JSON.parse(raw);
    if (status !== 200) return { status, error: body.error };
    const blocks = body.content.map((b) => (b.type === 'fallback' ? `[fallback ${b.from.model}→${b.to.model}]` : b.text));
    return { status, blocks, stopReason: body.stop_reason, model: modelOf(body.model), usage: body.usage };
  }
  if (status !== 200) return { status, error: JSON.parse(raw).error };
  const result = { status, blocks: [] };
  for (const e of sseEvents(raw)) {
    const data = JSON.parse(e.data);
    if (e.event === 'content_block_start') {
      const b = data.content_block;
      result.blocks.push(b.type === 'fallback' ? `[fallback ${b.from.model}→${b.to.model}]` : (b.text ?? ''));
    }
    if (e.event === 'content_block_delta' && data.delta.type === 'text_delta') result.blocks[result.blocks.length - 1] += data.delta.text;
    if (e.event === 'message_delta') Object.assign(result, { stopReason: data.delta.stop_reason, usage: data.usage });
    if (e.event === 'message_stop') result.stopped = true;
    if (e.event === 'error') result.error = data.error;
  }
  if (!result.stopped && !result.error) problems.push(`plan ${plan.n}: a stream that just stopped: ${raw.slice(-600)}`);
  return result;
}

async function one(url, n) {
  const plan = makePlan(n);
  plans.set(n, plan);
  const signal = hangUpSignal(plan);
  const body = { model: 'm0', max_tokens: 50, stream: plan.stream, messages: [{ role: 'user', content: `plan:${n}` }], fallbacks: plan.chain.map((model) => ({ model })) };
  try {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body), signal });
    plan.requestId = res.headers.get('x-request-id') ?? res.headers.get('request-id');
    const raw = await res.text();
    plan.answered = true;
    return readAnswer(plan, res.status, raw);
  } catch (err) {
    if (plan.hungUpAt !== undefined) return { hungUp: true };
    throw err;
  }
}

/** A row per model asked, the down one included; the log's totals against the metrics. */
async function accountingProblems(url) {
  const found = [];
  const rows = await requestLog(url, ADMIN);
  const ids = new Set(rows.map((r) => r.id));
  for (const plan of plans.values()) {
    if (plan.hungUpAt !== undefined || !plan.requestId) continue;
    const want = expected(plan);
    want.asked.forEach((m, i) => {
      const id = i === 0 ? plan.requestId : `${plan.requestId}-f${i}`;
      if (!ids.has(id)) found.push(`plan ${plan.n}: no request-log row ${id} for ${m}`);
    });
    const extra = `${plan.requestId}-f${want.asked.length}`;
    if (ids.has(extra)) found.push(`plan ${plan.n}: a request-log row ${extra} for a model that should not have been asked`);
  }
  found.push(...(await logAgainstMetrics(rows, [url])));
  return found;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-fallbacks-'));
  const upstream = await startJsonServer(answer);
  const model = (id) => `  - { id: ${id}, provider: openai, model: up-${id}, pricing: { input: 1, output: 2 }, baseUrl: 'http://127.0.0.1:${upstream.port}/v1' }\n`;
  const config = path.join(dir, 'switchboard.yaml');
  fs.writeFileSync(
    config,
    `server:\n  logLevel: error\nrouter:\n  retries: 0\n  breaker: { failureThreshold: 0 }\ndefaultModel: m0\nmodels:\n${MODELS.map(model).join('')}` +
      `  - { id: ${DOWN}, provider: openai, model: gone, pricing: { input: 1, output: 2 }, baseUrl: 'http://127.0.0.1:9/v1' }\n`,
  );
  const gateway = await startGateway(config, dir, { SWITCHBOARD_ADMIN_KEY: ADMIN });
  try {
    const t0 = performance.now();
    const results = await crowd(REQUESTS, CONCURRENCY, (n) => one(gateway.url, n));
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    await new Promise((r) => setTimeout(r, 200));
    const ends = {};
    for (const [n, result] of results) {
      const plan = plans.get(n);
      if (!result.hungUp) judge(plan, result, problems);
      judgeHangUp(plan, problems);
      const key = result.hungUp ? 'hung up' : result.error ? 'error' : `${result.stopReason}${result.blocks.some((b) => b.startsWith('[fallback')) ? ' after a fallback' : ''}`;
      ends[key] = (ends[key] ?? 0) + 1;
    }
    problems.push(...(await accountingProblems(gateway.url)));
    const asked = [...plans.values()].reduce((sum, p) => sum + p.asked.length, 0);
    console.log(`${REQUESTS} requests in ${seconds} s: ${JSON.stringify(ends)}; ${asked} model calls; ${problems.length} broken promise(s)`);
    for (const p of problems.slice(0, 40)) console.log(`  ${p}`);
  } finally {
    gateway.child.kill();
    closeServers(upstream);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return problems.length;
}

runCheck(main);
