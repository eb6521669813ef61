// /v1/messages in front of the Anthropic provider (a loopback upstream speaking the real wire
// format): thinking on a provider that supports it, signatures across turns, and the seed 003
// fields passed through to an Anthropic upstream (container, service_tier, metadata…).
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { loadAnthropicFixture } from './helpers/fake-anthropic-upstream.mjs';
import { notAnthropicAlone, startAnthropicGateway } from './helpers/anthropic-gateway.mjs';

let gateway;
let fake;
let s;
let client;

before(async () => {
  gateway = await startAnthropicGateway((claude, upstream) => [
    claude('claude'),
    notAnthropicAlone('other', upstream),
    // Searches priced per request, on top of the tokens.
    claude('claude-priced', { pricing: { input: 3, output: 15, serverToolUse: { web_search_requests: 0.01 } } }),
    // Anthropic's cache prices: reads 0.1×, 5-minute writes 1.25×, 1-hour writes 2× input.
    claude('claude-cached', { pricing: { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6 } }),
    // Its own model id, so its usage can be read apart.
    claude('claude-ledger'),
    // Anthropic alone, but its fallback model is not.
    claude('claude-fb', { routing: { fallbacks: ['other'] } }),
    claude('claude-vision', { modalities: ['text', 'image', 'document'] }),
    // Two Anthropic accounts (told apart by a header), tried in order, one retry.
    {
      id: 'claude-two-accounts',
      deployments: ['first', 'second'].map((name) => ({ ...claude('x'), id: undefined, name, headers: { 'x-account': name } })),
      routing: { strategy: 'ordered', retries: 1 },
    },
  ]);
  ({ fake, server: s, client } = gateway);
});
after(() => gateway.close());

test('thinking streams from an Anthropic upstream: thinking_delta, signature_delta, redacted_thinking, then text', async () => {
  fake.enqueue({ fixture: 'thinking.sse' });
  const stream = client.messages.stream({
    model: 'claude',
    max_tokens: 4000,
    thinking: { type: 'enabled', budget_tokens: 2048 },
    messages: [{ role: 'user', content: 'GCD of 1071 and 462?' }],
  });
  const deltas = [];
  stream.on('streamEvent', (e) => e.type === 'content_block_delta' && deltas.push(e.delta.type));
  const message = await stream.finalMessage();
  assert.deepEqual(deltas, ['thinking_delta', 'thinking_delta', 'signature_delta', 'text_delta']);
  assert.deepEqual(message.content.map((b) => b.type), ['thinking', 'redacted_thinking', 'text']);
  assert.match(message.content[0].thinking, /1071 = 2·462/);
  assert.equal(message.content[0].signature, 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+sig==');
  assert.match(message.content[1].data, /^EmwKAhgB/);
  assert.equal(message.content[2].text, 'The GCD is 21.');
  const sent = fake.requests.at(-1).body;
  assert.deepEqual(sent.thinking, { type: 'enabled', budget_tokens: 2048 });
  // Anthropic's max_tokens includes the thinking budget, on both sides of the gateway.
  assert.equal(sent.max_tokens, 4000);

  // The next turn sends the thinking blocks back upstream unchanged (signature included).
  fake.enqueue({ fixture: 'text.sse' });
  await client.messages.create({
    model: 'claude',
    max_tokens: 4000,
    thinking: { type: 'enabled', budget_tokens: 2048 },
    messages: [
      { role: 'user', content: 'GCD of 1071 and 462?' },
      { role: 'assistant', content: message.content },
      { role: 'user', content: 'And of 21 and 14?' },
    ],
  });
  const assistant = fake.requests.at(-1).body.messages[1];
  assert.deepEqual(assistant.content[0], { type: 'thinking', thinking: message.content[0].thinking, signature: message.content[0].signature });
  assert.deepEqual(assistant.content[1], { type: 'redacted_thinking', data: message.content[1].data });
});

test("thinking 'between_tools' reaches an Anthropic-only model as sent, and its notes come back as thinking; elsewhere it is thinking off", async () => {
  fake.enqueue({ fixture: 'thinking.sse' });
  const message = await client.messages.create({ model: 'claude', max_tokens: 900, thinking: { type: 'between_tools' }, messages: [{ role: 'user', content: 'GCD?' }] });
  assert.deepEqual(message.content.map((b) => b.type), ['thinking', 'redacted_thinking', 'text']);
  let sent = fake.requests.at(-1).body;
  assert.deepEqual(sent.thinking, { type: 'between_tools' });
  assert.equal(sent.max_tokens, 900, 'no thinking budget added');

  // 'other' may be served by an OpenAI-compatible upstream too: thinking is off, not sent.
  fake.enqueue({ fixture: 'text.sse' });
  await client.messages.create({ model: 'other', max_tokens: 900, thinking: { type: 'between_tools' }, messages: [{ role: 'user', content: 'GCD?' }] });
  sent = fake.requests.at(-1).body;
  assert.equal(sent.thinking, undefined);
  assert.equal(sent.max_tokens, 900);
});

test('container, service_tier, metadata, inference_geo, cache_control, context_management and speed pass through to Anthropic', async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const res = await client.messages.create({
    model: 'claude',
    max_tokens: 50,
    messages: [{ role: 'user', content: 'hi' }],
    container: 'cntr_123',
    service_tier: 'standard_only',
    metadata: { user_id: 'u-9' },
    inference_geo: 'us',
    cache_control: { type: 'ephemeral' },
    context_management: { edits: [{ type: 'clear_thinking_20251015' }] },
    speed: 'fast',
  });
  assert.equal(res.type, 'message');
  const sent = fake.requests.at(-1).body;
  assert.equal(sent.container, 'cntr_123');
  assert.equal(sent.service_tier, 'standard_only');
  assert.deepEqual(sent.metadata, { user_id: 'u-9' });
  assert.equal(sent.inference_geo, 'us');
  assert.deepEqual(sent.cache_control, { type: 'ephemeral' });
  assert.deepEqual(sent.context_management, { edits: [{ type: 'clear_thinking_20251015' }] });
  assert.equal(sent.speed, 'fast');
});

