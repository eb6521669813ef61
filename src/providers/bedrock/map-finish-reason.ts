// Converse `stopReason` → canonical finish reason.

import type { FinishReason } from '../../core/types.js';

export function mapBedrockFinishReason(stopReason: string | undefined, options: { jsonAnswered?: boolean } = {}): FinishReason {
  switch (stopReason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      // The emulated JSON answer is a tool call upstream but a plain answer to the caller.
      return options.jsonAnswered ? 'stop' : 'tool-calls';
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'content-filter';
    case 'malformed_model_output':
    case 'malformed_tool_use':
      return 'error';
    default:
      return 'other';
  }
}
