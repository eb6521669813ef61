// prompt_truncate_len: drop the oldest non-system turns until the prompt fits. The last message is
// always kept, and a tool result never survives without the assistant turn that called it.

import type { ChatRequest, Message } from './types.js';

export type TokenCounter = (request: ChatRequest) => Promise<number>;

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

export async function truncatePrompt(request: ChatRequest, maxTokens: number, count: TokenCounter): Promise<{ request: ChatRequest; dropped: number }> {
  let current = request;
  let dropped = 0;
  while ((await count(current)) > maxTokens) {
    const units = droppableUnits(current.messages);
    const first = units[0];
    if (!first) break;
    const messages = [...current.messages.slice(0, first[0]), ...current.messages.slice(first[1])];
    dropped += first[1] - first[0];
    current = { ...current, messages };
  }
  return { request: current, dropped };
}

/**
 * A rough count for providers without a tokenizer: ≈ 4 characters a token, plus what OpenAI's
 * chat format adds (3 tokens a message and 1 for its role, 3 to start the reply: its cookbook's
 * count), plus the tool definitions as JSON. Budgets reserve from it, so an estimate far below
 * the upstream's count would let calls running at once overspend; for a short prompt the
 * per-message part is most of it.
 */
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
  return Math.ceil(chars / 4) + 4 * request.messages.length + 3;
}