test("what the SDK's types add to tools, tool results and container reaches Anthropic as written: defer_loading, allowed_callers, input_examples, eager_input_streaming, toolsets without a name, undated tool search, a container's skills", async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const custom = {
    type: null,
    name: 'get_weather',
    description: 'Weather',
    input_schema: { type: 'object', properties: { city: { type: 'string' } } },
    defer_loading: true,
    allowed_callers: ['direct', 'code_execution_20250825'],
    input_examples: [{ city: 'Oslo' }],
    eager_input_streaming: true,
  };
  const toolsets = [{ type: 'browser_toolset_20260801' }, { type: 'tool_search_tool_bm25', name: 'tool_search' }];
  const container = { id: null, skills: [{ skill_id: 'pptx', type: 'anthropic', version: 'latest' }] };
  await client.messages.create({
    model: 'claude',
    max_tokens: 50,
    tools: [custom, ...toolsets],
    container,
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' }, toolset_name: null }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '12 C', toolset_name: null }] },
    ],
  });
  const sent = fake.requests.at(-1).body;
  const { type, ...asSent } = custom;
  assert.equal(type, null);
  assert.deepEqual(sent.tools, [asSent, ...toolsets]);
  assert.deepEqual(sent.container, container);
});

test('search results (in a user turn and in a tool result) and a document asking for citations reach Anthropic as written, so the answer can cite them', async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const result = (n) => ({
    type: 'search_result',
    source: `https://docs.example/${n}`,
    title: `Page ${n}`,
    content: [{ type: 'text', text: `Passage ${n}a.` }, { type: 'text', text: `Passage ${n}b.` }],
    citations: { enabled: true },
  });
  const cited = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'The grass is green.' }, title: 'Facts', citations: { enabled: true } };
  const plain = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'The sky is blue.' } };
  await client.messages.create({
    model: 'claude',
    max_tokens: 50,
    tools: [{ name: 'search', input_schema: { type: 'object' } }],
    messages: [
      { role: 'user', content: [result(1), cited, plain, { type: 'text', text: 'What colour?' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'search', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [result(2)] }] },
    ],
  });
  const sent = fake.requests.at(-1).body.messages;
  assert.deepEqual(sent[0].content.slice(0, 2), [result(1), cited]);
  // Without citations a text document is read as text, as before.
  assert.deepEqual(sent[0].content[2], { type: 'text', text: 'The sky is blue.' });
  assert.deepEqual(sent[2].content[0].content, [result(2)]);
});

