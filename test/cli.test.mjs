// The `switchboard` command line, run as a real child process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GatewayError } from '../dist/core/errors.js';
import { startServer } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';

const run = promisify(execFile);
const cli = (args, options = {}) => run(process.execPath, ['bin/switchboard.js', ...args], { encoding: 'utf8', ...options });

let s;
let tmp;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-cli-'));
  const scripted = createScriptedFactory({ GatewayError });
  s = await startServer({ providers: { scripted: scripted.factory }, config: { defaultModel: 'm1', models: [{ id: 'm1', provider: 'scripted', model: 'x' }] } });
});
after(async () => {
  await s?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('--help explains every command and serve takes its flags', async () => {
  const { stdout } = await cli(['--help']);
  for (const command of ['serve', 'chat', 'models', 'keys']) assert.match(stdout, new RegExp(`\\b${command}\\b`));
  const serve = (await cli(['serve', '--help'])).stdout;
  for (const flag of ['--config', '--host', '--port', '--data-dir', '--model']) assert.ok(serve.includes(flag), flag);
  for (const sub of [['models', '--help'], ['keys', '--help'], ['chat', '--help'], ['keys', 'create', '--help'], ['models', 'pull', '--help']]) {
    const out = (await cli(sub)).stdout;
    assert.match(out, /Usage: switchboard/, sub.join(' '));
  }
});

test('models list prints every configured model with its aliases and provider', async () => {
  const config = path.join(tmp, 'models.yaml');
  fs.writeFileSync(
    config,
    'defaultModel: a\nmodels:\n  - id: a\n    aliases: [first]\n    provider: local\n    model: ./a.gguf\n  - id: b\n    provider: openai\n    model: gpt-x\n    baseUrl: http://127.0.0.1:1/v1\n',
  );
  const { stdout } = await cli(['models', 'list', '--config', config]);
  const rows = stdout.trim().split('\n').slice(1).map((l) => l.split('\t'));
  assert.deepEqual(
    rows.map((r) => [r[0], r[1], r[2], r[3]]),
    [
      ['a', 'first,default', 'local', './a.gguf'],
      ['b', '', 'openai', 'gpt-x'],
    ],
  );
});

test('models pull downloads a model from a URL into the cache and verifies its sha256', async () => {
  const payload = Buffer.alloc(300_000, 7);
  const sha256 = createHash('sha256').update(payload).digest('hex');
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': payload.length, 'content-type': 'application/octet-stream' });
    res.end(payload);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/models/tiny.gguf`;
  const cacheDir = path.join(tmp, 'cache');
  const config = path.join(tmp, 'pull.yaml');
  fs.writeFileSync(config, `local:\n  cacheDir: ${cacheDir}\nmodels:\n  - id: remote\n    provider: local\n    model: ${url}\n    sha256: ${sha256}\n`);
  try {
    const { stdout } = await cli(['models', 'pull', 'remote', '--config', config]);
    const file = stdout.trim().split('\n').at(-1);
    assert.ok(file.startsWith(cacheDir), file);
    assert.equal(createHash('sha256').update(fs.readFileSync(file)).digest('hex'), sha256);
    fs.writeFileSync(config, `local:\n  cacheDir: ${path.join(tmp, 'cache2')}\nmodels:\n  - id: remote\n    provider: local\n    model: ${url}\n    sha256: ${'0'.repeat(64)}\n`);
    await assert.rejects(cli(['models', 'pull', 'remote', '--config', config]), /sha256|hash/i);
  } finally {
    server.close();
  }
});

test('chat streams the answer of a running server to the terminal', async () => {
  const child = spawn(process.execPath, ['bin/switchboard.js', 'chat', '--url', s.url, '--model', 'm1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stdin.write('hello there\n');
  // Wait for the streamed answer before leaving.
  await new Promise((resolve) => {
    const check = () => (out.includes('Hello world') ? resolve() : child.stdout.once('data', check));
    check();
  });
  child.stdin.end('/exit\n');
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0);
  assert.match(out, /Chatting with m1/);
  assert.match(out, /Hello world/);
});

test('keys create prints the key alone on its last line', async () => {
  const dataDir = path.join(tmp, 'keys');
  const { stdout } = await cli(['keys', 'create', '--org', 'team-a', '--name', 'ci', '--data-dir', dataDir]);
  const lines = stdout.trim().split('\n');
  assert.match(lines.at(-1), /^sb-[A-Za-z0-9_-]{20,}$/);
  const list = (await cli(['keys', 'list', '--data-dir', dataDir])).stdout;
  assert.match(list, /team-a/);
  assert.ok(!list.includes(lines.at(-1)));
});

test('the example config in the repository is valid and names every provider', async () => {
  const { stdout } = await cli(['models', 'list', '--config', 'switchboard.example.yaml']);
  const rows = stdout.trim().split('\n').slice(1).map((l) => l.split('\t'));
  assert.deepEqual(rows.map((r) => r[2]).sort(), ['anthropic', 'bedrock', 'local', 'openai']);
  assert.ok(rows.find((r) => r[0] === 'qwen2.5-0.5b-instruct')[1].split(',').includes('default'));
});
