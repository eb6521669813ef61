#!/usr/bin/env node
// What each dialect's route costs on top of the core: the same streamed answer (bench/upstream.mjs,
// CHUNKS chunks) requested through each dialect's streaming route, rendered from the same canonical
// parts: chat completions, Anthropic's Messages API, organisation chat (seed 000) and Eden AI's raw
// text stream; the routes take turns (order reversed every other run), RUNS runs of DURATION seconds.
// Reports requests/s and the gateway's CPU time per request (utime + stime from /proc, which the
// VM's speed swings move less than requests/s).
//
// The gateway is pinned to core 1, the upstream and autocannon to core 0 (as bench/overhead.mjs).
// Usage: node bench/dialects.mjs   (env: RUNS=6 DURATION=4 WARMUP=6 CONNECTIONS=32)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import autocannon from 'autocannon';

const RUNS = Number(process.env.RUNS ?? 6);
const DURATION = Number(process.env.DURATION ?? 4);
const WARMUP = Number(process.env.WARMUP ?? 6);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

function start(core, args, pattern) {
  const child = spawn('taskset', ['-c', String(core), process.execPath, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = pattern.exec(line);
      if (match) resolve({ child, match });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
}

/** CPU milliseconds a process has used (utime + stime, in clock ticks of 10 ms). */
function cpuMs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-dialects-'));
  const upstream = await start(0, ['bench/upstream.mjs'], /^(\d+)$/);
  const config = path.join(dir, 'switchboard.yaml');
  fs.writeFileSync(config, `server:\n  logLevel: warn\ndefaultModel: bench\nmodels:\n  - id: bench\n    provider: openai\n    model: bench-upstream\n    baseUrl: http://127.0.0.1:${upstream.match[1]}/v1\n`);
  // Started as `npm start` starts it (docs/operations.md).
  const gateway = await start(1, ['--max-semi-space-size=64', 'bin/switchboard.js', 'serve', '--config', config, '--data-dir', dir, '--port', '0', '--no-warm-up'], /listening on (http:\/\/\S+)/);
  const url = gateway.match[1];
  const request = { model: 'bench', stream: true, messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 };
  const routes = {
    '/v1/chat/completions': JSON.stringify(request),
    '/v1/messages': JSON.stringify(request),
    '/api/v3/organizations/default/ai/chat/stream': JSON.stringify({ modelId: 'bench', messages: request.messages, maxTokens: 16 }),
    '/v2/text/chat/stream': JSON.stringify({ providers: 'bench', text: 'hi', max_tokens: 16 }),
  };
  const load = (route, duration) =>
    autocannon({ url: url + route, method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: routes[route], connections: CONNECTIONS, duration });
  try {
    for (const route of Object.keys(routes)) await load(route, WARMUP);
    const results = Object.fromEntries(Object.keys(routes).map((r) => [r, { rps: [], cpuUsPerRequest: [] }]));
    for (let run = 0; run < RUNS; run++) {
      for (const route of run % 2 ? Object.keys(routes).reverse() : Object.keys(routes)) {
        const before = cpuMs(gateway.child.pid);
        const res = await load(route, DURATION);
        const used = cpuMs(gateway.child.pid) - before;
        if (res.non2xx || res.errors) throw new Error(`${route}: ${res.non2xx} non-2xx answers, ${res.errors} errors`);
        results[route].rps.push(Math.round(res.requests.average));
        results[route].cpuUsPerRequest.push(Math.round((used / res.requests.total) * 1000));
      }
    }
    const out = { date: new Date().toISOString(), machine: `${os.cpus()[0]?.model} × ${os.cpus().length}, Node ${process.version}`, settings: { RUNS, DURATION, WARMUP, CONNECTIONS, chunksPerStream: Number(process.env.CHUNKS ?? 20) }, results };
    fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(root, 'bench', 'results', 'dialects.json'), JSON.stringify(out, null, 2));
    console.log('| route (streamed) | requests/s: median (runs) | gateway CPU µs per request: median (runs) |');
    console.log('|---|---|---|');
    for (const [route, r] of Object.entries(results)) {
      console.log(`| ${route} | ${Math.round(median(r.rps))} (${r.rps.join(', ')}) | ${Math.round(median(r.cpuUsPerRequest))} (${r.cpuUsPerRequest.join(', ')}) |`);
    }
  } finally {
    gateway.child.kill();
    upstream.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
