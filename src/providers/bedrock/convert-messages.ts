// Canonical messages → Converse `system` and `messages`.
//
// - system messages → `system` text blocks;
// - user/tool messages → user turns: text, image {format, source:{bytes}}, video, document
//   {format, name, source:{bytes}}, and `toolResult` blocks (first in their turn);
// - assistant messages → assistant turns: text, `reasoningContent` (reasoningText {text,
//   signature} or redactedContent, sent back unchanged), `toolUse`; reasoning without a
//   signature (none, or the empty one the Messages dialect gives other providers' reasoning) is not sent;
// - a `cacheControl` on a part (text, media, tool call, tool result) adds a `cachePoint` block right after it;
// - consecutive turns of one role are merged (Converse wants user/assistant alternation);
// - the conversation must then start with a user turn (Converse refuses an empty one, or one that
//   opens with the assistant): a 400 otherwise, before any call.

import { badRequest, checkStartsWithUser } from '../../core/errors.js';
import type { MediaPart, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart } from '../../core/types.js';
import type {
  BedrockDocument,
  BedrockMessage,
  CachePointBlock,
  ContentBlock,
  DocumentFormat,
  ImageFormat,
  SystemContentBlock,
  ToolResultContentBlock,
  VideoFormat,
} from './api.js';

const IMAGE_FORMATS: Record<string, ImageFormat> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/jpg': 'jpeg',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

const VIDEO_FORMATS: Record<string, VideoFormat> = {
  'video/mp4': 'mp4',
  'video/quicktime': 'mov',
  'video/x-matroska': 'mkv',
  'video/webm': 'webm',
  'video/x-flv': 'flv',
  'video/mpeg': 'mpeg',
  'video/mpg': 'mpg',
  'video/x-ms-wmv': 'wmv',
  'video/3gpp': 'three_gp',
};

const DOCUMENT_FORMATS: Record<string, DocumentFormat> = {
  'application/pdf': 'pdf',
  'text/csv': 'csv',
  'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'text/html': 'html',
  'text/plain': 'txt',
  'text/markdown': 'md',
  'text/x-markdown': 'md',
};

export interface BedrockPrompt {
  system?: SystemContentBlock[];
  messages: BedrockMessage[];
  /** The conversation already holds toolUse/toolResult blocks (Converse then requires toolConfig). */
  hasToolBlocks: boolean;
  /** The names of the tools the conversation's toolUse blocks call, each once, in order. */
  historyToolNames: string[];
  droppedUnsignedReasoning: number;
}

/** Anthropic-style `cache_control` as a Converse cache point (ttl 5m or 1h kept). */
export function cachePoint(cacheControl: Record<string, unknown>): CachePointBlock {
  const ttl = cacheControl.ttl;
  return ttl === '5m' || ttl === '1h' ? { type: 'default', ttl } : { type: 'default' };
}

function bytesOf(part: MediaPart): Uint8Array {
  if (part.data) return part.data;
  const m = part.url ? /^data:[^,]*;base64,(.*)$/s.exec(part.url) : null;
  if (m) return new Uint8Array(Buffer.from(m[1]!, 'base64'));
  throw badRequest(`Bedrock needs the bytes of ${part.type} input (or an s3:// location); remote URLs are not fetched`, 'messages', 'unsupported_media_source');
}

function s3Uri(part: MediaPart): string | undefined {
  return !part.data && part.url?.startsWith('s3://') ? part.url : undefined;
}

/** Bedrock document names: letters, digits, single spaces, hyphens, parentheses, brackets. */
export function documentName(name: string | undefined, index: number, used: Set<string>): string {
  let base = (name ?? '').replace(/\.[A-Za-z0-9]{1,5}$/, '');
  base = base.replace(/[^A-Za-z0-9\s\-()[\]]/g, '-').replace(/\s+/g, ' ').trim().slice(0, 200);
  if (!base) base = `document-${index}`;
  let candidate = base;
  for (let n = 2; used.has(candidate); n++) candidate = `${base} (${n})`;
  used.add(candidate);
  return candidate;
}

class MediaConverter {
  private readonly names = new Set<string>();
  private documents = 0;

  image(part: MediaPart): ContentBlock.ImageMember {
    const format = IMAGE_FORMATS[part.mediaType.toLowerCase()];
    if (!format) throw badRequest(`Bedrock accepts images as PNG, JPEG, GIF or WebP, not ${part.mediaType}`, 'messages', 'unsupported_media_type');
    const uri = s3Uri(part);
    return { image: { format, source: uri ? { s3Location: { uri } } : { bytes: bytesOf(part) } } };
  }

  video(part: MediaPart): ContentBlock.VideoMember {
    const format = VIDEO_FORMATS[part.mediaType.toLowerCase()];
    if (!format) throw badRequest(`Bedrock does not accept video as ${part.mediaType}`, 'messages', 'unsupported_media_type');
    const uri = s3Uri(part);
    return { video: { format, source: uri ? { s3Location: { uri } } : { bytes: bytesOf(part) } } };
  }

  document(part: MediaPart): ContentBlock.DocumentMember {
    const format = DOCUMENT_FORMATS[part.mediaType.toLowerCase()];
    if (!format) throw badRequest(`Bedrock does not accept documents as ${part.mediaType}`, 'messages', 'unsupported_media_type');
    const name = documentName(part.name, ++this.documents, this.names);
    const uri = s3Uri(part);
    return { document: { format, name, source: uri ? { s3Location: { uri } } : { bytes: bytesOf(part) } } };
  }
}

