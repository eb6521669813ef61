// Canonical parts → seed 001's buffered body and seed 000's SSE events.

import type { CollectedResponse } from '../../core/stream.js';
import type { FinishReason, StreamPart, Usage } from '../../core/types.js';
import type { SseEvent } from '../../server/sse.js';
import { toolUseField, toolUseOf, type OrgToolUse } from './tool-mapping.js';

export type OrgFinishReason = 'stop' | 'length' | 'content_filter' | 'tool_use';

export function mapFinishReason(reason: FinishReason): OrgFinishReason {
  switch (reason) {
    case 'length':
      return 'length';
    case 'content-filter':
      return 'content_filter';
    case 'tool-calls':
      return 'tool_use';
    default:
      return 'stop';
  }
}

export function renderUsage(usage: Usage): { inputTokens: number; outputTokens: number; totalTokens: number } {
  return { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, totalTokens: usage.inputTokens + usage.outputTokens };
}

export interface OrgResponseMeta {
  model: string;
  requestId: string;
  /** Makes the gateway's own relative download URLs absolute. */
  absoluteUrl: (url: string) => string;
}

function withAbsoluteUrls(use: OrgToolUse, absoluteUrl: (url: string) => string): OrgToolUse {
  if (use.s3Urls) use.s3Urls = use.s3Urls.map(absoluteUrl);
  return use;
}

export function renderChatResponse(collected: CollectedResponse, meta: OrgResponseMeta): Record<string, unknown> {
  const choice = collected.choices[0]!;
  const uses: OrgToolUse[] = choice.toolCalls.map((call) =>
    withAbsoluteUrls(toolUseOf(call, choice.toolResults.find((r) => r.toolCallId === call.id)), meta.absoluteUrl),
  );
  const response: Record<string, unknown> = { role: 'assistant', content: choice.text };
  const toolUse = toolUseField(uses);
  if (toolUse) response.toolUse = toolUse;
  return {
    response,
    model: meta.model,
    requestId: meta.requestId,
    finishReason: mapFinishReason(choice.finishReason),
    usage: renderUsage(collected.usage),
  };
}

/**
 * Seed 000's SSE: `id: chunk-N`, events start | content | tool_use | done | error. A tool the
 * model asks the client to run is one `tool_use` event once its input is complete; a tool the
 * gateway ran is one `tool_use` event when its result (or executionId) is known.
 */
export class OrgStreamRenderer {
  private next = 0;
  private readonly calls = new Map<string, { id: string; name: string; arguments: string; serverExecuted: boolean; sent: boolean }>();

  constructor(private readonly meta: OrgResponseMeta) {}

  private event(event: string, data: unknown): SseEvent {
    return { id: `chunk-${this.next++}`, event, data: JSON.stringify(data) };
  }

  start(): SseEvent {
    return this.event('start', { requestId: this.meta.requestId, model: this.meta.model, streaming: true });
  }

  render(part: StreamPart): SseEvent[] {
    if ((part.choice ?? 0) !== 0) return [];
    switch (part.type) {
      case 'text-delta':
        return part.delta ? [this.event('content', { delta: part.delta, complete: false })] : [];
      case 'tool-input-start':
        this.calls.set(part.id, { id: part.id, name: part.toolName, arguments: '', serverExecuted: !!part.serverExecuted, sent: false });
        return [];
      case 'tool-input-delta': {
        const call = this.calls.get(part.id);
        if (call) call.arguments += part.delta;
        return [];
      }
      case 'tool-input-end': {
        const call = this.calls.get(part.id);
        if (!call || call.serverExecuted || call.sent) return [];
        call.sent = true;
        return [this.event('tool_use', { toolUse: toolUseOf(call) })];
      }
      case 'tool-result': {
        const call = this.calls.get(part.toolCallId) ?? { id: part.toolCallId, name: part.toolName, arguments: '' };
        const use = withAbsoluteUrls(toolUseOf(call, { result: part.result, extra: part.extra }), this.meta.absoluteUrl);
        return [this.event('tool_use', { toolUse: use })];
      }
      default:
        return [];
    }
  }

  /** tool_use events for client tool calls whose input never got an explicit end. */
  flush(): SseEvent[] {
    return [...this.calls.values()].flatMap((call) => this.render({ type: 'tool-input-end', id: call.id }));
  }

  done(finishReason: FinishReason, usage: Usage): SseEvent {
    return this.event('done', { complete: true, finishReason: mapFinishReason(finishReason), usage: renderUsage(usage) });
  }

  error(body: unknown): SseEvent {
    return this.event('error', body);
  }
}
