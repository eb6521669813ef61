// The order of tokens inside one decode batch. node-llama-cpp gives every sequence its own KV
// stream (it hard-codes llama.cpp's kv_unified = false), and llama.cpp then cuts a batch into
// micro-batches of sequences with consecutive, ascending ids in batch order
// (llama_batch_allocr::split_equal, "sequential"); each micro-batch is one full pass over the
// weights. node-llama-cpp queues tokens in the order their sampling finished, so four sequences
// generating together usually cost two or three passes per step instead of one. Ordering the
// batch by sequence id lets llama.cpp take them in a single pass.
//
// A prioritization strategy only sees each item's tokens and evaluationPriority, so the
// sequence's place is carried in its evaluationPriority: first sequence highest.

import type { CustomBatchingPrioritizationStrategy, EvaluationPriority, PrioritizedBatchItem } from 'node-llama-cpp';

/** Priority for the sequence at `index` of `count`: 5 for the first, decreasing, always in (1, 5]. */
export function batchPriorityOf(index: number, count: number): EvaluationPriority {
  // EvaluationPriority is typed 1..5 but compared as a number; fractions keep every sequence distinct.
  return (5 - (4 * index) / Math.max(count, 1)) as EvaluationPriority;
}

/**
 * Items in sequence order (highest priority first). Token slots as node-llama-cpp's default
 * "maximumParallelism" gives them: an equal share each, then what is left in that order.
 */
export const inSequenceOrder: CustomBatchingPrioritizationStrategy = ({ items, size }) => {
  const ordered = [...items].sort((a, b) => b.evaluationPriority - a.evaluationPriority);
  const share = Math.max(1, Math.floor(size / Math.max(ordered.length, 1)));
  let left = size;
  const batch: PrioritizedBatchItem[] = [];
  for (const item of ordered) {
    if (left <= 0) break;
    const processAmount = Math.min(item.tokens.length, share, left);
    batch.push({ item, processAmount });
    left -= processAmount;
  }
  for (const entry of batch) {
    if (left <= 0) break;
    const more = Math.min(entry.item.tokens.length - entry.processAmount, left);
    entry.processAmount += more;
    left -= more;
  }
  return batch;
};
