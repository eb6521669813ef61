// mcp_servers on /v1/messages: an MCP server started by this test (streamable HTTP, official
// SDK) whose tool the model calls and the gateway executes, shown as mcp_tool_use /
// mcp_tool_result blocks; allowed_tools, authorization_token, tool_context, and the refusal of
// private addresses unless the config allows them.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { startServer, postJson, readSse } from './helpers/server.mjs';
import { createToolLoopFactory } from './helpers/tool-loop-provider.mjs';

let mcp;
let gateway;
let strict;
let oneRound;
let toolloop;
const seen = { calls: [], authorization: [] };

async function startMcp() {
  const server = http.createServer(async (req, res) => {
    seen.authorization.push(req.headers.authorization);
    const mcpServer = new McpServer({ name: 'kb', version: '1.0.0' });
    mcpServer.registerTool('lookup', { description: 'Looks a word up', inputSchema: { q: z.string() } }, async ({ q }, extra) => {
      seen.calls.push({ q, meta: extra._meta });
      return { content: [{ type: 'text', text: `found ${q}` }] };
    });
    mcpServer.registerTool('delete_all', { description: 'Dangerous', inputSchema: {} }, async () => {
      seen.calls.push({ dangerous: true });
      return { content: [{ type: 'text', text: 'deleted' }] };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      transport.close();
      mcpServer.close();
    });
    let body = '';
    for await (const chunk of req) body += chunk;
    await mcpServer.connect(transport);
    await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/mcp`,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

before(async () => {
  mcp = await startMcp();
  toolloop = createToolLoopFactory();
  const config = (messages) => ({ defaultModel: 'tl', models: [{ id: 'tl', provider: 'toolloop', model: 'x' }], ...(messages ? { messages } : {}) });
  gateway = await startServer({ providers: { toolloop: toolloop.factory }, config: config({ mcpServers: { allowPrivateNetwork: true } }) });
  strict = await startServer({ providers: { toolloop: toolloop.factory }, config: config() });
  oneRound = await startServer({ providers: { toolloop: toolloop.factory }, config: { ...config({ mcpServers: { allowPrivateNetwork: true } }), tools: { maxRounds: 1 } } });
});
after(async () => {
  await gateway.close();
  await strict.close();
  await oneRound.close();
  await mcp.close();
});

const server = (extra = {}) => ({ type: 'url', url: mcp.url, name: 'kb', ...extra });
const ask = (text, extra = {}) => ({ model: 'tl', max_tokens: 100, messages: [{ role: 'user', content: text }], ...extra });

test('the model calls an MCP tool, the gateway runs it and feeds the result back (SDK, buffered)', async () => {
  const client = new Anthropic({ baseURL: gateway.url, apiKey: 'x', maxRetries: 0 });
  seen.calls.length = 0;
  const { data: message, response } = await client.beta.messages
    .create({
      ...ask('call:lookup {"q":"cats"}'),
      mcp_servers: [server({ authorization_token: 'tok-123', tool_configuration: { enabled: true, allowed_tools: ['lookup'] } })],
      betas: ['mcp-client-2025-04-04'],
    })
    .withResponse();
  // The served-by headers are the first model call's, as without MCP servers.
  assert.equal(response.headers.get('x-switchboard-provider'), 'toolloop');
  assert.equal(response.headers.get('x-switchboard-model'), 'tl');
  assert.equal(response.headers.get('x-switchboard-attempts'), '1');
  const [use, result, text] = message.content;
  assert.deepEqual({ ...use, id: 'x' }, { type: 'mcp_tool_use', id: 'x', name: 'lookup', server_name: 'kb', input: { q: 'cats' } });
  assert.deepEqual(result, { type: 'mcp_tool_result', tool_use_id: use.id, is_error: false, content: [{ type: 'text', text: 'found cats' }] });
  assert.equal(text.type, 'text');
  assert.match(text.text, /lookup: found cats/);
  assert.equal(message.stop_reason, 'end_turn');
  assert.deepEqual(seen.calls, [{ q: 'cats', meta: undefined }]);
  assert.ok(seen.authorization.includes('Bearer tok-123'));
  // Only the allowed tool was offered to the model.
  const offered = toolloop.requests.at(-2).tools.map((t) => t.name);
  assert.deepEqual(offered, ['lookup']);
  // Usage is summed over both model calls (8+10 in, 6+5 out).
  assert.equal(message.usage.input_tokens, 18);
  assert.equal(message.usage.output_tokens, 11);
});

test('streaming: mcp_tool_use and mcp_tool_result arrive whole, then the answer; tool_context reaches the tool', async () => {
  seen.calls.length = 0;
  const res = await fetch(`${gateway.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...ask('call:lookup {"q":"dogs"}'), stream: true, mcp_servers: [server()], tool_context: [{ type: 'document', text: 'house rules' }] }),
  });
  const { events } = await readSse(res);
  const starts = events.filter((e) => e.event === 'content_block_start').map((e) => JSON.parse(e.data).content_block);
  assert.deepEqual(starts.map((b) => b.type), ['mcp_tool_use', 'mcp_tool_result', 'text']);
  assert.deepEqual(starts[0].input, { q: 'dogs' });
  assert.equal(starts[1].content[0].text, 'found dogs');
  assert.equal(events.at(-1).event, 'message_stop');
  assert.deepEqual(seen.calls, [{ q: 'dogs', meta: { 'switchboard/tool_context': [{ type: 'document', text: 'house rules' }] } }]);
});

