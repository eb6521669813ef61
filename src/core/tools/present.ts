// A tool's output in the two forms it is needed: text fed back to the model, and the
// client-facing view (result, images as data URIs, s3Urls as signed download URLs).

import type { ArtifactStore } from '../artifacts/store.js';
import type { ToolOutput } from './types.js';

export interface ToolResultView {
  result: unknown;
  images?: string[];
  s3Urls?: string[];
  /** The saved files' ids, in s3Urls' order: kept with an async execution to sign its URLs afresh when polled. */
  artifactIds?: string[];
}

export interface PresentedOutput {
  /** What the model reads as the tool's result. */
  modelText: string;
  view: ToolResultView;
  isError: boolean;
}

function outputText(output: ToolOutput): string {
  return output.content
    .filter((p) => p.type === 'text')
    .map((p) => (p as { text: string }).text)
    .join('\n');
}

export async function presentOutput(output: ToolOutput, artifacts: ArtifactStore, organisation: string): Promise<PresentedOutput> {
  const text = outputText(output);
  const images: string[] = [];
  const s3Urls: string[] = [];
  const artifactIds: string[] = [];
  const notes: string[] = [];
  for (const part of output.content) {
    if (part.type === 'text' || !part.data) continue;
    const saved = await artifacts.save(organisation, part.data, part.mediaType);
    s3Urls.push(saved.url);
    artifactIds.push(saved.id);
    if (part.type === 'image') images.push(`data:${part.mediaType};base64,${Buffer.from(part.data).toString('base64')}`);
    notes.push(`[The tool produced a ${part.mediaType} file (${part.data.byteLength} bytes); it has been delivered to the user.]`);
  }
  const isError = output.isError === true;
  let result: unknown;
  if (isError) result = { error: text || 'The tool failed' };
  else if (output.structured !== undefined && output.structured !== null && typeof output.structured === 'object') result = output.structured;
  else if (output.structured !== undefined) result = { value: output.structured };
  else result = text || notes.length ? { text } : {};
  const view: ToolResultView = { result };
  if (images.length) view.images = images;
  if (s3Urls.length) view.s3Urls = s3Urls;
  if (artifactIds.length) view.artifactIds = artifactIds;
  return { modelText: [text, ...notes].filter(Boolean).join('\n') || '(no output)', view, isError };
}
