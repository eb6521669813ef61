#!/usr/bin/env node
// Gateway overhead: the same loopback OpenAI-compatible upstream called directly, through
// Switchboard and through the Portkey gateway, buffered and streaming; and through a bare Node
// proxy (bench/floor-proxy.mjs) that does nothing but forward, to show what any Node gateway adds
// on this machine.
//
// Method (../docs/benchmarks.md): the gateway under test is pinned to core 1, the upstream and
// the load generator (this process, which re-runs itself pinned, and autocannon) to core 0; a fresh
// gateway per run; warm-up (WARMUP seconds of load per mode: the JIT needs several seconds, and a
// short warm-up measured the first runs 30 % slow); RUNS runs; medians and ranges.
//   throughput: autocannon, CONNECTIONS connections for DURATION seconds
//   latency:    after the throughput phases, LATENCY_WARMUP seconds of unmeasured sequential
//               requests per mode (when autocannon's connections close, V8 deoptimises dozens of
//               functions in any Node gateway, and re-optimising them on the gateway's core
//               while latency is measured put TurboFan's compile jobs into the tail), then
//               SEQUENTIAL keep-alive requests one after another (c = 1); total time for
//               buffered, time to first byte for streams, in 10 blocks alternating with as many
//               requests straight to the upstream; "added" = gateway minus those direct ones.
//
// Usage: node bench/overhead.mjs
//   (env: RUNS=5 DURATION=5 WARMUP=8 CONNECTIONS=32 LATENCY_WARMUP=4 SEQUENTIAL=2000)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Pool } from 'undici';

const RUNS = Number(process.env.RUNS ?? 5);
const DURATION = Number(process.env.DURATION ?? 5);
const WARMUP = Number(process.env.WARMUP ?? 8);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32);
const LATENCY_WARMUP = Number(process.env.LATENCY_WARMUP ?? 4);
const SEQUENTIAL = Number(process.env.SEQUENTIAL ?? 2000);
const BLOCKS = 10;
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    // os.cpus(), not availableParallelism(): the latter counts only the cores this process may use,
    // and the re-run below is itself pinned to one.
    return os.cpus().length >= 2;
  } catch {
    return false;
  }
})();
const pinned = (core, cmd, args) => (hasTaskset ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args]);

function start(core, cmd, args, env, readyPattern) {
  const [c, a] = pinned(core, cmd, args);
  const child = spawn(c, a, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const match = readyPattern.exec(line);
      if (match) resolve({ child, match });
    });
    child.once('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** utime+stime of a process in milliseconds (Linux /proc). */
function cpuMs(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

function body(stream) {
  return JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });
}

