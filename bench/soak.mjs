#!/usr/bin/env node
// Does the gateway keep what it should let go? ROUNDS rounds of mixed traffic on every dialect
// (buffered and streamed answers, bad requests answered 400, and clients that hang up after the
// first chunk of a slow stream); after each round, once nothing is in flight, the gateway runs a
// full garbage collection (bench/soak-hook.mjs) and reports what survived: heap, RSS and its open
// handles (sockets, timers). A leak grows with every round; a cache or a warming JIT levels off.
// Also checks that every hung-up client's upstream stream was closed, not read to its end.
//
// With LOCAL_MODEL=<a GGUF file>, both models are that model on the local provider (node-llama-cpp)
// instead: JSON-schema and forced-tool requests join the mix, and a round ends when no sequence
// is active or queued.
//
// With PROVIDER=anthropic or bedrock, both models are served by that provider from the test suite's
// loopback fakes (test/helpers): the slow one sends its first events and then stalls, so only the
// gateway cancelling it on a hang-up lets a round end.
//
// With SHARED_STORE=1 the gateway keeps its state in PostgreSQL and Redis (a fresh schema and key
// prefix, dropped at the end; URLs from SWITCHBOARD_TEST_POSTGRES_URL / SWITCHBOARD_TEST_REDIS_URL,
// default the local services), as a scale-out process does.
//
// Usage: node bench/soak.mjs   (env: ROUNDS=8 DURATION=10 CONNECTIONS=16 HANGUPS=200 LOCAL_MODEL= PROVIDER= SHARED_STORE=)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import autocannon from 'autocannon';
import { dropSharedStore, root, sharedStore } from './lib/gateways.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 8);
const DURATION = Number(process.env.DURATION ?? 10);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const HANGUPS = Number(process.env.HANGUPS ?? 200);
const LOCAL_MODEL = process.env.LOCAL_MODEL ? path.resolve(process.env.LOCAL_MODEL) : undefined;
const PROVIDER = process.env.PROVIDER ?? (LOCAL_MODEL ? 'local' : 'openai');
const SHARED = process.env.SHARED_STORE ? sharedStore('soak') : undefined;

/** Starts a node process; resolves on the first stdout line matching `pattern`. Its stderr lines go to `onStderr`. */
function startNode(args, pattern, onStderr = (line) => process.stderr.write(`${line}\n`)) {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  readline.createInterface({ input: child.stderr }).on('line', onStderr);
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = pattern.exec(line);
      if (match) resolve({ child, match });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
}

/** An upstream that streams a chunk every 10 ms (50 of them): long enough for a client to hang up mid-stream. */
function startSlowUpstream() {
  const counts = { open: 0, completed: 0, cut: 0 };
  const chunk = (delta, finish = null) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-slow', object: 'chat.completion.chunk', created: 1, model: 'slow-upstream', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  const server = http.createServer((req, res) => {
    req.resume();
    counts.open++;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk({ role: 'assistant', content: '' }));
    let sent = 0;
    const timer = setInterval(() => {
      if (++sent <= 50) return void res.write(chunk({ content: `s${sent} ` }));
      clearInterval(timer);
      res.end(`${chunk({}, 'stop')}data: [DONE]\n\n`);
    }, 10);
    res.once('close', () => {
      clearInterval(timer);
      counts.open--;
      if (res.writableFinished) counts.completed++;
      else counts.cut++;
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, counts, port: server.address().port })));
}

const json = (body) => JSON.stringify(body);
const messages = [{ role: 'user', content: 'hi' }];

let sessions = 0;

