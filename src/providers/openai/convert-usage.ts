// OpenAI usage → canonical Usage. Optional counters appear only when the upstream reported them.

import type { Usage } from '../../core/types.js';
import type { OpenAIUsage } from './api.js';

export function convertUsage(usage: OpenAIUsage | null | undefined): Usage {
  const input = usage?.prompt_tokens ?? 0;
  const output = usage?.completion_tokens ?? 0;
  const out: Usage = { inputTokens: input, outputTokens: output, totalTokens: usage?.total_tokens ?? input + output };
  const cached = usage?.prompt_tokens_details?.cached_tokens;
  const reasoning = usage?.completion_tokens_details?.reasoning_tokens;
  if (typeof cached === 'number') out.cacheReadTokens = cached;
  if (typeof reasoning === 'number') out.reasoningTokens = reasoning;
  return out;
}
