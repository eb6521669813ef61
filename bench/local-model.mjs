#!/usr/bin/env node
// Local model throughput: tokens/s of raw node-llama-cpp in-process vs the same model served
// by Switchboard over HTTP, with 1 and 4 concurrent requests (sequences).
//
// Model: the test suite's tiny random-weight GGUF (generated if absent), or MODEL=path.gguf.
// ROUTE=messages sends the server's requests to /v1/messages instead of /v1/chat/completions:
// that route does not ask for each token's probability (the OpenAI one does, for confidence_score).
// SERVERS=name=path/to/bin/switchboard.js,… measures several builds of the server one after the
// other, e.g. this checkout against an older one.
// Usage: node bench/local-model.mjs   (env: RUNS=3 TOKENS=256 ROUNDS=4 THREADS=1 MODEL=… GPU=false|auto|cuda|vulkan ROUTE=chat|messages SERVERS=…)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const RUNS = Number(process.env.RUNS ?? 3);
const TOKENS = Number(process.env.TOKENS ?? 256);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const THREADS = Number(process.env.THREADS ?? 1);
const GPU = !process.env.GPU || process.env.GPU === 'false' ? false : process.env.GPU;
const MODEL = process.env.MODEL ?? path.join(root, '.cache/test-model/tiny-qwen2.gguf');
const PROMPT = 'Write a long story about a lighthouse keeper and the sea.';
const SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95 };
const MESSAGES_ROUTE = process.env.ROUTE === 'messages';
// RAW_CONFIDENCE=1: raw also computes each token's probability, as the chat route's server does.
const RAW_CONFIDENCE = process.env.RAW_CONFIDENCE === '1';
const SERVERS = (process.env.SERVERS ?? 'server=bin/switchboard.js').split(',').filter(Boolean).map((entry) => {
  const [name, bin] = entry.split('=');
  return { name, bin: path.resolve(root, bin) };
});

if (!fs.existsSync(MODEL)) execFileSync(process.execPath, [path.join(root, 'scripts/make-test-model.mjs')], { stdio: 'inherit' });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

let devices;

/** Raw: the same prompt through the model's chat template, sampled token by token on c sequences. */
async function rawTokensPerSecond(concurrency) {
  const llama = await getLlama({ gpu: GPU, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.error });
  devices = { backend: llama.gpu, names: await llama.getGpuDeviceNames() };
  const model = await llama.loadModel({ modelPath: MODEL });
  const context = await model.createContext({ sequences: 4, contextSize: Math.min(2048, model.trainContextSize), threads: THREADS });
  const sequences = Array.from({ length: concurrency }, () => context.getSequence());
  const prompt = model.tokenize(`<|im_start|>user\n${PROMPT}<|im_end|>\n<|im_start|>assistant\n`, true);
  const results = [];
  // Run -1 is an untimed warm-up, as the server gets one (GPU backends compile kernels on first use).
  for (let run = -1; run < RUNS; run++) {
    let tokens = 0;
    const t0 = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        sequences.map(async (sequence, i) => {
          await sequence.clearHistory();
          let n = 0;
          const options = { ...SAMPLING, seed: run * 100 + round * 10 + i };
          const steps = RAW_CONFIDENCE ? sequence.evaluateWithMetadata(prompt, { confidence: true }, options) : sequence.evaluate(prompt, options);
          for await (const step of steps) {
            const token = RAW_CONFIDENCE ? step.token : step;
            if (model.isEogToken(token)) break;
            if (++n >= TOKENS) break;
          }
          tokens += n;
        }),
      );
    }
    if (run >= 0) results.push(tokens / ((performance.now() - t0) / 1000));
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return median(results);
}

async function startServer(bin, dataDir) {
  const child = spawn(
    process.execPath,
    ['--max-semi-space-size=64', bin, 'serve', '--model', MODEL, '--data-dir', dataDir, '--port', '0', '--threads', String(THREADS), '--gpu', String(GPU), '--log-level', 'warn'],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on (\S+)/.exec(line);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, url };
}

/** One timed run: ROUNDS rounds of `concurrency` requests; tokens/s. */
async function serverRun(url, concurrency, run) {
  let tokens = 0;
  const t0 = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    await Promise.all(
      Array.from({ length: concurrency }, async (_, i) => {
        const request = {
          model: 'default',
          messages: [{ role: 'user', content: PROMPT }],
          max_tokens: TOKENS,
          temperature: SAMPLING.temperature,
          top_k: SAMPLING.topK,
          top_p: SAMPLING.topP,
        };
        // Messages has no seed field.
        const res = MESSAGES_ROUTE
          ? await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(request) })
          : await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...request, seed: run * 100 + round * 10 + i }) });
        const body = await res.json();
        if (!res.ok) throw new Error(JSON.stringify(body));
        tokens += MESSAGES_ROUTE ? body.usage.output_tokens : body.usage.completion_tokens;
      }),
    );
  }
  return tokens / ((performance.now() - t0) / 1000);
}

async function main() {
  const out = { date: new Date().toISOString(), machine: `${os.cpus()[0]?.model} × ${os.availableParallelism()}, Node ${process.version}`, settings: { RUNS, TOKENS, ROUNDS, THREADS, GPU, RAW_CONFIDENCE, model: path.basename(MODEL), route: MESSAGES_ROUTE ? '/v1/messages' : '/v1/chat/completions' }, results: {} };
  for (const c of [1, 4]) out.results[`raw/c${c}`] = await rawTokensPerSecond(c);
  for (const { name, bin } of SERVERS) {
    // One server at a time: on a small CPU an idle second server slowed the measured one.
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-local-'));
    const server = await startServer(bin, dataDir);
    try {
      await serverRun(server.url, 1, 0); // warm-up
      for (const c of [1, 4]) {
        const results = [];
        for (let run = 0; run < RUNS; run++) results.push(await serverRun(server.url, c, run));
        out.results[`${name}/c${c}`] = median(results);
      }
    } finally {
      if (server.child.exitCode === null) {
        server.child.kill('SIGTERM');
        await new Promise((resolve) => server.child.once('exit', resolve));
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
  out.devices = devices;
  const r = out.results;
  out.ratios = { rawAggregateC4VsC1: r['raw/c4'] / r['raw/c1'] };
  for (const { name } of SERVERS) {
    out.ratios[`${name}VsRawC1`] = r[`${name}/c1`] / r['raw/c1'];
    out.ratios[`${name}VsRawC4`] = r[`${name}/c4`] / r['raw/c4'];
    out.ratios[`${name}AggregateC4VsC1`] = r[`${name}/c4`] / r[`${name}/c1`];
  }
  fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench', 'results', 'local-model.json'), JSON.stringify(out, null, 2));
  console.log('| measure | tokens/s (median) |');
  console.log('|---|---:|');
  for (const [k, v] of Object.entries(r)) console.log(`| ${k} | ${v.toFixed(0)} |`);
  for (const [k, v] of Object.entries(out.ratios)) console.log(`| ${k} | ${v.toFixed(2)}× |`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
