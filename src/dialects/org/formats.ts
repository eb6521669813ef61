// Declared block formats → the media types the bytes may sniff as.

import { DOCUMENT_FORMATS, TEXT_DOCUMENT_TYPES } from '../../core/documents.js';

export const IMAGE_FORMATS: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', jpg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };

/** Video formats, each with the media types file-type reports for it. */
export const VIDEO_FORMATS: Record<string, string[]> = {
  mp4: ['video/mp4', 'video/x-m4v'],
  mov: ['video/quicktime'],
  webm: ['video/webm'],
  mkv: ['video/matroska', 'video/x-matroska'],
  flv: ['video/x-flv'],
  mpeg: ['video/mpeg'],
  mpg: ['video/mpeg'],
  wmv: ['video/x-ms-asf', 'video/x-ms-wmv'],
  '3gp': ['video/3gpp'],
};

/** Document formats, each with what file-type may report (nothing for text formats). */
export function documentSniffs(format: string): string[] {
  const mediaType = DOCUMENT_FORMATS[format];
  if (!mediaType) return [];
  // Legacy Office files are OLE compound documents.
  if (format === 'doc' || format === 'xls') return [mediaType, 'application/x-cfb'];
  return [mediaType];
}

export function isTextDocument(mediaType: string): boolean {
  return TEXT_DOCUMENT_TYPES.has(mediaType);
}

/** Media type → short format, for typed blocks that give a media type. */
export function formatOfMediaType(kind: 'image' | 'video' | 'document', mediaType: string): string | undefined {
  const lower = mediaType.toLowerCase();
  const table: Record<string, string | string[]> = kind === 'image' ? IMAGE_FORMATS : kind === 'video' ? VIDEO_FORMATS : DOCUMENT_FORMATS;
  for (const [format, types] of Object.entries(table)) if ((Array.isArray(types) ? types : [types]).includes(lower)) return format;
  return undefined;
}
