#!/usr/bin/env node
// Does a graceful stop keep its promise (docs/operations.md, "Stopping") under a crowd? A gateway
// with `shutdownGraceSeconds: 1` gets REQUESTS requests on every dialect, buffered and streamed,
// some on a model that answers in ≈ 0.3 s and some on one that takes ≈ 3 s, plus async Messages
// runs with an observer each; SIGTERM comes while they run, and new requests keep coming after it.
// Each answer must be one of: complete (the dialect's own end: [DONE], message_stop, done, the
// whole JSON); ended by the dialect's in-stream error saying the server is shutting down
// (`server_shutting_down`; on the Eden text stream its error line and an incomplete body); a 503
// `server_shutting_down` with Retry-After; or, for a request sent after the signal, a refused
// connection or a 503. Never a stream that just stops. The process must exit 0 within the grace
// period and a second. Exits 1 on any broken promise, each printed.
//
// Usage: node bench/shutdown-chaos.mjs   (env: REQUESTS=60 SEED=1)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createParser } from 'eventsource-parser';
import { closeServers, runCheck, seededRandom, startGateway } from './lib/gateways.mjs';
import { answerWithWords, startJsonServer } from './lib/word-upstream.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 60);
const { random, pick, between } = seededRandom(Number(process.env.SEED ?? 1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The upstream: `max_tokens` words, one every 10 ms (`quick-upstream`) or 100 ms (`slow-upstream`). */
const startUpstream = () => startJsonServer((_req, res, body) => answerWithWords(res, body, { interval: (model) => (model === 'slow-upstream' ? 100 : 10) }));

/** How the connections of requests that got no answer ended, by error code. */
const refusals = {};

const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
const user = [{ role: 'user', content: 'hi' }];
const SHUTTING = /server_shutting_down|shutting down|shut down/i;

/** Reads a body to its end; `{text, cut}` where cut means the connection ended it without a clean end. */
async function readAll(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, cut: false };
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return { text, cut: true };
  }
}

function sseEvents(text) {
  const events = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  parser.feed(text);
  return events;
}

