// Canonical messages → Anthropic `system` blocks and `messages`.
//
// - system messages (wherever they are) become the top-level `system` text blocks, in order;
// - user and tool messages become user turns; tool-result parts become `tool_result` blocks,
//   placed first in their user turn as the API requires;
// - assistant messages become assistant turns: text, `thinking` / `redacted_thinking` (sent back
//   unchanged, signature included) and `tool_use`; reasoning without a signature — none, or the
//   empty one the Messages dialect gives reasoning from other providers — is not sent;
// - consecutive turns of the same role are merged (parallel tool results share one user turn);
// - the conversation must then start with a user turn (Anthropic refuses an empty one, or one
//   that opens with the assistant): a 400 otherwise, before any call.

import { documentText } from '../../core/documents.js';
import { GatewayError, badRequest, checkStartsWithUser } from '../../core/errors.js';
import type { MediaPart, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart } from '../../core/types.js';
import type {
  AnthropicAssistantContent,
  AnthropicDocumentBlock,
  AnthropicImageBlock,
  AnthropicMessage,
  AnthropicTextBlock,
  AnthropicToolResultBlock,
  AnthropicToolUseBlock,
  AnthropicUserContent,
} from './api.js';

export const ANTHROPIC_IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

export interface AnthropicPrompt {
  system?: AnthropicTextBlock[];
  messages: AnthropicMessage[];
  /** Reasoning parts dropped because they carry no (or an empty) signature (from another provider). */
  droppedUnsignedReasoning: number;
}

export function toBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const m = /^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$/s.exec(url);
  return m ? { mediaType: m[1]!.toLowerCase(), data: m[2]! } : undefined;
}

/** The client's own Anthropic block (a search result, a document asking for citations), as written. */
function nativeBlockOf<Block>(part: TextPart | MediaPart): Block | undefined {
  return part.nativeBlock?.provider === 'anthropic' ? (part.nativeBlock.block as Block) : undefined;
}

function textBlock(part: TextPart): AnthropicTextBlock {
  const native = nativeBlockOf<AnthropicTextBlock>(part);
  if (native) return native;
  const block: AnthropicTextBlock = { type: 'text', text: part.text };
  if (part.cacheControl) block.cache_control = part.cacheControl;
  if (part.citations?.length) block.citations = part.citations;
  return block;
}

function imageBlock(part: MediaPart): AnthropicImageBlock {
  const native = nativeBlockOf<AnthropicImageBlock>(part);
  if (native) return native;
  let block: AnthropicImageBlock;
  if (part.data) {
    block = { type: 'image', source: { type: 'base64', media_type: part.mediaType, data: toBase64(part.data) } };
  } else if (part.url) {
    const inline = parseDataUrl(part.url);
    block = inline
      ? { type: 'image', source: { type: 'base64', media_type: inline.mediaType, data: inline.data } }
      : { type: 'image', source: { type: 'url', url: part.url } };
  } else {
    throw badRequest('An image part has neither data nor url', 'messages');
  }
  const mediaType = block.source.type === 'base64' ? block.source.media_type : undefined;
  if (mediaType && !ANTHROPIC_IMAGE_TYPES.has(mediaType)) {
    throw badRequest(`Anthropic accepts images as PNG, JPEG, GIF or WebP, not ${mediaType}`, 'messages', 'unsupported_media_type');
  }
  if (part.cacheControl) block.cache_control = part.cacheControl;
  return block;
}

/**
 * PDFs go as base64 `document` blocks; text documents (text/*) as plain-text sources. Other
 * formats were made text by textifyDocuments first.
 */
