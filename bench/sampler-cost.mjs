#!/usr/bin/env node
// What node-llama-cpp's per-generation sampler costs: every LlamaContextSequence.evaluate call
// constructs a native sampler on the main thread (LlamaSampler → AddonSampler), which sizes a
// candidate array to the vocabulary. Times construction + dispose, and construction alone.
// Usage: node bench/sampler-cost.mjs [MODEL.gguf]   (default: the test model; N=200)
import path from 'node:path';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const modelPath = process.argv[2] ?? path.join(root, '.cache/test-model/tiny-qwen2.gguf');
const N = Number(process.env.N ?? 200);

const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
// The binding node-llama-cpp's own LlamaSampler wraps (not public API).
const create = () => new llama._bindings.AddonSampler(model._model);
const results = { model: path.basename(modelPath), N, createAndDisposeMs: [], createOnlyMs: undefined };
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) create().dispose();
  results.createAndDisposeMs.push(Number(((performance.now() - t0) / N).toFixed(3)));
}
const kept = [];
const t1 = performance.now();
for (let i = 0; i < N; i++) kept.push(create());
results.createOnlyMs = Number(((performance.now() - t1) / N).toFixed(3));
for (const sampler of kept) sampler.dispose();
console.log(JSON.stringify(results));
await model.dispose();
await llama.dispose();
