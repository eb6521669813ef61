// Preloaded into the gateway by bench/soak.mjs (node --expose-gc --import): on SIGUSR2, a full
// garbage collection, then one line on stderr with what survived it. What a leak leaves behind
// survives every collection; garbage does not. With SOAK_HEAP_SNAPSHOTS set to a folder, a heap
// snapshot is written there too (to compare rounds: which objects keep growing).
import v8 from 'node:v8';
import path from 'node:path';

let taken = 0;
process.on('SIGUSR2', () => {
  globalThis.gc();
  const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
  const counts = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  const folder = process.env.SOAK_HEAP_SNAPSHOTS;
  const snapshot = folder ? v8.writeHeapSnapshot(path.join(folder, `round-${taken++}.heapsnapshot`)) : undefined;
  process.stderr.write(`SOAK ${JSON.stringify({ heapUsed, rss, external, arrayBuffers, resources: counts, snapshot })}\n`);
});