test('a tool not in allowed_tools is not offered and does not run; unknown allowed_tools is a 400', async () => {
  seen.calls.length = 0;
  const res = await postJson(`${gateway.url}/v1/messages`, {
    ...ask('call:delete_all {}'),
    mcp_servers: [server({ tool_configuration: { allowed_tools: ['lookup'] } })],
  });
  assert.equal(res.status, 200);
  assert.deepEqual(seen.calls, []);
  assert.equal(res.body.content[1].is_error, true);
  const bad = await postJson(`${gateway.url}/v1/messages`, { ...ask('x'), mcp_servers: [server({ tool_configuration: { allowed_tools: ['nope'] } })] });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /nope/);
});

test("the request's own tools beside mcp_servers: the gateway runs the MCP call, the client gets its own call back", async () => {
  // As Anthropic's connector: the client's function tools come back as tool_use (stop_reason
  // tool_use) while the MCP calls of that turn run at the server; the client answers, the loop goes on.
  seen.calls.length = 0;
  const tools = [{ name: 'client_thing', description: 'Runs on the client', input_schema: { type: 'object', properties: { x: { type: 'number' } } } }];
  const first = await postJson(`${gateway.url}/v1/messages`, { ...ask('call:lookup {"q":"cats"}\ncall:client_thing {"x":1}'), tools, mcp_servers: [server()] });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.body.stop_reason, 'tool_use');
  assert.deepEqual(first.body.content.map((b) => b.type), ['mcp_tool_use', 'tool_use', 'mcp_tool_result']);
  const [mcpUse, clientUse, mcpResult] = first.body.content;
  assert.deepEqual([clientUse.name, clientUse.input], ['client_thing', { x: 1 }]);
  assert.deepEqual(mcpResult, { type: 'mcp_tool_result', tool_use_id: mcpUse.id, is_error: false, content: [{ type: 'text', text: 'found cats' }] });
  assert.deepEqual(seen.calls.map((c) => c.q), ['cats']);
  const second = await postJson(`${gateway.url}/v1/messages`, {
    model: 'tl',
    max_tokens: 100,
    tools,
    mcp_servers: [server()],
    messages: [
      { role: 'user', content: 'call:lookup {"q":"cats"}\ncall:client_thing {"x":1}' },
      { role: 'assistant', content: first.body.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: clientUse.id, content: 'thing done' }] },
    ],
  });
  assert.equal(second.status, 200, second.text);
  assert.equal(second.body.stop_reason, 'end_turn');
  assert.match(second.body.content.at(-1).text, /thing done/);
  assert.deepEqual(seen.calls.map((c) => c.q), ['cats'], 'the MCP call of the first turn is not run again');
});

