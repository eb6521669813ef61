// Content blocks → canonical parts. The documented shape is Bedrock Converse's
// (`{text}`, `{image:{format, source:{bytes}}}`, `{video:…}`, `{document:{format, name, source}}`,
// `{toolUse}`, `{toolResult}`); the typed form (`{type:'image', format|mediaType, data}`) is
// accepted too. The declared format is checked against the bytes.

import { z } from 'zod';
import { DOCUMENT_FORMATS, decodeUtf8Text } from '../../core/documents.js';
import { badRequest } from '../../core/errors.js';
import { decodeBase64, imageFromBytes, parseDataUri, sniffMediaType } from '../../core/media.js';
import type { ContentPart, MediaKind, MediaPart } from '../../core/types.js';
import { formatPath } from '../../core/validation.js';
import { IMAGE_FORMATS, VIDEO_FORMATS, documentSniffs, formatOfMediaType, isTextDocument } from './formats.js';

const source = z.object({ bytes: z.string().min(1) }).strict();
const converseMedia = z.object({ format: z.string().min(1), source, name: z.string().optional() }).strict();
const typedMedia = z
  .object({
    type: z.enum(['image', 'video', 'document']),
    format: z.string().optional(),
    mediaType: z.string().optional(),
    data: z.string().min(1),
    name: z.string().optional(),
  })
  .strict();
const toolUseBlock = z.object({ toolUseId: z.string().min(1), name: z.string().min(1), input: z.record(z.string(), z.unknown()).default({}) }).strict();
const toolResultBlock = z
  .object({
    toolUseId: z.string().min(1),
    content: z.array(z.union([z.object({ text: z.string() }).strict(), z.object({ json: z.unknown() }).strict()])).default([]),
    status: z.enum(['success', 'error']).optional(),
  })
  .strict();

function check<T extends z.ZodType>(schema: T, value: unknown, param: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = formatPath(issue.path);
  const field = path ? `${param}.${path}` : param;
  const message =
    issue.code === 'unrecognized_keys'
      ? `Unrecognized field(s) in ${field}: ${issue.keys.join(', ')}`
      : issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined
        ? `Missing required field '${field}'`
        : `Invalid value for '${field}': ${issue.message}`;
  throw badRequest(message, field, 'invalid_content_block');
}

function bytesOf(data: string, param: string): { data: Uint8Array; mediaType?: string } {
  const uri = parseDataUri(data, param);
  return uri ?? { data: decodeBase64(data, param) };
}

async function videoPart(data: Uint8Array, format: string | undefined, param: string): Promise<MediaPart> {
  const actual = await sniffMediaType(data);
  const allowed = format ? VIDEO_FORMATS[format.toLowerCase()] : Object.values(VIDEO_FORMATS).flat();
  if (format && !allowed) throw badRequest(`Unsupported video format '${format}'; expected one of ${Object.keys(VIDEO_FORMATS).join(', ')}`, `${param}.format`, 'unsupported_media_type');
  if (!actual || !actual.startsWith('video/')) throw badRequest(`The video bytes are ${actual ?? 'not a recognised video'}`, param, 'unsupported_media_type');
  if (!allowed!.includes(actual)) throw badRequest(`The video is declared as ${format} but its bytes are ${actual}`, param, 'media_type_mismatch');
  return { type: 'video', mediaType: actual, data };
}

async function documentPart(data: Uint8Array, format: string | undefined, name: string | undefined, param: string): Promise<MediaPart> {
  const actual = await sniffMediaType(data);
  const wanted = format?.toLowerCase() ?? (actual ? formatOfMediaType('document', actual) : undefined);
  if (!wanted || !DOCUMENT_FORMATS[wanted]) {
    throw badRequest(
      format ? `Unsupported document format '${format}'; expected one of ${Object.keys(DOCUMENT_FORMATS).join(', ')}` : 'A document needs a format',
      `${param}.format`,
      'unsupported_media_type',
    );
  }
  const mediaType = DOCUMENT_FORMATS[wanted]!;
  if (isTextDocument(mediaType)) {
    if (actual || decodeUtf8Text(data) === undefined) {
      throw badRequest(`The document is declared as ${wanted} but its bytes are ${actual ?? 'not UTF-8 text'}`, param, 'media_type_mismatch');
    }
  } else if (!actual || !documentSniffs(wanted).includes(actual)) {
    throw badRequest(`The document is declared as ${wanted} but its bytes are ${actual ?? 'not a recognised file type'}`, param, 'media_type_mismatch');
  }
  return { type: 'document', mediaType, data, name };
}

async function mediaPart(kind: MediaKind, data: Uint8Array, format: string | undefined, name: string | undefined, param: string): Promise<MediaPart> {
  if (kind === 'image') {
    if (format && !IMAGE_FORMATS[format.toLowerCase()] && !format.includes('/')) {
      throw badRequest(`Unsupported image format '${format}'; expected png, jpeg, gif or webp`, `${param}.format`, 'unsupported_media_type');
    }
    return imageFromBytes(data, format?.toLowerCase(), param);
  }
  if (kind === 'video') return videoPart(data, format, param);
  return documentPart(data, format, name, param);
}

/** One block → canonical parts (tool results come back separately: they belong to a tool message). */
export async function convertBlock(block: Record<string, unknown>, param: string): Promise<ContentPart> {
  if (typeof block.type === 'string') {
    if (block.type === 'text') return { type: 'text', text: check(z.object({ type: z.literal('text'), text: z.string() }).strict(), block, param).text };
    const typed = check(typedMedia, block, param);
    const bytes = bytesOf(typed.data, `${param}.data`);
    let format = typed.format;
    const declaredType = typed.mediaType ?? bytes.mediaType;
    if (!format && declaredType) {
      format = formatOfMediaType(typed.type, declaredType);
      if (!format) throw badRequest(`Unsupported ${typed.type} media type '${declaredType}'`, `${param}.mediaType`, 'unsupported_media_type');
    }
    return mediaPart(typed.type, bytes.data, format, typed.name, param);
  }
  const keys = Object.keys(block);
  if (keys.length !== 1) throw badRequest(`A content block has exactly one of text, image, video, document, toolUse, toolResult (got ${keys.join(', ') || 'none'})`, param, 'invalid_content_block');
  const key = keys[0]!;
  switch (key) {
    case 'text':
      if (typeof block.text !== 'string') throw badRequest(`'${param}.text' must be a string`, `${param}.text`, 'invalid_content_block');
      return { type: 'text', text: block.text };
    case 'image':
    case 'video':
    case 'document': {
      const media = check(converseMedia, block[key], `${param}.${key}`);
      const data = decodeBase64(media.source.bytes, `${param}.${key}.source.bytes`);
      return mediaPart(key, data, media.format, media.name, `${param}.${key}`);
    }
    case 'toolUse': {
      const use = check(toolUseBlock, block.toolUse, `${param}.toolUse`);
      return { type: 'tool-call', id: use.toolUseId, name: use.name, arguments: JSON.stringify(use.input) };
    }
    case 'toolResult': {
      const result = check(toolResultBlock, block.toolResult, `${param}.toolResult`);
      const text = result.content.map((c) => ('text' in c ? c.text : JSON.stringify(c.json))).join('\n');
      return { type: 'tool-result', toolCallId: result.toolUseId, content: [{ type: 'text', text }], isError: result.status === 'error' };
    }
    default:
      throw badRequest(`Unknown content block '${key}'; expected text, image, video, document, toolUse or toolResult`, param, 'invalid_content_block');
  }
}
