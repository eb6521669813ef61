// What a local model source names: a file on disk, or a remote file (http(s) URL or `hf:`
// reference) and where its download lives in the cache.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { expandHome, hubRepoReference, normalizeHubSource } from '../../core/config.js';

export type ModelSource =
  | { kind: 'file'; path: string }
  | { kind: 'remote'; url: string; /** Path of the downloaded file, relative to the cache dir. */ cachePath: string }
  /** `hf:owner/repo[:tag]`: the Hub picks the file (see resolveHubRepo in hub.ts). */
  | { kind: 'hub-repo'; owner: string; repo: string; tag: string };

export const hubEndpoint = (env: NodeJS.ProcessEnv = process.env): string => (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');

/**
 * `hf:owner/repo/path/file.gguf[#branch]` → the file's `resolve/<branch>` URL on the Hugging Face
 * hub (or HF_ENDPOINT); the branch is `main` unless named, as in node-llama-cpp's URIs.
 */
export function huggingFaceUrl(ref: string, env: NodeJS.ProcessEnv = process.env): { url: string; parts: string[] } {
  const [reference, branch = ''] = ref.replace(/^hf:/, '').split('#');
  const parts = reference!.split('/').filter(Boolean);
  if (parts.length < 3) throw new Error(`Invalid hf: model reference '${ref}': expected hf:owner/repo/path/file.gguf or hf:owner/repo:QUANT`);
  const [owner, repo, ...file] = parts;
  const url = `${hubEndpoint(env)}/${owner}/${repo}/resolve/${encodeURIComponent(branch || 'main')}/${file.map(encodeURIComponent).join('/')}`;
  return { url, parts: branch ? [owner!, repo!, `.branch-${branch}`, ...file] : parts };
}

export function parseModelSource(given: string, env: NodeJS.ProcessEnv = process.env): ModelSource {
  const source = normalizeHubSource(given);
  if (source.startsWith('hf:')) {
    const hubRepo = hubRepoReference(source);
    if (hubRepo) return { kind: 'hub-repo', ...hubRepo };
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
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1];
  // An ftp:// or s3:// source was read as a relative path ("file not found: ./ftp:/…").
  if (scheme && scheme.toLowerCase() !== 'file') {
    throw new Error(`Cannot load a local model from ${scheme}:// ('${given}'): a model is a file path, a file:// or http(s) URL, or an hf: reference`);
  }
  const file = scheme ? new URL(source).pathname : expandHome(source);
  return { kind: 'file', path: path.resolve(file) };
}

/** Where the file a `hf:owner/repo:tag` resolved to is remembered, relative to the cache dir: a restart needs no network. */
export function hubTagRecord(source: Extract<ModelSource, { kind: 'hub-repo' }>): string {
  return path.join('hf', safeSegment(source.owner), safeSegment(source.repo), '.tags', safeSegment(source.tag));
}

/** A path segment that cannot climb out of the cache dir or carry odd characters. */
function safeSegment(segment: string): string {
  const cleaned = segment.replace(/[^A-Za-z0-9._-]/g, '_');
  return cleaned === '.' || cleaned === '..' || cleaned === '' ? '_' : cleaned;
}