test("the beta SDK's tool_reference and browser_state reach Anthropic in their tool results as written; an MCP listing sent back is left out", async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const reference = { type: 'tool_reference', tool_name: 'get_weather' };
  const browser = { type: 'browser_state', tabs: [{ id: 't1', url: 'https://example.com', title: 'Example', active: true }] };
  await client.messages.create({
    model: 'claude',
    max_tokens: 50,
    tools: [{ name: 'find_tools', input_schema: { type: 'object' } }],
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: [{ type: 'mcp_tool_listing', mcp_server_name: 'kb', tools: [] }, { type: 'tool_use', id: 'toolu_1', name: 'find_tools', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [reference, browser] }] },
    ],
  });
  const sent = fake.requests.at(-1).body.messages;
  assert.deepEqual(sent[1].content.map((b) => b.type), ['tool_use']);
  assert.deepEqual(sent[2].content[0].content, [reference, browser]);
});

test('max_tokens 0 (fill the prompt cache, no answer) reaches Anthropic as 0', async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const res = await client.messages.create({ model: 'claude', max_tokens: 0, system: [{ type: 'text', text: 'A long prefix.', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.type, 'message');
  assert.equal(fake.requests.at(-1).body.max_tokens, 0);
});

test("the beta's billing_policy, fallback_credit_token and output_config.task_budget reach Anthropic as sent", async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const billing = { type: 'billing_policy', bill_to: 'user_profile' };
  const credit = { token: 'fct_abc', mode: 'best_effort' };
  const budget = { type: 'tokens', total: 100000, remaining: 64000 };
  await client.beta.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], billing_policy: billing, fallback_credit_token: credit, output_config: { task_budget: budget } });
  const sent = fake.requests.at(-1).body;
  assert.deepEqual([sent.billing_policy, sent.fallback_credit_token, sent.output_config], [billing, credit, { task_budget: budget }]);
});

test("an image's transformations reach Anthropic with it; a Files API id is refused with its reason", async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  const image = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png }, transformations: { oversized_image: 'error' } };
  const url = { type: 'image', source: { type: 'url', url: 'https://img.example/cat.png' }, cache_control: { type: 'ephemeral' } };
  await client.messages.create({ model: 'claude-vision', max_tokens: 50, messages: [{ role: 'user', content: [image, url, { type: 'text', text: 'What is it?' }] }] });
  assert.deepEqual(fake.requests.at(-1).body.messages[0].content.slice(0, 2), [image, url]);

  for (const block of [
    { type: 'image', source: { type: 'file', file_id: 'file_011' } },
    { type: 'document', source: { type: 'file', file_id: 'file_012' } },
  ]) {
    await assert.rejects(client.messages.create({ model: 'claude-vision', max_tokens: 50, messages: [{ role: 'user', content: [block, { type: 'text', text: 'hi' }] }] }), (err) => {
      assert.equal(err.status, 400);
      assert.match(err.error.error.message, /File ids \(Anthropic's Files API\) are not resolved by this gateway/);
      return true;
    });
  }
});

test("the client's anthropic-beta flags reach the Anthropic upstream (the SDK's beta namespace), for messages and count_tokens", async () => {
  const betas = ['interleaved-thinking-2025-05-14', 'context-1m-2025-08-07'];
  fake.enqueue({ fixture: 'text.sse' });
  const res = await client.beta.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], betas });
  assert.equal(res.type, 'message');
  const sent = fake.requests.at(-1);
  assert.equal(sent.url, '/v1/messages');
  assert.deepEqual(sent.headers['anthropic-beta'].split(','), betas);
  assert.equal(sent.body.betas, undefined);
  const counted = await client.beta.messages.countTokens({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], betas });
  assert.ok(counted.input_tokens > 0);
  assert.equal(fake.requests.at(-1).url, '/v1/messages/count_tokens');
  // The SDK adds its own token-counting beta to countTokens; everything it sent goes on.
  const countBetas = fake.requests.at(-1).headers['anthropic-beta'].split(',');
  for (const beta of betas) assert.ok(countBetas.includes(beta), countBetas.join(','));
});