async function autocannon(url, headers, stream, duration = DURATION) {
  const args = ['node_modules/.bin/autocannon', '-c', String(CONNECTIONS), '-d', String(duration), '-m', 'POST', '-j', '-b', body(stream), '-H', 'content-type=application/json'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  const [c, a] = pinned(0, process.execPath, args);
  const out = execFileSync(c, a, { cwd: root, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const result = JSON.parse(out);
  return { rps: result.requests.average, errors: result.errors + result.non2xx, total: result.requests.total };
}

/** One request on a 1-connection pool: total time (buffered) or time to first byte (stream). */
async function timedRequest(pool, headers, stream) {
  const t0 = performance.now();
  const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', ...headers }, body: body(stream) });
  let first;
  for await (const _chunk of res.body) first ??= performance.now();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return stream ? first - t0 : performance.now() - t0;
}

const quantiles = (times) => {
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: q(0.5), p99: q(0.99) };
};

/** Unmeasured sequential requests for `seconds`: the c = 1 warm-up. */
async function sequentialFor(origin, headers, stream, seconds) {
  const pool = new Pool(origin, { connections: 1, pipelining: 1 });
  const until = performance.now() + seconds * 1000;
  try {
    while (performance.now() < until) await timedRequest(pool, headers, stream);
  } finally {
    await pool.close();
  }
}

/**
 * `count` sequential requests to the target, in BLOCKS blocks alternating with as many straight to
 * the upstream, so "added" compares latencies taken in the same minutes (the VM's speed drifts).
 */
async function sequential(target, directOrigin, stream, count) {
  // Direct first in each block, then the target; the target's lane is always the last.
  const lanes = [directOrigin && { origin: directOrigin, headers: {} }, { origin: target.url, headers: target.headers }]
    .filter(Boolean)
    .map((lane) => ({ ...lane, pool: new Pool(lane.origin, { connections: 1, pipelining: 1 }), times: [] }));
  try {
    for (let block = 0; block < BLOCKS; block++) {
      for (const lane of lanes) {
        for (let i = 0; i < count / BLOCKS; i++) lane.times.push(await timedRequest(lane.pool, lane.headers, stream));
      }
    }
  } finally {
    await Promise.all(lanes.map((lane) => lane.pool.close()));
  }
  const own = quantiles(lanes.at(-1).times);
  const direct = quantiles(lanes[0].times);
  return { ...own, addedP50: own.p50 - direct.p50, addedP99: own.p99 - direct.p99 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (xs) => [Math.min(...xs), Math.max(...xs)];

async function startSwitchboard(upstreamPort, dir) {
  const config = path.join(dir, 'bench.yaml');
  fs.writeFileSync(
    config,
    [
      'server:',
      '  logLevel: warn',
      'defaultModel: bench',
      'models:',
      '  - id: bench',
      '    provider: openai',
      '    model: bench-upstream',
      `    baseUrl: http://127.0.0.1:${upstreamPort}/v1`,
      '',
    ].join('\n'),
  );
  // Started as `npm start` starts it: with a 64 MB young generation (docs/operations.md).
  const args = ['--max-semi-space-size=64', 'bin/switchboard.js', 'serve', '--config', config, '--data-dir', dir, '--port', '0', '--no-warm-up'];
  const { child, match } = await start(1, process.execPath, args, {}, /listening on (http:\/\/\S+)/);
  return { child, url: match[1], headers: {} };
}

async function startPortkey(upstreamPort) {
  const port = 18787;
  const { child } = await start(1, process.execPath, ['node_modules/@portkey-ai/gateway/build/start-server.js', `--port=${port}`, '--headless'], {}, /./);
  // Portkey prints before it listens: wait for the port.
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `http://127.0.0.1:${upstreamPort}/v1`, authorization: 'Bearer bench' },
  };
}

async function startFloorProxy(upstreamPort) {
  const { child, match } = await start(1, process.execPath, ['bench/floor-proxy.mjs', `http://127.0.0.1:${upstreamPort}`], {}, /^(\d+)$/);
  return { child, url: `http://127.0.0.1:${match[1]}`, headers: {} };
}

async function measure(target, label, directOrigin) {
  const origin = target.url;
  const out = {};
  // Warm-up: JIT, connection pools, SQLite statements.
  await autocannon(`${origin}/v1/chat/completions`, target.headers, false, WARMUP);
  await autocannon(`${origin}/v1/chat/completions`, target.headers, true, WARMUP);
  for (const stream of [false, true]) {
    const mode = stream ? 'stream' : 'buffered';
    const cpuBefore = target.child ? cpuMs(target.child.pid) : NaN;
    const load = await autocannon(`${origin}/v1/chat/completions`, target.headers, stream);
    const cpuAfter = target.child ? cpuMs(target.child.pid) : NaN;
    out[mode] = { ...load, cpuPerRequestMs: (cpuAfter - cpuBefore) / load.total };
  }
  for (const stream of [false, true]) {
    const mode = stream ? 'stream' : 'buffered';
    await sequentialFor(origin, target.headers, stream, LATENCY_WARMUP);
    Object.assign(out[mode], await sequential(target, directOrigin, stream, SEQUENTIAL));
    const r = out[mode];
    process.stderr.write(`  ${label} ${mode}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}\n`);
  }
  return out;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-'));
  const upstream = await start(0, process.execPath, ['bench/upstream.mjs'], {}, /^(\d+)$/);
  const upstreamPort = Number(upstream.match[1]);
  const directOrigin = `http://127.0.0.1:${upstreamPort}`;
  const runs = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      process.stderr.write(`run ${run}/${RUNS}\n`);
      const result = {};
      result.direct = await measure({ url: directOrigin, headers: {} }, 'direct');
      const floor = await startFloorProxy(upstreamPort);
      try {
        result.floor = await measure(floor, 'floor', directOrigin);
      } finally {
        await stop(floor.child);
      }
      const sb = await startSwitchboard(upstreamPort, fs.mkdtempSync(path.join(dir, 'sb-')));
      try {
        result.switchboard = await measure(sb, 'switchboard', directOrigin);
      } finally {
        await stop(sb.child);
      }
      const pk = await startPortkey(upstreamPort);
      try {
        result.portkey = await measure(pk, 'portkey', directOrigin);
      } finally {
        await stop(pk.child);
      }
      runs.push(result);
    }
  } finally {
    await stop(upstream.child);
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const summary = {};
  for (const target of ['direct', 'floor', 'switchboard', 'portkey']) {
    for (const mode of ['buffered', 'stream']) {
      const rs = runs.map((r) => r[target][mode]);
      summary[`${target}/${mode}`] = {
        rps: median(rs.map((r) => r.rps)),
        rpsRange: range(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        addedP50: median(rs.map((r) => r.addedP50)),
        addedP99: median(rs.map((r) => r.addedP99)),
        cpuPerRequestMs: median(rs.map((r) => r.cpuPerRequestMs)),
        errors: rs.reduce((n, r) => n + r.errors, 0),
      };
    }
  }
  const report = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, pinned: ${hasTaskset}`,
    settings: { RUNS, DURATION, WARMUP, CONNECTIONS, LATENCY_WARMUP, SEQUENTIAL, chunksPerStream: Number(process.env.CHUNKS ?? 20) },
    summary,
    runs,
  };
  fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench', 'results', 'overhead.json'), JSON.stringify(report, null, 2));
  const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  console.log(`| target | mode | req/s (median) | req/s range | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU ms/req | errors |`);
  console.log(`|---|---|---:|---:|---:|---:|---:|---:|---:|---:|`);
  for (const [key, v] of Object.entries(summary)) {
    const [target, mode] = key.split('/');
    console.log(`| ${target} | ${mode} | ${f(v.rps, 0)} | ${f(v.rpsRange[0], 0)}–${f(v.rpsRange[1], 0)} | ${f(v.p50)} | ${f(v.p99)} | ${target === 'direct' ? '—' : f(v.addedP50)} | ${target === 'direct' ? '—' : f(v.addedP99)} | ${target === 'direct' ? '—' : f(v.cpuPerRequestMs, 3)} | ${v.errors} |`);
  }
  printRatios(runs);
}

function printRatios(runs) {
  for (const mode of ['buffered', 'stream']) {
    const ratios = runs.map((r) => r.switchboard[mode].rps / r.portkey[mode].rps);
    console.log(`switchboard / portkey req/s, ${mode}: median ${median(ratios).toFixed(2)}×, per run ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
  }
}

// The sequential client runs in this process: keep it (and its GC threads) off the gateway's core.
if (hasTaskset && !process.env.SWITCHBOARD_BENCH_PINNED) {
  const [c, a] = pinned(0, process.execPath, process.argv.slice(1));
  const child = spawn(c, a, { stdio: 'inherit', env: { ...process.env, SWITCHBOARD_BENCH_PINNED: '1' } });
  child.once('exit', (code) => process.exit(code ?? 1));
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
