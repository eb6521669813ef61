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
import { ensureTestModel } from './helpers/model.mjs';

const run = promisify(execFile);
const cli = (args, options = {}) => run(process.execPath, ['bin/switchboard.js', ...args], { encoding: 'utf8', ...options });

let s;
let tmp;
let scripted;
/** Where the next chat's calls will start in `scripted.calls` (and `scripted.requests`). */
const scriptedCalls = () => scripted.calls.length;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-cli-'));
  scripted = createScriptedFactory({ GatewayError });
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
  // The key in SWITCHBOARD_API_KEY is never printed: not by --help, nor after a usage error.
  const env = { ...process.env, SWITCHBOARD_API_KEY: 'sb-secret-never-printed' };
  const help = await cli(['chat', '--help'], { env });
  assert.match(help.stdout, /SWITCHBOARD_API_KEY/);
  const misuse = await cli(['chat', '--max-tokens', '0'], { env }).catch((err) => err);
  for (const text of [help.stdout, help.stderr, misuse.stdout, misuse.stderr]) assert.doesNotMatch(String(text), /sb-secret-never-printed/);
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

test('a model name used twice (two ids, an alias and an id, `default` on another model) stops the start, named', async () => {
  const model = (id, aliases = []) => `  - { id: ${id}, aliases: [${aliases.join(', ')}], provider: openai, model: m, baseUrl: "http://127.0.0.1:1/v1" }\n`;
  const cases = [
    [model('a') + model('a'), /two models have the id 'a'/],
    [model('a', ['b']) + model('b'), /'b' is an alias of model 'a' and the id of model 'b'/],
    [model('a', ['x']) + model('b', ['x']), /'x' is an alias of model 'a' and an alias of model 'b'/],
    [model('a') + model('b', ['default']), /model 'b' has the alias 'default', which names the default model \('a'\)/],
    [model('a') + model('default'), /model 'default' has the id 'default', which names the default model \('a'\)/],
  ];
  for (const [models, expected] of cases) {
    const config = path.join(tmp, 'names.yaml');
    fs.writeFileSync(config, `models:\n${models}`);
    // Before, the later model of a name silently won (or the alias lost): the list showed both.
    await assert.rejects(cli(['models', 'list', '--config', config]), (err) => expected.test(err.stderr) && err.stderr.includes(`Invalid config in ${config}: `), models);
  }
});

test('models list says, for each local model, whether its file is on disk', async () => {
  const config = path.join(tmp, 'local-files.yaml');
  const onDisk = path.join(tmp, 'on-disk.gguf');
  fs.writeFileSync(onDisk, 'x');
  const cacheDir = path.join(tmp, 'list-cache');
  fs.writeFileSync(
    config,
    `local:\n  cacheDir: ${cacheDir}\ndefaultModel: here\nmodels:\n` +
      `  - { id: here, provider: local, model: ${onDisk} }\n` +
      `  - { id: tiny, provider: local, model: ${await ensureTestModel()} }\n` +
      `  - { id: gone, provider: local, model: ${path.join(tmp, 'no-such.gguf')} }\n` +
      `  - { id: remote, provider: local, model: 'hf:owner/repo-GGUF:Q4_K_M' }\n` +
      `  - { id: upstream, provider: openai, model: gpt-x, baseUrl: 'http://127.0.0.1:1/v1' }\n`,
  );
  const { stdout } = await cli(['models', 'list', '--config', config]);
  const [header, ...rows] = stdout.replace(/\n$/, '').split('\n').map((l) => l.split('\t'));
  assert.equal(header.at(-1), 'LOCAL FILE');
  assert.deepEqual(rows.map((r) => [r[0], r.at(-1)]), [
    ['here', onDisk],
    ['tiny', await ensureTestModel()],
    ['gone', 'missing'],
    ['remote', 'not downloaded'],
    ['upstream', ''],
  ]);
  // The context each is served with: the test model was trained for 2048 tokens, under the
  // default 8192; a file that is not a GGUF, or none, keeps the configured size.
  assert.deepEqual(rows.map((r) => [r[0], r[4]]), [['here', '8192'], ['tiny', '2048'], ['gone', '8192'], ['remote', '8192'], ['upstream', '4096']]);
});

