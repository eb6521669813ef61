// A server killed with SIGKILL in the middle of async runs, then started again on the same data
// directory: the run that had emitted events is failed with a clear error and its earlier
// events are still replayable; the run that had emitted nothing is re-queued and completes.
// The server is a child process (bin/switchboard.js serve); its model is an OpenAI-compatible
// fake upstream that can hold a response open.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { postJson, readSse } from './helpers/server.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

let fake;
let dataDir;
let configFile;
/** What the upstream does with each prompt; switched to plain answers for the second life. */
let mode = 'hold';

function holdOpen(res, content) {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  if (content) {
    const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta: { role: 'assistant', content }, finish_reason: null }] };
    res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }
  // Left open: the process dies before it ends.
}

before(async () => {
  fake = await startFakeOpenAI();
  fake.setDefault((record) => {
    const prompt = record.body.messages.at(-1).content;
    if (mode === 'hold' && prompt === 'emit then hang') return { type: 'handler', handle: (req, res) => holdOpen(res, 'partial answer') };
    if (mode === 'hold' && prompt === 'hang silently') return { type: 'handler', handle: (req, res) => holdOpen(res, '') };
    return { type: 'text', text: 'second life', chunks: 2 };
  });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-restart-'));
  configFile = path.join(dataDir, 'switchboard.yaml');
  fs.writeFileSync(
    configFile,
    stringify({
      server: { host: '127.0.0.1', port: 0, logLevel: 'warn' },
      router: { retries: 0 },
      async: { concurrency: 2 },
      defaultModel: 'up',
      models: [{ id: 'up', provider: 'openai', model: 'up', baseUrl: fake.url }],
    }),
  );
});
after(async () => {
  await fake.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function startChild() {
  const child = spawn(process.execPath, ['bin/switchboard.js', 'serve', '--config', configFile, '--data-dir', dataDir, '--port', '0', '--no-warm-up'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /switchboard listening on (\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${out}`)));
  });
  return { child, url };
}

const submit = (url, text, id) =>
  postJson(`${url}/v1/messages/async?message_id=${id}`, { model: 'up', max_tokens: 20, messages: [{ role: 'user', content: text }] });
const status = async (url, id) => (await fetch(`${url}/v1/messages/async/${id}`)).json();

test('kill -9 mid-run, restart: the run with events is failed and replayable; the silent one is re-queued', async () => {
  const first = await startChild();
  assert.equal((await submit(first.url, 'emit then hang', 'loud')).status, 202);
  assert.equal((await submit(first.url, 'hang silently', 'quiet')).status, 202);
  // Both upstream calls have arrived: both runs are running.
  while (fake.requests.length < 2) await fake.nextRequest();

  // Read the loud run's events until its first text delta is out.
  const res = await fetch(`${first.url}/v1/messages/async/loud/events`);
  const reader = res.body.getReader();
  let seen = '';
  while (!seen.includes('partial answer')) seen += new TextDecoder().decode((await reader.read()).value);
  assert.equal((await status(first.url, 'loud')).status, 'running');
  assert.equal((await status(first.url, 'quiet')).status, 'running');

  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  await reader.cancel().catch(() => undefined);

  // A run queued by a version that stored the bare request body (before the anthropic-beta
  // values were kept with it) still runs after the upgrade.
  const db = new Database(path.join(dataDir, 'switchboard.db'));
  const { organisation } = db.prepare("SELECT organisation FROM async_runs WHERE id = 'quiet'").get();
  db.prepare("INSERT INTO async_runs (organisation, id, kind, status, priority, model, request, created_at) VALUES (?, 'legacy', 'messages', 'pending', 0, 'up', ?, ?)").run(
    organisation,
    JSON.stringify({ model: 'up', max_tokens: 20, messages: [{ role: 'user', content: 'from before' }] }),
    Date.now(),
  );
  db.close();

  mode = 'answer';
  const second = await startChild();
  try {
    const loud = await status(second.url, 'loud');
    assert.equal(loud.status, 'failed');
    assert.equal(loud.error.type, 'api_error');
    assert.match(loud.error.message, /stopped before it finished/);
    assert.ok(loud.finished_at);

    // Earlier events replay as they were, then the stream ends with the error that explains it.
    const { events } = await readSse(await fetch(`${second.url}/v1/messages/async/loud/events`));
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'error'],
    );
    assert.deepEqual(events.map((e) => Number(e.id)), [1, 2, 3, 4, 5]);
    assert.equal(JSON.parse(events[3].data).delta.text, 'partial answer');
    assert.match(JSON.parse(events[4].data).error.message, /stopped before it finished/);
    const resumed = await readSse(await fetch(`${second.url}/v1/messages/async/loud/events`, { headers: { 'last-event-id': '3' } }));
    assert.deepEqual(resumed.events, events.slice(3));

    // The silent run had emitted nothing: it ran again and completed.
    const replay = await readSse(await fetch(`${second.url}/v1/messages/async/quiet/events`));
    assert.equal(replay.events.at(-1).event, 'message_stop');
    const quiet = await status(second.url, 'quiet');
    assert.equal(quiet.status, 'completed');
    assert.equal(quiet.message.content[0].text, 'second life');

    const legacyEvents = await readSse(await fetch(`${second.url}/v1/messages/async/legacy/events`));
    assert.equal(legacyEvents.events.at(-1).event, 'message_stop');
    assert.equal((await status(second.url, 'legacy')).status, 'completed');
    assert.ok(fake.requests.some((r) => r.body.messages?.at(-1)?.content === 'from before'));
  } finally {
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
  }
});