function documentBlock(part: MediaPart): AnthropicDocumentBlock {
  const native = nativeBlockOf<AnthropicDocumentBlock>(part);
  if (native) return native;
  const mediaType = part.mediaType.toLowerCase();
  let block: AnthropicDocumentBlock;
  if (mediaType === 'application/pdf') {
    if (part.data) block = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: toBase64(part.data) } };
    else if (part.url) {
      const inline = parseDataUrl(part.url);
      block = inline
        ? { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: inline.data } }
        : { type: 'document', source: { type: 'url', url: part.url } };
    } else throw badRequest('A document part has neither data nor url', 'messages');
  } else if (mediaType.startsWith('text/') || mediaType === 'application/json') {
    let text: string;
    if (part.data) text = Buffer.from(part.data.buffer, part.data.byteOffset, part.data.byteLength).toString('utf8');
    else {
      const inline = part.url ? parseDataUrl(part.url) : undefined;
      if (!inline) throw badRequest('A text document must carry its bytes', 'messages');
      text = Buffer.from(inline.data, 'base64').toString('utf8');
    }
    block = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: text } };
  } else {
    throw badRequest(
      `Anthropic accepts PDF and text documents, not ${part.mediaType}`,
      'messages',
      'unsupported_media_type',
    );
  }
  if (part.name) block.title = part.name;
  if (part.cacheControl) block.cache_control = part.cacheControl;
  return block;
}

function toolResultBlock(part: ToolResultPart): AnthropicToolResultBlock {
  const block: AnthropicToolResultBlock = { type: 'tool_result', tool_use_id: part.toolCallId };
  const content: NonNullable<Exclude<AnthropicToolResultBlock['content'], string>> = [];
  for (const c of part.content) {
    if (c.type === 'text') {
      if (c.text !== '') content.push(textBlock(c));
    } else if (c.type === 'image') content.push(imageBlock(c));
    else if (c.type === 'document') content.push(documentBlock(c));
    else throw badRequest(`Anthropic tool results cannot carry ${c.type} content`, 'messages', 'unsupported_media_type');
  }
  if (content.length > 0) block.content = content;
  if (part.isError) block.is_error = true;
  if (part.cacheControl) block.cache_control = part.cacheControl;
  return block;
}

function toolUseBlock(part: ToolCallPart): AnthropicToolUseBlock {
  let input: unknown = {};
  if (part.arguments.trim() !== '') {
    try {
      input = JSON.parse(part.arguments);
    } catch {
      throw badRequest(`The arguments of tool call '${part.id}' (${part.name}) are not valid JSON`, 'messages', 'invalid_tool_arguments');
    }
  }
  const block: AnthropicToolUseBlock = { type: 'tool_use', id: part.id, name: part.name, input };
  if (part.cacheControl) block.cache_control = part.cacheControl;
  return block;
}

function reasoningBlock(part: ReasoningPart): AnthropicAssistantContent | undefined {
  if (part.redactedData !== undefined) return { type: 'redacted_thinking', data: part.redactedData };
  // An empty signature is no signature: the Messages dialect writes `signature: ""` for reasoning
  // from other providers, and Anthropic SDK clients send it back so.
  if (part.signature) return { type: 'thinking', thinking: part.text, signature: part.signature };
  return undefined;
}

/** Document types Anthropic reads natively: PDF (base64) and text (plain-text source). */
export function isNativeAnthropicDocument(mediaType: string): boolean {
  const t = mediaType.toLowerCase();
  return t === 'application/pdf' || t.startsWith('text/') || t === 'application/json';
}

async function asTextDocument(part: MediaPart, param: string): Promise<MediaPart> {
  if (isNativeAnthropicDocument(part.mediaType) || !part.data) return part;
  let text: string;
  try {
    text = await documentText(part, param);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw badRequest(`A ${part.mediaType} document could not be read: ${(err as Error).message}`, param, 'unreadable_document');
  }
  const out: MediaPart = { type: 'document', mediaType: 'text/plain', data: new TextEncoder().encode(text) };
  if (part.name) out.name = part.name;
  if (part.cacheControl) out.cacheControl = part.cacheControl;
  return out;
}

/**
 * DOCX, XLSX and the other documents Anthropic cannot read are turned into plain-text documents
 * (with the core's extractors) before conversion; the same array when there is nothing to do.
 */
