// Pure parts of the tool machinery: the private-address guard, the calculator, the signed URLs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertPublicUrl, isPrivateAddress, evaluateArithmetic, httpTool } from '../dist/core/tools/index.js';
import { checkSignature, signedUrl } from '../dist/core/artifacts/signing.js';

test('private, loopback, link-local and special addresses are recognised', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '10.0.0.8', '172.16.5.4', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.1.2.3', '224.0.0.1']) {
    assert.equal(isPrivateAddress(a), true, a);
  }
  for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '192.169.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
    assert.equal(isPrivateAddress(a), false, a);
  }
});

test('URLs are checked by what their host resolves to', async () => {
  await assert.rejects(assertPublicUrl('http://localhost:9/x'), /private or loopback/);
  await assert.rejects(assertPublicUrl('http://[::1]:9/x'), /private or loopback/);
  await assert.rejects(assertPublicUrl('http://169.254.169.254/latest/meta-data'), /private or loopback/);
  await assertPublicUrl('http://8.8.8.8/');
});

test('an HTTP tool refuses a private target before sending anything', async () => {
  const tool = httpTool({ name: 't', url: 'http://127.0.0.1:1/', inputSchema: {}, headersFromEnv: {}, timeoutMs: 1000, allowPrivateNetwork: false, async: false }, {}, 1000);
  await assert.rejects(tool.execute({}, { organisation: 'o', requestId: 'r', signal: new AbortController().signal }), (err) => err.kind === 'permission');
});

test('the calculator evaluates arithmetic and nothing else', () => {
  assert.equal(evaluateArithmetic('6*7'), 42);
  assert.equal(evaluateArithmetic('2^3^2'), 512);
  assert.equal(evaluateArithmetic('(1+2)*-3 % 4'), -1);
  assert.equal(evaluateArithmetic('1.5e2 / 3'), 50);
  assert.throws(() => evaluateArithmetic('process.exit()'));
  assert.throws(() => evaluateArithmetic('(1+2'));
  assert.throws(() => evaluateArithmetic('1 2'));
});

test('signed URLs: any change to path, expiry or signature, or a past expiry, fails', () => {
  const now = 1_700_000_000_000;
  const url = new URL(signedUrl('s3cret', '/api/v3/artifacts/art_x', 60, now), 'http://h');
  const expires = url.searchParams.get('expires');
  const signature = url.searchParams.get('signature');
  assert.equal(expires, String(now / 1000 + 60));
  assert.equal(checkSignature('s3cret', '/api/v3/artifacts/art_x', expires, signature, now), 'ok');
  assert.equal(checkSignature('s3cret', '/api/v3/artifacts/art_y', expires, signature, now), 'invalid');
  assert.equal(checkSignature('s3cret', '/api/v3/artifacts/art_x', String(Number(expires) + 1), signature, now), 'invalid');
  assert.equal(checkSignature('other', '/api/v3/artifacts/art_x', expires, signature, now), 'invalid');
  assert.equal(checkSignature('s3cret', '/api/v3/artifacts/art_x', expires, undefined, now), 'invalid');
  assert.equal(checkSignature('s3cret', '/api/v3/artifacts/art_x', expires, signature, now + 61_000), 'expired');
});

// The loop only needs gateway.chat: a fake one that answers from a list of rounds.
function fakeGateway(rounds) {
  const requests = [];
  return {
    requests,
    async chat(request) {
      requests.push(structuredClone(request));
      const parts = rounds[requests.length - 1];
      return { stream: (async function* () { yield* parts; })() };
    },
  };
}
const call = (id, name, args) => [
  { type: 'tool-input-start', id, toolName: name },
  { type: 'tool-input-delta', id, delta: args },
  { type: 'tool-input-end', id },
];
const finish = (finishReason, n) => ({ type: 'finish', finishReason, usage: { inputTokens: n, outputTokens: n, totalTokens: 2 * n } });

