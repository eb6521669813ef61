// Server-side tool execution through the organisation chat: built-ins, HTTP tools (with the
// private-address guard), MCP servers over stdio and streamable HTTP, async executions with
// polling, artifacts behind signed URLs, and refusals fed back to the model.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { signPath } from '../dist/core/artifacts/signing.js';
import { startMcpHttpServer } from './helpers/mcp-servers.mjs';
import { png } from './helpers/media-fixtures.mjs';
import { postJson, readSse, startServer } from './helpers/server.mjs';
import { createToolLoopFactory } from './helpers/tool-loop-provider.mjs';
import { startToolServer } from './helpers/tool-http-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const loop = createToolLoopFactory();
let server;
let tools;
let mcpHttp;
let base;

const chat = (text, extra = {}) => postJson(`${base}/chat`, { modelId: 'loop', messages: [{ role: 'user', content: text }], ...extra });
const auto = (allowedTools) => ({ autoExecute: true, allowedTools });

async function pollExecution(id, until, organisation = 'acme') {
  for (;;) {
    const res = await fetch(`${server.url}/api/v3/organizations/${organisation}/ai/tools/executions/${id}`);
    const body = await res.json();
    if (res.status !== 200 || until.includes(body.status)) return { status: res.status, body };
    await new Promise((r) => setTimeout(r, 10));
  }
}

before(async () => {
  tools = await startToolServer();
  mcpHttp = await startMcpHttpServer();
  const http = (name, route, extra = {}) => ({ name, url: `${tools.url}${route}`, allowPrivateNetwork: true, ...extra });
  server = await startServer({
    config: {
      models: [{ id: 'loop', provider: 'toolloop', model: 'toolloop' }],
      tools: {
        maxRounds: 3,
        http: [
          http('make_image', '/image', { description: 'Draws an image' }),
          http('make_svg', '/svg'),
          http('moved', '/redirect'),
          http('fire_and_forget', '/empty'),
          http('lookup', '/json', { headersFromEnv: { authorization: 'LOOKUP_TOKEN' }, inputSchema: { type: 'object', properties: { q: { type: 'string' } } } }),
          http('render_video', '/gate', { async: true }),
          http('broken_render', '/fail', { async: true }),
          http('slow_render', '/image', { async: true }),
          { name: 'internal_api', url: `${tools.url}/json` },
          http('stuck', '/hang', { timeoutMs: 100 }),
        ],
      },
      // One request a minute for this organisation: a tool loop's rounds are one request.
      limits: { organisations: { 'one-rpm': { rpm: 1 } } },
      mcp: {
        servers: [
          { name: 'stdio-math', transport: 'stdio', command: process.execPath, args: [path.join(here, 'helpers', 'mcp-stdio-server.mjs')] },
          { name: 'http-text', transport: 'http', url: mcpHttp.url, allowPrivateNetwork: true },
        ],
      },
    },
    providers: { toolloop: loop.factory },
    env: { LOOKUP_TOKEN: 'Bearer tool-secret' },
  });
  base = `${server.url}/api/v3/organizations/acme/ai`;
});

after(async () => {
  await server.close();
  await tools.close();
  await mcpHttp.close();
});

