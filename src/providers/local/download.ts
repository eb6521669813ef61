// Downloads a remote GGUF into the cache once: resumable (`.part` file + Range request), checked
// against the expected size and sha256 before it is renamed into place. `models pull` and the
// provider's warm-up both come through `pullModel`.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import cliProgress from 'cli-progress';
import { readGgufFileInfo } from 'node-llama-cpp';
import { fetch } from 'undici';
import { defaultCacheDir } from '../../core/config.js';
import { describeNetworkError, GatewayError, offlineHint } from '../../core/errors.js';
import { makeDir } from '../../core/make-dir.js';
import { sharedProxyDispatcher, viaProxy } from '../../core/proxy.js';
import { checkGgufHeader } from './gguf-header.js';
import { hubHeaders, isHubFile, rememberedHubFile, resolveHubRepo, tokenHint, withHubChecksum } from './hub.js';
import { parseModelSource } from './source.js';

export interface PullOptions {
  cacheDir?: string;
  /** Expected sha256 (hex) of the whole file. */
  sha256?: string;
  /** Expected size in bytes. */
  size?: number;
  /** Show a progress bar on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  signal?: AbortSignal;
  /** Called once a downloaded file has passed its checks: its size, and its sha256 when one was known. */
  onVerified?: (check: { bytes: number; sha256?: string }) => void;
}

const inFlight = new Map<string, Promise<string>>();

/** Where `source` is on disk now, without downloading anything: its path, or undefined. */
export function localModelFile(source: string, cacheDir: string = defaultCacheDir()): string | undefined {
  const parsed = parseModelSource(source);
  if (parsed.kind === 'hub-repo') return rememberedHubFile(parsed, cacheDir)?.path;
  const file = parsed.kind === 'file' ? parsed.path : path.resolve(cacheDir, parsed.cachePath);
  return fs.existsSync(file) ? file : undefined;
}

/** Returns the local path of `source`, downloading it into the cache first when it is remote. */
export async function pullModel(source: string, options: PullOptions = {}): Promise<string> {
  const parsed = parseModelSource(source);
  if (parsed.kind === 'hub-repo') return pullModel(await resolveHubRepo(parsed, options), options);
  if (parsed.kind === 'file') {
    if (!fs.existsSync(parsed.path)) {
      throw new GatewayError('unavailable', `Local model file not found: ${parsed.path}`, { code: 'model_file_not_found', retryable: false });
    }
    return parsed.path;
  }
  const target = path.resolve(options.cacheDir ?? defaultCacheDir(), parsed.cachePath);
  if (fs.existsSync(target)) return target;
  // One download per file at a time; concurrent pulls share it.
  let pending = inFlight.get(target);
  if (!pending) {
    const checked = isHubFile(source, parsed.url) ? withHubChecksum(parsed.url, options) : Promise.resolve(options);
    pending = checked.then((withChecksum) => download(parsed.url, target, withChecksum)).finally(() => inFlight.delete(target));
    inFlight.set(target, pending);
  }
  return pending;
}

/**
 * Holds `<target>.lock` while downloading: two processes (a serve warming up and a `models pull`,
 * replicas sharing a cache) appending to one `.part` would both end with a broken file. A lock
 * left by a process that is gone (same host, pid not running) is taken over.
 */
function lockDownload(target: string, url: string): () => void {
  const lock = `${target}.lock`;
  const mine = JSON.stringify({ pid: process.pid, host: os.hostname() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, mine, { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(lock);
    if (holder && (holder.host !== os.hostname() || processRunning(holder.pid))) {
      throw new GatewayError('unavailable', `${url} is being downloaded by another process (pid ${holder.pid} on ${holder.host}); wait for it, or delete ${lock} if that process is gone`, {
        code: 'model_download_in_progress',
      });
    }
    fs.rmSync(lock, { force: true });
  }
  throw new GatewayError('unavailable', `Could not take ${lock} to download ${url}; try again`, { code: 'model_download_in_progress' });
}

function readLock(lock: string): { pid: number; host: string } | undefined {
  try {
    const value = JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid?: unknown; host?: unknown };
    return typeof value.pid === 'number' && typeof value.host === 'string' ? { pid: value.pid, host: value.host } : undefined;
  } catch {
    return undefined;
  }
}

function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function download(url: string, target: string, options: PullOptions): Promise<string> {
  makeDir(path.dirname(target));
  const unlock = lockDownload(target, url);
  try {
    // Another process may have finished it while this one waited to start.
    if (fs.existsSync(target)) return target;
    return await downloadLocked(url, target, options);
  } finally {
    unlock();
  }
}

async function downloadLocked(url: string, target: string, options: PullOptions): Promise<string> {
  const part = `${target}.part`;
  let offset = fileSize(part);
  if (options.size !== undefined && offset > options.size) offset = truncate(part);

  const response = await request(url, offset, options.signal);
  if (response.status === 416 && offset > 0) {
    // Nothing left to send: the part may already be whole; verification decides.
    await response.body?.cancel();
    return finalize(part, target, url, options, contentRangeTotal(response.headers.get('content-range')) ?? offset);
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    throw new GatewayError('unavailable', `Downloading ${url} failed: HTTP ${response.status}${tokenHint(response.status)}`, { code: 'model_download_failed' });
  }

  const length = Number(response.headers.get('content-length') ?? NaN);
  let total: number | undefined;
  if (response.status === 206) {
    const range = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(response.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== offset) {
      await response.body?.cancel();
      truncate(part);
      throw new GatewayError('unavailable', `Downloading ${url} failed: the server resumed at the wrong offset; run again to restart`, {
        code: 'model_download_failed',
      });
    }
    total = range[3] === '*' ? (Number.isFinite(length) ? offset + length : undefined) : Number(range[3]);
  } else {
    // 200: the server ignored the Range header, so the download starts over.
    offset = truncate(part);
    total = Number.isFinite(length) ? length : undefined;
  }
  if (options.size !== undefined && total !== undefined && total !== options.size) {
    await response.body?.cancel();
    fs.rmSync(part, { force: true });
    throw new GatewayError('unavailable', `Model download ${url}: the server reports ${total} bytes, the configured size is ${options.size}`, {
      code: 'model_size_mismatch',
      retryable: false,
    });
  }

  const bar = progressBar(options.progress ?? Boolean(process.stderr.isTTY), path.basename(target), total ?? options.size, offset);
  let received = offset;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      bar?.update(received);
      done(null, chunk);
    },
  });
  const file = fs.createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' });
  try {
    if (!response.body) throw new Error('empty response body');
    const body = Readable.fromWeb(response.body as unknown as NodeWebReadableStream<Uint8Array>);
    await pipeline(body, counter, file);
  } catch (err) {
    // pipeline rejects at the first error, while a write may still be landing in the .part: wait
    // for the file to close, or a pull that resumes at once would append after the wrong offset.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
    // The .part keeps what arrived; the next pull resumes from there.
    throw new GatewayError('unavailable', `Downloading ${url} was interrupted after ${fileSize(part)} bytes (${describeNetworkError(err)}); pull again to resume`, {
      code: 'model_download_interrupted',
      cause: err,
    });
  } finally {
    bar?.stop();
  }
  return finalize(part, target, url, options, total ?? options.size);
}

