// Eden request → canonical ChatRequest: the system prompt, the history (with its tool calls),
// the tool results, then the new user text.

import { GatewayError } from '../../core/errors.js';
import { firstRepeat } from '../../core/validation.js';
import type { ChatRequest, ContentPart, Message, ToolChoice } from '../../core/types.js';
import { unansweredToolResult } from '../../core/types.js';
import type { EdenChatRequest, EdenHistoryItem, EdenToolCall } from './schema.js';

function fieldError(field: string, message: string, code = 'invalid_request'): GatewayError {
  return new GatewayError('bad_request', message, { param: field, code, fieldErrors: { [field]: [message] } });
}

export function argumentsText(args: EdenToolCall['arguments']): string {
  return typeof args === 'string' ? args : JSON.stringify(args);
}

function resultText(result: unknown): string {
  return typeof result === 'string' ? result : JSON.stringify(result ?? null);
}

function historyMessage(item: EdenHistoryItem, toolNames: Map<string, string>): Message {
  const text: ContentPart[] = item.message ? [{ type: 'text', text: item.message }] : [];
  if (item.role === 'tool') {
    return {
      role: 'tool',
      content: [{ type: 'tool-result', toolCallId: item.tool_call_id!, name: toolNames.get(item.tool_call_id!), content: [{ type: 'text', text: item.message ?? '' }] }],
    };
  }
  const calls: ContentPart[] = (item.tool_calls ?? []).map((call) => {
    toolNames.set(call.id, call.name);
    return { type: 'tool-call', id: call.id, name: call.name, arguments: argumentsText(call.arguments) };
  });
  return { role: item.role, content: [...text, ...calls] };
}

function toolChoice(body: EdenChatRequest): ToolChoice | undefined {
  if (body.available_tools.length === 0) {
    if (body.tool_choice === 'required') throw fieldError('tool_choice', "tool_choice 'required' needs available_tools");
    return undefined;
  }
  return { type: body.tool_choice };
}

export function buildChatRequest(body: EdenChatRequest, model: string): ChatRequest {
  const messages: Message[] = [];
  if (body.chatbot_global_action) messages.push({ role: 'system', content: [{ type: 'text', text: body.chatbot_global_action }] });
  const toolNames = new Map<string, string>();
  for (const item of body.previous_history) messages.push(historyMessage(item, toolNames));
  if (body.tool_results.length) {
    messages.push({
      role: 'tool',
      content: body.tool_results.map((r) => ({ type: 'tool-result', toolCallId: r.id, name: toolNames.get(r.id), content: [{ type: 'text', text: resultText(r.result) }] })),
    });
  }
  // As the OpenAI route: a result must answer a call (an upstream refuses a tool turn without one).
  const orphan = unansweredToolResult(messages);
  if (orphan) {
    const field = body.tool_results.some((r) => r.id === orphan.toolCallId) ? 'tool_results' : 'previous_history';
    throw fieldError(field, `The tool result for '${orphan.toolCallId}' answers no tool call in previous_history`, 'invalid_tool_result');
  }
  if (body.text) messages.push({ role: 'user', content: [{ type: 'text', text: body.text }] });
  if (!body.text && body.tool_results.length === 0) {
    throw fieldError('text', 'text is required (or tool_results to continue after a tool call)', 'missing_required_parameter');
  }
  // Eden's default temperature 0 is not sent with reasoning_effort: Claude's thinking takes no
  // temperature but 1 and OpenAI's reasoning models none but their own, so the provider chooses.
  const temperature = body.temperature ?? (body.reasoning_effort ? undefined : 0);
  const request: ChatRequest = { model, messages, maxTokens: body.max_tokens, ...(temperature !== undefined && { temperature }) };
  if (body.available_tools.length) {
    const repeat = firstRepeat(body.available_tools.map((t) => t.name));
    // A model could not tell the two apart (the organisation chat and Anthropic refuse the same).
    if (repeat >= 0) throw fieldError('available_tools', `Duplicate tool name '${body.available_tools[repeat]!.name}'`);
    request.tools = body.available_tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters }));
  }
  const choice = toolChoice(body);
  if (choice) request.toolChoice = choice;
  if (body.reasoning_effort) request.reasoning = { enabled: true, effort: body.reasoning_effort };
  return request;
}

/** The history Eden returns: what was sent, then the new user turn and tool results. */
export function requestHistory(body: EdenChatRequest): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = body.previous_history.map((h) => ({
    role: h.role,
    message: h.message ?? '',
    tools: h.tools ?? null,
    tool_calls: h.tool_calls?.map((c) => ({ ...c, arguments: argumentsText(c.arguments) })) ?? null,
    ...(h.tool_call_id ? { tool_call_id: h.tool_call_id } : {}),
  }));
  for (const r of body.tool_results) out.push({ role: 'tool', message: resultText(r.result), tools: null, tool_calls: null, tool_call_id: r.id });
  if (body.text) out.push({ role: 'user', message: body.text, tools: body.available_tools.length ? body.available_tools : null, tool_calls: null });
  return out;
}