export async function textifyDocuments(messages: Message[]): Promise<Message[]> {
  const needs = (p: Message['content'][number]): boolean =>
    (p.type === 'document' && !isNativeAnthropicDocument(p.mediaType)) || (p.type === 'tool-result' && p.content.some(needs));
  if (!messages.some((m) => m.content.some(needs))) return messages;
  return Promise.all(
    messages.map(async (m, i) => {
      if (!m.content.some(needs)) return m;
      const param = `messages[${i}].content`;
      const content = await Promise.all(
        m.content.map(async (p) => {
          if (p.type === 'document') return asTextDocument(p, param);
          if (p.type === 'tool-result' && p.content.some(needs)) {
            return { ...p, content: await Promise.all(p.content.map((c) => (c.type === 'document' ? asTextDocument(c, param) : c))) };
          }
          return p;
        }),
      );
      return { ...m, content };
    }),
  );
}

export function convertToAnthropicMessages(messages: Message[]): AnthropicPrompt {
  const system: AnthropicTextBlock[] = [];
  const out: AnthropicMessage[] = [];
  let droppedUnsignedReasoning = 0;
  // The user turn being built keeps its tool results apart so they can be placed first.
  let userResults: AnthropicToolResultBlock[] | undefined;
  let userOther: AnthropicUserContent[] | undefined;
  let assistant: AnthropicAssistantContent[] | undefined;

  const flushUser = () => {
    if (userResults && userOther) out.push({ role: 'user', content: [...userResults, ...userOther] });
    userResults = userOther = undefined;
  };
  const flushAssistant = () => {
    if (assistant) out.push({ role: 'assistant', content: assistant });
    assistant = undefined;
  };
  const user = () => {
    flushAssistant();
    if (!userResults || !userOther) {
      userResults = [];
      userOther = [];
    }
    return { results: userResults, other: userOther };
  };
  const asst = () => {
    flushUser();
    return (assistant ??= []);
  };

  for (const message of messages) {
    if (message.role === 'system') {
      for (const part of message.content) {
        if (part.type !== 'text') throw badRequest(`System messages can only carry text for Anthropic, not ${part.type}`, 'messages');
        if (part.text !== '') system.push(textBlock(part));
      }
      continue;
    }
    for (const part of message.content) {
      if (part.type === 'tool-result') {
        user().results.push(toolResultBlock(part));
        continue;
      }
      if (message.role === 'assistant') {
        switch (part.type) {
          case 'text':
            if (part.text !== '') asst().push(textBlock(part));
            break;
          case 'reasoning': {
            const block = reasoningBlock(part);
            if (block) asst().push(block);
            else droppedUnsignedReasoning++;
            break;
          }
          case 'tool-call':
            asst().push(toolUseBlock(part));
            break;
          case 'provider-block':
            // A server tool's call or result from an earlier answer: back exactly as it came.
            if (part.provider !== 'anthropic') throw badRequest(`A ${part.provider} block cannot go to Anthropic`, 'messages');
            asst().push(part.block as AnthropicAssistantContent);
            break;
          default:
            throw badRequest(`Anthropic assistant turns cannot carry ${part.type} content`, 'messages');
        }
        continue;
      }
      // user and tool messages
      switch (part.type) {
        case 'text':
          if (part.text !== '') user().other.push(textBlock(part));
          break;
        case 'image':
          user().other.push(imageBlock(part));
          break;
        case 'document':
          user().other.push(documentBlock(part));
          break;
        case 'video':
          throw badRequest('Anthropic models do not accept video input', 'messages', 'unsupported_modality');
        case 'tool-call':
          throw badRequest('Tool calls can only appear in assistant messages', 'messages');
        case 'reasoning':
          // Reasoning belongs to assistant turns; a user turn has nothing to send it as.
          break;
      }
    }
  }
  flushUser();
  flushAssistant();
  checkStartsWithUser('Anthropic', out.map((m) => m.role));
  return { system: system.length ? system : undefined, messages: out, droppedUnsignedReasoning };
}
