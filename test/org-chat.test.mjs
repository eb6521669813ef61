// Organisation chat (seeds 000 and 001): buffered and SSE responses field by field, request
// fields reaching the provider, organisation access, the 25 MB cap.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GatewayError } from '../dist/core/errors.js';
import { hashApiKey } from '../dist/core/keys.js';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';
import { createToolLoopFactory } from './helpers/tool-loop-provider.mjs';
import { postJson, readSse, startServer } from './helpers/server.mjs';

const scripted = createScriptedFactory({ GatewayError });
const loop = createToolLoopFactory();
const models = [
  // No retries: failure tests must answer at once.
  { id: 'amazon.nova-lite-v1:0', provider: 'scripted', model: 'scripted', modalities: ['text', 'image', 'video', 'document'], routing: { retries: 0 } },
  { id: 'loop-model', provider: 'toolloop', model: 'toolloop' },
];
const providers = { scripted: scripted.factory, toolloop: loop.factory };
const user = (text) => [{ role: 'user', content: text }];

describe('org chat, open mode', () => {
  let server;
  let base;
  before(async () => {
    server = await startServer({ config: { models }, providers });
    base = `${server.url}/api/v3/organizations/acme/ai`;
  });
  after(() => server.close());

  test('buffered text response follows seed 001 field by field', async () => {
    const res = await postJson(`${base}/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body).sort(), ['finishReason', 'model', 'requestId', 'response', 'usage']);
    assert.deepEqual(res.body.response, { role: 'assistant', content: 'Hello world' });
    assert.equal(res.body.model, 'amazon.nova-lite-v1:0');
    assert.match(res.body.requestId, /^req-/);
    assert.equal(res.body.requestId, res.headers.get('x-request-id'));
    assert.equal(res.body.finishReason, 'stop');
    assert.deepEqual(res.body.usage, { inputTokens: 7, outputTokens: 2, totalTokens: 9 });
  });

  test('stream follows seed 000 event by event', async () => {
    const res = await fetch(`${base}/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const { events, text } = await readSse(res);
    assert.match(text, /^id: chunk-0\nevent: start\ndata: \{/);
    assert.deepEqual(events.map((e) => [e.id, e.event]), [
      ['chunk-0', 'start'],
      ['chunk-1', 'content'],
      ['chunk-2', 'content'],
      ['chunk-3', 'done'],
    ]);
    const data = events.map((e) => JSON.parse(e.data));
    assert.deepEqual(data[0], { requestId: res.headers.get('x-request-id'), model: 'amazon.nova-lite-v1:0', streaming: true });
    assert.deepEqual(data[1], { delta: 'Hello', complete: false });
    assert.deepEqual(data[2], { delta: ' world', complete: false });
    assert.deepEqual(data[3], { complete: true, finishReason: 'stop', usage: { inputTokens: 7, outputTokens: 2, totalTokens: 9 } });
  });

  test('the stream route ignores nothing silently: `stream: false` in the body still streams', async () => {
    const res = await fetch(`${base}/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0', stream: false }),
    });
    const { events } = await readSse(res);
    assert.equal(events.at(-1).event, 'done');
  });

  test('buffered mode ignores stream: true', async () => {
    const res = await postJson(`${base}/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0', stream: true });
    assert.equal(res.status, 200);
    assert.equal(res.body.response.content, 'Hello world');
  });

  test('a single tool request is one toolUse object', async () => {
    const res = await postJson(`${base}/chat`, {
      messages: user('call:get_weather {"location":"Sydney"}'),
      modelId: 'loop-model',
      toolConfig: { tools: [{ toolSpec: { name: 'get_weather', description: 'Weather', inputSchema: { json: { type: 'object', properties: { location: { type: 'string' } } } } } }] },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.finishReason, 'tool_use');
    assert.deepEqual(res.body.response, { role: 'assistant', content: '', toolUse: { toolUseId: 'call_' + loop.requests.length + '_0', name: 'get_weather', input: { location: 'Sydney' } } });
    const sent = loop.requests.at(-1);
    assert.deepEqual(sent.tools, [{ name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } }]);
  });

  test('several tool requests are a toolUse array (arguments reassembled from fragments)', async () => {
    const res = await postJson(`${base}/chat`, { messages: user('script:tools'), modelId: 'amazon.nova-lite-v1:0', toolConfig: { tools: [{ toolSpec: { name: 'get_weather' } }, { toolSpec: { name: 'get_time' } }] } });
    assert.equal(res.status, 200);
    assert.equal(res.body.finishReason, 'tool_use');
    assert.deepEqual(res.body.response.toolUse, [
      { toolUseId: 'call_a', name: 'get_weather', input: { location: 'Boston' } },
      { toolUseId: 'call_b', name: 'get_time', input: {} },
    ]);
    assert.deepEqual(res.body.usage, { inputTokens: 20, outputTokens: 12, totalTokens: 32 });
  });

  test('tool requests appear in the stream as tool_use events, then done with finishReason tool_use', async () => {
    const res = await fetch(`${base}/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user('script:tools'), modelId: 'amazon.nova-lite-v1:0', toolConfig: { tools: [{ toolSpec: { name: 'get_weather' } }, { toolSpec: { name: 'get_time' } }] } }),
    });
    const { events } = await readSse(res);
    assert.deepEqual(events.map((e) => e.event), ['start', 'tool_use', 'tool_use', 'done']);
    assert.deepEqual(events.map((e) => e.id), ['chunk-0', 'chunk-1', 'chunk-2', 'chunk-3']);
    assert.deepEqual(JSON.parse(events[1].data), { toolUse: { toolUseId: 'call_a', name: 'get_weather', input: { location: 'Boston' } } });
    assert.deepEqual(JSON.parse(events[2].data), { toolUse: { toolUseId: 'call_b', name: 'get_time', input: {} } });
    assert.equal(JSON.parse(events[3].data).finishReason, 'tool_use');
  });

  test('a failure after start ends the stream with an error event', async () => {
    const res = await fetch(`${base}/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user('script:fail-after'), modelId: 'amazon.nova-lite-v1:0' }),
    });
    const { events } = await readSse(res);
    assert.deepEqual(events.map((e) => e.event), ['start', 'content', 'error']);
    const error = JSON.parse(events[2].data);
    assert.equal(error.error.type, 'upstream_error');
    assert.equal(error.error.message, 'upstream connection reset');
    assert.equal(error.requestId, res.headers.get('x-request-id'));
  });

  test('a failure before the first token is an HTTP error in this dialect\'s shape', async () => {
    const res = await postJson(`${base}/chat/stream`, { messages: user('script:fail-before'), modelId: 'amazon.nova-lite-v1:0' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
    assert.equal(res.body.error.type, 'rate_limit_exceeded');
    assert.equal(res.body.requestId, res.headers.get('x-request-id'));
  });

  test('defaults and every sampling field reach the provider', async () => {
    await postJson(`${base}/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' });
    let sent = scripted.requests.at(-1);
    assert.equal(sent.temperature, 0.7);
    assert.equal(sent.maxTokens, 1024);
    assert.equal(sent.topP, undefined);
    await postJson(`${base}/chat`, {
      messages: [{ role: 'system', content: 'Be brief.' }, ...user('script:json')],
      modelId: 'amazon.nova-lite-v1:0',
      temperature: 0.2,
      maxTokens: 50,
      topP: 0.9,
      stopSequences: ['END', 'STOP'],
      systemPrompt: 'You are Switchboard.',
      responseFormat: { type: 'json', jsonSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } },
    });
    sent = scripted.requests.at(-1);
    assert.equal(sent.temperature, 0.2);
    assert.equal(sent.maxTokens, 50);
    assert.equal(sent.topP, 0.9);
    assert.deepEqual(sent.stop, ['END', 'STOP']);
    assert.deepEqual(sent.responseFormat, { type: 'json', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } });
    assert.deepEqual(sent.messages.map((m) => [m.role, m.content[0].text]), [
      ['system', 'You are Switchboard.'],
      ['system', 'Be brief.'],
      ['user', 'script:json'],
    ]);
  });

  test('responseFormat output that breaks the schema is an error, never a silent pass', async () => {
    const res = await postJson(`${base}/chat`, {
      messages: user('script:bad-json'),
      modelId: 'amazon.nova-lite-v1:0',
      responseFormat: { type: 'json', jsonSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } },
    });
    assert.equal(res.status, 502);
    assert.equal(res.body.error.type, 'upstream_error');
  });

  test('systemPrompt is prepended with tool guidance when tools are enabled', async () => {
    await postJson(`${base}/chat`, { messages: user('hi'), modelId: 'loop-model', systemPrompt: 'Custom prompt.', toolConfig: { tools: [{ toolSpec: { name: 'get_weather' } }] } });
    const system = loop.requests.at(-1).messages[0];
    assert.equal(system.role, 'system');
    assert.match(system.content[0].text, /^You can call the tools[\s\S]*\n\nCustom prompt\.$/);
  });

  test('a toolResult that answers no earlier toolUse is a 400 naming it', async () => {
    const res = await postJson(`${base}/chat`, {
      modelId: 'loop-model',
      messages: [{ role: 'user', content: [{ toolResult: { toolUseId: 'tu-orphan', content: [{ text: 'x' }] } }] }],
    });
    assert.equal(res.status, 400);
    assert.match(res.body.error.message, /tu-orphan/);
    assert.equal(res.body.error.field, 'messages');
  });

  test('a client toolResult round trip reaches the provider as a tool message', async () => {
    const res = await postJson(`${base}/chat`, {
      modelId: 'loop-model',
      toolConfig: { tools: [{ toolSpec: { name: 'get_weather' } }] },
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: [{ toolUse: { toolUseId: 'tu1', name: 'get_weather', input: { location: 'Sydney' } } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tu1', content: [{ json: { temp: 21 } }] } }] },
      ],
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.response.content, 'Results: tu1: {"temp":21}');
    const sent = loop.requests.at(-1).messages.slice(-2);
    assert.deepEqual(sent[0].content, [{ type: 'tool-call', id: 'tu1', name: 'get_weather', arguments: '{"location":"Sydney"}' }]);
    assert.equal(sent[1].role, 'tool');
  });

  test('open mode accepts any organisation and records it', async () => {
    const res = await postJson(`${server.url}/api/v3/organizations/other-org/ai/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' });
    assert.equal(res.status, 200);
    const [logged] = await server.server.context.store.queryRequests({ organisation: 'other-org' });
    assert.equal(logged?.id, res.body.requestId);
    assert.equal(logged.dialect, 'org');
  });

  test('25 MB + 1 byte is refused with 413 in this dialect\'s shape, and the server stays healthy', async () => {
    const limit = 25 * 1024 * 1024;
    const prefix = '{"modelId":"amazon.nova-lite-v1:0","messages":[{"role":"user","content":"';
    const suffix = '"}]}';
    const body = prefix + 'a'.repeat(limit + 1 - prefix.length - suffix.length) + suffix;
    assert.equal(Buffer.byteLength(body), limit + 1);
    const res = await postJson(`${base}/chat`, body);
    assert.equal(res.status, 413);
    assert.equal(res.body.error.type, 'payload_too_large');
    assert.match(res.body.requestId, /^req-/);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    const ok = await postJson(`${base}/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' });
    assert.equal(ok.status, 200);
  });

  test('a chunked body (no content-length) is cut off at 25 MB while it is read', async () => {
    // A raw socket, so the status line is seen even though the server stops reading mid-body.
    const { port } = new URL(server.url);
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    const statusLine = await new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1');
      let received = '';
      let sent = 0;
      socket.on('data', (data) => {
        received += data.toString('latin1');
        if (received.includes('\r\n')) {
          socket.destroy();
          resolve(received.split('\r\n')[0]);
        }
      });
      socket.on('error', (err) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
      // Never hang: a connection closed without a status line is a failure.
      socket.on('close', () => reject(new Error(`connection closed without a status line (received ${JSON.stringify(received.slice(0, 80))})`)));
      socket.write(`POST /api/v3/organizations/acme/ai/chat HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`);
      // 26 MB, just past the limit, then wait: the server has read (almost) everything we sent,
      // so its close does not reset the connection before its 413 is read.
      const pump = () => {
        while (sent < 26 && !socket.destroyed) {
          sent++;
          if (!socket.write(frame)) return socket.once('drain', pump);
        }
      };
      pump();
    });
    assert.equal(statusLine, 'HTTP/1.1 413 Payload Too Large');
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test('exactly 25 MB is accepted (the cap is on the whole body)', async () => {
    const limit = 25 * 1024 * 1024;
    const prefix = '{"modelId":"amazon.nova-lite-v1:0","messages":[{"role":"user","content":"script:text ';
    const suffix = '"}]}';
    const body = prefix + 'a'.repeat(limit - prefix.length - suffix.length) + suffix;
    const res = await postJson(`${base}/chat`, body);
    assert.equal(res.status, 200);
  });
});

describe('org chat with API keys', () => {
  let server;
  const key = 'sb-test-key-acme-0123456789';
  before(async () => {
    server = await startServer({ config: { models }, providers });
    await server.server.context.store.createKey({ organisation: 'acme', hash: hashApiKey(key), prefix: key.slice(0, 8) });
  });
  after(() => server.close());

  test('the key\'s own organisation is served', async () => {
    const res = await postJson(`${server.url}/api/v3/organizations/acme/ai/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' }, { authorization: `Bearer ${key}` });
    assert.equal(res.status, 200);
  });

  test('another organisation in the path is 403', async () => {
    const res = await postJson(`${server.url}/api/v3/organizations/globex/ai/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' }, { authorization: `Bearer ${key}` });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.type, 'permission_denied');
    assert.equal(res.body.error.field, 'organisation');
    const stream = await postJson(`${server.url}/api/v3/organizations/globex/ai/chat/stream`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' }, { authorization: `Bearer ${key}` });
    assert.equal(stream.status, 403);
  });

  test('no key is 401 in this dialect\'s shape', async () => {
    const res = await postJson(`${server.url}/api/v3/organizations/acme/ai/chat`, { messages: user('script:text'), modelId: 'amazon.nova-lite-v1:0' });
    assert.equal(res.status, 401);
    assert.equal(res.body.error.type, 'authentication_error');
    assert.match(res.body.requestId, /^req-/);
  });
});