test('cache_control on tool definitions, tool_use and tool_result blocks reaches Anthropic where the client put it', async () => {
  // Where agents put their breakpoints: the last tool, and the last block of the conversation.
  fake.enqueue({ fixture: 'text.sse' });
  const cache = { type: 'ephemeral' };
  await client.messages.create({
    model: 'claude',
    max_tokens: 50,
    tools: [
      { name: 'search', description: 'Search', input_schema: { type: 'object', properties: { q: { type: 'string' } } } },
      { name: 'read', description: 'Read', input_schema: { type: 'object', properties: { path: { type: 'string' } } }, cache_control: cache },
    ],
    messages: [
      { role: 'user', content: 'Find the config' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'search', input: { q: 'config' }, cache_control: cache }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'switchboard.yaml', cache_control: { type: 'ephemeral', ttl: '1h' } }] },
    ],
  });
  const sent = fake.requests.at(-1).body;
  assert.deepEqual(sent.tools.map((t) => t.cache_control), [undefined, cache]);
  assert.deepEqual(sent.messages[1].content[0].cache_control, cache);
  assert.deepEqual(sent.messages[2].content[0].cache_control, { type: 'ephemeral', ttl: '1h' });
});

test("OpenAI-format clients mark breakpoints as OpenRouter does (cache_control on text parts); Anthropic gets them", async () => {
  fake.enqueue({ fixture: 'text.sse' });
  const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  await openai.chat.completions.create({
    model: 'claude',
    messages: [
      { role: 'system', content: [{ type: 'text', text: 'A long, stable system prompt.', cache_control: { type: 'ephemeral' } }] },
      { role: 'user', content: [{ type: 'text', text: 'A long document.', cache_control: { type: 'ephemeral', ttl: '1h' } }, { type: 'text', text: 'Summarise it.' }] },
    ],
  });
  const sent = fake.requests.at(-1).body;
  assert.deepEqual(sent.system, [{ type: 'text', text: 'A long, stable system prompt.', cache_control: { type: 'ephemeral' } }]);
  assert.deepEqual(sent.messages[0].content, [
    { type: 'text', text: 'A long document.', cache_control: { type: 'ephemeral', ttl: '1h' } },
    { type: 'text', text: 'Summarise it.' },
  ]);
});

const WEB_SEARCH = { type: 'web_search_20250305', name: 'web_search', max_uses: 3, allowed_domains: ['lighthouses.example'] };
const ask = (extra = {}) => ({ model: 'claude', max_tokens: 1024, messages: [{ role: 'user', content: 'Which French lighthouse is the tallest?' }], tools: [WEB_SEARCH], ...extra });

