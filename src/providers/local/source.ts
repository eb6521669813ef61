// What a local model source names: a file on disk, or a remote file (http(s) URL or `hf:`
// reference) and where its download lives in the cache.

import { createHash } from 'node:crypto';
import path from 'node:path';

export type ModelSource =
  | { kind: 'file'; path: string }
  | { kind: 'remote'; url: string; /** Path of the downloaded file, relative to the cache dir. */ cachePath: string };

/** `hf:owner/repo/path/file.gguf` → the file's `resolve/main` URL on the Hugging Face hub (or HF_ENDPOINT). */
export function huggingFaceUrl(ref: string, env: NodeJS.ProcessEnv = process.env): { url: string; parts: string[] } {
  const parts = ref.replace(/^hf:/, '').split('/').filter(Boolean);
  if (parts.length < 3) throw new Error(`Invalid hf: model reference '${ref}': expected hf:owner/repo/path/file.gguf`);
  const [owner, repo, ...file] = parts;
  const endpoint = (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const url = `${endpoint}/${owner}/${repo}/resolve/main/${file.map(encodeURIComponent).join('/')}`;
  return { url, parts };
}

export function parseModelSource(source: string, env: NodeJS.ProcessEnv = process.env): ModelSource {
  if (source.startsWith('hf:')) {
    const { url, parts } = huggingFaceUrl(source, env);
    return { kind: 'remote', url, cachePath: path.join('hf', ...parts.map(safeSegment)) };
  }
  if (/^https?:\/\//i.test(source)) {
    const url = new URL(source);
    const base = safeSegment(decodeURIComponent(url.pathname.split('/').filter(Boolean).pop() ?? 'model.gguf'));
    // Same file name from different URLs must not collide: prefix a short hash of the URL.
    const hash = createHash('sha256').update(url.href).digest('hex').slice(0, 12);
    return { kind: 'remote', url: url.href, cachePath: path.join('url', safeSegment(url.host), `${hash}-${base}`) };
  }
  const file = source.startsWith('file://') ? new URL(source).pathname : source;
  return { kind: 'file', path: path.resolve(file) };
}

/** A path segment that cannot climb out of the cache dir or carry odd characters. */
function safeSegment(segment: string): string {
  const cleaned = segment.replace(/[^A-Za-z0-9._-]/g, '_');
  return cleaned === '.' || cleaned === '..' || cleaned === '' ? '_' : cleaned;
}
