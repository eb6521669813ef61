// Model downloads from a loopback HTTP server: sha256 verification, a wrong checksum, and a
// download cut off half-way that resumes with a Range request on the next pull.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pullModel } from '../dist/providers/local/download.js';
import { parseModelSource } from '../dist/providers/local/source.js';
import { startConnectProxy, withEnv } from './helpers/connect-proxy.mjs';
import { ensureTestModel } from './helpers/model.mjs';

// A GGUF header (magic, version 3, no tensors, no metadata) in front of random bytes: what a pull
// checks before it keeps a file.
const ggufHeader = Buffer.alloc(24);
ggufHeader.write('GGUF', 0, 'latin1');
ggufHeader.writeUInt32LE(3, 4);
const body = Buffer.concat([ggufHeader, randomBytes(3 * 1024 * 1024 + 123)]);
const sha256 = createHash('sha256').update(body).digest('hex');

let server;
let baseUrl;
let cacheDir;
/** Requests seen: path and Range header. */
const seen = [];
/** Paths whose next response is cut off half-way. */
const cutOnce = new Set();

before(async () => {
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-download-'));
  server = http.createServer((req, res) => {
    seen.push({ path: req.url, range: req.headers.range });
    if (req.url.startsWith('/gated/')) return res.writeHead(401).end();
    if (req.url.startsWith('/login/')) return res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Sign in to continue</body></html>');
    const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = match ? Number(match[1]) : 0;
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` });
      return res.end();
    }
    const headers = { 'content-type': 'application/octet-stream', 'content-length': body.length - start, 'accept-ranges': 'bytes' };
    if (match) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(match ? 206 : 200, headers);
    if (cutOnce.delete(req.url)) {
      // Half the body, then the connection dies.
      res.write(body.subarray(start, start + Math.floor((body.length - start) / 2)), () => res.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

describe('pullModel', () => {
  it('downloads into the cache, verifies sha256, and does not download twice', async () => {
    const url = `${baseUrl}/models/good.gguf`;
    const file = await pullModel(url, { cacheDir, sha256, size: body.length, progress: false });
    assert.ok(file.startsWith(cacheDir));
    assert.ok(fs.readFileSync(file).equals(body));
    assert.ok(!fs.existsSync(`${file}.part`));
    const requests = seen.filter((r) => r.path === '/models/good.gguf').length;
    assert.equal(await pullModel(url, { cacheDir, sha256, progress: false }), file);
    assert.equal(seen.filter((r) => r.path === '/models/good.gguf').length, requests, 'cached: no second request');
  });

  it('a server that cannot be reached: the error says what to do offline or behind a proxy', async () => {
    const closed = await new Promise((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address();
        probe.close(() => resolve(port));
      });
    });
    await assert.rejects(pullModel(`http://127.0.0.1:${closed}/m.gguf`, { cacheDir, progress: false }), (err) => {
      assert.equal(err.code, 'model_download_failed');
      assert.match(err.message, /ECONNREFUSED \(offline, pass a GGUF file you have: --model \/path\/to\/model\.gguf; behind an egress proxy, set HTTPS_PROXY\)$/);
      return true;
    });
  });

  it('refuses what is not a GGUF file (a login page served with 200), and deletes it', async () => {
    const url = `${baseUrl}/login/model.gguf`;
    await assert.rejects(pullModel(url, { cacheDir, progress: false }), (err) => {
      assert.equal(err.code, 'model_not_gguf');
      assert.match(err.message, /is not a usable GGUF file: it is not a GGUF file \(it starts with "<htm", not "GGUF"\); the file was deleted/);
      return true;
    });
    const target = path.join(cacheDir, parseModelSource(url).cachePath);
    assert.ok(!fs.existsSync(target));
    assert.ok(!fs.existsSync(`${target}.part`));
  });

  it('rejects a file whose sha256 does not match, and deletes it', async () => {
    const url = `${baseUrl}/models/bad.gguf`;
    await assert.rejects(pullModel(url, { cacheDir, sha256: 'ab'.repeat(32), progress: false }), (err) => err.code === 'model_checksum_mismatch' && /sha256/.test(err.message));
    const target = path.join(cacheDir, parseModelSource(url).cachePath);
    assert.ok(!fs.existsSync(target));
    assert.ok(!fs.existsSync(`${target}.part`));
  });

  it('rejects a file whose size does not match the configured size', async () => {
    await assert.rejects(pullModel(`${baseUrl}/models/size.gguf`, { cacheDir, size: body.length + 1, progress: false }), (err) => err.code === 'model_size_mismatch');
  });

  it('one download per file across processes: a live lock holder is named, a dead one\'s lock is taken over', async () => {
    const url = `${baseUrl}/models/locked.gguf`;
    const target = path.join(cacheDir, parseModelSource(url).cachePath);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // The parent of this test process is running: its lock is live.
    fs.writeFileSync(`${target}.lock`, JSON.stringify({ pid: process.ppid, host: os.hostname() }));
    await assert.rejects(pullModel(url, { cacheDir, progress: false }), (err) => {
      assert.equal(err.code, 'model_download_in_progress');
      assert.match(err.message, new RegExp(`being downloaded by another process \\(pid ${process.ppid} on `));
      return true;
    });
    assert.ok(!fs.existsSync(target));
    // A process that has exited left its lock behind.
    const { spawnSync } = await import('node:child_process');
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    fs.writeFileSync(`${target}.lock`, JSON.stringify({ pid: gone, host: os.hostname() }));
    const file = await pullModel(url, { cacheDir, sha256, progress: false });
    assert.ok(fs.readFileSync(file).equals(body));
    assert.ok(!fs.existsSync(`${target}.lock`), 'the lock is released');
  });

  it('a download the server ends early without having sent a length is caught by its tensors and deleted; a whole one is kept', async () => {
    const model = fs.readFileSync(ensureTestModel());
    const lengthless = http.createServer((req, res) => {
      // Close-delimited: no content-length, so the end of the body is the end of the connection.
      res.writeHead(200, { connection: 'close' });
      res.end(req.url === '/short.gguf' ? model.subarray(0, Math.floor(model.length / 2)) : model);
    });
    await new Promise((resolve) => lengthless.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${lengthless.address().port}`;
    try {
      await assert.rejects(pullModel(`${base}/short.gguf`, { cacheDir, progress: false }), (err) => {
        assert.equal(err.code, 'model_download_truncated');
        assert.match(err.message, /is incomplete: its tensor data reaches past its \d+ bytes/);
        return true;
      });
      const short = path.join(cacheDir, parseModelSource(`${base}/short.gguf`).cachePath);
      assert.ok(!fs.existsSync(short) && !fs.existsSync(`${short}.part`));
      const whole = await pullModel(`${base}/whole.gguf`, { cacheDir, progress: false });
      assert.equal(fs.statSync(whole).size, model.length);
    } finally {
      lengthless.closeAllConnections();
      await new Promise((resolve) => lengthless.close(resolve));
    }
  });

  it('resumes an interrupted download with a Range request', async () => {
    const url = `${baseUrl}/models/resume.gguf`;
    cutOnce.add('/models/resume.gguf');
    await assert.rejects(pullModel(url, { cacheDir, sha256, progress: false }), (err) => err.code === 'model_download_interrupted');
    const target = path.join(cacheDir, parseModelSource(url).cachePath);
    const partial = fs.statSync(`${target}.part`).size;
    assert.ok(partial > 0 && partial < body.length, `partial file of ${partial} bytes`);

    const file = await pullModel(url, { cacheDir, sha256, progress: false });
    const requests = seen.filter((r) => r.path === '/models/resume.gguf');
    assert.equal(requests.length, 2);
    assert.equal(requests[0].range, undefined);
    assert.equal(requests[1].range, `bytes=${partial}-`);
    assert.ok(fs.readFileSync(file).equals(body));
  });

  it('says why a download could not start: the refused connection, a gated model without HF_TOKEN', async () => {
    const closed = http.createServer();
    await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = closed.address().port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(pullModel(`http://127.0.0.1:${port}/m.gguf`, { cacheDir, progress: false }), (err) => err.code === 'model_download_failed' && /ECONNREFUSED/.test(err.message));
    await assert.rejects(pullModel(`${baseUrl}/gated/m.gguf`, { cacheDir, progress: false }), (err) => err.code === 'model_download_failed' && /HTTP 401 .*HF_TOKEN/.test(err.message));
  });

  it('maps hf: references to the hub (or HF_ENDPOINT) and returns local paths as they are', async () => {
    const previous = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = baseUrl;
    try {
      const source = parseModelSource('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/sub/dir/model-q4.gguf');
      assert.equal(source.url, `${baseUrl}/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/sub/dir/model-q4.gguf`);
      // With a progress bar (drawn on stderr when it is a terminal).
      const file = await pullModel('hf:owner/repo/tiny.gguf', { cacheDir, sha256, progress: true });
      assert.ok(seen.some((r) => r.path === '/owner/repo/resolve/main/tiny.gguf'));
      assert.ok(fs.readFileSync(file).equals(body));
    } finally {
      if (previous === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = previous;
    }
    assert.equal(parseModelSource('hf:a/b/c.gguf', {}).url, 'https://huggingface.co/a/b/resolve/main/c.gguf');
    const local = path.join(cacheDir, 'local.gguf');
    fs.writeFileSync(local, 'x');
    assert.equal(await pullModel(local, { progress: false }), local);
  });

  it('refuses a source with another scheme by name (ftp:// was read as the relative path ./ftp:/…)', () => {
    for (const source of ['ftp://host/model.gguf', 's3://bucket/model.gguf']) {
      assert.throws(() => parseModelSource(source), /Cannot load a local model from (ftp|s3):\/\/ .*a file path, a file:\/\/ or http\(s\) URL, or an hf: reference/, source);
    }
    assert.deepEqual(parseModelSource('file:///models/x.gguf'), { kind: 'file', path: '/models/x.gguf' });
  });

  it("names the Fetch standard's blocked ports, where fetch says only \"bad port\"", async () => {
    await assert.rejects(pullModel('http://127.0.0.1:6000/model.gguf', { cacheDir, progress: false }), /fetch refuses that port \(one the Fetch standard blocks/);
  });
});

// The Hub's own protocol for an LFS file: the resolve URL answers 302 to a CDN host, and carries
// the file's sha256 (X-Linked-Etag) and size (X-Linked-Size); a renamed repository answers with a
// relative redirect first.
describe('pullModel from the Hub', () => {
  const hubSeen = [];
  const cdnSeen = [];
  /** The etag each resolve path publishes. */
  const published = new Map();
  let hub;
  let cdn;
  let previous;
  let hubCache;

  before(async () => {
    hubCache = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-hub-'));
    cdn = http.createServer((req, res) => {
      cdnSeen.push({ method: req.method, path: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise((resolve) => cdn.listen(0, '127.0.0.1', resolve));
    hub = http.createServer((req, res) => {
      hubSeen.push({ method: req.method, path: req.url, authorization: req.headers.authorization, agent: req.headers['user-agent'] });
      // llama.cpp's manifest API: which GGUF file a quantization tag is.
      const manifest = /^\/v2\/owner\/repo-GGUF\/manifests\/(.+)$/.exec(req.url);
      if (manifest) {
        const files = { Q4_K_M: 'repo-q4_k_m.gguf', LATEST: 'repo-q4_k_m.gguf', Q8_0: 'big/repo-Q8_0-00001-of-00002.gguf' };
        const file = files[manifest[1].toUpperCase()];
        if (!file) return res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"The specified tag is not a valid quantization scheme."}');
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ggufFile: { rfilename: file, size: body.length } }));
      }
      if (req.url.startsWith('/old-name/')) return res.writeHead(307, { location: req.url.replace('/old-name/', '/owner/') }).end();
      const etag = published.get(req.url);
      res.writeHead(302, {
        location: `http://127.0.0.1:${cdn.address().port}/blob${req.url}`,
        ...(etag ? { 'x-linked-etag': `"${etag}"`, 'x-linked-size': String(body.length), etag: '"a-git-blob-sha1"' } : {}),
      });
      res.end();
    });
    await new Promise((resolve) => hub.listen(0, '127.0.0.1', resolve));
    previous = { endpoint: process.env.HF_ENDPOINT, token: process.env.HF_TOKEN };
    process.env.HF_ENDPOINT = `http://127.0.0.1:${hub.address().port}`;
    process.env.HF_TOKEN = 'hf_test_token';
  });
  after(async () => {
    for (const [name, value] of [['HF_ENDPOINT', previous.endpoint], ['HF_TOKEN', previous.token]]) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    for (const server of [hub, cdn]) await new Promise((resolve) => server.close(resolve));
    fs.rmSync(hubCache, { recursive: true, force: true });
  });

  it('verifies the sha256 the Hub publishes, sends HF_TOKEN to the Hub only, and follows a renamed repository', async () => {
    published.set('/owner/repo/resolve/main/good.gguf', sha256);
    const file = await pullModel('hf:old-name/repo/good.gguf', { cacheDir: hubCache, progress: false });
    assert.ok(fs.readFileSync(file).equals(body));
    assert.deepEqual(hubSeen.map((r) => `${r.method} ${r.path}`), [
      'HEAD /old-name/repo/resolve/main/good.gguf',
      'HEAD /owner/repo/resolve/main/good.gguf',
      'GET /old-name/repo/resolve/main/good.gguf',
      'GET /owner/repo/resolve/main/good.gguf',
    ]);
    assert.ok(hubSeen.every((r) => r.authorization === 'Bearer hf_test_token'));
    assert.deepEqual(cdnSeen.map((r) => [r.method, r.authorization]), [['GET', undefined]], 'the CDN gets the file request, without the token');
  });

  it('deletes a download whose sha256 is not the one the Hub publishes', async () => {
    published.set('/owner/repo/resolve/main/tampered.gguf', 'cd'.repeat(32));
    await assert.rejects(pullModel('hf:owner/repo/tampered.gguf', { cacheDir: hubCache, progress: false }), (err) => err.code === 'model_checksum_mismatch' && err.message.includes('cd'.repeat(32)));
    const target = path.join(hubCache, parseModelSource('hf:owner/repo/tampered.gguf').cachePath);
    assert.ok(!fs.existsSync(target) && !fs.existsSync(`${target}.part`));
    // A configured sha256 wins over the published one.
    assert.ok(fs.readFileSync(await pullModel('hf:owner/repo/tampered.gguf', { cacheDir: hubCache, sha256, progress: false })).equals(body));
  });

  it('hf:owner/repo:QUANT asks the Hub which file that is (as llama.cpp does), and a restart needs no network', async () => {
    published.set('/owner/repo-GGUF/resolve/main/repo-q4_k_m.gguf', sha256);
    hubSeen.length = 0;
    const file = await pullModel('hf:owner/repo-GGUF:q4_k_m', { cacheDir: hubCache, progress: false });
    assert.ok(fs.readFileSync(file).equals(body));
    assert.equal(path.basename(file), 'repo-q4_k_m.gguf');
    assert.equal(hubSeen[0].path, '/v2/owner/repo-GGUF/manifests/Q4_K_M');
    assert.equal(hubSeen[0].agent, 'llama-cpp', 'the manifest API names the GGUF file for llama.cpp clients');
    // `latest` (no tag) lets the Hub choose; the answer for Q4_K_M is remembered: no request at all.
    hubSeen.length = 0;
    assert.equal(await pullModel('hf:owner/repo-GGUF:Q4_K_M', { cacheDir: hubCache, progress: false }), file);
    assert.deepEqual(hubSeen, []);
    // The form the Hub's "use this model" button writes for Ollama names the same thing.
    assert.equal(await pullModel('hf.co/owner/repo-GGUF:Q4_K_M', { cacheDir: hubCache, progress: false }), file);
    assert.deepEqual(hubSeen, []);
    assert.equal(await pullModel('hf:owner/repo-GGUF', { cacheDir: hubCache, progress: false }), file);
    assert.deepEqual(hubSeen.map((r) => r.path), ['/v2/owner/repo-GGUF/manifests/latest']);
    // With its file gone from the cache, the remembered answer is not trusted: the Hub is asked again.
    fs.rmSync(file);
    hubSeen.length = 0;
    assert.equal(await pullModel('hf:owner/repo-GGUF:Q4_K_M', { cacheDir: hubCache, progress: false }), file);
    assert.equal(hubSeen[0].path, '/v2/owner/repo-GGUF/manifests/Q4_K_M');
    assert.ok(fs.readFileSync(file).equals(body));
  });

  it('a tag the Hub does not know, or one that is a split GGUF, is refused with a line that says so', async () => {
    await assert.rejects(pullModel('hf:owner/repo-GGUF:Q2_XYZ', { cacheDir: hubCache, progress: false }), (err) => err.code === 'model_not_found' && /no GGUF file for hf:owner\/repo-GGUF:Q2_XYZ/.test(err.message));
    await assert.rejects(pullModel('hf:owner/repo-GGUF:Q8_0', { cacheDir: hubCache, progress: false }), (err) => err.code === 'model_split_unsupported' && /split into parts/.test(err.message));
  });

  it('hf:owner/repo/file.gguf#branch downloads from that branch', async () => {
    published.set('/owner/repo/resolve/dev/good.gguf', sha256);
    const file = await pullModel('hf:owner/repo/good.gguf#dev', { cacheDir: hubCache, progress: false });
    assert.ok(fs.readFileSync(file).equals(body));
    assert.ok(hubSeen.some((r) => r.method === 'GET' && r.path === '/owner/repo/resolve/dev/good.gguf'));
    assert.notEqual(file, path.join(hubCache, parseModelSource('hf:owner/repo/good.gguf').cachePath), 'a branch has its own place in the cache');
  });

  it('goes through the proxy HTTP_PROXY names (a CONNECT tunnel to the Hub and to the CDN), and around it for NO_PROXY hosts', async () => {
    const proxy = await startConnectProxy();
    try {
      await withEnv({ HTTP_PROXY: proxy.url }, async () => {
        published.set('/owner/repo/resolve/main/proxied.gguf', sha256);
        const file = await pullModel('hf:owner/repo/proxied.gguf', { cacheDir: hubCache, progress: false });
        assert.ok(fs.readFileSync(file).equals(body));
        assert.ok(proxy.tunnels.includes(`127.0.0.1:${hub.address().port}`), 'the Hub through the proxy');
        assert.ok(proxy.tunnels.includes(`127.0.0.1:${cdn.address().port}`), 'the CDN through the proxy');
      });
      proxy.tunnels.length = 0;
      await withEnv({ HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }, async () => {
        published.set('/owner/repo/resolve/main/direct.gguf', sha256);
        assert.ok(fs.readFileSync(await pullModel('hf:owner/repo/direct.gguf', { cacheDir: hubCache, progress: false })).equals(body));
      });
      assert.deepEqual(proxy.tunnels, [], 'NO_PROXY hosts are reached directly');
    } finally {
      await proxy.close();
    }
  });

  it('without published headers (a file kept in git, a mirror) the download is checked by size alone', async () => {
    const file = await pullModel('hf:owner/repo/plain.gguf', { cacheDir: hubCache, progress: false });
    assert.ok(fs.readFileSync(file).equals(body));
  });
});
