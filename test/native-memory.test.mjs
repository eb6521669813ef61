// node-llama-cpp frees some native memory only when V8 collects the objects holding it, and V8
// cannot see that memory: the local provider asks for a major collection every 32 generations
// (2,000 short requests reached 4.3 GB resident without it).

import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { test } from 'node:test';
import { generationEnded } from '../dist/providers/local/native-memory.js';

test('every 32nd finished generation asks V8 for a major collection, which runs', async () => {
  let majors = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    for (let i = 0; i < 32; i++) generationEnded();
    // The collection is incremental: wait for it to be reported.
    for (let waited = 0; majors === 0 && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(majors > 0, 'a major collection ran');
  } finally {
    observer.disconnect();
  }
});