function toolResultBlock(part: ToolResultPart, media: MediaConverter): ContentBlock.ToolResultMember {
  const content: ToolResultContentBlock[] = [];
  for (const c of part.content) {
    if (c.type === 'text') content.push({ text: c.text });
    else if (c.type === 'image') content.push(media.image(c));
    else if (c.type === 'document') content.push(media.document(c));
    else if (c.type === 'video') content.push(media.video(c));
  }
  if (content.length === 0) content.push({ text: '' });
  return { toolResult: { toolUseId: part.toolCallId, content, status: part.isError ? 'error' : 'success' } };
}

function toolUseBlock(part: ToolCallPart): ContentBlock.ToolUseMember {
  let input: unknown = {};
  if (part.arguments.trim() !== '') {
    try {
      input = JSON.parse(part.arguments);
    } catch {
      throw badRequest(`The arguments of tool call '${part.id}' (${part.name}) are not valid JSON`, 'messages', 'invalid_tool_arguments');
    }
  }
  return { toolUse: { toolUseId: part.id, name: part.name, input: input as BedrockDocument } };
}

function reasoningBlock(part: ReasoningPart): ContentBlock.ReasoningContentMember | undefined {
  if (part.redactedData !== undefined) {
    return { reasoningContent: { redactedContent: new Uint8Array(Buffer.from(part.redactedData, 'base64')) } };
  }
  // An empty signature is no signature (the Messages dialect writes `signature: ""` for other providers' reasoning).
  if (part.signature) return { reasoningContent: { reasoningText: { text: part.text, signature: part.signature } } };
  return undefined;
}

export function convertToBedrockMessages(messages: Message[]): BedrockPrompt {
  const media = new MediaConverter();
  const system: SystemContentBlock[] = [];
  const out: BedrockMessage[] = [];
  let hasToolBlocks = false;
  const historyToolNames = new Set<string>();
  let droppedUnsignedReasoning = 0;
  let userResults: ContentBlock[] | undefined;
  let userOther: ContentBlock[] | undefined;
  let assistant: ContentBlock[] | undefined;

  const flushUser = () => {
    if (userResults && userOther) out.push({ role: 'user', content: [...userResults, ...userOther] });
    userResults = userOther = undefined;
  };
  const flushAssistant = () => {
    if (assistant) out.push({ role: 'assistant', content: assistant });
    assistant = undefined;
  };
  const userOtherBlocks = () => {
    flushAssistant();
    if (!userResults || !userOther) {
      userResults = [];
      userOther = [];
    }
    return userOther;
  };
  const userResultBlocks = () => {
    userOtherBlocks();
    return userResults!;
  };
  const assistantBlocks = () => {
    flushUser();
    return (assistant ??= []);
  };
  const withCache = (target: ContentBlock[], block: ContentBlock, part: { cacheControl?: Record<string, unknown> }) => {
    target.push(block);
    if (part.cacheControl) target.push({ cachePoint: cachePoint(part.cacheControl) });
  };

  for (const message of messages) {
    if (message.role === 'system') {
      for (const part of message.content) {
        if (part.type !== 'text') throw badRequest(`System messages can only carry text for Bedrock, not ${part.type}`, 'messages');
        if (part.text === '') continue;
        system.push({ text: part.text });
        if (part.cacheControl) system.push({ cachePoint: cachePoint(part.cacheControl) });
      }
      continue;
    }
    for (const part of message.content) {
      if (part.type === 'tool-result') {
        hasToolBlocks = true;
        withCache(userResultBlocks(), toolResultBlock(part, media), part);
        continue;
      }
      if (message.role === 'assistant') {
        switch (part.type) {
          case 'text':
            if (part.text !== '') withCache(assistantBlocks(), { text: part.text }, part);
            break;
          case 'reasoning': {
            const block = reasoningBlock(part);
            if (block) assistantBlocks().push(block);
            else droppedUnsignedReasoning++;
            break;
          }
          case 'tool-call':
            hasToolBlocks = true;
            historyToolNames.add(part.name);
            withCache(assistantBlocks(), toolUseBlock(part), part);
            break;
          default:
            throw badRequest(`Bedrock assistant turns cannot carry ${part.type} content`, 'messages');
        }
        continue;
      }
      switch (part.type) {
        case 'text':
          if (part.text !== '') withCache(userOtherBlocks(), { text: part.text }, part);
          break;
        case 'image':
          withCache(userOtherBlocks(), media.image(part), part);
          break;
        case 'video':
          withCache(userOtherBlocks(), media.video(part), part);
          break;
        case 'document':
          withCache(userOtherBlocks(), media.document(part), part);
          break;
        case 'tool-call':
          throw badRequest('Tool calls can only appear in assistant messages', 'messages');
        case 'reasoning':
          break;
      }
    }
  }
  flushUser();
  flushAssistant();
  checkStartsWithUser('Bedrock', out.map((m) => m.role));
  return { system: system.length ? system : undefined, messages: out, hasToolBlocks, historyToolNames: [...historyToolNames], droppedUnsignedReasoning };
}
