// `switchboard serve` as a real child process: how it starts, what it refuses, how it stops.
// (Apart from test/cli.test.mjs, whose file runs near the test runner's limit.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { ensureTestModel } from './helpers/model.mjs';

const run = promisify(execFile);
const cli = (args, options = {}) => run(process.execPath, ['bin/switchboard.js', ...args], { encoding: 'utf8', ...options });

let tmp;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-cli-serve-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a mistake in a section checked after the file is read (limits, store, tools) names the file too', async () => {
  for (const [section, expected] of [
    ['limits:\n  keys: { rmp: 5 }\n', /limits\.keys: Unrecognized key/],
    ['store:\n  postgres: { poolSize: -1 }\n', /store\.postgres/],
    ['tools:\n  maxRounds: zero\n', /tools\.maxRounds/],
  ]) {
    const config = path.join(tmp, 'sections.yaml');
    fs.writeFileSync(config, section);
    const error = await cli(['serve', '--config', config, '--port', '0', '--data-dir', path.join(tmp, 'sections-data'), '--no-warm-up'], { timeout: 60_000 }).then(() => assert.fail(`started with ${section}`), (e) => e);
    assert.equal(error.code, 1);
    assert.match(error.stderr.trim(), new RegExp(`^switchboard: Invalid config in ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `), section);
    assert.match(error.stderr, expected, section);
  }
});

test('serve with a GGUF whose header is corrupt stops at once, naming it (node-llama-cpp alone reads it forever)', async () => {
  const corrupt = path.join(tmp, 'corrupt.gguf');
  const header = Buffer.alloc(24);
  header.write('GGUF', 0, 'latin1');
  header.writeUInt32LE(3, 4);
  header.writeBigUInt64LE(7n, 8);
  header.writeBigUInt64LE(10n ** 15n, 16);
  fs.writeFileSync(corrupt, Buffer.concat([header, Buffer.alloc(1000)]));
  const error = await cli(['serve', '--model', corrupt, '--port', '0', '--data-dir', path.join(tmp, 'corrupt-data')], { timeout: 60_000 }).then(
    () => assert.fail('started'),
    (e) => e,
  );
  assert.equal(error.killed, false, 'serve hung');
  assert.match(error.stderr, /could not be loaded: its header declares 1000000000000000 metadata entries and 7 tensors, more than its 1024 bytes can hold: the file is truncated or corrupt/);
  // models list reads the header too (for the context): it answers, with the configured size.
  const listed = await cli(['models', 'list', '--model', corrupt], { timeout: 60_000 });
  assert.match(listed.stdout.split('\n')[1], new RegExp(`\t8192\t.*\t${corrupt}$`));
});