async function checkTensorsWithin(file: string, size: number): Promise<void> {
  const info = await readGgufFileInfo(file, { readTensorInfo: true, logWarnings: false });
  const last = (info.tensorInfo ?? []).reduce((max, t) => Math.max(max, Number(t.fileOffset)), 0);
  if (last >= size) throw new Error(`its tensor data reaches past its ${size} bytes (a tensor starts at byte ${last}): the download is truncated`);
}

/** Checks size and sha256 of the finished `.part`, then renames it into place; a bad file is deleted. */
async function finalize(part: string, target: string, url: string, options: PullOptions, expectedSize: number | undefined): Promise<string> {
  const size = fileSize(part);
  const wantSize = options.size ?? expectedSize;
  if (wantSize !== undefined && size !== wantSize) {
    if (size > wantSize) fs.rmSync(part, { force: true });
    throw new GatewayError('unavailable', `Model download ${url} has ${size} bytes, expected ${wantSize}${size < wantSize ? '; pull again to resume' : ''}`, {
      code: 'model_size_mismatch',
      retryable: size < wantSize,
    });
  }
  try {
    await checkGgufHeader(part);
  } catch (err) {
    // A login page or an error page served with 200 (a wrong URL, a gated file) is no model.
    fs.rmSync(part, { force: true });
    throw new GatewayError('unavailable', `Model download ${url} is not a usable GGUF file: ${(err as Error).message}; the file was deleted (a wrong URL, or a login page?)`, {
      code: 'model_not_gguf',
      retryable: false,
    });
  }
  // The header is sound (node-llama-cpp alone may read a corrupt one forever). With no size to
  // compare with (no content-length, none configured), a download cut cleanly short is caught by
  // its tensors, which must all start within the file.
  const truncation = wantSize === undefined ? await checkTensorsWithin(part, size).catch((err: unknown) => err as Error) : undefined;
  if (truncation && /truncated/.test(truncation.message)) {
    fs.rmSync(part, { force: true });
    throw new GatewayError('unavailable', `Model download ${url} is incomplete: ${truncation.message} (the server sent no length); the file was deleted, pull again`, {
      code: 'model_download_truncated',
    });
  }
  if (options.sha256) {
    const actual = await sha256File(part);
    if (actual !== options.sha256.toLowerCase()) {
      fs.rmSync(part, { force: true });
      throw new GatewayError('unavailable', `Model download ${url} failed verification: sha256 is ${actual}, expected ${options.sha256.toLowerCase()}; the file was deleted`, {
        code: 'model_checksum_mismatch',
        retryable: false,
      });
    }
  }
  fs.renameSync(part, target);
  options.onVerified?.({ bytes: size, sha256: options.sha256?.toLowerCase() });
  return target;
}

function request(url: string, offset: number, signal: AbortSignal | undefined) {
  const headers: Record<string, string> = { 'user-agent': 'switchboard', ...hubHeaders(url) };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  return fetch(url, { headers, signal, redirect: 'follow', dispatcher: sharedProxyDispatcher() }).catch((err: unknown) => {
    throw new GatewayError('unavailable', `Downloading ${url}${viaProxy(url)} failed: ${describeNetworkError(err)}${offlineHint(err)}`, { code: 'model_download_failed', cause: err });
  });
}

function progressBar(enabled: boolean, name: string, total: number | undefined, start: number) {
  if (!enabled) return undefined;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${name} [{bar}] {percentage}% | {value}/{total} bytes | {eta_formatted}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total ?? 0, start);
  return bar;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function contentRangeTotal(header: string | null): number | undefined {
  const match = /\/(\d+)$/.exec(header ?? '');
  return match ? Number(match[1]) : undefined;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function truncate(file: string): 0 {
  fs.rmSync(file, { force: true });
  return 0;
}