/** Each route: the request, and how to judge a 200 answer's body: 'complete', 'shutdown' (ended by the in-stream error) or a description of what is wrong. */
const routes = [
  {
    name: 'chat completions stream',
    path: '/v1/chat/completions',
    body: (model) => ({ model, messages: user, max_tokens: 30, stream: true }),
    judge({ text, cut }) {
      const events = sseEvents(text);
      if (cut || events.at(-1)?.data !== '[DONE]') return 'no [DONE]';
      const error = events.map((e) => (e.data === '[DONE]' ? undefined : JSON.parse(e.data))).find((c) => c?.error);
      if (error) return SHUTTING.test(JSON.stringify(error)) ? 'shutdown' : `error chunk ${JSON.stringify(error)}`;
      return 'complete';
    },
  },
  {
    name: 'messages stream',
    path: '/v1/messages',
    body: (model) => ({ model, messages: user, max_tokens: 30, stream: true }),
    judge: ({ text, cut }) => judgeMessagesEvents(sseEvents(text), cut),
  },
  {
    name: 'organisation stream',
    path: '/api/v3/organizations/default/ai/chat/stream',
    body: (model) => ({ modelId: model, messages: user, maxTokens: 30 }),
    judge({ text, cut }) {
      const last = sseEvents(text).at(-1);
      if (cut) return 'cut';
      if (last?.event === 'done') return 'complete';
      if (last?.event === 'error') return SHUTTING.test(last.data) ? 'shutdown' : `error event ${last.data}`;
      return `ends with ${last?.event}`;
    },
  },
  {
    name: 'eden stream',
    path: '/v2/text/chat/stream',
    body: (model) => ({ providers: model, text: 'hi', max_tokens: 30 }),
    judge({ text, cut }) {
      const lastLine = text.split('\n').filter(Boolean).at(-1) ?? '';
      if (!cut) return /^\{"error"/.test(lastLine) ? 'an error line but a clean end' : 'complete';
      return SHUTTING.test(lastLine) ? 'shutdown' : `cut without an error line: ${JSON.stringify(text.slice(-80))}`;
    },
  },
  ...[
    ['chat completions', '/v1/chat/completions', (model) => ({ model, messages: user, max_tokens: 30 }), (b) => b.choices?.[0]?.finish_reason],
    ['messages', '/v1/messages', (model) => ({ model, messages: user, max_tokens: 30 }), (b) => b.stop_reason],
    ['organisation', '/api/v3/organizations/default/ai/chat', (model) => ({ modelId: model, messages: user, maxTokens: 30 }), (b) => b.finishReason],
    ['eden', '/v2/text/chat', (model) => ({ providers: model, text: 'hi', max_tokens: 30 }), (b, model) => b[model]?.status === 'success'],
  ].map(([name, p, body, finished]) => ({
    name,
    path: p,
    body,
    judge({ text, cut }, model) {
      if (cut) return 'cut';
      try {
        return finished(JSON.parse(text), model) ? 'complete' : `unfinished ${text.slice(0, 200)}`;
      } catch {
        return `not JSON: ${text.slice(0, 80)}`;
      }
    },
  })),
];

function judgeMessagesEvents(events, cut) {
  if (cut) return 'cut';
  const last = events.at(-1);
  if (last?.event === 'message_stop') return 'complete';
  if (last?.event === 'error') return SHUTTING.test(last.data) ? 'shutdown' : `error event ${last.data}`;
  return `ends with ${last?.event}`;
}

/** One request; resolves with its outcome: complete, shutdown, refused, 503, or what is wrong. */
async function one(url, route, model, afterSignal) {
  let res;
  try {
    res = await fetch(url + route.path, { method: 'POST', headers, body: JSON.stringify(route.body(model)) });
  } catch (err) {
    const code = err.cause?.code ?? err.cause?.message ?? err.message;
    refusals[code] = (refusals[code] ?? 0) + 1;
    return afterSignal() ? 'refused' : `refused before the signal: ${code}`;
  }
  const body = await readAll(res);
  if (res.status === 503) {
    if (!SHUTTING.test(body.text)) return `503 without server_shutting_down: ${body.text.slice(0, 120)}`;
    return res.headers.get('retry-after') ? '503' : '503 without Retry-After';
  }
  if (res.status !== 200) return `status ${res.status}: ${body.text.slice(0, 160)}`;
  return route.judge(body, model);
}

/** An async run and one observer; the observer's stream must end with message_stop or an error event. */
async function asyncRun(url, model) {
  const started = await fetch(`${url}/v1/messages/async`, { method: 'POST', headers, body: JSON.stringify({ model, messages: user, max_tokens: 30 }) }).catch(() => undefined);
  if (!started) return 'refused';
  if (started.status !== 202) return started.status === 503 ? '503' : `start answered ${started.status}`;
  const { message_id: id } = await started.json();
  const res = await fetch(`${url}/v1/messages/async/${id}/events`, { headers }).catch(() => undefined);
  if (!res) return 'refused';
  if (res.status !== 200) return res.status === 503 ? '503' : `observe answered ${res.status}`;
  const { text, cut } = await readAll(res);
  const events = sseEvents(text);
  // A run still queued stays queued for the next start: its observer's stream just ends, as an
  // SSE stream may (an EventSource reconnects).
  if (events.length === 0 && !cut) return 'async observer closed, run queued';
  const verdict = judgeMessagesEvents(events, cut);
  return verdict === 'complete' ? 'async complete' : verdict === 'shutdown' ? 'async shutdown' : `async: ${verdict}`;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-shutdown-'));
  const upstream = await startUpstream();
  const config = path.join(dir, 'switchboard.yaml');
  const model = (id) => `  - id: ${id}\n    provider: openai\n    model: ${id}-upstream\n    baseUrl: http://127.0.0.1:${upstream.port}/v1\n`;
  fs.writeFileSync(config, `server:\n  logLevel: warn\n  shutdownGraceSeconds: 1\nasync:\n  concurrency: 4\ndefaultModel: quick\nmodels:\n${model('quick')}${model('slow')}`);
  const problems = [];
  try {
    const gateway = await startGateway(config, dir);
    let signalledAt;
    const afterSignal = () => signalledAt !== undefined;
    const exited = new Promise((resolve) => gateway.child.once('exit', (code) => resolve({ code, ms: performance.now() - signalledAt })));
    const outcomes = [];
    const record = (label) => (outcome) => outcomes.push({ label, outcome });
    const crowd = Array.from({ length: REQUESTS }, async () => {
      await sleep(between(0, 250));
      const route = pick(routes);
      const model = random() < 0.5 ? 'quick' : 'slow';
      const label = `${route.name} on ${model}${afterSignal() ? ' (sent after the signal)' : ''}`;
      if (random() < 0.15) return asyncRun(gateway.url, model).then(record(`async run on ${model}`));
      return one(gateway.url, route, model, afterSignal).then(record(label));
    });
    // Late arrivals: requests sent once the signal has gone.
    const late = (async () => {
      while (!afterSignal()) await sleep(10);
      for (let i = 0; i < 10; i++) {
        const route = pick(routes);
        await one(gateway.url, route, 'quick', afterSignal).then(record(`${route.name} (sent after the signal)`));
        await sleep(between(20, 80));
      }
    })();
    await sleep(300);
    signalledAt = performance.now();
    gateway.child.kill('SIGTERM');
    await Promise.all([...crowd, late]);
    const { code, ms } = await exited;
    if (code !== 0) problems.push(`the gateway exited with ${code}`);
    if (ms > 2000) problems.push(`the gateway took ${Math.round(ms)} ms to exit after SIGTERM (grace 1 s)`);
    const allowed = new Set(['complete', 'shutdown', 'refused', '503', 'async complete', 'async shutdown', 'async observer closed, run queued']);
    const tally = {};
    for (const { label, outcome } of outcomes) {
      const key = allowed.has(outcome) ? outcome : 'broken';
      tally[key] = (tally[key] ?? 0) + 1;
      if (!allowed.has(outcome)) problems.push(`${label}: ${outcome}`);
    }
    console.log(`${outcomes.length} requests, SIGTERM at 300 ms, exit ${code} after ${Math.round(ms)} ms: ${JSON.stringify(tally)} (no answer: ${JSON.stringify(refusals)}); ${problems.length} broken promise(s)`);
    for (const p of problems) console.log(`  ${p}`);
  } finally {
    closeServers(upstream);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return problems.length;
}

runCheck(main);
