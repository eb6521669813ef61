// `context_management` for models not served by Anthropic (which applies it itself): the two
// context edits Anthropic defines, applied to the canonical prompt before the model sees it.
//   clear_thinking_20251015  — drops thinking from all but the last `keep` assistant turns with thinking
//   clear_tool_uses_20250919 — once the prompt reaches `trigger` (input tokens, or tool uses),
//                              replaces the results (and optionally inputs: all, or those of the
//                              tools listed) of all but the last `keep` tool uses with a
//                              placeholder, except tools in `exclude_tools`, and only if that
//                              clears at least `clear_at_least` tokens
//   compact_20260112         — once the prompt reaches `trigger` input tokens (default 150 000),
//                              the conversation is summarised first (prepare.ts, start.ts)


import { z } from 'zod';
import { badRequest } from '../../core/errors.js';
import type { Gateway } from '../../core/gateway.js';
import type { ChatRequest, Message } from '../../core/types.js';
import { parseBody } from '../../core/validation.js';

export const CLEARED_PLACEHOLDER = '[tool result cleared to save context]';

const clearToolUses = z
  .object({
    type: z.literal('clear_tool_uses_20250919'),
    trigger: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('input_tokens'), value: z.number().int().min(1) }).strict(),
        z.object({ type: z.literal('tool_uses'), value: z.number().int().min(1) }).strict(),
      ])
      .optional(),
    keep: z.object({ type: z.literal('tool_uses'), value: z.number().int().min(0) }).strict().optional(),
    clear_at_least: z.object({ type: z.literal('input_tokens'), value: z.number().int().min(0) }).strict().nullable().optional(),
    exclude_tools: z.array(z.string()).nullable().optional(),
    clear_tool_inputs: z.union([z.boolean(), z.array(z.string())]).nullable().optional(),
  })
  .strict();

const clearThinking = z
  .object({
    type: z.literal('clear_thinking_20251015'),
    keep: z
      .union([z.literal('all'), z.object({ type: z.literal('all') }).strict(), z.object({ type: z.literal('thinking_turns'), value: z.number().int().min(1) }).strict()])
      .optional(),
  })
  .strict();

const compact = z
  .object({
    type: z.literal('compact_20260112'),
    instructions: z.string().nullable().optional(),
    pause_after_compaction: z.boolean().optional(),
    trigger: z.object({ type: z.literal('input_tokens'), value: z.number().int().min(1) }).strict().nullable().optional(),
  })
  .strict();

/** Anthropic's default compaction trigger. */
const COMPACT_TRIGGER = 150_000;

const contextManagementSchema = z
  .object({ context_management: z.object({ edits: z.array(z.discriminatedUnion('type', [clearToolUses, clearThinking, compact])).optional() }).strict() })
  .strict();

type Edit = z.infer<typeof clearToolUses> | z.infer<typeof clearThinking>;

/** Autocompact: past `trigger` prompt tokens the conversation is summarised before the answer. */
export interface Autocompact {
  trigger: number;
  instructions?: string | null;
  /** The response is the compaction alone (stop_reason "compaction"); else the answer follows it. */
  pause: boolean;
}

export interface ContextManagement {
  edits: Edit[];
  compact?: Autocompact;
}

/** Validates the field (400 naming the part at fault). */
export function parseContextManagement(value: unknown): ContextManagement {
  const all = parseBody(contextManagementSchema, { context_management: value }).context_management.edits ?? [];
  const compacts = all.filter((e) => e.type === 'compact_20260112');
  if (compacts.length > 1) throw badRequest('At most one compact_20260112 edit', 'context_management.edits');
  const edit = compacts[0];
  const compact = edit && { trigger: edit.trigger?.value ?? COMPACT_TRIGGER, instructions: edit.instructions, pause: edit.pause_after_compaction === true };
  return { edits: all.filter((e): e is Edit => e.type !== 'compact_20260112'), ...(compact ? { compact } : {}) };
}

function clearThinkingEdit(messages: Message[], edit: z.infer<typeof clearThinking>): Message[] {
  if (edit.keep === 'all' || (typeof edit.keep === 'object' && edit.keep.type === 'all')) return messages;
  const keep = edit.keep?.type === 'thinking_turns' ? edit.keep.value : 1;
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
  const inputs = edit.clear_tool_inputs;
  const clearsInput = (name: string) => (Array.isArray(inputs) ? inputs.includes(name) : inputs === true);
  return messages.map((m) => ({
    ...m,
    content: m.content.map((p) => {
      if (p.type === 'tool-result' && clear.has(p.toolCallId)) return { ...p, content: [{ type: 'text' as const, text: CLEARED_PLACEHOLDER }] };
      if (p.type === 'tool-call' && clear.has(p.id) && clearsInput(p.name)) return { ...p, arguments: '{}' };
      return p;
    }),
  }));
}

/** Whether the prompt has at least `tokens` tokens: a count above them may be a lower bound, so it is cheap. */
export async function promptReaches(gateway: Gateway, request: ChatRequest, tokens: number): Promise<boolean> {
  return (await gateway.countPromptTokens(request, tokens)) >= tokens;
}

function toolUses(messages: Message[]): number {
  return messages.reduce((n, m) => n + m.content.filter((p) => p.type === 'tool-call').length, 0);
}

/** The request with the edits applied, in the order given. */
export async function applyContextManagement(request: ChatRequest, config: ContextManagement, gateway: Gateway): Promise<ChatRequest> {
  let messages = request.messages;
  for (const edit of config.edits) {
    if (edit.type === 'clear_thinking_20251015') {
      messages = clearThinkingEdit(messages, edit);
      continue;
    }
    if (edit.trigger?.type === 'tool_uses') {
      if (toolUses(messages) < edit.trigger.value) continue;
    } else {
      if (!(await promptReaches(gateway, { ...request, messages }, edit.trigger?.value ?? 100_000))) continue;
    }
    const cleared = clearToolUsesEdit(messages, edit);
    const atLeast = edit.clear_at_least?.value ?? 0;
    if (cleared !== messages && atLeast > 0) {
      // Only worth it if it clears that much: both counted whole.
      const before = await gateway.countPromptTokens({ ...request, messages });
      const after = await gateway.countPromptTokens({ ...request, messages: cleared });
      if (before - after < atLeast) continue;
    }
    messages = cleared;
  }
  return { ...request, messages };
}