test('models pull downloads a model from a URL into the cache and verifies its sha256', async () => {
  // A GGUF header (version 3, no tensors, no metadata), then filler.
  const payload = Buffer.alloc(300_000, 7);
  payload.write('GGUF', 0, 'latin1');
  payload.writeUInt32LE(3, 4);
  payload.fill(0, 8, 24);
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
    const { stdout, stderr } = await cli(['models', 'pull', 'remote', '--config', config]);
    const file = stdout.trim().split('\n').at(-1);
    assert.ok(file.startsWith(cacheDir), file);
    assert.equal(createHash('sha256').update(fs.readFileSync(file)).digest('hex'), sha256);
    assert.match(stderr, new RegExp(`verified: ${payload.length} bytes, sha256 ${sha256}`), 'says what it checked');
    const again = await cli(['models', 'pull', 'remote', '--config', config]);
    assert.equal(again.stdout.trim().split('\n').at(-1), file);
    assert.match(again.stderr, /already in the cache/);
    // Quoted: 64 zeros unquoted are a YAML number (the config would be refused before any download).
    fs.writeFileSync(config, `local:\n  cacheDir: ${path.join(tmp, 'cache2')}\nmodels:\n  - id: remote\n    provider: local\n    model: ${url}\n    sha256: "${'0'.repeat(64)}"\n`);
    await assert.rejects(cli(['models', 'pull', 'remote', '--config', config]), /failed verification: sha256 is [0-9a-f]{64}, expected 0{64}/);
    // A mistyped id is said to be one, not looked for as a file.
    await assert.rejects(cli(['models', 'pull', 'remtoe', '--config', config]), (err) => {
      assert.match(err.stderr.trim(), /^switchboard: 'remtoe' is no model id or alias of the config \(.*remote.*\) and no file$/);
      return true;
    });
  } finally {
    server.close();
  }
});

