// Anthropic usage → canonical usage.
//
// Anthropic reports `input_tokens` WITHOUT the cached part: cache reads and cache writes come
// separately (`cache_read_input_tokens`, `cache_creation_input_tokens`). The canonical
// `inputTokens` is the whole prompt: input_tokens + cache reads + cache writes, with the cached
// parts repeated in `cacheReadTokens` / `cacheWriteTokens` (costOf prices them apart).
// `message_start` carries the first counts; each `message_delta` carries cumulative counts that
// replace them field by field.

import { tokenCount, type Usage } from '../../core/types.js';
import type { AnthropicUsage } from './api.js';

/** Later non-null fields replace earlier ones (message_delta counts are cumulative). */
export function mergeAnthropicUsage(base: AnthropicUsage, update: AnthropicUsage | undefined): AnthropicUsage {
  if (!update) return base;
  const out: AnthropicUsage = { ...base };
  for (const key of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const) {
    const value = tokenCount(update[key]);
    if (value !== undefined) out[key] = value;
  }
  if (update.server_tool_use && typeof update.server_tool_use === 'object') out.server_tool_use = update.server_tool_use;
  if (update.cache_creation && typeof update.cache_creation === 'object') out.cache_creation = update.cache_creation;
  return out;
}

export function convertAnthropicUsage(usage: AnthropicUsage): Usage {
  const cacheRead = tokenCount(usage.cache_read_input_tokens);
  const cacheWrite = tokenCount(usage.cache_creation_input_tokens);
  const inputTokens = (tokenCount(usage.input_tokens) ?? 0) + (cacheRead ?? 0) + (cacheWrite ?? 0);
  const outputTokens = tokenCount(usage.output_tokens) ?? 0;
  const out: Usage = { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
  if (cacheRead !== undefined) out.cacheReadTokens = cacheRead;
  if (cacheWrite !== undefined) out.cacheWriteTokens = cacheWrite;
  // 1-hour writes cost more (pricing.cacheWrite1h): kept apart when Anthropic says how many.
  const hour = usage.cache_creation && typeof usage.cache_creation === 'object' ? tokenCount(usage.cache_creation.ephemeral_1h_input_tokens) : undefined;
  if (hour !== undefined && cacheWrite !== undefined) out.cacheWrite1hTokens = Math.min(hour, cacheWrite);
  const counts = usage.server_tool_use && typeof usage.server_tool_use === 'object' ? usage.server_tool_use : {};
  const serverToolUse = Object.entries(counts).filter((e): e is [string, number] => (tokenCount(e[1]) ?? 0) > 0);
  if (serverToolUse.length) out.serverToolUse = Object.fromEntries(serverToolUse);
  return out;
}
