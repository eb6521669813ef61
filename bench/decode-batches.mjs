#!/usr/bin/env node
// How raw node-llama-cpp batches c sequences that generate together, and what each kind of
// decode costs: default batching, or Switchboard's (src/providers/local/batch-gate.ts and
// batch-order.ts). Diagnosis only: it counts decodes through a proxy on node-llama-cpp's internal
// addon context (`_ctx`), so it is tied to node-llama-cpp 3.22.
//
// Usage: node bench/decode-batches.mjs MODEL.gguf [default|gated] [sequences=4] [threads=1] [tokens=64] [gpu=false|cuda|vulkan]
// Prints one JSON line: tokens/s of 3 runs (after a warm-up), decode count, and per kind of batch
// ("single", "consecN": N sequences with consecutive ascending ids, "splitN": any other order,
// which llama.cpp runs as several passes) how many and their mean time in ms. On a GPU backend a
// decode's time includes waiting for the previous one, since llama_decode returns before the GPU
// is done; compare kinds within one run.
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { BatchGate } from '../dist/providers/local/batch-gate.js';
import { batchPriorityOf, inSequenceOrder } from '../dist/providers/local/batch-order.js';
import { SequenceDriver } from '../dist/providers/local/sequence-driver.js';

const [modelPath, mode = 'default', cArg = '4', threads = '1', tokensArg = '64', gpu = 'false'] = process.argv.slice(2);
if (!modelPath || !['default', 'gated'].includes(mode)) {
  console.error('usage: node bench/decode-batches.mjs MODEL.gguf [default|gated] [sequences] [threads] [tokens] [gpu]');
  process.exit(2);
}
const C = Number(cArg);
const TOKENS = Number(tokensArg);
const gate = mode === 'gated' ? new BatchGate() : undefined;

const llama = await getLlama({ gpu: gpu === 'false' ? false : gpu, build: 'never', logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({
  sequences: 4,
  contextSize: 2048,
  threads: Number(threads),
  ...(gate ? { batching: { dispatchSchedule: gate.schedule, itemPrioritizationStrategy: inSequenceOrder } } : {}),
});

// Count decodes by the sequences they carry, through a proxy on the internal addon context.
const kinds = {};
let batch = [];
const inner = context._ctx;
const addToBatch = (id, first, tokens, logits) => {
  batch.push({ id, tokens: tokens.length });
  return inner.addToBatch(id, first, tokens, logits);
};
const decodeBatch = (...args) => {
  const ids = batch.map((b) => b.id);
  const kind = ids.length === 1 ? 'single' : ids.every((id, i) => i === 0 || id === ids[i - 1] + 1) ? `consec${ids.length}` : `split${ids.length}`;
  batch = [];
  const started = performance.now();
  return inner.decodeBatch(...args).then((result) => {
    const k = (kinds[kind] ??= { count: 0, ms: 0 });
    k.count++;
    k.ms += performance.now() - started;
    return result;
  });
};
context._ctx = new Proxy(inner, {
  get(target, key) {
    if (key === 'addToBatch') return addToBatch;
    if (key === 'decodeBatch') return decodeBatch;
    const value = target[key];
    return typeof value === 'function' ? value.bind(target) : value;
  },
});

const sequences = Array.from({ length: C }, () => context.getSequence());
const prompt = model.tokenize('<|im_start|>user\nWrite a long story about a lighthouse keeper and the sea.<|im_end|>\n<|im_start|>assistant\n', true);

/** One sequence's generation: node-llama-cpp's own loop, or Switchboard's SequenceDriver with the gate. */
async function generate(sequence, index, seed) {
  await sequence.clearHistory();
  const options = { temperature: 0.8, topK: 40, topP: 0.95, seed };
  const driver = gate
    ? new SequenceDriver(sequence, context.contextSize, new AbortController().signal, { probabilities: 'none', batchPriority: batchPriorityOf(index, 4), gate })
    : undefined;
  let n = 0;
  if (driver) {
    await driver.prepare(prompt);
    for await (const step of driver.run(options)) {
      if (model.isEogToken(step.token) || ++n >= TOKENS) break;
    }
  } else {
    for await (const token of sequence.evaluate(prompt, { ...options, evaluationPriority: batchPriorityOf(index, 4) })) {
      if (model.isEogToken(token) || ++n >= TOKENS) break;
    }
  }
  return n;
}

const rates = [];
for (let run = -1; run < 3; run++) {
  if (run === 0) for (const k of Object.keys(kinds)) delete kinds[k];
  const started = performance.now();
  const counts = await Promise.all(sequences.map((s, i) => generate(s, i, run * 10 + i)));
  if (run >= 0) rates.push(Math.round(counts.reduce((a, b) => a + b, 0) / ((performance.now() - started) / 1000)));
}
const decodes = Object.fromEntries(Object.entries(kinds).map(([kind, k]) => [kind, `${k.count} × ${(k.ms / k.count).toFixed(2)} ms`]));
console.log(JSON.stringify({ mode, sequences: C, threads: Number(threads), gpu, tokensPerSecond: rates, decodes }));
await context.dispose();
await model.dispose();
