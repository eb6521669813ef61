#!/usr/bin/env node
// Latency distribution at c = 1: N sequential keep-alive buffered requests to URL (a running
// Switchboard or the bench upstream), the first 500 dropped as warm-up.
// Usage: node bench/latency.mjs http://127.0.0.1:PORT [N=3000]
import { Pool } from 'undici';

const origin = process.argv[2];
const count = Number(process.argv[3] ?? 3000);
if (!origin) {
  console.error('usage: node bench/latency.mjs URL [N]');
  process.exit(2);
}
const pool = new Pool(origin, { connections: 1 });
const body = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 });
const times = [];
for (let i = 0; i < count; i++) {
  const t0 = performance.now();
  const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
  await res.body.text();
  times.push(performance.now() - t0);
}
await pool.close();
const sorted = times.slice(500).sort((a, b) => a - b);
const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(2);
console.log(`p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, p99.9 ${q(0.999)} ms, max ${sorted.at(-1).toFixed(2)} ms`);
