// The order of tokens in a decode batch (src/providers/local/batch-order.ts): llama.cpp, as
// node-llama-cpp configures it, takes only runs of consecutive ascending sequence ids in one pass,
// so the strategy must put the items in sequence order and still give every item its share.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchPriorityOf, inSequenceOrder } from '../dist/providers/local/batch-order.js';

const item = (index, count, tokens) => ({ tokens: Array.from({ length: tokens }, (_, i) => i), logits: [], evaluationPriority: batchPriorityOf(index, count) });

describe('local provider: batch order', () => {
  it('gives each sequence a distinct priority, highest first, within 1..5', () => {
    for (const count of [1, 2, 4, 8, 64]) {
      const priorities = Array.from({ length: count }, (_, i) => batchPriorityOf(i, count));
      assert.equal(priorities[0], 5);
      for (let i = 1; i < count; i++) assert.ok(priorities[i] < priorities[i - 1] && priorities[i] > 1, `count ${count}, index ${i}`);
    }
  });

  it('puts queued items in sequence order, whatever order they were queued in', () => {
    const items = [3, 0, 2, 1].map((i) => item(i, 4, 1));
    const batch = inSequenceOrder({ items, size: 512 });
    assert.deepEqual(batch.map((b) => items.indexOf(b.item)), [1, 3, 2, 0]);
    assert.ok(batch.every((b) => b.processAmount === 1));
  });

  it('shares a full batch: each item its share, then the rest in order, never more than the batch', () => {
    const items = [item(1, 4, 300), item(0, 4, 1), item(2, 4, 300)];
    const batch = inSequenceOrder({ items, size: 256 });
    assert.deepEqual(batch.map((b) => [items.indexOf(b.item), b.processAmount]), [[1, 1], [0, 170], [2, 85]]);
    assert.equal(batch.reduce((n, b) => n + b.processAmount, 0), 256);
  });
});
