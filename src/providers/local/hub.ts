// The Hugging Face Hub's side of a download, spoken as its own clients speak it: which file an
// `hf:owner/repo:QUANT` names (llama.cpp's manifest API), the sha256 and size it publishes for a
// file (huggingface_hub's HEAD), and HF_TOKEN sent to the Hub alone.

import fs from 'node:fs';
import path from 'node:path';
import { fetch } from 'undici';
import { defaultCacheDir } from '../../core/config.js';
import { describeNetworkError, GatewayError, offlineHint } from '../../core/errors.js';
import { makeDir } from '../../core/make-dir.js';
import { sharedProxyDispatcher, viaProxy } from '../../core/proxy.js';
import type { PullOptions } from './download.js';
import { hubEndpoint, hubTagRecord, parseModelSource, type ModelSource } from './source.js';

type HubRepo = Extract<ModelSource, { kind: 'hub-repo' }>;

/**
 * `hf:owner/repo:QUANT` → `hf:owner/repo/<the file>`, asking the Hub which file that is the way
 * llama.cpp and node-llama-cpp do (`/v2/owner/repo/manifests/QUANT`, which names the GGUF file of
 * that quantization). The answer is remembered beside the file, so a restart needs no network.
 */
export async function resolveHubRepo(source: HubRepo, options: PullOptions): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const remembered = rememberedHubFile(source, cacheDir);
  if (remembered) return remembered.reference;
  const named = `hf:${source.owner}/${source.repo}:${source.tag}`;
  const url = `${hubEndpoint()}/v2/${encodeURIComponent(source.owner)}/${encodeURIComponent(source.repo)}/manifests/${encodeURIComponent(source.tag)}`;
  const response = await fetch(url, { headers: { 'user-agent': 'llama-cpp', accept: 'application/json', ...hubHeaders(url) }, signal: options.signal, dispatcher: sharedProxyDispatcher() }).catch((err: unknown) => {
    throw new GatewayError('unavailable', `Asking the Hub${viaProxy(url)} which file ${named} is failed: ${describeNetworkError(err)}${offlineHint(err)}`, { code: 'model_download_failed', cause: err });
  });
  if (response.status === 400 || response.status === 404) {
    throw new GatewayError('not_found', `The Hub has no GGUF file for ${named} (name the quantization, e.g. :Q4_K_M, or the file: hf:owner/repo/file.gguf)`, { code: 'model_not_found', retryable: false });
  }
  if (!response.ok) {
    throw new GatewayError('unavailable', `Asking the Hub which file ${named} is failed: HTTP ${response.status}${tokenHint(response.status)}`, { code: 'model_download_failed' });
  }
  const manifest = (await response.json().catch(() => undefined)) as { ggufFile?: { rfilename?: unknown } } | undefined;
  const file = manifest?.ggufFile?.rfilename;
  if (typeof file !== 'string' || !file.toLowerCase().endsWith('.gguf') || file.split('/').includes('..')) {
    throw new GatewayError('unavailable', `The Hub's answer for ${named} names no GGUF file`, { code: 'model_download_failed' });
  }
  if (/-\d{5}-of-\d{5}\.gguf$/i.test(file)) {
    throw new GatewayError('bad_request', `${named} is a GGUF split into parts (${file}), which Switchboard does not download; pick a smaller quantization or a single file`, { code: 'model_split_unsupported', retryable: false });
  }
  const record = path.resolve(cacheDir, hubTagRecord(source));
  makeDir(path.dirname(record));
  fs.writeFileSync(record, `${file}\n`);
  return hubFileReference(source, file);
}

const hubFileReference = (source: HubRepo, file: string) => `hf:${source.owner}/${source.repo}/${file}`;

/**
 * The file an earlier answer named, while it is in the cache: its `hf:` reference and path. Once
 * the file is gone the network is needed anyway, so the Hub is asked again (the quantization may
 * name another file by now).
 */
export function rememberedHubFile(source: HubRepo, cacheDir: string): { reference: string; path: string } | undefined {
  const record = path.resolve(cacheDir, hubTagRecord(source));
  if (!fs.existsSync(record)) return undefined;
  const reference = hubFileReference(source, fs.readFileSync(record, 'utf8').trim());
  const file = parseModelSource(reference);
  const cached = file.kind === 'remote' ? path.resolve(cacheDir, file.cachePath) : undefined;
  return cached && fs.existsSync(cached) ? { reference, path: cached } : undefined;
}

const hubHost = () => new URL(hubEndpoint()).host;

/** What a refused download should say: a 401 or 403 from the Hub is a gated or private model. */
export function tokenHint(status: number): string {
  return status === 401 || status === 403 ? ' (a gated or private model needs HF_TOKEN)' : '';
}

/** An `hf:` reference, or a `resolve` URL on the Hub (or HF_ENDPOINT). */
export function isHubFile(source: string, url: string): boolean {
  return source.startsWith('hf:') || (new URL(url).host === hubHost() && url.includes('/resolve/'));
}

/** HF_TOKEN goes to the Hub only; fetch drops it itself on the redirect to another host. */
export function hubHeaders(url: string): Record<string, string> {
  const token = process.env.HF_TOKEN;
  return token && new URL(url).host === hubHost() ? { authorization: `Bearer ${token}` } : {};
}

/**
 * Fills in the sha256 and size the Hub publishes for a file it stores in LFS, read as
 * huggingface_hub reads them: a HEAD on the resolve URL that does not follow the redirect to the
 * CDN, whose X-Linked-Etag is the file's sha256 and X-Linked-Size its size. A configured sha256 or
 * size wins; without the headers (a small file in git, a mirror that omits them) the download is
 * checked by size as before, and a HEAD that fails leaves the GET to report why.
 */
export async function withHubChecksum(url: string, options: PullOptions): Promise<PullOptions> {
  let target = url;
  try {
    for (let hop = 0; hop < 5; hop++) {
      const response = await fetch(target, { method: 'HEAD', headers: { 'user-agent': 'switchboard', 'accept-encoding': 'identity', ...hubHeaders(target) }, redirect: 'manual', signal: options.signal, dispatcher: sharedProxyDispatcher() });
      const location = response.headers.get('location');
      // A relative redirect stays on the Hub (a renamed repository): follow it.
      if (response.status >= 300 && response.status < 400 && location && !/^[a-z][a-z0-9+.-]*:/i.test(location)) {
        target = new URL(location, target).href;
        continue;
      }
      if (response.status >= 400) return options;
      const etag = (response.headers.get('x-linked-etag') ?? response.headers.get('etag'))?.replace(/^W\//, '').replaceAll('"', '');
      const size = Number(response.headers.get('x-linked-size') ?? Number.NaN);
      return {
        ...options,
        sha256: options.sha256 ?? (etag && /^[0-9a-f]{64}$/i.test(etag) ? etag.toLowerCase() : undefined),
        size: options.size ?? (Number.isSafeInteger(size) && size > 0 ? size : undefined),
      };
    }
  } catch {
    // The GET that follows says what went wrong.
  }
  return options;
}