test("Anthropic's server tools: the tool goes upstream as written; its call, results, citations and usage come back to the SDK", async () => {
  fake.enqueue({ fixture: 'web-search.sse' });
  const streamed = await client.messages.stream(ask()).finalMessage();
  assert.deepEqual(fake.requests.at(-1).body.tools, [WEB_SEARCH]);
  assert.deepEqual(
    streamed.content.map((b) => b.type),
    ['text', 'server_tool_use', 'web_search_tool_result', 'text', 'text'],
  );
  const [, call, results, , cited] = streamed.content;
  assert.deepEqual([call.id, call.name, call.input], ['srvtoolu_01Ab3Cd4Ef5', 'web_search', { query: 'tallest lighthouse in France' }]);
  assert.equal(results.tool_use_id, call.id);
  assert.deepEqual(results.content.map((r) => r.url), ['https://lighthouses.example/ile-vierge', 'https://brittany.example/lighthouses']);
  assert.equal(results.content[0].encrypted_content, 'EqYBCioIAxgCIiQ2ZmQ0Yz-fake-encrypted-1');
  assert.equal(cited.text, 'the Île Vierge lighthouse, at 82.5 m.');
  assert.deepEqual(cited.citations.map((c) => [c.type, c.url, c.encrypted_index]), [['web_search_result_location', 'https://lighthouses.example/ile-vierge', 'Eo8BCioIAxgCIiQ-fake-index-1']]);
  assert.equal(streamed.usage.server_tool_use.web_search_requests, 1);
  // The message_delta's input count (the searches' results read) is the one billed.
  assert.equal(streamed.usage.input_tokens, 6210);

  // Buffered, the same blocks.
  fake.enqueue({ fixture: 'web-search.sse' });
  const buffered = await client.messages.create(ask());
  assert.deepEqual(buffered.content, streamed.content);
  // Both counts, as the SDK's ServerToolUsage has them.
  assert.deepEqual(buffered.usage.server_tool_use, { web_search_requests: 1, web_fetch_requests: 0 });

  // The answer sent back as history reaches Anthropic block for block, citations included.
  fake.enqueue({ fixture: 'text.sse' });
  await client.messages.create(ask({ messages: [...ask().messages, { role: 'assistant', content: buffered.content }, { role: 'user', content: 'And the second?' }] }));
  const sent = fake.requests.at(-1).body.messages[1].content;
  assert.deepEqual(sent.map((b) => b.type), ['text', 'server_tool_use', 'web_search_tool_result', 'text', 'text']);
  assert.deepEqual(sent[1], { type: 'server_tool_use', id: call.id, name: 'web_search', input: call.input });
  assert.deepEqual(sent[2], results);
  assert.deepEqual(sent[4].citations, cited.citations);
});

test('pricing.serverToolUse prices each search into the request log, on top of the tokens', async () => {
  fake.enqueue({ fixture: 'web-search.sse' });
  const message = await client.messages.create(ask({ model: 'claude-priced' }));
  const { input_tokens, output_tokens, server_tool_use } = message.usage;
  const expected = (input_tokens * 3 + output_tokens * 15) / 1e6 + server_tool_use.web_search_requests * 0.01;
  const usage = await (await fetch(`${s.url}/v1/usage?model=claude-priced`)).json();
  assert.equal(usage.totals.requests, 1);
  assert.ok(Math.abs(usage.totals.cost - expected) < 1e-9, `${usage.totals.cost} vs ${expected}`);
  assert.ok(server_tool_use.web_search_requests * 0.01 > 0);
});

test('cache writes by TTL: the client sees them apart (usage.cache_creation) and the 1-hour ones are priced at pricing.cacheWrite1h', async () => {
  const sse = loadAnthropicFixture('cache-usage.sse').replaceAll('"cache_creation_input_tokens":1500,', '"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500},');
  fake.enqueue({ sse });
  const message = await client.messages.create({ model: 'claude-cached', max_tokens: 3, messages: [{ role: 'user', content: 'Again?' }] });
  assert.deepEqual(message.usage.cache_creation, { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 500 });
  const { input_tokens, output_tokens, cache_read_input_tokens } = message.usage;
  const expected = (input_tokens * 3 + cache_read_input_tokens * 0.3 + 1000 * 3.75 + 500 * 6 + output_tokens * 15) / 1e6;
  const usage = await (await fetch(`${s.url}/v1/usage?model=claude-cached`)).json();
  assert.ok(Math.abs(usage.totals.cost - expected) < 1e-9, `${usage.totals.cost} vs ${expected}`);
  // Without the breakdown nothing is known apart: null, and every write at pricing.cacheWrite.
  fake.enqueue({ fixture: 'cache-usage.sse' });
  assert.equal((await client.messages.create({ model: 'claude', max_tokens: 3, messages: [{ role: 'user', content: 'Again?' }] })).usage.cache_creation, null);
});

