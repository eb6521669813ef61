// The README's usage examples, run as a user would paste them: its curl commands and its `openai`
// and `@anthropic-ai/sdk` snippets, against a server on the test model (the README's
// 127.0.0.1:8080 replaced by the server's address). An example the code no longer honours fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startServer } from './helpers/server.mjs';
import { ensureTestModel } from './helpers/model.mjs';

const run = promisify(execFile);
const readme = fs.readFileSync('README.md', 'utf8');
/** Fenced blocks of one language, in order. */
const blocks = (lang) => [...readme.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);

let s;
// Inside the repository, so the snippets' imports resolve from its node_modules.
const scratch = path.resolve('.cache/readme-examples');

before(async () => {
  fs.mkdirSync(scratch, { recursive: true });
  s = await startServer({
    // A short context: the random-weight model rarely ends a turn, and the README's story has no max_tokens.
    config: { local: { threads: 1, parallel: 2, contextSize: 256 }, defaultModel: 'tiny', models: [{ id: 'tiny', provider: 'local', model: ensureTestModel(), contextLength: 256 }] },
  });
});
after(async () => {
  await s?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const here = (text) => text.replaceAll('http://127.0.0.1:8080', s.url);

test('the README has the examples this test runs', () => {
  assert.ok(blocks('sh').some((b) => b.includes('curl')), 'a curl block');
  assert.equal(blocks('js').length, 2, 'the openai and the Anthropic snippets');
});

test('each curl command of the README gets a 200 in its documented shape', async () => {
  const commands = blocks('sh')
    .filter((b) => b.includes('curl'))
    .flatMap((b) => b.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((line) => line.trim())
    .filter((line) => line.startsWith('curl'));
  assert.ok(commands.length >= 3, commands.join('\n'));
  for (const command of commands) {
    // -w adds the status on its own last line; the key example runs with no key set (the server is open).
    const { stdout } = await run('bash', ['-c', `${here(command)} -w '\\n%{http_code}'`], { env: { ...process.env, SWITCHBOARD_API_KEY: '' } });
    const lines = stdout.trimEnd().split('\n');
    const status = lines.pop();
    const body = lines.join('\n');
    assert.equal(status, '200', `${command}\n${body}`);
    if (command.includes('"stream": true')) {
      assert.match(body, /^data: \{"id":"chatcmpl-/);
      assert.ok(body.trimEnd().endsWith('data: [DONE]'), body.slice(-200));
    } else {
      const json = JSON.parse(body);
      if (command.includes('/v1/models')) assert.ok(json.data.some((m) => m.id === 'tiny'));
      else assert.equal(json.object, 'chat.completion');
    }
  }
});

test('the openai and Anthropic SDK snippets of the README run as written', async () => {
  for (const [i, snippet] of blocks('js').entries()) {
    const file = path.join(scratch, `example-${i}.mjs`);
    fs.writeFileSync(file, here(snippet));
    const { stdout, stderr } = await run(process.execPath, [file], { env: { ...process.env, SWITCHBOARD_API_KEY: '' } });
    assert.equal(stderr, '', `example ${i}`);
    if (snippet.includes("from 'openai'")) assert.match(stdout, /prompt_tokens/, 'the usage printed');
    else assert.match(stdout, /^tiny$/m, 'the model list printed');
  }
});