test('runToolLoop with clientTools: server calls run, client calls end the loop as plain tool calls', async () => {
  const { runToolLoop, createToolExecutor, builtinTools } = await import('../dist/core/tools/index.js');
  const gateway = fakeGateway([[{ type: 'start' }, ...call('c1', 'calculator', '{"expression":"2+2"}'), ...call('c2', 'client_tool', '{}'), ...call('c3', 'nobody', '{}'), finish('tool-calls', 3)]]);
  const executor = createToolExecutor({ tools: builtinTools, allowedTools: ['calculator'], artifacts: { save: async () => assert.fail('no files') }, executions: {} });
  const parts = [];
  const context = { requestId: 'req-1', organisation: 'o', signal: new AbortController().signal };
  for await (const part of runToolLoop({ gateway, request: { model: 'm', messages: [] }, context, executor, maxRounds: 4, clientTools: ['client_tool'] })) parts.push(part);
  const starts = parts.filter((p) => p.type === 'tool-input-start');
  // A name neither the server nor the client has is still refused, not handed to the client.
  assert.deepEqual(starts.map((p) => [p.id, p.serverExecuted]), [['c1', { serverName: 'gateway' }], ['c2', undefined], ['c3', { serverName: undefined }]]);
  const results = parts.filter((p) => p.type === 'tool-result');
  assert.deepEqual(results.map((p) => [p.toolCallId, p.isError === true]), [['c1', false], ['c3', true]]);
  assert.deepEqual(results[0].result, { expression: '2+2', value: 4 });
  assert.deepEqual(parts.at(-1), { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 3, outputTokens: 3, totalTokens: 6 } });
  assert.equal(gateway.requests.length, 1);
});

test('runToolLoop feeds results back and sums usage over rounds', async () => {
  const { runToolLoop, createToolExecutor, builtinTools } = await import('../dist/core/tools/index.js');
  const gateway = fakeGateway([
    [{ type: 'start' }, ...call('c1', 'echo', '{"text":"x"}'), finish('tool-calls', 2)],
    [{ type: 'start' }, { type: 'text-start', id: 't' }, { type: 'text-delta', id: 't', delta: 'done' }, { type: 'text-end', id: 't' }, finish('stop', 5)],
  ]);
  const executor = createToolExecutor({ tools: builtinTools, allowedTools: ['echo'], artifacts: {}, executions: {} });
  const parts = [];
  const context = { requestId: 'req-1', organisation: 'o', signal: new AbortController().signal };
  for await (const part of runToolLoop({ gateway, request: { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }, context, executor, maxRounds: 4 })) parts.push(part);
  assert.deepEqual(parts.at(-1), { type: 'finish', finishReason: 'stop', usage: { inputTokens: 7, outputTokens: 7, totalTokens: 14 } });
  assert.equal(parts.filter((p) => p.type === 'start').length, 1);
  const second = gateway.requests[1];
  assert.deepEqual(second.messages.slice(1).map((m) => m.role), ['assistant', 'tool']);
  assert.deepEqual(second.messages[1].content, [{ type: 'tool-call', id: 'c1', name: 'echo', arguments: '{"text":"x"}' }]);
  assert.equal(second.messages[2].content[0].content[0].text, '{"text":"x"}');
  assert.ok(second.tools.some((t) => t.name === 'echo'));
});

test('runToolLoop: a client gone while the tools ran ends the loop without another model call', async () => {
  const { runToolLoop, createToolExecutor } = await import('../dist/core/tools/index.js');
  const gateway = fakeGateway([
    [{ type: 'start' }, ...call('c1', 'slow', '{}'), finish('tool-calls', 2)],
    [{ type: 'start' }, { type: 'text-start', id: 't' }, { type: 'text-delta', id: 't', delta: 'for no one' }, { type: 'text-end', id: 't' }, finish('stop', 5)],
  ]);
  const client = new AbortController();
  // The client leaves while the tool runs; the tool sees its signal and gives up (as an HTTP tool does).
  const slow = { name: 'slow', description: 'waits', parameters: { type: 'object' }, source: 'http', execute: async (_input, ctx) => {
    client.abort();
    assert.equal(ctx.signal.aborted, true);
    return { content: [{ type: 'text', text: 'The tool could not be reached: aborted' }], isError: true };
  } };
  const executor = createToolExecutor({ tools: [slow], allowedTools: ['slow'], artifacts: {}, executions: {} });
  const parts = [];
  const context = { requestId: 'req-1', organisation: 'o', signal: client.signal };
  for await (const part of runToolLoop({ gateway, request: { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }, context, executor, maxRounds: 4 })) parts.push(part);
  assert.equal(gateway.requests.length, 1);
  assert.equal(parts.at(-1).type, 'error');
  assert.equal(parts.at(-1).error.kind, 'cancelled');
});

