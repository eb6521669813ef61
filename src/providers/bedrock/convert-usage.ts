// Converse usage (the `metadata` event, which arrives AFTER `messageStop`) → canonical usage.
//
// Bedrock's `inputTokens` excludes the cached part of the prompt (cacheReadInputTokens,
// cacheWriteInputTokens come apart), like Anthropic's. The canonical `inputTokens` is the whole
// prompt: inputTokens + cache reads + cache writes; totalTokens = that + outputTokens.

import { tokenCount, type Usage } from '../../core/types.js';
import type { TokenUsage } from './api.js';

export function convertBedrockUsage(usage: TokenUsage | undefined): Usage {
  const cacheRead = tokenCount(usage?.cacheReadInputTokens);
  const cacheWrite = tokenCount(usage?.cacheWriteInputTokens);
  const inputTokens = (tokenCount(usage?.inputTokens) ?? 0) + (cacheRead ?? 0) + (cacheWrite ?? 0);
  const outputTokens = tokenCount(usage?.outputTokens) ?? 0;
  const out: Usage = { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
  if (cacheRead !== undefined) out.cacheReadTokens = cacheRead;
  if (cacheWrite !== undefined) out.cacheWriteTokens = cacheWrite;
  // The writes by TTL (cacheDetails), where Bedrock gives them: 1-hour ones are priced apart.
  const hour = usage?.cacheDetails?.find((d) => d.ttl === '1h');
  if (usage?.cacheDetails && cacheWrite !== undefined) out.cacheWrite1hTokens = Math.min(cacheWrite, tokenCount(hour?.inputTokens) ?? 0);
  return out;
}
