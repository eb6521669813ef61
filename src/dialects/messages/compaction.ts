// Compaction requests (Anthropic's `compaction: {type: "summarize"}`, beta): the conversation in
// `messages` is summarized, and the response holds only a `compaction` block (stop_reason
// "compaction") that later requests send first in `messages`, in place of what it summarizes.
// Done here for every model, Anthropic's included, by asking the model itself for the summary;
// a compaction block sent back becomes a user note with the summary (parse-request.ts).

import { badRequest } from '../../core/errors.js';
import type { ChatRequest, StreamPart } from '../../core/types.js';
import type { MessagesRequest } from './schema.js';

/** The summary a compaction produced (null: it produced none, a failed compaction). */
export interface CompactionPart {
  type: 'compaction';
  summary: string | null;
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

/** The model's answer as one compaction block: its text is held back and sent whole, as Anthropic's delta carries the final value. */
export async function* compactionParts(stream: AsyncIterable<StreamPart>): AsyncGenerator<StreamPart | CompactionPart> {
  let summary = '';
  for await (const part of stream) {
    if (part.type === 'text-delta') summary += part.delta;
    else if (part.type === 'finish') {
      yield { type: 'compaction', summary: summary.trim() ? summary.trim() : null };
      yield part;
    } else if (part.type === 'start' || part.type === 'error') yield part;
  }
}
