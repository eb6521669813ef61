// POST {baseUrl}/v1/messages/count_tokens: Anthropic counts a prompt as it would bill it. The
// endpoint takes the prompt's fields only and refuses the others ("max_tokens: Extra inputs are
// not permitted"), so the body is the messages request cut down to them.

import type { AnthropicMessagesRequest } from './api.js';

/** The request fields count_tokens accepts (Anthropic's MessageCountTokensParams). */
const COUNTED_FIELDS = ['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers', 'context_management', 'output_config', 'cache_control'];

export function countTokensBody(body: AnthropicMessagesRequest): Record<string, unknown> {
  const counted: Record<string, unknown> = {};
  for (const field of COUNTED_FIELDS) if (body[field] !== undefined) counted[field] = body[field];
  return counted;
}

/** `input_tokens` of a count_tokens answer, or undefined when the answer has none. */
export function countedTokens(text: string): number | undefined {
  try {
    const tokens = (JSON.parse(text) as { input_tokens?: unknown }).input_tokens;
    return typeof tokens === 'number' && Number.isInteger(tokens) && tokens >= 0 ? tokens : undefined;
  } catch {
    return undefined;
  }
}
