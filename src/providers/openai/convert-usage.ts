// OpenAI usage → canonical Usage. Optional counters appear only when the upstream reported them.

import { tokenCount, type Usage } from '../../core/types.js';
import type { OpenAIUsage } from './api.js';

export function convertUsage(usage: OpenAIUsage | null | undefined): Usage {
  const input = tokenCount(usage?.prompt_tokens) ?? 0;
  const output = tokenCount(usage?.completion_tokens) ?? 0;
  const out: Usage = { inputTokens: input, outputTokens: output, totalTokens: tokenCount(usage?.total_tokens) ?? input + output };
  const cached = tokenCount(usage?.prompt_tokens_details?.cached_tokens);
  const reasoning = tokenCount(usage?.completion_tokens_details?.reasoning_tokens);
  if (cached !== undefined) out.cacheReadTokens = cached;
  if (reasoning !== undefined) out.reasoningTokens = reasoning;
  return out;
}
