// prompt_truncate_len: drop the oldest non-system turns until the prompt fits. The last message is
// always kept, and a tool result never survives without the assistant turn that called it.

import type { ChatRequest, Message } from './types.js';
import { yieldToIo } from './event-loop.js';

/** With `limit`, a count above it may be a lower bound: truncation asks only whether the prompt fits. */
export type TokenCounter = (request: ChatRequest, limit?: number) => Promise<number>;

/** Index ranges of the turns that can be dropped as units (an assistant turn with its tool results). */
function droppableUnits(messages: Message[]): Array<[number, number]> {
  const units: Array<[number, number]> = [];
  for (let i = 0; i < messages.length - 1; i++) {
    if (messages[i]!.role === 'system') continue;
    let end = i + 1;
    while (end < messages.length - 1 && messages[end]!.role === 'tool') end++;
    units.push([i, end]);
    i = end - 1;
  }
  return units;
}

/**
 * Drops the fewest oldest units that make the prompt fit. Dropping more never lengthens the
 * prompt, so the number is found by bisection: log2(units) counts, not one per unit. (One per
 * unit tokenized the whole conversation each time: 400 turns took 13 s, and a local model's
 * tokenizer runs on the event loop, so every other request waited as long.)
 */
export async function truncatePrompt(request: ChatRequest, maxTokens: number, count: TokenCounter): Promise<{ request: ChatRequest; dropped: number }> {
  const units = droppableUnits(request.messages);
  const without = (k: number): ChatRequest => {
    if (k === 0) return request;
    const gone = new Set<number>();
    for (const [start, end] of units.slice(0, k)) for (let i = start; i < end; i++) gone.add(i);
    return { ...request, messages: request.messages.filter((_, i) => !gone.has(i)) };
  };
  let counted = false;
  const fits = async (k: number): Promise<boolean> => {
    // Other requests go on between two counts (a prompt that fits at once is counted once, unhindered).
    if (counted) await yieldToIo();
    counted = true;
    return (await count(without(k), maxTokens)) <= maxTokens;
  };
  if (await fits(0)) return { request, dropped: 0 };
  // `low` does not fit; `high` fits, or is every unit (all that can go).
  let low = 0;
  let high = units.length;
  if (high > 0 && (await fits(high))) {
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (await fits(middle)) high = middle;
      else low = middle;
    }
  }
  const dropped = units.slice(0, high).reduce((n, [start, end]) => n + end - start, 0);
  return { request: without(high), dropped };
}

/**
 * A rough count for providers without a tokenizer: ≈ 4 characters a token, plus what OpenAI's
 * chat format adds (3 tokens a message and 1 for its role, 3 to start the reply: its cookbook's
 * count), plus the tool definitions as JSON. Budgets reserve from it, so an estimate far below
 * the upstream's count would let calls running at once overspend; for a short prompt the
 * per-message part is most of it.
 */
/** Tokens in `chars` characters of text, at the estimate's ≈ 4 characters a token. */
export function estimateTextTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

export function estimateTokens(request: ChatRequest): number {
  let chars = 0;
  for (const m of request.messages) {
    for (const p of m.content) {
      if (p.type === 'text' || p.type === 'reasoning') chars += p.text.length;
      else if (p.type === 'tool-call') chars += p.name.length + p.arguments.length;
      else if (p.type === 'tool-result') for (const c of p.content) if (c.type === 'text') chars += c.text.length;
    }
  }
  for (const tool of request.tools ?? []) chars += tool.name.length + (tool.description?.length ?? 0) + JSON.stringify(tool.parameters).length;
  return estimateTextTokens(chars) + 4 * request.messages.length + 3;
}