test('executions left pending or running by a previous process are failed at start (SQLite)', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const pino = (await import('pino')).default;
  const { SqliteStore } = await import('../dist/store/sqlite.js');
  const { ToolService } = await import('../dist/core/tools/index.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-exec-'));
  try {
    const store = new SqliteStore(path.join(dir, 'db.sqlite'));
    const row = (id, status) => ({ id, organisation: 'o', requestId: 'r', toolUseId: 't', toolName: 'x', input: {}, status, createdAt: 1, updatedAt: 1 });
    await store.toolExecutions.createExecution(row('exec_a', 'running'));
    await store.toolExecutions.createExecution(row('exec_b', 'complete'));
    const service = new ToolService({ config: {}, store, dataDir: dir, logger: pino({ level: 'silent' }) });
    await new Promise((r) => setImmediate(r));
    const a = await store.toolExecutions.getExecution('o', 'exec_a');
    assert.equal(a.status, 'failed');
    assert.match(a.error, /stopped before it finished/);
    assert.equal((await store.toolExecutions.getExecution('o', 'exec_b')).status, 'complete');
    assert.equal(await store.toolExecutions.getExecution('other', 'exec_a'), undefined);
    await service.close();
    await store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cancellingFetch: a cancelled MCP call closes its request, and its resumption is answered 405 without a request', async () => {
  const { cancellingFetch } = await import('../dist/core/tools/mcp-fetch.js');
  const sent = [];
  const encoder = new TextEncoder();
  const base = async (url, init) => {
    sent.push({ method: init.method, body: init.body, headers: new Headers(init.headers), signal: init.signal });
    if (init.method === 'GET') return new Response(new ReadableStream(), { status: 200, headers: { 'content-type': 'text/event-stream' } });
    if (JSON.parse(init.body).method === 'notifications/cancelled') return new Response(null, { status: 202 });
    // A resumable server's answer to a call: a priming event with an id, split across chunks, then nothing.
    const body = new ReadableStream({
      start(stream) {
        stream.enqueue(encoder.encode('id: str'));
        stream.enqueue(encoder.encode('eam-1_0\ndata: \n\n'));
        // As fetch does: an aborted request's body errors.
        init.signal.addEventListener('abort', () => stream.error(init.signal.reason));
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  const fetchMcp = cancellingFetch(base);
  const post = (message) => fetchMcp('http://mcp.test/mcp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', ...message }) });
  const call = await post({ id: 7, method: 'tools/call', params: { name: 'wait', arguments: {} } });
  const reader = call.body.getReader();
  await reader.read();
  await reader.read();
  const callSignal = sent[0].signal;
  assert.equal(callSignal.aborted, false);
  // Another call's cancellation leaves this one alone.
  await post({ method: 'notifications/cancelled', params: { requestId: 8 } });
  assert.equal(callSignal.aborted, false);
  await post({ method: 'notifications/cancelled', params: { requestId: 7, reason: 'timeout' } });
  await new Promise((resolve) => (callSignal.aborted ? resolve() : callSignal.addEventListener('abort', resolve)));
  await assert.rejects(reader.read());
  // The SDK resumes the cut stream from its last event id: answered here, never sent.
  const before = sent.length;
  const resumed = await fetchMcp('http://mcp.test/mcp', { method: 'GET', headers: { accept: 'text/event-stream', 'last-event-id': 'stream-1_0' } });
  assert.equal(resumed.status, 405);
  assert.equal(sent.length, before);
  // Once only; any other resumption goes to the server.
  const again = await fetchMcp('http://mcp.test/mcp', { method: 'GET', headers: { 'last-event-id': 'stream-1_0' } });
  assert.equal(again.status, 200);
  assert.equal(sent.length, before + 1);
});