test("on the last round, an MCP call beside the client's own call runs, and the turn ends with the client's call", async () => {
  // No model call follows the round (the client's call ends the turn), so the round limit does
  // not stand in the way; it was tool_rounds_exceeded.
  seen.calls.length = 0;
  const tools = [{ name: 'client_thing', description: 'Runs on the client', input_schema: { type: 'object', properties: {} } }];
  const res = await postJson(`${oneRound.url}/v1/messages`, { ...ask('forever:delete_all+client_thing'), tools, mcp_servers: [server()] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.stop_reason, 'tool_use');
  assert.deepEqual(res.body.content.map((b) => b.type), ['mcp_tool_use', 'tool_use', 'mcp_tool_result']);
  assert.equal(res.body.content[1].name, 'client_thing');
  assert.deepEqual(res.body.content[2].content, [{ type: 'text', text: 'deleted' }]);
  assert.deepEqual(seen.calls, [{ dangerous: true }]);
  const alone = await postJson(`${oneRound.url}/v1/messages`, { ...ask('forever:delete_all'), mcp_servers: [server()] });
  assert.equal(alone.status, 502, 'without a client call the limit still holds');
  assert.match(alone.body.error.message, /still calling tools after 1 rounds/);
});

test('mcp_toolset (the connector\'s newer shape): an allowlist, a denylist, and the references checked', async () => {
  const toolset = (extra = {}) => ({ type: 'mcp_toolset', mcp_server_name: 'kb', ...extra });
  const offeredFor = async (tools) => {
    const res = await postJson(`${gateway.url}/v1/messages`, { ...ask('hello'), mcp_servers: [server()], tools });
    assert.equal(res.status, 200, res.text);
    return toolloop.requests.at(-1).tools.map((t) => t.name).sort();
  };
  assert.deepEqual(await offeredFor([toolset()]), ['delete_all', 'lookup'], 'every tool by default');
  assert.deepEqual(await offeredFor([toolset({ default_config: { enabled: false }, configs: { lookup: { enabled: true } } })]), ['lookup'], 'allowlist');
  assert.deepEqual(await offeredFor([toolset({ configs: { delete_all: { enabled: false } } })]), ['lookup'], 'denylist');
  // The beta SDK's null configs, and a listing pinned from an earlier answer: the gateway lists the server itself.
  const pinned = [{ name: 'lookup', input_schema: { type: 'object' }, description: null }];
  assert.deepEqual(await offeredFor([toolset({ configs: null, default_config: null, tools: pinned })]), ['delete_all', 'lookup'], 'null configs, pinned listing');
  // A tool left out does not run when the model calls it anyway.
  seen.calls.length = 0;
  const refused = await postJson(`${gateway.url}/v1/messages`, { ...ask('call:delete_all {}'), mcp_servers: [server()], tools: [toolset({ configs: { delete_all: { enabled: false } } })] });
  assert.equal(refused.body.content[1].is_error, true);
  assert.deepEqual(seen.calls, []);
  const bad = async (body, param) => {
    const res = await postJson(`${gateway.url}/v1/messages`, { ...ask('x'), ...body });
    assert.equal(res.status, 400, res.text);
    assert.match(res.body.error.message, param);
  };
  await bad({ mcp_servers: [server()], tools: [toolset({ mcp_server_name: 'elsewhere' })] }, /'elsewhere', which is not in mcp_servers/);
  await bad({ tools: [toolset()] }, /not in mcp_servers/);
  await bad({ mcp_servers: [server(), server({ name: 'kb2' })], tools: [toolset()] }, /'kb2' has no mcp_toolset/);
  await bad({ mcp_servers: [server()], tools: [toolset(), toolset()] }, /Two mcp_toolset entries/);
  await bad({ mcp_servers: [server({ tool_configuration: { allowed_tools: ['lookup'] } })], tools: [toolset()] }, /tool_configuration/);
  await bad({ mcp_servers: [server()], tools: [toolset({ configs: { nope: { enabled: true } } })] }, /no tool 'nope'/);
});

test('thinking on a model whose provider cannot reason is a 400 naming thinking', async () => {
  const res = await postJson(`${gateway.url}/v1/messages`, { ...ask('x', { max_tokens: 3000 }), thinking: { type: 'enabled', budget_tokens: 1024 } });
  assert.equal(res.status, 400);
  assert.match(res.body.error.message, /thinking/);
});

test('a private-address MCP server is refused unless the config allows it', async () => {
  const res = await postJson(`${strict.url}/v1/messages`, { ...ask('call:lookup {"q":"x"}'), mcp_servers: [server()] });
  assert.equal(res.status, 403);
  assert.equal(res.body.error.type, 'permission_error');
  assert.match(res.body.error.message, /mcp_servers\[0\]\.url/);
  const queued = await postJson(`${strict.url}/v1/messages/async`, { ...ask('call:lookup {"q":"x"}'), mcp_servers: [server()] });
  assert.equal(queued.status, 403);
});

test('an async run with mcp_servers executes the tool too', async () => {
  seen.calls.length = 0;
  const submitted = await postJson(`${gateway.url}/v1/messages/async`, { ...ask('call:lookup {"q":"owls"}'), mcp_servers: [server()] });
  assert.equal(submitted.status, 202);
  const { events } = await readSse(await fetch(`${gateway.url}/v1/messages/async/${submitted.body.message_id}/events`));
  assert.equal(events.at(-1).event, 'message_stop');
  const status = await (await fetch(`${gateway.url}/v1/messages/async/${submitted.body.message_id}`)).json();
  assert.equal(status.status, 'completed');
  assert.deepEqual(status.message.content.map((b) => b.type), ['mcp_tool_use', 'mcp_tool_result', 'text']);
  assert.deepEqual(seen.calls.map((c) => c.q), ['owls']);
});

test('tool_choice may name an MCP tool or ask for any tool with mcp_servers alone; it is checked against the tools offered', async () => {
  const from = toolloop.requests.length;
  const forced = await postJson(`${gateway.url}/v1/messages`, {
    ...ask('call:lookup {"q":"owls"}'),
    mcp_servers: [server()],
    tool_choice: { type: 'tool', name: 'lookup' },
  });
  assert.equal(forced.status, 200, forced.text);
  assert.deepEqual(forced.body.content.map((b) => b.type), ['mcp_tool_use', 'mcp_tool_result', 'text']);
  // The first round is forced to the tool; once it has run, the model answers freely.
  assert.deepEqual(toolloop.requests.slice(from).map((r) => r.toolChoice), [{ type: 'tool', name: 'lookup' }, { type: 'auto' }]);

  const any = await postJson(`${gateway.url}/v1/messages`, { ...ask('call:lookup {"q":"bats"}'), mcp_servers: [server()], tool_choice: { type: 'any' } });
  assert.equal(any.status, 200, any.text);
  assert.deepEqual(toolloop.requests.at(-2).toolChoice, { type: 'required' });

  for (const [extra, pattern] of [
    [{ mcp_servers: [server()], tool_choice: { type: 'tool', name: 'nope' } }, /'nope', which is neither in tools nor offered by mcp_servers/],
    // Offered tools only: delete_all is the server's, but not allowed here.
    [{ mcp_servers: [server({ tool_configuration: { allowed_tools: ['lookup'] } })], tool_choice: { type: 'tool', name: 'delete_all' } }, /'delete_all', which is neither/],
    [{ mcp_servers: [server({ tool_configuration: { enabled: false } })], tool_choice: { type: 'any' } }, /tool_choice 'any' needs tools, and the MCP servers offer none/],
    [{ tool_choice: { type: 'tool', name: 'lookup' } }, /needs tools/],
  ]) {
    const res = await postJson(`${gateway.url}/v1/messages`, { ...ask('hello'), ...extra });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.type, 'invalid_request_error');
    assert.match(res.body.error.message, pattern);
  }
});
