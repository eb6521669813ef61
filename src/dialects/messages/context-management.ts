// `context_management` for models not served by Anthropic (which applies it itself): the two
// context edits Anthropic defines, applied to the canonical prompt before the model sees it.
//   clear_thinking_20251015  — drops thinking from all but the last `keep` assistant turns with thinking
//   clear_tool_uses_20250919 — once the prompt reaches `trigger` input tokens, replaces the results
//                              (and optionally inputs) of all but the last `keep` tool uses
//                              with a placeholder, except tools in `exclude_tools`

import { z } from 'zod';
import type { Gateway } from '../../core/gateway.js';
import type { ChatRequest, Message } from '../../core/types.js';
import { parseBody } from '../../core/validation.js';

export const CLEARED_PLACEHOLDER = '[tool result cleared to save context]';

const clearToolUses = z
  .object({
    type: z.literal('clear_tool_uses_20250919'),
    trigger: z.object({ type: z.literal('input_tokens'), value: z.number().int().min(1) }).strict().optional(),
    keep: z.object({ type: z.literal('tool_uses'), value: z.number().int().min(0) }).strict().optional(),
    clear_at_least: z.object({ type: z.literal('input_tokens'), value: z.number().int().min(0) }).strict().optional(),
    exclude_tools: z.array(z.string()).optional(),
    clear_tool_inputs: z.boolean().optional(),
  })
  .strict();

const clearThinking = z
  .object({
    type: z.literal('clear_thinking_20251015'),
    keep: z.union([z.literal('all'), z.object({ type: z.literal('thinking_turns'), value: z.number().int().min(1) }).strict()]).optional(),
  })
  .strict();

const contextManagementSchema = z
  .object({ context_management: z.object({ edits: z.array(z.discriminatedUnion('type', [clearToolUses, clearThinking])) }).strict() })
  .strict();

export type ContextManagement = z.infer<typeof contextManagementSchema>['context_management'];

/** Validates the field (400 naming the part at fault). */
export function parseContextManagement(value: unknown): ContextManagement {
  return parseBody(contextManagementSchema, { context_management: value }).context_management;
}

function clearThinkingEdit(messages: Message[], edit: z.infer<typeof clearThinking>): Message[] {
  if (edit.keep === 'all') return messages;
  const keep = edit.keep?.value ?? 1;
  const withThinking = messages.flatMap((m, i) => (m.role === 'assistant' && m.content.some((p) => p.type === 'reasoning') ? [i] : []));
  const clear = new Set(withThinking.slice(0, Math.max(0, withThinking.length - keep)));
  return messages.map((m, i) => (clear.has(i) ? { ...m, content: m.content.filter((p) => p.type !== 'reasoning') } : m));
}

function clearToolUsesEdit(messages: Message[], edit: z.infer<typeof clearToolUses>): Message[] {
  const excluded = new Set(edit.exclude_tools ?? []);
  const calls: Array<{ id: string; name: string }> = [];
  for (const m of messages) for (const p of m.content) if (p.type === 'tool-call' && !excluded.has(p.name)) calls.push({ id: p.id, name: p.name });
  const keep = edit.keep?.value ?? 3;
  const clear = new Set(calls.slice(0, Math.max(0, calls.length - keep)).map((c) => c.id));
  if (clear.size === 0) return messages;
  return messages.map((m) => ({
    ...m,
    content: m.content.map((p) => {
      if (p.type === 'tool-result' && clear.has(p.toolCallId)) return { ...p, content: [{ type: 'text' as const, text: CLEARED_PLACEHOLDER }] };
      if (p.type === 'tool-call' && edit.clear_tool_inputs && clear.has(p.id)) return { ...p, arguments: '{}' };
      return p;
    }),
  }));
}

/** The request with the edits applied, in the order given. */
export async function applyContextManagement(request: ChatRequest, config: ContextManagement, gateway: Gateway): Promise<ChatRequest> {
  let messages = request.messages;
  for (const edit of config.edits) {
    if (edit.type === 'clear_thinking_20251015') {
      messages = clearThinkingEdit(messages, edit);
      continue;
    }
    const trigger = edit.trigger?.value ?? 100_000;
    // Only whether it reaches the trigger matters: a lower bound above it will do.
    const tokens = await gateway.countPromptTokens({ ...request, messages }, trigger);
    if (tokens >= trigger) messages = clearToolUsesEdit(messages, edit);
  }
  return { ...request, messages };
}