/** One of each request the round sends, cycled through by every connection. */
function mixedRequests() {
  const post = (p, body, headers = {}) => ({ method: 'POST', path: p, headers: { 'content-type': 'application/json', ...headers }, body: json(body) });
  const anthropic = { 'anthropic-version': '2023-06-01' };
  const schema = { type: 'object', properties: { answer: { type: 'string', maxLength: 8 } }, required: ['answer'], additionalProperties: false };
  const tool = { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string', maxLength: 8 } }, required: ['q'] } } };
  const constrained = [
    post('/v1/chat/completions', { model: 'bench', messages, max_tokens: 24, response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } }),
    post('/v1/chat/completions', { model: 'bench', messages, max_tokens: 24, stream: true, tools: [tool], tool_choice: { type: 'function', function: { name: 'lookup' } } }),
  ];
  return [
    ...(LOCAL_MODEL ? constrained : []),
    post('/v1/chat/completions', { model: 'bench', messages, max_tokens: 16 }),
    post('/v1/chat/completions', { model: 'bench', messages, max_tokens: 16, stream: true, stream_options: { include_usage: true } }),
    post('/v1/messages', { model: 'bench', messages, max_tokens: 16 }, anthropic),
    post('/v1/messages', { model: 'bench', messages, max_tokens: 16, stream: true }, anthropic),
    post('/api/v3/organizations/default/ai/chat', { modelId: 'bench', messages, maxTokens: 16 }),
    post('/api/v3/organizations/default/ai/chat/stream', { modelId: 'bench', messages, maxTokens: 16 }),
    post('/v2/text/chat', { providers: 'bench', text: 'hi', max_tokens: 16 }),
    post('/v2/text/chat/stream', { providers: 'bench', text: 'hi', max_tokens: 16 }),
    // A new session each time (its turns are stored), and an async run (queued, run in the background).
    { ...post('/v1/chat/completions', { model: 'bench', messages, max_tokens: 16 }), setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-session-id': `soak-${++sessions}` } }) },
    post('/v1/messages/async', { model: 'bench', messages, max_tokens: 16 }, anthropic),
    // Bad input: answered 400 in the dialect's shape.
    post('/v1/chat/completions', { model: 'bench', messages, max_tokens: 16, temperature: 9 }),
    post('/v1/messages', { model: 'bench', messages: [] }, anthropic),
    { method: 'GET', path: '/v1/models' },
  ];
}

const rotated = (list, by) => [...list.slice(by % list.length), ...list.slice(0, by % list.length)];

/** Clients that read the first chunk of a slow stream, then hang up; `concurrency` at a time. */
async function hangUps(url, total, concurrency = 8) {
  const routes = [
    ['/v1/chat/completions', { model: 'slow', messages, max_tokens: 64, stream: true }],
    ['/v1/messages', { model: 'slow', messages, max_tokens: 64, stream: true }],
  ];
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < total) {
      const [route, body] = routes[next++ % routes.length];
      const controller = new AbortController();
      try {
        const res = await fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: json(body), signal: controller.signal });
        if (!res.ok) failed++;
        const reader = res.body.getReader();
        await reader.read();
        controller.abort();
      } catch (err) {
        if (err.name !== 'AbortError') failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return failed;
}