/** Prometheus samples whose line starts with `prefix`, as line → value. */
async function metricLines(prefix) {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return new Map(text.split('\n').filter((l) => l.startsWith(prefix)).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
}

test("prompt-cache tokens and server-tool requests are kept per request: GET /v1/usage and /metrics add up what the SDK was told", async () => {
  const metricsBefore = await metricLines('switchboard_');
  fake.enqueue({ fixture: 'cache-usage.sse' });
  const cachedStream = client.messages.stream({ model: 'claude-ledger', max_tokens: 3, messages: [{ role: 'user', content: 'Again?' }] });
  const cached = await cachedStream.finalMessage();
  fake.enqueue({ fixture: 'web-search.sse' });
  const searched = await client.messages.create(ask({ model: 'claude-ledger' }));
  assert.ok(cached.usage.cache_read_input_tokens > 0 && cached.usage.cache_creation_input_tokens > 0);
  const usage = await (await fetch(`${s.url}/v1/usage?model=claude-ledger`)).json();
  const told = [cached.usage, searched.usage];
  const sum = (pick) => told.reduce((n, u) => n + (u[pick] ?? 0), 0);
  assert.equal(usage.totals.requests, 2);
  assert.equal(usage.totals.cache_read_tokens, sum('cache_read_input_tokens'));
  assert.equal(usage.totals.cache_write_tokens, sum('cache_creation_input_tokens'));
  // The canonical input count is the whole prompt: Anthropic's input_tokens plus both cache parts.
  assert.equal(usage.totals.input_tokens, sum('input_tokens') + sum('cache_read_input_tokens') + sum('cache_creation_input_tokens'));
  // The ledger keeps the tools that ran; the response also names those that did not, with 0.
  const ran = Object.fromEntries(Object.entries(searched.usage.server_tool_use).filter(([, n]) => n > 0));
  assert.deepEqual(usage.totals.server_tool_use, ran);
  assert.deepEqual(usage.data[0].server_tool_use, ran);
  const metricsAfter = await metricLines('switchboard_');
  const grew = (series) => (metricsAfter.get(series) ?? 0) - (metricsBefore.get(series) ?? 0);
  const labels = (kind) => `{kind="${kind}",model="claude-ledger",provider="anthropic"}`;
  assert.equal(grew(`switchboard_token_details_total${labels('cache_read')}`), sum('cache_read_input_tokens'));
  assert.equal(grew(`switchboard_token_details_total${labels('cache_write')}`), sum('cache_creation_input_tokens'));
  assert.equal(grew(`switchboard_server_tool_requests_total${labels('web_search_requests')}`), searched.usage.server_tool_use.web_search_requests);
  // The HTTP log line of each request carries the same details (written when its response closed,
  // before the two reads above were answered).
  const lineOf = (id) => s.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.reqId === id);
  const cachedLine = lineOf(cachedStream.request_id);
  assert.equal(cachedLine.cacheReadTokens, cached.usage.cache_read_input_tokens);
  assert.equal(cachedLine.cacheWriteTokens, cached.usage.cache_creation_input_tokens);
  assert.equal('serverToolUse' in cachedLine, false, 'no server tools used, none logged');
  assert.deepEqual(lineOf(searched._request_id).serverToolUse, ran);
});

test('pause_turn from a long server-tool turn reaches the client as pause_turn', async () => {
  fake.enqueue({ sse: loadAnthropicFixture('web-search.sse').replace('"stop_reason":"end_turn"', '"stop_reason":"pause_turn"') });
  const message = await client.messages.create(ask());
  assert.equal(message.stop_reason, 'pause_turn');
});