/** `switchboard chat` as a child process; `command` wraps it (e.g. in a terminal via `script`). */
function startChat(args, { command } = {}) {
  const argv = [process.execPath, 'bin/switchboard.js', 'chat', '--url', s.url, ...args];
  const child = command ? spawn('script', ['-qfec', argv.join(' '), '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] }) : spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const seen = { out: '', err: '' };
  const waiters = [];
  const notify = () => {
    for (const w of [...waiters]) if (w.re.test(seen[w.stream])) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  };
  child.stdout.on('data', (d) => ((seen.out += d), notify()));
  child.stderr.on('data', (d) => ((seen.err += d), notify()));
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    seen,
    exited,
    /** Resolves once stdout (or stderr) matches `re`. */
    waitFor: (re, stream = 'out') => new Promise((resolve) => (re.test(seen[stream]) ? resolve() : waiters.push({ re, stream, resolve }))),
  };
}

const count = (text, word) => text.split(word).length - 1;

test('chat streams the answer of a running server to the terminal', async () => {
  const chat = startChat(['--model', 'm1']);
  chat.child.stdin.write('hello there\n');
  await chat.waitFor(/Hello world/);
  chat.child.stdin.write('script:reasoning\n');
  await chat.waitFor(/Answer\./);
  chat.child.stdin.end('/exit\n');
  assert.equal(await chat.exited, 0);
  // Piped: stdout holds the answers alone (no banner, no '> ' prompts), the banner goes to stderr.
  assert.match(chat.seen.err, /Chatting with m1/);
  assert.match(chat.seen.out, /^Hello world\n/);
  assert.doesNotMatch(chat.seen.out, /> /);
  assert.doesNotMatch(chat.seen.out, /Let me think/, 'reasoning is left out of piped output');
});

test('chat answers every piped line in turn, with the earlier turns as history', async () => {
  const from = scriptedCalls();
  const chat = startChat(['--model', 'm1']);
  chat.child.stdin.end('one\ntwo\nthree\n');
  assert.equal(await chat.exited, 0);
  assert.equal(count(chat.seen.out, 'Hello world'), 3, chat.seen.out);
  const asked = scripted.requests.slice(from).map((r) => r.messages.map((m) => `${m.role}:${m.content.map((p) => p.text).join('')}`));
  assert.deepEqual(asked, [
    ['user:one'],
    ['user:one', 'assistant:Hello world', 'user:two'],
    ['user:one', 'assistant:Hello world', 'user:two', 'assistant:Hello world', 'user:three'],
  ]);
});

test('Ctrl-C while an answer streams stops it and cancels the upstream call; the chat goes on with what was written', async () => {
  const from = scriptedCalls();
  const chat = startChat(['--model', 'm1']);
  chat.child.stdin.write('script:gated\n');
  await chat.waitFor(/before/);
  chat.child.kill('SIGINT'); // as the terminal sends it when input is not a terminal
  await chat.waitFor(/\[stopped\]/, 'err');
  const held = scripted.calls[from];
  await held.done;
  assert.equal(held.aborted, true, 'the server cancelled the held upstream call');
  chat.child.stdin.write('go on\n');
  await chat.waitFor(/Hello world/);
  chat.child.stdin.end('/exit\n');
  assert.equal(await chat.exited, 0);
  const last = scripted.requests.at(-1).messages.map((m) => `${m.role}:${m.content.map((p) => p.text).join('')}`);
  assert.deepEqual(last, ['user:script:gated', 'assistant:before ', 'user:go on']);
});

test('on a terminal, Ctrl-C typed during an answer stops it, reasoning is shown, and Ctrl-C at the prompt leaves', async () => {
  const from = scriptedCalls();
  const chat = startChat(['--model', 'm1'], { command: 'script' });
  await chat.waitFor(/> /);
  chat.child.stdin.write('script:reasoning\r');
  await chat.waitFor(/Answer\./);
  assert.match(chat.seen.out, /Let me think\./, 'reasoning is shown on a terminal');
  chat.child.stdin.write('script:gated\r');
  await chat.waitFor(/before/);
  chat.child.stdin.write('\x03');
  await chat.waitFor(/\[stopped\]/);
  await scripted.calls[from + 1].done;
  assert.equal(scripted.calls[from + 1].aborted, true);
  chat.child.stdin.write('\x03');
  assert.equal(await chat.exited, 0);
});

test('chat --session keeps the conversation on the server: a later chat with the same id resumes it', async () => {
  const session = `cli-${Date.now()}`;
  const first = startChat(['--model', 'm1', '--session', session]);
  await first.waitFor(/New session/);
  first.child.stdin.end('hello\n');
  assert.equal(await first.exited, 0);
  assert.match(first.seen.out, /Hello world/);

  const from = scriptedCalls();
  const second = startChat(['--model', 'm1', '--session', session]);
  await second.waitFor(/Resuming session/);
  second.child.stdin.end('again\nmore\n');
  assert.equal(await second.exited, 0);
  assert.match(second.seen.out, new RegExp(`Resuming session ${session}: 2 earlier messages`));
  // The chat sends only its new turn each time; the server puts the earlier ones back, once.
  const asked = scripted.requests.slice(from).map((r) => r.messages.map((m) => `${m.role}:${m.content.map((p) => p.text).join('')}`));
  assert.deepEqual(asked, [
    ['user:hello', 'assistant:Hello world', 'user:again'],
    ['user:hello', 'assistant:Hello world', 'user:again', 'assistant:Hello world', 'user:more'],
  ]);
});

test('chat shows refusals and an unreachable server as one readable line, keeps going, and exits 1', async () => {
  const wrong = startChat(['--model', 'no-such-model']);
  wrong.child.stdin.write('hello\n');
  await wrong.waitFor(/error:/, 'err');
  wrong.child.stdin.end('again\n');
  // A script that pipes its questions learns that they were not answered.
  assert.equal(await wrong.exited, 1);
  assert.match(wrong.seen.err, /error: 404 model_not_found: .*no-such-model/);
  assert.doesNotMatch(wrong.seen.err, /\{"error"/, 'not the raw JSON body');
  assert.equal(count(wrong.seen.err, 'error:'), 2, 'the second line was asked too');

  const closed = http.createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', r));
  const port = closed.address().port;
  await new Promise((r) => closed.close(r));
  const away = spawn(process.execPath, ['bin/switchboard.js', 'chat', '--url', `http://127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  away.stderr.on('data', (d) => (err += d));
  away.stdin.end('hello\n');
  assert.equal(await new Promise((r) => away.once('exit', r)), 1);
  assert.match(err, new RegExp(`error: cannot reach http://127.0.0.1:${port} \\(.*ECONNREFUSED\\)`));
});

test('chat --session reads lines piped before the session was looked up (they were dropped)', async () => {
  const session = `cli-piped-${Date.now()}`;
  const chat = startChat(['--model', 'm1', '--session', session]);
  chat.child.stdin.end('hello\n');
  assert.equal(await chat.exited, 0);
  assert.match(chat.seen.out, /Hello world/);
  const kept = await fetch(`${s.url}/v1/sessions/${session}`).then((r) => r.json());
  assert.deepEqual(kept.messages.map((m) => m.role), ['user', 'assistant']);
});

test('chat refuses a --max-tokens that is not a positive whole number and a --url that is not http(s), naming them', async () => {
  for (const [args, pattern] of [
    [['--max-tokens', 'abc'], /--max-tokens <n>' argument 'abc' is invalid\. must be a whole number of at least 1/],
    [['--max-tokens', '0'], /--max-tokens <n>' argument '0' is invalid/],
    [['--url', 'notaurl'], /--url <url>' argument 'notaurl' is invalid\. must be an http\(s\) URL/],
  ]) {
    const error = await cli(['chat', ...args]).then(
      () => assert.fail(`${args.join(' ')} was accepted`),
      (e) => e,
    );
    assert.equal(error.code, 1, args.join(' '));
    assert.match(error.stderr, pattern);
  }
  const viaEnv = await cli(['chat'], { env: { ...process.env, SWITCHBOARD_URL: 'ftp://x' } }).then(
    () => assert.fail('accepted'),
    (e) => e,
  );
  assert.equal(viaEnv.code, 1);
  assert.match(viaEnv.stderr, /Invalid server URL 'ftp:\/\/x'/);
});

test('keys create and usage refuse what their HTTP routes refuse: an organisation name, an expiry of zero, a time that is not ISO 8601', async () => {
  const dataDir = path.join(tmp, 'keys-refused');
  for (const [args, pattern] of [
    [['keys', 'create', '--org', '', '--data-dir', dataDir], /^switchboard: Invalid --org '': must be 1-128 characters/],
    [['keys', 'create', '--org', 'team a', '--data-dir', dataDir], /^switchboard: Invalid --org 'team a'/],
    [['keys', 'create', '--org', 'team-a', '--expires-in', '0d', '--data-dir', dataDir], /^switchboard: Invalid duration '0d': use one above zero/],
    [['usage', '--since', 'March 3', '--data-dir', `${dataDir}-usage`], /^switchboard: --since 'March 3' must be ISO 8601/],
  ]) {
    const error = await cli(args).then(
      () => assert.fail(`${args.join(' ')} was accepted`),
      (e) => e,
    );
    assert.equal(error.code, 1, args.join(' '));
    assert.match(error.stderr.trim(), pattern);
  }
  assert.equal(fs.existsSync(`${dataDir}-usage`), false, 'a refused usage flag opened no store');
  // Commands that read the store refuse a folder that has none (a mistyped --data-dir), and make none.
  for (const args of [['usage'], ['keys', 'list'], ['keys', 'revoke', 'key_x']]) {
    const error = await cli([...args, '--data-dir', dataDir]).then(() => assert.fail(`${args.join(' ')} was accepted`), (e) => e);
    assert.equal(error.code, 1, args.join(' '));
    assert.match(error.stderr.trim(), /^switchboard: No Switchboard store in .*keys-refused: give the server's data directory/);
  }
  assert.equal(fs.existsSync(path.join(dataDir, 'switchboard.db')), false);
  await cli(['keys', 'create', '--org', 'team-a', '--data-dir', dataDir]);
  assert.match((await cli(['usage', '--since', '2026-11-01', '--data-dir', dataDir])).stdout, /./);
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
