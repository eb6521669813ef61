// Anthropic `stop_reason` → canonical finish reason.

import type { FinishReason } from '../../core/types.js';

export function mapAnthropicFinishReason(stopReason: string | null | undefined, options: { jsonAnswered?: boolean } = {}): FinishReason {
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
    case 'refusal':
      return 'content-filter';
    case 'pause_turn':
      // A long turn of server tools paused: the client sends the answer back to go on.
      return 'pause';
    default:
      return 'other';
  }
}
