// Media bytes: the real type is read from the bytes (file-type), never trusted from the label.

import { fileTypeFromBuffer } from 'file-type';
import { badRequest } from './errors.js';
import type { MediaKind, MediaPart } from './types.js';

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;

const ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'video/quicktime': 'video/quicktime',
  'video/mov': 'video/quicktime',
};

export function normaliseMediaType(mediaType: string): string {
  const lower = mediaType.toLowerCase().split(';')[0]!.trim();
  return ALIASES[lower] ?? lower;
}

/** Detects the media type from magic bytes; undefined when unknown (plain text, CSV…). */
export async function sniffMediaType(bytes: Uint8Array): Promise<string | undefined> {
  const detected = await fileTypeFromBuffer(bytes);
  return detected?.mime;
}

export function decodeBase64(data: string, param: string): Uint8Array {
  const clean = data.replace(/\s+/g, '');
  if (clean.length === 0 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw badRequest('Invalid base64 data', param, 'invalid_base64');
  return new Uint8Array(Buffer.from(clean, clean.includes('-') || clean.includes('_') ? 'base64url' : 'base64'));
}

/** Parses `data:<type>;base64,<data>`; returns undefined for anything that is not a data URI. */
export function parseDataUri(uri: string, param: string): { mediaType: string; data: Uint8Array } | undefined {
  if (!uri.startsWith('data:')) return undefined;
  const match = /^data:([^;,]+)((?:;[^;,]+)*);base64,(.*)$/s.exec(uri);
  if (!match) throw badRequest('Invalid data URI: expected data:<media type>;base64,<data>', param, 'invalid_data_uri');
  return { mediaType: normaliseMediaType(match[1]!), data: decodeBase64(match[3]!, param) };
}

/**
 * Builds an image part from bytes, checking the declared type against the bytes.
 * `declared` may be a media type (image/png) or a short format (png).
 */
export async function imageFromBytes(data: Uint8Array, declared: string | undefined, param: string): Promise<MediaPart> {
  const actual = await sniffMediaType(data);
  if (!actual || !(IMAGE_TYPES as readonly string[]).includes(actual)) {
    throw badRequest(`Unsupported image: the bytes are ${actual ?? 'not a recognised image'}; expected PNG, JPEG, GIF or WebP`, param, 'unsupported_media_type');
  }
  if (declared) {
    const want = normaliseMediaType(declared.includes('/') ? declared : `image/${declared}`);
    if (want !== actual) throw badRequest(`The image is declared as ${want} but its bytes are ${actual}`, param, 'media_type_mismatch');
  }
  return { type: 'image', mediaType: actual, data };
}

export function mediaKindOf(mediaType: string): MediaKind {
  if (mediaType.startsWith('image/')) return 'image';
  if (mediaType.startsWith('video/')) return 'video';
  return 'document';
}