test('serve refuses a bad flag, env value or config file with one line naming it', async () => {
  const fail = async (args, env = {}) => {
    const error = await cli(['serve', '--data-dir', path.join(tmp, 'refused'), '--no-warm-up', ...args], { env: { ...process.env, ...env } }).then(
      () => assert.fail(`serve ${args.join(' ')} started`),
      (e) => e,
    );
    assert.equal(error.code, 1);
    return error.stderr.trim();
  };
  assert.match(await fail(['--port', 'abc']), /^switchboard: Invalid --port "abc": .*number/);
  assert.match(await fail([], { SWITCHBOARD_PORT: '99999' }), /^switchboard: Invalid SWITCHBOARD_PORT "99999": .*65535/);
  assert.match(await fail(['--threads', '0']), /^switchboard: Invalid --threads "0"/);
  assert.match(await fail([], { SWITCHBOARD_LOG_LEVEL: 'loud' }), /^switchboard: Invalid SWITCHBOARD_LOG_LEVEL "loud": .*"debug"/);
  const broken = path.join(tmp, 'broken.yaml');
  fs.writeFileSync(broken, 'models: [\n');
  assert.match(await fail(['--config', broken]), new RegExp(`^switchboard: Invalid YAML in ${broken}: [^\n]*line 2[^\n]*$`));
  const missing = path.join(tmp, 'missing.yaml');
  assert.equal(await fail(['--config', missing]), `switchboard: Cannot read the config file ${missing}: no such file`);
  assert.match(await fail(['--gpu', 'tpu']), /^switchboard: Invalid --gpu "tpu": use false, /);
  assert.match(await fail([], { SWITCHBOARD_GPU: 'tpu' }), /^switchboard: Invalid SWITCHBOARD_GPU "tpu"/);
  // A store that cannot be reached: a line naming it and its settings, the URL's password left out.
  const closed = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  const postgresFailure = await fail([], { SWITCHBOARD_POSTGRES_URL: `postgres://sb:hunter2@127.0.0.1:${closed}/sb` });
  assert.match(postgresFailure.split('\n').at(-1), new RegExp(`^switchboard: Cannot open the PostgreSQL store at postgres://127\\.0\\.0\\.1:${closed}/sb \\(store\\.postgres or SWITCHBOARD_POSTGRES_URL\\): connect ECONNREFUSED`));
  const redisFailure = await fail([], { SWITCHBOARD_POSTGRES_URL: `postgres://sb@127.0.0.1:${closed}/sb`, SWITCHBOARD_REDIS_URL: `redis://:hunter2@127.0.0.1:${closed}` });
  assert.match(redisFailure.split('\n').at(-1), new RegExp(`^switchboard: Cannot reach Redis at redis://127\\.0\\.0\\.1:${closed} \\(store\\.redis or SWITCHBOARD_REDIS_URL\\): connect ECONNREFUSED`));
  assert.doesNotMatch(postgresFailure + redisFailure, /hunter2/);
  const notADir = path.join(tmp, 'data-is-a-file');
  fs.writeFileSync(notADir, 'x');
  assert.match(await cli(['serve', '--data-dir', notADir, '--no-warm-up']).then(() => assert.fail('started'), (e) => e.stderr), new RegExp(`The data directory ${notADir} is a file, not a directory`));
  // A damaged store file: named, with what to do.
  const damaged = path.join(tmp, 'damaged-data');
  fs.mkdirSync(damaged);
  fs.writeFileSync(path.join(damaged, 'switchboard.db'), Buffer.alloc(4096, 0x5a));
  const damagedError = await cli(['serve', '--data-dir', damaged, '--no-warm-up']).then(() => assert.fail('started'), (e) => e.stderr.trim());
  assert.equal(damagedError, `switchboard: Cannot open the SQLite store ${path.join(damaged, 'switchboard.db')}: file is not a database (restore it from a backup, or move it aside to start empty)`);
  // Node 20's recursive mkdir never returns for a path under /proc: the start must fail, naming it.
  const underProc = '/proc/switchboard-test/data';
  const procError = await cli(['serve', '--data-dir', underProc, '--no-warm-up'], { timeout: 20_000 }).then(() => assert.fail('started'), (e) => e);
  assert.equal(procError.killed, false, 'the start hung');
  assert.match(procError.stderr, /^switchboard: Cannot create the data directory \/proc\/switchboard-test\/data \(--data-dir, .*ENOENT/);
  // Values a request would trip over later (a malformed base URL or model source; a sha256 that
  // could only fail after a whole download) stop the start, naming the model.
  const bad = path.join(tmp, 'bad-values.yaml');
  fs.writeFileSync(bad, 'models:\n  - { id: x, provider: openai, model: m, baseUrl: "localhost:8080/v1" }\n  - { id: y, provider: local, model: "hf:a/b/c.gguf", sha256: abc }\n');
  assert.match(await fail(['--config', bad]), /models\.0\.baseUrl: expected an http\(s\) URL; models\.1\.sha256: expected 64 hexadecimal characters/);
  fs.writeFileSync(bad, 'defaultModel: ok\nmodels:\n  - { id: ok, provider: openai, model: m, baseUrl: "http://127.0.0.1:1/v1" }\n  - { id: half, provider: local, model: "hf:owner" }\n');
  assert.match(await fail(['--config', bad]), /^switchboard: Model 'half': Invalid hf: model reference 'hf:owner'/);
});

test('first run with no config: serve downloads the default model from the Hub, verifies it, and answers on the alias default', async () => {
  // The Hub, on loopback: the default model's resolve URL redirects to a CDN host and publishes
  // the file's sha256, as huggingface.co does; the file is the test model.
  const model = fs.readFileSync(ensureTestModel());
  const digest = createHash('sha256').update(model).digest('hex');
  const hubSeen = [];
  const hub = http.createServer((req, res) => {
    hubSeen.push(`${req.method} ${req.url}`);
    if (req.url.startsWith('/cdn/')) return res.writeHead(200, { 'content-length': model.length }).end(model);
    res.writeHead(302, { location: `/cdn${req.url}`, 'x-linked-etag': `"${digest}"`, 'x-linked-size': String(model.length) }).end();
  });
  await new Promise((resolve) => hub.listen(0, '127.0.0.1', resolve));
  const home = fs.mkdtempSync(path.join(tmp, 'first-run-'));
  const env = { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${hub.address().port}`, SWITCHBOARD_CACHE_DIR: path.join(home, 'cache') };
  for (const name of ['SWITCHBOARD_CONFIG', 'SWITCHBOARD_MODEL', 'SWITCHBOARD_DATA_DIR', 'SWITCHBOARD_HOST']) delete env[name];
  // As `npm start` runs it, from a folder with no switchboard.yaml; only the port differs.
  const server = spawn(process.execPath, [path.resolve('bin/switchboard.js'), 'serve', '--port', '0'], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  server.stderr.on('data', (d) => (err += d));
  /** Resolves with the match once stdout (the log too) has `re`; rejects if serve exits first. */
  const printed = (re) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const match = re.exec(out);
        if (match) (server.stdout.off('data', check), resolve(match));
      };
      server.stdout.on('data', check);
      server.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
      check();
    });
  server.stdout.on('data', (d) => (out += d));
  try {
    const [, url] = await printed(/switchboard listening on (\S+)/);
    await printed(/running OPEN \(no authentication\), bound to loopback only/);
    assert.ok(hubSeen[0].startsWith('HEAD /Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/'), hubSeen.join('\n'));
    assert.ok(hubSeen.some((r) => r.startsWith('GET /cdn/')), 'downloaded from the CDN the Hub redirected to');
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    assert.equal(completion.model, 'qwen2.5-0.5b-instruct');
    assert.equal(completion.usage.completion_tokens, 3);
    assert.ok(fs.existsSync(path.join(home, 'data')), 'the store is in ./data');
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => (server.exitCode !== null ? resolve() : server.once('exit', resolve)));
    await new Promise((resolve) => hub.close(resolve));
  }
});

test('SIGTERM while the default model is still downloading stops serve in order (exit 0), not by the signal', async () => {
  // A Hub whose file never arrives: the warm-up waits for it until the signal.
  const hub = http.createServer((req, res) => {
    if (req.url.startsWith('/cdn/')) return res.writeHead(200, { 'content-length': 50_000_000 }).write(Buffer.alloc(1024));
    res.writeHead(302, { location: `/cdn${req.url}`, 'x-linked-size': '50000000' }).end();
  });
  await new Promise((resolve) => hub.listen(0, '127.0.0.1', resolve));
  const home = fs.mkdtempSync(path.join(tmp, 'stop-loading-'));
  const env = { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${hub.address().port}`, SWITCHBOARD_CACHE_DIR: path.join(home, 'cache') };
  for (const name of ['SWITCHBOARD_CONFIG', 'SWITCHBOARD_MODEL', 'SWITCHBOARD_DATA_DIR', 'SWITCHBOARD_HOST']) delete env[name];
  const server = spawn(process.execPath, [path.resolve('bin/switchboard.js'), 'serve', '--port', '0'], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (d) => (out += d));
  server.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    while (!/loading the default model/.test(out)) await new Promise((resolve) => server.stdout.once('data', resolve));
    server.kill('SIGTERM');
    const { code, signal } = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, out);
    assert.match(out, /shutting down/);
    assert.doesNotMatch(out, /switchboard listening on/);
  } finally {
    server.kill('SIGKILL');
    hub.closeAllConnections();
    await new Promise((resolve) => hub.close(resolve));
  }
});

test('serve binds its port before loading the model: a taken port fails at once, before any download', async () => {
  const taken = http.createServer();
  await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const hubSeen = [];
  const hub = http.createServer((req, res) => (hubSeen.push(req.url), res.writeHead(404).end()));
  await new Promise((resolve) => hub.listen(0, '127.0.0.1', resolve));
  const home = fs.mkdtempSync(path.join(tmp, 'taken-'));
  try {
    const env = { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${hub.address().port}`, SWITCHBOARD_CACHE_DIR: path.join(home, 'cache') };
    const error = await cli(['serve', '--port', String(taken.address().port), '--data-dir', path.join(home, 'data')], { env }).then(
      () => assert.fail('serve started on a taken port'),
      (e) => e,
    );
    assert.equal(error.code, 1);
    assert.match(error.stderr, /EADDRINUSE/);
    assert.deepEqual(hubSeen, [], 'no download was started');
  } finally {
    await new Promise((resolve) => taken.close(resolve));
    await new Promise((resolve) => hub.close(resolve));
  }
});