test("server tools and their blocks are refused, naming them, for a model Anthropic does not serve alone", async () => {
  const local = new Anthropic({ baseURL: s.url, apiKey: 'x', maxRetries: 0 });
  for (const model of ['other', 'claude-fb']) {
    await assert.rejects(local.messages.create({ ...ask(), model }), (err) => {
      assert.equal(err.status, 400);
      assert.match(err.error.error.message, /web_search_20250305.*anthropic only/);
      return true;
    });
  }
  const history = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: [{ type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'x' } }, { type: 'web_search_tool_result', tool_use_id: 'srvtoolu_1', content: [] }] },
    { role: 'user', content: 'More?' },
  ];
  await assert.rejects(local.messages.create({ model: 'other', max_tokens: 10, messages: history }), (err) => {
    assert.equal(err.status, 400);
    assert.match(err.error.error.message, /server_tool_use.*back to anthropic/);
    return true;
  });
  // In a user turn such a block is out of place for every model.
  await assert.rejects(local.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'web_search_tool_result', tool_use_id: 'x', content: [] }] }] }), (err) => err.status === 400);
  // An undated, unknown tool type is a schema error naming the field.
  const res = await fetch(`${s.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(ask({ tools: [{ type: 'websearch', name: 'w' }] })) });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.type, 'invalid_request_error');
});

test("a refusal's stop_details from Anthropic reach the client, buffered and on message_delta", async () => {
  const details = { type: 'refusal', category: 'cyber', explanation: 'Blocked under the usage policy.' };
  const sse = loadAnthropicFixture('text.sse').replace('"stop_reason":"end_turn","stop_sequence":null', `"stop_reason":"refusal","stop_sequence":null,"stop_details":${JSON.stringify(details)}`);
  assert.ok(sse.includes('"stop_details"'));
  fake.enqueue({ sse });
  const message = await client.messages.create({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] });
  assert.deepEqual([message.stop_reason, message.stop_details], ['refusal', details]);
  fake.enqueue({ sse });
  const res = await fetch(`${s.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
  });
  const delta = (await res.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6))).find((e) => e.type === 'message_delta');
  assert.deepEqual(delta.delta, { stop_reason: 'refusal', stop_sequence: null, stop_details: details, container: null });
  // Without a refusal stop_details is null (the SDK's type has it always).
  fake.enqueue({ fixture: 'text.sse' });
  assert.equal((await client.messages.create({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] })).stop_details, null);
});

test("Anthropic refusing one deployment's key (401) or model (404) moves the call to the other deployment at once", async () => {
  for (const [status, type] of [[401, 'authentication_error'], [404, 'not_found_error']]) {
    const before = fake.requests.length;
    fake.enqueue({ status, error: { type, message: 'refused' } });
    fake.enqueue({ fixture: 'text.sse' });
    const { data: message, response } = await client.messages.create({ model: 'claude-two-accounts', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(message.type, 'message');
    assert.equal(response.headers.get('x-switchboard-attempts'), '2');
    assert.equal(response.headers.get('x-switchboard-deployment'), 'second');
    assert.deepEqual(fake.requests.slice(before).map((r) => r.headers['x-account']), ['first', 'second']);
  }
});

test("Anthropic refusing the gateway's own key is a 502 api_error, not the caller's authentication_error", async () => {
  for (const [status, type] of [[401, 'authentication_error'], [403, 'permission_error'], [404, 'not_found_error']]) {
    fake.enqueue({ status, error: { type, message: 'refused' } });
    const res = await fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 502, String(status));
    assert.equal((await res.json()).error.type, 'api_error', String(status));
  }
});

test("display 'omitted' reaches Anthropic, and its signed thinking blocks come back without their text (they were dropped)", async () => {
  fake.enqueue({ fixture: 'thinking.sse' });
  const message = await client.messages.create({
    model: 'claude',
    max_tokens: 4000,
    thinking: { type: 'enabled', budget_tokens: 2048, display: 'omitted' },
    messages: [{ role: 'user', content: 'GCD of 1071 and 462?' }],
  });
  assert.deepEqual(fake.requests.at(-1).body.thinking, { type: 'enabled', budget_tokens: 2048, display: 'omitted' });
  assert.deepEqual(message.content.map((b) => b.type), ['thinking', 'redacted_thinking', 'text']);
  assert.equal(message.content[0].thinking, '');
  assert.equal(message.content[0].signature, 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+sig==');
  assert.match(message.content[1].data, /^EmwKAhgB/);
});

test("Anthropic's model_context_window_exceeded reaches the client as it is, not as max_tokens; OpenAI clients get length", async () => {
  const sse = loadAnthropicFixture('text.sse').replace('"stop_reason":"end_turn"', '"stop_reason":"model_context_window_exceeded"');
  fake.enqueue({ sse });
  const message = await client.messages.create({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(message.stop_reason, 'model_context_window_exceeded');
  fake.enqueue({ sse });
  const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const completion = await openai.chat.completions.create({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(completion.choices[0].finish_reason, 'length');
});
