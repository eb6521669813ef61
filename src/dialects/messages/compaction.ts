// Compaction requests (Anthropic's `compaction: {type: "summarize"}`, beta): the conversation in
// `messages` is summarized, and the response holds only a `compaction` block (stop_reason
// "compaction") that later requests send first in `messages`, in place of what it summarizes.
// Done here for every model, Anthropic's included, by asking the model itself for the summary;
// a compaction block sent back becomes a user note with the summary (parse-request.ts).

import { badRequest } from '../../core/errors.js';
import type { ChatRequest, Message, StreamPart, Usage } from '../../core/types.js';
import type { MessagesRequest } from './schema.js';

/** The summary a compaction produced (null: it produced none, a failed compaction). */
export interface CompactionPart {
  type: 'compaction';
  summary: string | null;
  /** Autocompact: the answer follows in the same response, and this is what the summary used. */
  continues?: { usage: Usage };
}

const DEFAULT_INSTRUCTIONS =
  'Summarize the conversation above so that it can continue from the summary alone: keep the goals, ' +
  'decisions, facts, names, numbers, open questions and the state of any work in progress; leave out ' +
  'pleasantries. Answer with the summary only.';

/** What a compaction block sent back puts in front of the conversation. */
export function compactionNote(summary: string): string {
  return `Summary of the conversation before this point (earlier turns were compacted):\n\n${summary}`;
}

/**
 * Fields a compaction request cannot carry: as Anthropic's API, those that only shape a reply
 * (the response is a summary, never a reply) and context_management; here also the server's tool
 * loop and fallbacks.
 */
export function checkCompaction(body: MessagesRequest): void {
  if (body.compaction == null) return;
  const refused = (field: string) => badRequest(`'compaction' cannot be combined with '${field}'`, field, 'unsupported_parameter');
  if (body.context_management != null) throw refused('context_management');
  if (body.mcp_servers?.length) throw refused('mcp_servers');
  if (body.fallbacks != null) throw refused('fallbacks');
  if (body.stop_sequences?.length) throw refused('stop_sequences');
  if (body.output_format != null) throw refused('output_format');
  if (body.response_format != null && body.response_format.type !== 'text') throw refused('response_format');
  if (body.output_config?.format != null) throw refused('output_config.format');
  if (body.tool_choice?.type === 'any' || body.tool_choice?.type === 'tool') throw refused('tool_choice');
}

/** The request that asks the model for the summary: the conversation, then the instructions; no tool calls. */
export function compactionRequest(request: ChatRequest, instructions: string | null | undefined): ChatRequest {
  const text = instructions?.trim() ? instructions : DEFAULT_INSTRUCTIONS;
  return {
    ...request,
    messages: [...request.messages, { role: 'user', content: [{ type: 'text', text }] }],
    ...(request.tools?.length ? { toolChoice: { type: 'none' as const } } : {}),
  };
}

/** The model's answer as a summary: null when it wrote none (a failed compaction). */
function summaryOf(text: string): string | null {
  return text.trim() || null;
}

/**
 * The answer after an autocompact: the summary as a note in place of the conversation, then the
 * turn being answered (what follows the last assistant turn), with the system messages. A failed
 * compaction (no summary) leaves the request as it was.
 */
export function afterCompaction(request: ChatRequest, summary: string | null): ChatRequest {
  if (summary === null) return request;
  const system = request.messages.filter((m) => m.role === 'system');
  const rest = request.messages.filter((m) => m.role !== 'system');
  const lastAssistant = rest.findLastIndex((m) => m.role === 'assistant');
  const note: Message = { role: 'user', content: [{ type: 'text', text: compactionNote(summary) }] };
  return { ...request, messages: [...system, note, ...rest.slice(lastAssistant + 1)] };
}

/**
 * Autocompact's response: the summary call's answer as a compaction block (with what that call
 * used), then the answer `answer` starts from the summary. A failure of the summary call ends it.
 */
export async function* autocompactParts(
  summaryStream: AsyncIterable<StreamPart>,
  answer: (summary: string | null) => Promise<AsyncIterable<StreamPart>>,
): AsyncGenerator<StreamPart | CompactionPart> {
  let text = '';
  let usage: Usage | undefined;
  for await (const part of summaryStream) {
    if (part.type === 'text-delta') text += part.delta;
    else if (part.type === 'finish') usage = part.usage;
    else if (part.type === 'start') yield part;
    else if (part.type === 'error') {
      yield part;
      return;
    }
  }
  const summary = summaryOf(text);
  if (usage) yield { type: 'compaction', summary, continues: { usage } };
  for await (const part of await answer(summary)) if (part.type !== 'start') yield part;
}

/** The model's answer as one compaction block: its text is held back and sent whole, as Anthropic's delta carries the final value. */
export async function* compactionParts(stream: AsyncIterable<StreamPart>): AsyncGenerator<StreamPart | CompactionPart> {
  let summary = '';
  for await (const part of stream) {
    if (part.type === 'text-delta') summary += part.delta;
    else if (part.type === 'finish') {
      yield { type: 'compaction', summary: summaryOf(summary) };
      yield part;
    } else if (part.type === 'start' || part.type === 'error') yield part;
  }
}