/** A metric's value; `name` may carry labels as Prometheus writes them. A series not written yet is 0. */
async function metric(url, name) {
  const text = await fetch(`${url}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** Polls until `check` holds (a benchmark, not a test: there is no event to await across processes). */
async function until(check, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const FAKE_AWS = { accessKeyId: 'AKIDSOAKBENCH', secretAccessKey: 'soak/fake+secret' };

/** For PROVIDER=anthropic|bedrock: the test suite's fake upstream, one answering and one that stalls mid-stream. */
async function startFakes() {
  if (PROVIDER === 'anthropic') {
    const { startFakeAnthropic } = await import('../test/helpers/fake-anthropic-upstream.mjs');
    process.env.SOAK_ANTHROPIC_KEY = 'sk-ant-soak';
    const [bench, slow] = await Promise.all([startFakeAnthropic({ apiKey: 'sk-ant-soak' }), startFakeAnthropic({ apiKey: 'sk-ant-soak' })]);
    slow.setDefault({ fixture: 'text.sse', fault: 'stall-after', faultAfter: 4 });
    return { bench, slow };
  }
  if (PROVIDER === 'bedrock') {
    const { startFakeBedrock } = await import('../test/helpers/fake-bedrock-upstream.mjs');
    process.env.SOAK_BEDROCK_SECRET = FAKE_AWS.secretAccessKey;
    const [bench, slow] = await Promise.all([startFakeBedrock(FAKE_AWS), startFakeBedrock(FAKE_AWS)]);
    slow.setDefault({ fixture: 'text.json', fault: 'stall-after', faultAfter: 2 });
    return { bench, slow };
  }
  return {};
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-soak-'));
  const upstream = await startNode(['bench/upstream.mjs'], /^(\d+)$/);
  const slow = await startSlowUpstream();
  const config = path.join(dir, 'switchboard.yaml');
  const fakes = await startFakes();
  const model = (id, port) => {
    if (PROVIDER === 'local') return `  - id: ${id}\n    provider: local\n    model: ${JSON.stringify(LOCAL_MODEL)}\n    contextLength: 2048\n`;
    if (PROVIDER === 'anthropic') return `  - id: ${id}\n    provider: anthropic\n    model: claude-sonnet-4-5\n    baseUrl: ${fakes[id].url}\n    apiKeyEnv: SOAK_ANTHROPIC_KEY\n`;
    if (PROVIDER === 'bedrock') {
      return `  - id: ${id}\n    provider: bedrock\n    model: anthropic.claude-3-7-sonnet-20250219-v1:0\n    baseUrl: ${fakes[id].url}\n    region: eu-west-3\n    options:\n      accessKeyId: ${FAKE_AWS.accessKeyId}\n      secretAccessKeyEnv: SOAK_BEDROCK_SECRET\n`;
    }
    return `  - id: ${id}\n    provider: openai\n    model: ${id}-upstream\n    baseUrl: http://127.0.0.1:${port}/v1\n`;
  };
  const local = LOCAL_MODEL ? 'local:\n  parallel: 4\n  queueLimit: 256\n' : '';
  const store = SHARED?.config ?? '';
  fs.writeFileSync(config, `server:\n  logLevel: warn\n${store}${local}defaultModel: bench\nmodels:\n${model('bench', upstream.match[1])}${model('slow', slow.port)}`);
  const reports = [];
  let onReport;
  const gateway = await startNode(
    ['--max-semi-space-size=64', '--expose-gc', '--import', './bench/soak-hook.mjs', 'bin/switchboard.js', 'serve', '--config', config, '--data-dir', dir, '--port', '0', '--no-warm-up'],
    /listening on (http:\/\/\S+)/,
    (line) => (line.startsWith('SOAK ') ? onReport?.(JSON.parse(line.slice(5))) : process.stderr.write(`${line}\n`)),
  );
  const url = gateway.match[1];
  const survivors = () =>
    new Promise((resolve) => {
      onReport = resolve;
      gateway.child.kill('SIGUSR2');
    });
  try {
    const rounds = [];
    for (let round = 0; round <= ROUNDS; round++) {
      let load = { requests: { total: 0 }, non2xx: 0, errors: 0 };
      let failedHangUps = 0;
      // Round 0 only measures the gateway at rest, before any request.
      if (round > 0) {
        [load, failedHangUps] = await Promise.all([
          // Each connection goes through the mix in order from its start; each round starts it at
          // another request, so slow requests at the front do not keep the rest out of short rounds.
          autocannon({ url, connections: CONNECTIONS, duration: DURATION, requests: rotated(mixedRequests(), round) }),
          hangUps(url, HANGUPS),
        ]);
      }
      const idle = async () =>
        slow.counts.open === 0 &&
        (await metric(url, 'switchboard_async_queue_depth')) === 0 &&
        (await metric(url, 'switchboard_chat_in_flight')) === 0 &&
        (await metric(url, 'switchboard_provider_stat{provider="local",stat="local_active_sequences"}')) === 0 &&
        (await metric(url, 'switchboard_provider_stat{provider="local",stat="local_queue_depth"}')) === 0;
      const waited = performance.now();
      await until(idle, 'requests in flight and queued async runs to end', 60_000);
      const idleAfterMs = Math.round(performance.now() - waited);
      // The fakes record every request; the benchmark process need not keep them.
      for (const fake of Object.values(fakes)) fake.requests.length = 0;
      const after = await survivors();
      rounds.push({ round, idleAfterMs, requests: load.requests.total, non2xx: load.non2xx, errors: load.errors, failedHangUps, upstreamCut: slow.counts.cut, upstreamCompleted: slow.counts.completed, ...after });
      const mb = (b) => (b / 2 ** 20).toFixed(1);
      console.log(`round ${round}: ${load.requests.total} requests (${load.non2xx} non-2xx, ${load.errors} errors), hang-ups failed ${failedHangUps}, idle ${idleAfterMs} ms after; after GC heap ${mb(after.heapUsed)} MB, rss ${mb(after.rss)} MB, handles ${JSON.stringify(after.resources)}${PROVIDER !== 'openai' ? '' : `; slow upstream: ${slow.counts.cut} cut, ${slow.counts.completed} read to the end`}`);
    }
    const out = { date: new Date().toISOString(), machine: `${os.cpus()[0]?.model} × ${os.cpus().length}, Node ${process.version}`, settings: { ROUNDS, DURATION, CONNECTIONS, HANGUPS, PROVIDER, sharedStore: Boolean(SHARED) }, rounds };
    fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(root, 'bench', 'results', 'soak.json'), JSON.stringify(out, null, 2));
  } finally {
    gateway.child.kill();
    upstream.child.kill();
    slow.server.close();
    slow.server.closeAllConnections();
    await Promise.all(Object.values(fakes).map((fake) => fake.close()));
    fs.rmSync(dir, { recursive: true, force: true });
    if (SHARED) await dropSharedStore(SHARED);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