describe('auto-execute sync', () => {
  test("a tool loop's later rounds are not new requests against rpm: a 1-rpm organisation's loop finishes, the next request is refused", async () => {
    const url = `${server.url}/api/v3/organizations/one-rpm/ai/chat`;
    const body = { modelId: 'loop', messages: [{ role: 'user', content: 'call:lookup {"q":"x"}' }], ...auto(['lookup']) };
    const first = await postJson(url, body);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.response.toolUse.status, 'complete');
    const second = await postJson(url, body);
    assert.equal(second.status, 429);
  });

  test('a built-in tool runs, its result is fed back, and the final answer is text', async () => {
    const res = await chat('call:calculator {"expression":"6*7"}', auto(['calculator']));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.finishReason, 'stop');
    assert.equal(res.body.response.content, 'Results: calculator: 42');
    assert.deepEqual(res.body.response.toolUse, {
      toolUseId: `call_${loop.requests.length - 1}_0`,
      name: 'calculator',
      input: { expression: '6*7' },
      status: 'complete',
      result: { expression: '6*7', value: 42 },
    });
    // Usage summed over both model calls.
    assert.deepEqual(res.body.usage, { inputTokens: 18, outputTokens: 11, totalTokens: 29 });
    // The served-by headers are the first model call's, as without the tool loop.
    assert.equal(res.headers.get('x-switchboard-provider'), 'toolloop');
    assert.equal(res.headers.get('x-switchboard-model'), 'loop');
    assert.equal(res.headers.get('x-switchboard-attempts'), '1');
    assert.ok(Number(res.headers.get('x-switchboard-ttft-ms')) >= 0);
    // The server tool was offered to the model although the request did not declare it.
    assert.ok(loop.requests.at(-2).tools.some((t) => t.name === 'calculator'));
    assert.ok(!loop.requests.at(-2).tools.some((t) => t.name === 'echo'), 'tools not on allowedTools are not offered');
  });

  test('an HTTP tool gets the input as JSON, with headers from env vars', async () => {
    const res = await chat('call:lookup {"q":"switchboard"}', auto(['lookup']));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.response.toolUse.result, { echoed: { q: 'switchboard' }, auth: 'Bearer tool-secret' });
    assert.deepEqual(tools.received.at(-1).body, { q: 'switchboard' });
  });

  test('several calls in one round all run; a tool not on allowedTools is refused and the model is told', async () => {
    const res = await chat('call:calculator {"expression":"1+1"}\ncall:echo {"text":"hi"}', auto(['calculator']));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.finishReason, 'stop');
    const [calc, echo] = res.body.response.toolUse;
    assert.equal(calc.status, 'complete');
    assert.equal(echo.status, 'failed');
    assert.match(echo.result.error, /not in allowedTools/);
    assert.match(res.body.response.content, /calculator: 2 \| echo \(error\): Error: The tool 'echo' is not in allowedTools/);
  });

  test('a call the token limit cut off is not run: the turn ends there, finish length', async () => {
    const requests = loop.requests.length;
    const res = await chat('cut:calculator {"expression":"6*', auto(['calculator']));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.finishReason, 'length');
    assert.equal(loop.requests.length, requests + 1, 'no second model call');
    assert.equal(res.body.response.toolUse.status, undefined, JSON.stringify(res.body.response.toolUse));
    assert.equal(res.body.response.toolUse.result, undefined);
  });

  test('a tool on the list that the server does not know is refused', async () => {
    const res = await chat('call:launch_rockets {}', auto(['launch_rockets']));
    assert.equal(res.status, 200);
    assert.equal(res.body.response.toolUse.status, 'failed');
    assert.match(res.body.response.content, /not known to the server/);
  });

  test('the private-address guard refuses a loopback HTTP tool not allowed to reach it', async () => {
    const before = tools.received.length;
    const res = await chat('call:internal_api {}', auto(['internal_api']));
    assert.equal(res.status, 200);
    assert.equal(res.body.response.toolUse.status, 'failed');
    assert.match(res.body.response.toolUse.result.error, /private or loopback address/);
    assert.equal(tools.received.length, before, 'nothing was sent to the private address');
  });

  test('an HTTP tool that does not answer in its timeout fails, and the model is told', async () => {
    const res = await chat('call:stuck {}', auto(['stuck']));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.response.toolUse.status, 'failed');
    assert.match(res.body.response.toolUse.result.error, /timed out after 100 ms/);
    assert.match(res.body.response.content, /stuck \(error\)/);
  });

  test('a stdio MCP server\'s tool is auto-executed', async () => {
    const res = await chat('call:add {"a":2,"b":3}', auto(['add']));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.response.content, 'Results: add: 5');
    assert.equal(res.body.response.toolUse.status, 'complete');
  });

  test('a streamable HTTP MCP server\'s tool is auto-executed', async () => {
    const res = await chat('call:web_shout {"text":"hello"}', auto(['web_shout']));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.response.content, 'Results: web_shout: HELLO (from http-mcp)');
    assert.ok(mcpHttp.calls.includes('tools/call'));
  });

  test('a client gone while an MCP tool runs: the call is cancelled and its HTTP request closed, on the kept connection', async () => {
    // The server honours the cancel and never answers; the SDK client alone would keep reading
    // the call's response stream for the life of the connection.
    const called = mcpHttp.toolCalled();
    const client = new AbortController();
    const answer = fetch(`${base}/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ modelId: 'loop', messages: [{ role: 'user', content: 'call:web_wait {}' }], ...auto(['web_wait']) }),
      signal: client.signal,
    }).catch((err) => err);
    const call = await called;
    assert.equal(call.name, 'web_wait');
    client.abort();
    assert.equal((await answer).name, 'AbortError');
    let bound;
    const closed = await Promise.race([call.closed.then(() => true), new Promise((resolve) => (bound = setTimeout(resolve, 5000, false)))]);
    clearTimeout(bound);
    assert.ok(closed, 'the tools/call request was still open 5 s after the client left');
    // The kept connection still serves the next call.
    const res = await chat('call:web_shout {"text":"again"}', auto(['web_shout']));
    assert.equal(res.body.response.content, 'Results: web_shout: AGAIN (from http-mcp)');
  });

  test('auto-execute in the stream: a tool_use event with the result, then the answer, then done', async () => {
    const res = await fetch(`${base}/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ modelId: 'loop', messages: [{ role: 'user', content: 'call:calculator {"expression":"2^10"}' }], ...auto(['calculator']) }),
    });
    const { events } = await readSse(res);
    assert.deepEqual(events.map((e) => e.event), ['start', 'tool_use', 'content', 'done']);
    assert.deepEqual(events.map((e) => e.id), ['chunk-0', 'chunk-1', 'chunk-2', 'chunk-3']);
    const toolUse = JSON.parse(events[1].data).toolUse;
    assert.equal(toolUse.name, 'calculator');
    assert.equal(toolUse.status, 'complete');
    assert.deepEqual(toolUse.result, { expression: '2^10', value: 1024 });
    assert.deepEqual(JSON.parse(events[2].data), { delta: 'Results: calculator: 1024', complete: false });
    assert.deepEqual(JSON.parse(events[3].data), { complete: true, finishReason: 'stop', usage: { inputTokens: 18, outputTokens: 11, totalTokens: 29 } });
  });

  test('the loop is bounded: the last round is told to answer in text (toolChoice none)', async () => {
    const before = loop.requests.length;
    const res = await chat('repeat:calculator', auto(['calculator']));
    assert.equal(res.status, 200, res.text);
    assert.equal(loop.requests.length - before, 3, 'maxRounds is 3');
    assert.deepEqual(loop.requests.at(-1).toolChoice, { type: 'none' });
    assert.equal(loop.requests.at(-2).toolChoice, undefined);
    assert.equal(res.body.response.toolUse.length, 2);
    assert.equal(res.body.finishReason, 'stop');
  });

  test('a model that still calls tools after the last round ends with an error, not a silent cut', async () => {
    const before = loop.requests.length;
    const res = await chat('forever:calculator', auto(['calculator']));
    assert.equal(loop.requests.length - before, 3);
    assert.equal(res.status, 502);
    assert.equal(res.body.error.code, 'tool_rounds_exceeded');
    const stream = await fetch(`${base}/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ modelId: 'loop', messages: [{ role: 'user', content: 'forever:calculator' }], ...auto(['calculator']) }),
    });
    const { events } = await readSse(stream);
    assert.equal(events.at(-1).event, 'error');
    assert.equal(JSON.parse(events.at(-1).data).error.code, 'tool_rounds_exceeded');
  });
});

describe('artifacts', () => {
  test('an HTTP tool that returns an image: data URI in images, a signed URL in s3Urls that downloads it', async () => {
    const res = await chat('call:make_image {}', auto(['make_image']));
    assert.equal(res.status, 200, res.text);
    const use = res.body.response.toolUse;
    assert.equal(use.status, 'complete');
    assert.deepEqual(use.images, [`data:image/png;base64,${png.toString('base64')}`]);
    assert.equal(use.s3Urls.length, 1);
    const signed = new URL(use.s3Urls[0]);
    assert.equal(signed.origin, server.url);
    assert.match(signed.pathname, /^\/api\/v3\/artifacts\/art_/);
    const download = await fetch(signed);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('content-type'), 'image/png');
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(png));
    assert.equal(download.headers.get('content-disposition'), 'inline');
    assert.match(res.body.response.content, /image\/png file/);
  });

  test('a tool answering a redirect failed (not followed, no file); one answering 204 completed with no output (no file)', async () => {
    const moved = await chat('call:moved {}', auto(['moved']));
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.body.response.toolUse.status, 'failed');
    assert.equal(moved.body.response.toolUse.s3Urls, undefined);
    const empty = await chat('call:fire_and_forget {}', auto(['fire_and_forget']));
    assert.equal(empty.body.response.toolUse.status, 'complete');
    assert.equal(empty.body.response.toolUse.s3Urls, undefined);
    assert.doesNotMatch(empty.body.response.content, /file/);
  });

  test("a file a tool returns never runs on the gateway's origin: an SVG downloads as an attachment, sandboxed, unsniffed", async () => {
    const res = await chat('call:make_svg {}', auto(['make_svg']));
    assert.equal(res.status, 200, res.text);
    const download = await fetch(res.body.response.toolUse.s3Urls[0]);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('content-type'), 'image/svg+xml');
    assert.equal(download.headers.get('content-disposition'), 'attachment');
    assert.equal(download.headers.get('x-content-type-options'), 'nosniff');
    assert.match(download.headers.get('content-security-policy'), /sandbox/);
  });

  test('a tampered or expired URL is 403', async () => {
    const res = await chat('call:make_image {}', auto(['make_image']));
    const signed = new URL(res.body.response.toolUse.s3Urls[0]);
    const tamperedSignature = new URL(signed);
    const sig = signed.searchParams.get('signature');
    tamperedSignature.searchParams.set('signature', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
    const tamperedExpiry = new URL(signed);
    tamperedExpiry.searchParams.set('expires', String(Number(signed.searchParams.get('expires')) + 3600));
    const otherId = new URL(signed);
    otherId.pathname = otherId.pathname.replace(/art_./, (m) => (m.endsWith('x') ? 'art_y' : 'art_x'));
    for (const url of [tamperedSignature, tamperedExpiry, otherId]) {
      const r = await fetch(url);
      assert.equal(r.status, 403, url.href);
      const body = await r.json();
      assert.equal(body.error.type, 'permission_denied');
    }
    // Correctly signed, but in the past.
    const secret = fs.readFileSync(path.join(server.dataDir, 'artifact-secret'), 'utf8').trim();
    const expired = Math.floor(Date.now() / 1000) - 10;
    const expiredUrl = `${server.url}${signed.pathname}?expires=${expired}&signature=${signPath(secret, signed.pathname, expired)}`;
    const r = await fetch(expiredUrl);
    assert.equal(r.status, 403);
    assert.match((await r.json()).error.message, /expired/);
    assert.equal((await fetch(signed)).status, 200, 'the untouched URL still works');
  });

  test('an MCP tool\'s image becomes an artifact too', async () => {
    const res = await chat('call:draw {}', auto(['draw']));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.response.toolUse.images, [`data:image/png;base64,${png.toString('base64')}`]);
    assert.equal((await fetch(res.body.response.toolUse.s3Urls[0])).status, 200);
  });
});

describe('auto-execute async', () => {
  test('returns executionId + pending at once; polling shows running, then complete with the result', async () => {
    const res = await chat('call:render_video {"scene":"beach"}', auto(['render_video']));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.finishReason, 'tool_use');
    const use = res.body.response.toolUse;
    assert.equal(use.name, 'render_video');
    assert.deepEqual(use.input, { scene: 'beach' });
    assert.equal(use.status, 'pending');
    assert.match(use.executionId, /^exec_[0-9a-f]{24}$/);
    assert.equal(use.result, undefined);
    await tools.gateEntered;
    const running = await pollExecution(use.executionId, ['running']);
    assert.equal(running.body.status, 'running');
    assert.equal(running.body.result, undefined);
    tools.release();
    const done = await pollExecution(use.executionId, ['complete', 'failed']);
    assert.equal(done.status, 200);
    assert.equal(done.body.status, 'complete');
    assert.deepEqual(done.body.result, { done: true });
    assert.equal(done.body.executionId, use.executionId);
    assert.equal(done.body.toolUseId, use.toolUseId);
    assert.equal(done.body.name, 'render_video');
    assert.equal(done.body.requestId, res.body.requestId);
  });

  test('a failing async tool ends as failed', async () => {
    const res = await chat('call:broken_render {}', auto(['broken_render']));
    const { executionId, status } = res.body.response.toolUse;
    assert.equal(status, 'pending');
    const done = await pollExecution(executionId, ['complete', 'failed']);
    assert.equal(done.body.status, 'failed');
    assert.match(done.body.error, /HTTP 500: render farm on fire/);
  });

  test('an async tool\'s files are in the polled result', async () => {
    const res = await chat('call:slow_render {}', auto(['slow_render']));
    const done = await pollExecution(res.body.response.toolUse.executionId, ['complete', 'failed']);
    assert.equal(done.body.status, 'complete');
    assert.deepEqual(done.body.images, [`data:image/png;base64,${png.toString('base64')}`]);
    assert.equal((await fetch(done.body.s3Urls[0])).status, 200);
    // Each poll signs its URLs afresh (the ones made when it finished expire after ttlSeconds):
    // a poll a second later has a later expiry, and it downloads.
    const expiry = (url) => Number(new URL(url).searchParams.get('expires'));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const later = await pollExecution(res.body.response.toolUse.executionId, ['complete']);
    assert.ok(expiry(later.body.s3Urls[0]) > expiry(done.body.s3Urls[0]), `${later.body.s3Urls[0]} after ${done.body.s3Urls[0]}`);
    assert.equal((await fetch(later.body.s3Urls[0])).status, 200);
  });

  test('the stream shows the async tool_use with its executionId, then done with tool_use', async () => {
    const res = await fetch(`${base}/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ modelId: 'loop', messages: [{ role: 'user', content: 'call:slow_render {}' }], ...auto(['slow_render']) }),
    });
    const { events } = await readSse(res);
    assert.deepEqual(events.map((e) => e.event), ['start', 'tool_use', 'done']);
    const use = JSON.parse(events[1].data).toolUse;
    assert.equal(use.status, 'pending');
    assert.match(use.executionId, /^exec_/);
    assert.equal(JSON.parse(events[2].data).finishReason, 'tool_use');
    await pollExecution(use.executionId, ['complete', 'failed']);
  });

  test('another organisation\'s execution id is 404; an unknown id is 404', async () => {
    const res = await chat('call:slow_render {}', auto(['slow_render']));
    const { executionId } = res.body.response.toolUse;
    const other = await fetch(`${server.url}/api/v3/organizations/globex/ai/tools/executions/${executionId}`);
    assert.equal(other.status, 404);
    const body = await other.json();
    assert.equal(body.error.type, 'not_found');
    assert.equal(body.error.field, 'executionId');
    const unknown = await fetch(`${base}/tools/executions/exec_000000000000000000000000`);
    assert.equal(unknown.status, 404);
    await pollExecution(executionId, ['complete', 'failed']);
  });
});
