// Canonical messages → OpenAI chat messages. Tool results become `role: 'tool'` messages right
// after the assistant turn that called them, wherever the dialect put them (Anthropic puts them
// in user turns). Anything OpenAI cannot carry is refused with a 400, never dropped; the
// exceptions are hints with no OpenAI equivalent: cacheControl (OpenAI caches prompts by itself)
// and a tool result's isError (its content already says what went wrong).

import { badRequest } from '../../core/errors.js';
import type { ContentPart, MediaPart, Message, TextPart, ToolResultPart } from '../../core/types.js';
import type { OpenAIChatMessage, OpenAIToolCall, OpenAIUserContent } from './api.js';

function dataUri(part: MediaPart): string | undefined {
  return part.data ? `data:${part.mediaType};base64,${Buffer.from(part.data).toString('base64')}` : undefined;
}

function convertMedia(part: MediaPart): OpenAIUserContent {
  if (part.type === 'image') {
    const url = dataUri(part) ?? part.url;
    if (!url) throw badRequest('An image part has neither data nor a URL', 'messages');
    return { type: 'image_url', image_url: { url, ...(part.detail && { detail: part.detail }) } };
  }
  if (part.type === 'document') {
    const data = dataUri(part);
    if (!data) throw badRequest('A document part has no data', 'messages');
    return { type: 'file', file: { ...(part.name ? { filename: part.name } : {}), file_data: data } };
  }
  throw badRequest(`OpenAI-compatible upstreams do not accept ${part.type} input`, 'messages', 'unsupported_modality');
}

function unexpected(part: ContentPart, role: string): never {
  throw badRequest(`A ${part.type} part cannot appear in a ${role} message`, 'messages');
}

function joinText(parts: TextPart[]): string {
  return parts.map((p) => p.text).join('');
}

/**
 * One `tool` message per result. OpenAI tool messages carry text only, so images or documents a
 * tool returned follow in one user message, labelled so the model knows where they came from.
 */
function pushToolResults(results: ToolResultPart[], out: OpenAIChatMessage[]): void {
  const media: OpenAIUserContent[] = [];
  for (const result of results) {
    const text: TextPart[] = [];
    for (const item of result.content) {
      if (item.type === 'text') text.push(item);
      else {
        media.push({ type: 'text', text: `Attachment returned by tool call ${result.toolCallId}${result.name ? ` (${result.name})` : ''}:` });
        media.push(convertMedia(item));
      }
    }
    out.push({ role: 'tool', tool_call_id: result.toolCallId, content: joinText(text), ...(result.name ? { name: result.name } : {}) });
  }
  if (media.length) out.push({ role: 'user', content: media });
}

function convertSystem(message: Message, out: OpenAIChatMessage[]): void {
  const text = message.content.map((p) => (p.type === 'text' ? p.text : unexpected(p, 'system')));
  out.push({ role: 'system', content: text.join('\n'), ...(message.name ? { name: message.name } : {}) });
}

function convertUser(message: Message, out: OpenAIChatMessage[]): void {
  const results: ToolResultPart[] = [];
  const content: OpenAIUserContent[] = [];
  for (const part of message.content) {
    if (part.type === 'tool-result') results.push(part);
    else if (part.type === 'text') content.push({ type: 'text', text: part.text });
    else if (part.type === 'image' || part.type === 'video' || part.type === 'document') content.push(convertMedia(part));
    else unexpected(part, 'user');
  }
  pushToolResults(results, out);
  if (content.length === 0) return;
  // A lone text part goes as a plain string: the form every compatible server accepts.
  const first = content[0];
  const only = content.length === 1 && first?.type === 'text' ? first.text : undefined;
  out.push({ role: 'user', content: only ?? content, ...(message.name ? { name: message.name } : {}) });
}

function convertAssistant(message: Message, out: OpenAIChatMessage[]): void {
  const text: TextPart[] = [];
  const toolCalls: OpenAIToolCall[] = [];
  const results: ToolResultPart[] = [];
  for (const part of message.content) {
    if (part.type === 'text') text.push(part);
    else if (part.type === 'tool-call') toolCalls.push({ id: part.id, type: 'function', function: { name: part.name, arguments: part.arguments || '{}' } });
    else if (part.type === 'tool-result') results.push(part); // gateway-executed tools
    // OpenAI takes no reasoning back in the history (and some compatible servers reject it).
    else if (part.type === 'reasoning') continue;
    else unexpected(part, 'assistant');
  }
  if (text.length === 0 && toolCalls.length === 0 && results.length > 0) {
    pushToolResults(results, out);
    return;
  }
  // null content is only valid beside tool_calls.
  const content = text.length ? joinText(text) : toolCalls.length ? null : '';
  out.push({
    role: 'assistant',
    content,
    ...(message.name ? { name: message.name } : {}),
    ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
  });
  pushToolResults(results, out);
}

function convertTool(message: Message, out: OpenAIChatMessage[]): void {
  const results = message.content.map((p) => (p.type === 'tool-result' ? p : unexpected(p, 'tool')));
  pushToolResults(results, out);
}

export function convertToOpenAIMessages(messages: Message[]): OpenAIChatMessage[] {
  const out: OpenAIChatMessage[] = [];
  for (const message of messages) {
    if (message.role === 'system') convertSystem(message, out);
    else if (message.role === 'user') convertUser(message, out);
    else if (message.role === 'assistant') convertAssistant(message, out);
    else convertTool(message, out);
  }
  return out;
}
