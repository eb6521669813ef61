// POST /v1/messages with the official @anthropic-ai/sdk and raw SSE, against the scripted
// provider (canonical parts known exactly): buffered, streaming, tools, thinking, every seed 003
// field, and Anthropic's error shape.
// Build first: npx tsc -p tsconfig.json
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { GatewayError } from '../dist/core/errors.js';
import { MessageEventRenderer, eventJson } from '../dist/dialects/messages/render-events.js';
import { startServer, postJson, readSse } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';
import { makePdf } from './helpers/media-fixtures.mjs';

const PNG_1x1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

let s;
let scripted;
let client;

before(async () => {
  scripted = createScriptedFactory({ GatewayError });
  s = await startServer({
    providers: { scripted: scripted.factory },
    config: {
      defaultModel: 'm1',
      // No retries: a scripted failure reaches the dialect at once.
      router: { retries: 0 },
      models: [
        { id: 'vision', provider: 'scripted', model: 'v', modalities: ['text', 'image'] },
        { id: 'm1', aliases: ['fast'], provider: 'scripted', model: 'x', pricing: { input: 1, output: 2 } },
        { id: 'eu-only', provider: 'scripted', model: 'y', region: 'eu' },
      ],
    },
  });
  client = new Anthropic({ baseURL: s.url, apiKey: 'unused-in-open-mode', maxRetries: 0 });
});
after(() => s.close());

const post = (body, headers) => postJson(`${s.url}/v1/messages`, body, headers);
const user = (text) => [{ role: 'user', content: text }];
const lastRequest = () => scripted.requests.at(-1);

test('a bad tool or block is named precisely, whichever kind of tool or block it claims to be', async () => {
  const cases = [
    [{ tools: [{ name: 'x' }] }, 'tools[0].input_schema', /Missing required parameter/],
    [{ tools: [{ type: 'custom', name: 'x', input_schema: { type: 'object' }, extra: 1 }] }, 'tools[0].extra', /Unrecognized/],
    [{ tools: [{ type: 'websearch', name: 'w' }] }, 'tools[0].type', /dated Anthropic tool type/],
    [{ messages: [{ role: 'user', content: [{ type: 'text' }] }] }, 'messages[0].content[0].text', /Missing required parameter/],
    [{ messages: [{ role: 'user', content: [{ type: 'picture' }] }] }, 'messages[0].content[0].type', /not a content block type/],
    [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', /expected array, received number/],
    [{ temperature: 'hot' }, 'temperature', /expected number, received string/],
    // Anthropic's rules: an upstream sent an empty turn answers a 400 about messages the client never sent.
    [{ messages: [{ role: 'user', content: '' }] }, 'messages[0].content', /non-empty content/],
    [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: '' }] }] }, 'messages[0].content[1].text', /must be non-empty/],
    [{ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [] }, { role: 'user', content: 'b' }] }, 'messages[1].content', /non-empty content/],
  ];
  for (const [extra, param, message] of cases) {
    const res = await post({ model: 'm1', max_tokens: 5, messages: user('hi'), ...extra });
    assert.equal(res.status, 400, JSON.stringify(extra));
    assert.equal(res.body.error.type, 'invalid_request_error');
    assert.match(res.body.error.message, message, JSON.stringify(extra));
    assert.ok(res.body.error.message.includes(param), `${res.body.error.message} names ${param}`);
  }
});

async function rawStream(body) {
  const res = await fetch(`${s.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ max_tokens: 100, ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const { events } = await readSse(res);
  for (const e of events) assert.equal(JSON.parse(e.data).type, e.event, 'each data.type names its event');
  return events.map((e) => ({ event: e.event, data: JSON.parse(e.data) }));
}

describe('buffered', () => {
  test('the SDK creates a message: content, stop_reason, usage, model, id', async () => {
    const message = await client.messages.create({ model: 'fast', max_tokens: 64, messages: user('script:text') });
    assert.match(message.id, /^msg_/);
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.model, 'm1');
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello world', citations: null }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.stop_sequence, null);
    assert.equal(message.usage.input_tokens, 7);
    assert.equal(message.usage.output_tokens, 2);
    assert.equal(lastRequest().maxTokens, 64);
    // Every field @anthropic-ai/sdk's Message and Usage types require is there, null where unknown.
    const required = { Message: ['container', 'diagnostics', 'stop_details'], Usage: ['cache_creation', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'inference_geo', 'output_tokens_details', 'server_tool_use', 'service_tier', 'speed'] };
    for (const key of required.Message) assert.ok(key in message, `Message.${key}`);
    for (const key of required.Usage) assert.ok(key in message.usage, `Usage.${key}`);
  });

  test('model "default" and an omitted model both reach the default model', async () => {
    const a = await post({ model: 'default', max_tokens: 5, messages: user('hi') });
    assert.equal(a.status, 200);
    assert.equal(a.body.model, 'm1');
    const b = await post({ max_tokens: 5, messages: user('hi') });
    assert.equal(b.status, 200);
    assert.equal(b.body.model, 'm1');
  });
});

describe('streaming', () => {
  test('raw SSE: message_start, ping, content_block_start/delta/stop, message_delta with stop_reason and usage, message_stop', async () => {
    const events = await rawStream({ model: 'm1', messages: user('script:text') });
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    const [start, , blockStart, d1, d2, blockStop, delta] = events;
    assert.equal(start.data.message.role, 'assistant');
    assert.deepEqual(start.data.message.content, []);
    assert.equal(start.data.message.stop_reason, null);
    assert.deepEqual(blockStart.data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '', citations: null } });
    assert.deepEqual(d1.data.delta, { type: 'text_delta', text: 'Hello' });
    assert.deepEqual(d2.data.delta, { type: 'text_delta', text: ' world' });
    assert.equal(blockStop.data.index, 0);
    assert.equal(delta.data.delta.stop_reason, 'end_turn');
    assert.equal(delta.data.usage.output_tokens, 2);
    assert.equal(delta.data.usage.input_tokens, 7);
  });

  test('the SDK streams events in order and finalMessage() assembles the message', async () => {
    const stream = client.messages.stream({ model: 'm1', max_tokens: 64, messages: user('script:text') });
    const types = [];
    let text = '';
    stream.on('streamEvent', (event) => types.push(event.type));
    stream.on('text', (delta) => (text += delta));
    const message = await stream.finalMessage();
    assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    assert.equal(text, 'Hello world');
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello world', citations: null }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.usage.output_tokens, 2);
    assert.equal(message.usage.input_tokens, 7);
  });

  test('stream: true through create() yields the raw events to the SDK', async () => {
    const stream = await client.messages.create({ model: 'm1', max_tokens: 64, messages: user('script:text'), stream: true });
    const types = [];
    for await (const event of stream) types.push(event.type);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
  });

  test('a failure after the first byte ends the stream with an Anthropic error event', async () => {
    const events = await rawStream({ model: 'm1', messages: user('script:fail-after') });
    const last = events.at(-1);
    assert.equal(last.event, 'error');
    assert.equal(last.data.error.type, 'api_error');
    assert.match(last.data.error.message, /upstream connection reset/);
    assert.ok(events.some((e) => e.data.delta?.text === 'partial'));
    await assert.rejects(
      client.messages.stream({ model: 'm1', max_tokens: 64, messages: user('script:fail-after') }).finalMessage(),
      (err) => err instanceof Anthropic.APIError && /upstream connection reset/.test(err.message),
    );
  });
});

describe('tools', () => {
  const tools = [
    { name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } },
    { name: 'get_time', input_schema: { type: 'object', properties: {} } },
  ];

  test('interleaved tool-call fragments become one content block at a time, input_json_delta per block', async () => {
    const events = await rawStream({ model: 'm1', messages: user('script:tools'), tools });
    const blocks = events.filter((e) => e.event.startsWith('content_block'));
    assert.deepEqual(
      blocks.map((e) => `${e.event}:${e.data.index}`),
      [
        'content_block_start:0',
        'content_block_delta:0',
        'content_block_delta:0',
        'content_block_delta:0',
        'content_block_stop:0',
        'content_block_start:1',
        'content_block_delta:1',
        'content_block_stop:1',
      ],
    );
    assert.deepEqual(blocks[0].data.content_block, { type: 'tool_use', id: 'call_a', name: 'get_weather', input: {}, caller: { type: 'direct' } });
    assert.equal(blocks.slice(1, 4).map((e) => e.data.delta.partial_json).join(''), '{"location":"Boston"}');
    assert.equal(blocks[1].data.delta.type, 'input_json_delta');
    assert.equal(events.find((e) => e.event === 'message_delta').data.delta.stop_reason, 'tool_use');
  });

  test('tool_use blocks sent back as Anthropic returns them (caller, toolset_name) are accepted', async () => {
    const res = await client.messages.create({
      model: 'm1',
      max_tokens: 16,
      tools,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: [{ type: 'text', text: 'Checking.', citations: null }, { type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { location: 'Oslo' }, caller: { type: 'direct' }, toolset_name: null }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_9', content: 'Snow' }, { type: 'text', text: 'script:text' }] },
      ],
    });
    assert.equal(res.type, 'message');
    const call = lastRequest().messages[1].content.find((p) => p.type === 'tool-call');
    assert.deepEqual([call.id, call.name, JSON.parse(call.arguments)], ['toolu_9', 'get_weather', { location: 'Oslo' }]);
  });

  test('a tool use round trip with the SDK: tool_use blocks out, tool_result back in', async () => {
    const first = await client.messages
      .stream({ model: 'm1', max_tokens: 64, messages: user('script:tools'), tools, tool_choice: { type: 'auto' } })
      .finalMessage();
    assert.equal(first.stop_reason, 'tool_use');
    assert.deepEqual(
      first.content.map((b) => [b.type, b.id, b.name, b.input]),
      [
        ['tool_use', 'call_a', 'get_weather', { location: 'Boston' }],
        ['tool_use', 'call_b', 'get_time', {}],
      ],
    );
    assert.deepEqual(lastRequest().toolChoice, { type: 'auto' });
    assert.deepEqual(lastRequest().tools[0], { name: 'get_weather', description: 'Weather', parameters: tools[0].input_schema });

    const second = await client.messages.create({
      model: 'm1',
      max_tokens: 64,
      tools,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: first.content },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'call_a', content: 'Sunny, 21C' },
            { type: 'tool_result', tool_use_id: 'call_b', content: [{ type: 'text', text: '12:00' }], is_error: false },
            { type: 'text', text: 'script:text' },
          ],
        },
      ],
    });
    assert.equal(second.content[0].text, 'Hello world');
    const sent = lastRequest().messages;
    assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'tool', 'user']);
    assert.deepEqual(sent[1].content.map((p) => [p.type, p.id, p.arguments]), [
      ['tool-call', 'call_a', '{"location":"Boston"}'],
      ['tool-call', 'call_b', '{}'],
    ]);
    assert.deepEqual(sent[2].content.map((p) => [p.toolCallId, p.content[0].text]), [
      ['call_a', 'Sunny, 21C'],
      ['call_b', '12:00'],
    ]);
  });

  test('tool_choice any/tool/none and disable_parallel_tool_use map to the canonical choice', async () => {
    await post({ model: 'm1', max_tokens: 9, messages: user('x'), tools, tool_choice: { type: 'any', disable_parallel_tool_use: true } });
    assert.deepEqual(lastRequest().toolChoice, { type: 'required' });
    assert.equal(lastRequest().parallelToolCalls, false);
    await post({ model: 'm1', max_tokens: 9, messages: user('x'), tools, tool_choice: { type: 'tool', name: 'get_time' } });
    assert.deepEqual(lastRequest().toolChoice, { type: 'tool', name: 'get_time' });
    const bad = await post({ model: 'm1', max_tokens: 9, messages: user('x'), tools, tool_choice: { type: 'tool', name: 'nope' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /tool_choice/);
  });

  test('a tool_result that answers no tool_use is a 400', async () => {
    const res = await post({ model: 'm1', max_tokens: 9, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'ghost', content: 'x' }] }] });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.type, 'invalid_request_error');
    assert.match(res.body.error.message, /ghost/);
  });
});

  test("an image inside a tool_result is held to the model's modalities, as a user's image is", async () => {
    const image = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_1x1 } };
    const messages = (model) => ({
      model,
      max_tokens: 9,
      messages: [
        { role: 'user', content: 'snap' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'snap', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'here' }, image] }] },
      ],
    });
    const refused = await post(messages('m1'));
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /does not accept image input/);
    assert.equal((await post(messages('vision'))).status, 200);
  });

  test("a model's tool call whose arguments are not a JSON object is the upstream's 502 (an error event once streaming), never input {}", async () => {
    const tools = [{ name: 'get_weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } }];
    const res = await post({ model: 'm1', max_tokens: 9, tools, messages: user('script:bad-args') });
    assert.equal(res.status, 502);
    assert.equal(res.body.error.type, 'api_error');
    assert.match(res.body.error.message, /get_weather.*not a JSON object/);
    const events = await rawStream({ model: 'm1', tools, messages: user('script:bad-args') });
    assert.equal(events.at(-1).event, 'error');
    assert.equal(events.at(-1).data.error.type, 'api_error');
    assert.ok(!events.some((e) => e.event === 'message_stop'));
  });

describe('thinking', () => {
  test('thinking blocks stream as thinking_delta + signature_delta and come back with their signature', async () => {
    const stream = client.messages.stream({
      model: 'm1',
      max_tokens: 3000,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: user('script:reasoning'),
    });
    const deltas = [];
    stream.on('streamEvent', (e) => e.type === 'content_block_delta' && deltas.push(e.delta.type));
    const message = await stream.finalMessage();
    assert.deepEqual(deltas, ['thinking_delta', 'signature_delta', 'text_delta']);
    assert.deepEqual(message.content, [
      { type: 'thinking', thinking: 'Let me think.', signature: 'sig-1' },
      { type: 'text', text: 'Answer.', citations: null },
    ]);
    // Anthropic's max_tokens includes the budget; the canonical maxTokens is the answer alone.
    assert.deepEqual(lastRequest().reasoning, { enabled: true, budgetTokens: 1024 });
    assert.equal(lastRequest().maxTokens, 3000 - 1024);

    await client.messages.create({
      model: 'm1',
      max_tokens: 3000,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: message.content }, { role: 'user', content: 'more' }],
    });
    assert.deepEqual(lastRequest().messages[1].content[0], { type: 'reasoning', text: 'Let me think.', signature: 'sig-1' });
  });

  test('a custom tool keeps the fields only Anthropic reads apart from its definition (type null is a custom tool)', async () => {
    const tool = { type: null, name: 'f', input_schema: { type: 'object' }, defer_loading: true, allowed_callers: ['direct'], input_examples: [{ a: 1 }], eager_input_streaming: null };
    await post({ model: 'm1', max_tokens: 9, tools: [tool], messages: user('hi') });
    assert.deepEqual(lastRequest().tools, [{ name: 'f', description: undefined, parameters: { type: 'object' }, providerFields: { anthropic: { defer_loading: true, allowed_callers: ['direct'], input_examples: [{ a: 1 }] } } }]);
  });

  test('a search result reaches any other provider as its text: title, source, passages', async () => {
    const result = { type: 'search_result', source: 'https://docs.example/1', title: 'Page 1', content: [{ type: 'text', text: 'One.' }, { type: 'text', text: 'Two.' }] };
    const res = await post({ model: 'm1', max_tokens: 9, messages: [{ role: 'user', content: [result, { type: 'text', text: 'Summarise.' }] }] });
    assert.equal(res.status, 200);
    assert.deepEqual(lastRequest().messages[0].content.map((p) => p.text), ['Page 1\nhttps://docs.example/1\n\nOne.\n\nTwo.', 'Summarise.']);
    // Only in user turns, as Anthropic allows it.
    const misplaced = await post({ model: 'm1', max_tokens: 9, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: [result] }] });
    assert.equal(misplaced.status, 400);
    assert.equal(misplaced.body.error.message.includes("'search_result' block is only allowed in user messages"), true, misplaced.body.error.message);
  });

  test("the beta SDK's thinking display 'updates' (read as summarized), block_binding, and a fallback block without its trigger are accepted", async () => {
    for (const thinking of [
      { type: 'enabled', budget_tokens: 1024, display: 'updates', block_binding: { prefix_mismatch_behavior: 'drop_block' } },
      { type: 'adaptive', display: 'updates', block_binding: null },
    ]) {
      const res = await post({ model: 'm1', max_tokens: 3000, thinking, messages: user('script:reasoning') });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.content[0].thinking, 'Let me think.', 'the thinking text is returned');
    }
    const boundary = { type: 'fallback', from: { model: 'a' }, to: { model: 'b' } };
    const res = await post({ model: 'm1', max_tokens: 9, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: [boundary, { type: 'text', text: 'a' }] }, { role: 'user', content: 'more' }] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });

  test("the beta's system messages: clear_at 'next_user_message' shows one only until a user message follows; output_config.effort after the last user message is this turn's", async () => {
    const sys = (text, extra = {}) => ({ role: 'system', content: text, ...extra });
    const res = await post({
      model: 'm1',
      max_tokens: 9,
      messages: [
        { role: 'user', content: 'one' },
        sys('Answer in French this once.', { clear_at: 'next_user_message', output_config: { effort: 'high' } }),
        { role: 'assistant', content: 'Un.' },
        { role: 'user', content: 'two' },
        sys('Be brief.', { clear_at: 'next_user_message' }),
        sys('Always polite.', { clear_at: 'never' }),
        { role: 'system', output_config: { effort: 'low' } },
      ],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const texts = lastRequest().messages.map((m) => [m.role, m.content.map((p) => p.text).join('')]);
    assert.deepEqual(texts, [['user', 'one'], ['assistant', 'Un.'], ['user', 'two'], ['system', 'Be brief.'], ['system', 'Always polite.']]);
    assert.deepEqual(lastRequest().reasoning, { enabled: true, effort: 'low' });

    for (const [messages, param] of [
      [[{ role: 'user', content: 'x', clear_at: 'never' }], 'messages[0].clear_at'],
      [[{ role: 'user' }], 'messages[0].content'],
      [[{ role: 'user', content: 'x' }, { role: 'system' }], 'messages[1].content'],
    ]) {
      const bad = await post({ model: 'm1', max_tokens: 9, messages });
      assert.equal(bad.status, 400, param);
      assert.match(bad.body.error.message, new RegExp(param.replace(/[[\].]/g, '\\$&')));
    }
  });

  test("the inline-tools beta's tool_addition / tool_removal: the model is offered the tools in effect at the end of the conversation", async () => {
    const tool = (name) => ({ name, input_schema: { type: 'object' } });
    const add = (t) => ({ type: 'tool_addition', tool: t });
    const remove = (name) => ({ type: 'tool_removal', tool: { type: 'tool_reference', name } });
    const offered = async (messages, extra = {}) => {
      const res = await post({ model: 'm1', max_tokens: 9, tools: [tool('get_weather'), tool('get_time')], messages, ...extra });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (lastRequest().tools ?? []).map((t) => t.name);
    };
    assert.deepEqual(
      await offered([
        { role: 'user', content: 'one' },
        { role: 'system', content: [{ type: 'text', text: 'Lookups allowed now.' }, add({ type: 'tool_definition', definition: tool('lookup') })] },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: [remove('get_time'), { type: 'text', text: 'two' }] },
      ]),
      ['get_weather', 'lookup'],
    );
    // Withdrawn, then offered again by reference; a tool_choice may name an inline-defined tool.
    assert.deepEqual(
      await offered(
        [{ role: 'system', content: [remove('get_time'), add({ type: 'tool_definition', definition: tool('lookup') })] }, { role: 'user', content: [add({ type: 'tool_reference', name: 'get_time' }), { type: 'text', text: 'q' }] }],
        { tool_choice: { type: 'tool', name: 'lookup' } },
      ),
      ['get_weather', 'lookup', 'get_time'],
    );
    assert.deepEqual(lastRequest().messages.map((m) => m.content.map((p) => p.text).join('')), ['q'], 'the changes are not text of the prompt');

    for (const [messages, param, message] of [
      [[{ role: 'user', content: [remove('nope'), { type: 'text', text: 'q' }] }], 'messages[0].content[0].tool.name', /'nope' is not a custom tool/],
      [[{ role: 'user', content: [add({ type: 'mcp_toolset_reference', server_name: 'kb' }), { type: 'text', text: 'q' }] }], 'messages[0].content[0].tool', /MCP tools are not supported/],
      [[{ role: 'user', content: [add({ type: 'tool_definition', definition: tool('get_time') }), { type: 'text', text: 'q' }] }], 'messages[0].content[0].tool.definition.name', /Tool names must be unique/],
      [[{ role: 'user', content: 'q' }, { role: 'assistant', content: [remove('get_time'), { type: 'text', text: 'a' }] }], 'messages[1].content[0].type', /only allowed in system or user messages/],
    ]) {
      const res = await post({ model: 'm1', max_tokens: 9, tools: [tool('get_weather'), tool('get_time')], messages });
      assert.equal(res.status, 400, param);
      assert.match(res.body.error.message, message);
      assert.ok(res.body.error.message.includes(param), `${param}: ${res.body.error.message}`);
    }
  });

  test("adaptive thinking takes output_config.effort, 'max' kept as 'max' (an OpenAI upstream gets it as sent)", async () => {
    for (const effort of ['low', 'xhigh', 'max']) {
      await post({ model: 'm1', max_tokens: 3000, thinking: { type: 'adaptive' }, output_config: { effort }, messages: user('hi') });
      assert.deepEqual(lastRequest().reasoning, { enabled: true, effort });
    }
  });

  test('display "omitted" keeps the signature but not the thinking text', async () => {
    const res = await post({ model: 'm1', max_tokens: 3000, thinking: { type: 'enabled', budget_tokens: 1024, display: 'omitted' }, messages: user('script:reasoning') });
    assert.deepEqual(res.body.content[0], { type: 'thinking', thinking: '', signature: 'sig-1' });
  });

  test('budget_tokens below 1024 or not below max_tokens is a 400 naming thinking', async () => {
    const low = await post({ model: 'm1', max_tokens: 3000, thinking: { type: 'enabled', budget_tokens: 10 }, messages: user('x') });
    assert.equal(low.status, 400);
    assert.match(low.body.error.message, /thinking\.budget_tokens/);
    const high = await post({ model: 'm1', max_tokens: 1500, thinking: { type: 'enabled', budget_tokens: 2000 }, messages: user('x') });
    assert.equal(high.status, 400);
    assert.match(high.body.error.message, /thinking\.budget_tokens/);
  });
});

describe('seed 003 fields', () => {
  test('system as a string, a list of strings, a list of blocks', async () => {
    for (const [system, expected] of [
      ['Be brief.', ['Be brief.']],
      [['One.', 'Two.'], ['One.', 'Two.']],
      [[{ type: 'text', text: 'Block.', cache_control: { type: 'ephemeral' } }], ['Block.']],
    ]) {
      const res = await post({ model: 'm1', max_tokens: 9, system, messages: user('hi') });
      assert.equal(res.status, 200);
      const sys = lastRequest().messages[0];
      assert.equal(sys.role, 'system');
      assert.deepEqual(sys.content.map((p) => p.text), expected);
    }
    assert.deepEqual(lastRequest().messages[0].content[0].cacheControl, { type: 'ephemeral' });
  });

  test('sampling fields reach the provider', async () => {
    const res = await post({
      model: 'm1',
      max_tokens: 9,
      messages: user('hi'),
      temperature: 0.3,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      seed: 42,
      repetition_penalty: 1.1,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      stop_sequences: ['END'],
      priority: 3,
      cache_control: { type: 'ephemeral', ttl: '5m' },
      stream: false,
    });
    assert.equal(res.status, 200);
    const r = lastRequest();
    assert.deepEqual(
      [r.temperature, r.topP, r.topK, r.minP, r.seed, r.repetitionPenalty, r.presencePenalty, r.frequencyPenalty, r.stop],
      [0.3, 0.9, 40, 0.05, 42, 1.1, 0.5, 0.25, ['END']],
    );
  });

  test('temperature is 0..1 here; top_k ≥ 0; max_tokens is required; unknown fields are refused by name', async () => {
    for (const [body, param] of [
      [{ model: 'm1', max_tokens: 9, messages: user('x'), temperature: 1.5 }, 'temperature'],
      [{ model: 'm1', max_tokens: 9, messages: user('x'), top_k: -1 }, 'top_k'],
      [{ model: 'm1', messages: user('x') }, 'max_tokens'],
      [{ model: 'm1', max_tokens: 9, messages: user('x'), frobnicate: true }, 'frobnicate'],
      [{ model: 'm1', max_tokens: 9, messages: user('x'), service_tier: 'gold' }, 'service_tier'],
    ]) {
      const res = await post(body);
      assert.equal(res.status, 400, param);
      assert.equal(res.body.type, 'error');
      assert.equal(res.body.error.type, 'invalid_request_error');
      assert.match(res.body.error.message, new RegExp(param));
    }
  });

  test('output_config.format and the deprecated response_format and output_format ask for JSON; the output is validated', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
    const ok = await post({ model: 'm1', max_tokens: 9, messages: user('script:json'), output_config: { format: { type: 'json_schema', schema } } });
    assert.equal(ok.status, 200);
    assert.deepEqual(lastRequest().responseFormat, { type: 'json', schema });
    assert.equal(ok.body.content[0].text, '{"ok":true}');
    const legacy = await post({ model: 'm1', max_tokens: 9, messages: user('script:bad-json'), response_format: { type: 'json_schema', schema } });
    assert.equal(legacy.status, 502);
    assert.equal(legacy.body.error.type, 'api_error');
    const clash = await post({
      model: 'm1',
      max_tokens: 9,
      messages: user('x'),
      output_config: { format: { type: 'json_schema', schema } },
      response_format: { type: 'json_object' },
    });
    assert.equal(clash.status, 400);
    assert.match(clash.body.error.message, /response_format/);
    // output_format: Anthropic's own deprecated name for output_config.format.
    const renamed = await post({ model: 'm1', max_tokens: 9, messages: user('script:json'), output_format: { type: 'json_schema', schema } });
    assert.equal(renamed.status, 200);
    assert.deepEqual(lastRequest().responseFormat, { type: 'json', schema });
    const same = await post({ model: 'm1', max_tokens: 9, messages: user('script:json'), output_format: { type: 'json_schema', schema }, output_config: { format: { type: 'json_schema', schema } } });
    assert.equal(same.status, 200, 'both names with the same schema agree');
    const differ = await post({ model: 'm1', max_tokens: 9, messages: user('x'), output_format: { type: 'json_schema', schema: { type: 'array' } }, output_config: { format: { type: 'json_schema', schema } } });
    assert.equal(differ.status, 400);
    assert.equal(differ.body.error.type, 'invalid_request_error');
    assert.match(differ.body.error.message, /output_format/);
  });

  test('container and speed: fast are refused for a provider that cannot do them; diagnostics always; mcp-less tool_context too', async () => {
    for (const [field, value] of [
      ['container', 'cntr_1'],
      ['speed', 'fast'],
      ['diagnostics', { previous_message_id: 'msg_1' }],
      // The first turn's opt-in, and a container with skills: the same reasons.
      ['diagnostics', { previous_message_id: null }],
      ['container', { skills: [{ skill_id: 'pptx', type: 'anthropic' }] }],
      ['tool_context', [{ type: 'document', text: 'x' }]],
      ['billing_policy', { type: 'billing_policy', bill_to: 'user_profile' }],
      ['max_tokens', 0],
      ['fallback_credit_token', 'fct_abc'],
    ]) {
      const res = await post({ model: 'm1', max_tokens: 9, messages: user('x'), [field]: value });
      assert.equal(res.status, 400, field);
      assert.match(res.body.error.message, new RegExp(field));
      if (field === 'diagnostics') assert.match(res.body.error.message, /message ids here are the gateway's own/);
      if (field === 'container') assert.match(res.body.error.message, /needs a model served by the Anthropic API/);
    }
    // speed: standard and billing yourself are what every provider does; a task budget is advice.
    assert.equal((await post({ model: 'm1', max_tokens: 9, messages: user('x'), speed: 'standard' })).status, 200);
    assert.equal((await post({ model: 'm1', max_tokens: 9, messages: user('x'), billing_policy: { type: 'billing_policy', bill_to: 'self' } })).status, 200);
    assert.equal((await post({ model: 'm1', max_tokens: 9, messages: user('x'), output_config: { task_budget: { type: 'tokens', total: 5000 } } })).status, 200);
  });

  test('context_management is applied here for non-Anthropic models: clear_thinking and clear_tool_uses', async () => {
    const call = (id, name) => ({ type: 'tool_use', id, name, input: { n: id } });
    const result = (id) => ({ type: 'tool_result', tool_use_id: id, content: `result ${id}` });
    const messages = [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'old thought', signature: 's1' }, call('t1', 'search')] },
      { role: 'user', content: [result('t1')] },
      { role: 'assistant', content: [call('t2', 'pinned'), call('t3', 'search')] },
      { role: 'user', content: [result('t2'), result('t3')] },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'new thought', signature: 's2' }, call('t4', 'search')] },
      { role: 'user', content: [result('t4'), { type: 'text', text: 'script:text' }] },
    ];
    const results = () => Object.fromEntries(lastRequest().messages.flatMap((m) => m.content.filter((p) => p.type === 'tool-result').map((p) => [p.toolCallId, p.content[0].text])));
    const inputs = () => Object.fromEntries(lastRequest().messages.flatMap((m) => m.content.filter((p) => p.type === 'tool-call').map((p) => [p.id, p.arguments])));
    const thoughts = () => lastRequest().messages.flatMap((m) => m.content.filter((p) => p.type === 'reasoning').map((p) => p.text));

    const edits = [
      { type: 'clear_thinking_20251015' },
      { type: 'clear_tool_uses_20250919', trigger: { type: 'input_tokens', value: 1 }, keep: { type: 'tool_uses', value: 1 }, exclude_tools: ['pinned'], clear_tool_inputs: true },
    ];
    const res = await post({ model: 'm1', max_tokens: 9, tools: [], messages, context_management: { edits } });
    assert.equal(res.status, 200);
    assert.deepEqual(thoughts(), ['new thought']);
    const cleared = '[tool result cleared to save context]';
    assert.deepEqual(results(), { t1: cleared, t2: 'result t2', t3: cleared, t4: 'result t4' });
    assert.deepEqual(inputs(), { t1: '{}', t2: '{"n":"t2"}', t3: '{}', t4: '{"n":"t4"}' });

    // Below the trigger nothing is cleared; keep: 'all' keeps every thought.
    await post({
      model: 'm1',
      max_tokens: 9,
      messages,
      context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }, { type: 'clear_tool_uses_20250919', trigger: { type: 'input_tokens', value: 1e6 } }] },
    });
    assert.deepEqual(thoughts(), ['old thought', 'new thought']);
    assert.equal(results().t1, 'result t1');

    const bad = await post({ model: 'm1', max_tokens: 9, messages: user('x'), context_management: { edits: [{ type: 'compact_everything' }] } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /context_management\.edits\[0\]\.type/);

    // The beta's newer forms: a tool-use trigger, inputs cleared for listed tools only, keep {type: 'all'}, nulls.
    const apply = (edits) => post({ model: 'm1', max_tokens: 9, messages, context_management: { edits } });
    const byUses = (value, extra = {}) => ({ type: 'clear_tool_uses_20250919', trigger: { type: 'tool_uses', value }, keep: { type: 'tool_uses', value: 1 }, ...extra });
    assert.equal((await apply([byUses(5)])).status, 200);
    assert.equal(results().t1, 'result t1', 'four tool uses do not reach a trigger of five');
    await apply([{ type: 'clear_thinking_20251015', keep: { type: 'all' } }, byUses(4, { clear_tool_inputs: ['pinned'], exclude_tools: null, clear_at_least: null })]);
    assert.deepEqual(results(), { t1: cleared, t2: cleared, t3: cleared, t4: 'result t4' });
    assert.deepEqual(inputs(), { t1: '{"n":"t1"}', t2: '{}', t3: '{"n":"t3"}', t4: '{"n":"t4"}' });
    assert.deepEqual(thoughts(), ['old thought', 'new thought']);
    // clear_at_least: nothing is cleared unless the clearing frees that many tokens (here the
    // placeholder is longer than these short results, so it frees none).
    await apply([byUses(1, { clear_at_least: { type: 'input_tokens', value: 1 } })]);
    assert.equal(results().t1, 'result t1');
    const long = messages.map((m) => (m.role === 'user' && Array.isArray(m.content) ? { ...m, content: m.content.map((b) => (b.type === 'tool_result' ? { ...b, content: 'x '.repeat(400) } : b)) } : m));
    const withLong = (atLeast) => post({ model: 'm1', max_tokens: 9, messages: long, context_management: { edits: [byUses(1, { clear_at_least: { type: 'input_tokens', value: atLeast } })] } });
    await withLong(1e6);
    assert.equal(results().t1, 'x '.repeat(400));
    await withLong(10);
    assert.equal(results().t1, cleared);
    // No edits at all is nothing to do; an autocompact edit below its trigger changes nothing
    // (messages-compaction.test.mjs has it triggered); two of them, or one beside mcp_servers, are a 400.
    assert.equal((await post({ model: 'm1', max_tokens: 9, messages: user('x'), context_management: {} })).status, 200);
    const compact = { type: 'compact_20260112', trigger: { type: 'input_tokens', value: 150000 } };
    assert.equal((await post({ model: 'm1', max_tokens: 9, messages: user('x'), context_management: { edits: [compact] } })).status, 200);
    assert.equal((await post({ model: 'm1', max_tokens: 9, messages: user('x'), context_management: { edits: [compact, compact] } })).status, 400);
  });

  test('metadata.user_id, service_tier, inference_geo and correlation_id are recorded; correlation_id is echoed', async () => {
    const res = await post({
      model: 'eu-only',
      max_tokens: 9,
      messages: user('x'),
      metadata: { user_id: 'user-42' },
      service_tier: 'standard_only',
      inference_geo: 'eu',
      correlation_id: 'corr-123',
      maximum_loaded_skills: 2,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-correlation-id'), 'corr-123');
    const requestId = res.headers.get('request-id');
    const meta = await s.server.context.store.asyncRuns.readMessagesRequest('default', requestId);
    assert.deepEqual([meta.userId, meta.serviceTier, meta.inferenceGeo, meta.correlationId], ['user-42', 'standard_only', 'eu', 'corr-123']);
    // The gateway's request log is written when the stream has been consumed.
    const logged = await s.server.context.store.queryRequests({ organisation: 'default' });
    assert.equal(logged.find((e) => e.id === requestId)?.correlationId, 'corr-123');

    const wrongGeo = await post({ model: 'eu-only', max_tokens: 9, messages: user('x'), inference_geo: 'us' });
    assert.equal(wrongGeo.status, 400);
    assert.match(wrongGeo.body.error.message, /inference_geo/);
  });

  test('images (base64, checked from the bytes) and plain-text documents', async () => {
    const res = await post({
      model: 'vision',
      max_tokens: 9,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_1x1 } },
            { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'The doc.' }, title: 'Notes' },
            { type: 'text', text: 'describe' },
          ],
        },
      ],
    });
    assert.equal(res.status, 200);
    const parts = lastRequest().messages[0].content;
    assert.equal(parts[0].type, 'image');
    assert.equal(parts[0].mediaType, 'image/png');
    assert.equal(parts[1].text, 'Notes\n\nThe doc.');
    // A PDF for a text-only model is turned into text (the bytes say PDF).
    const pdf = makePdf(['Quarterly revenue grew.']).toString('base64');
    const doc = await post({
      model: 'm1',
      max_tokens: 9,
      messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf }, title: 'q3.pdf' }, { type: 'text', text: 'sum up' }] }],
    });
    assert.equal(doc.status, 200);
    const docText = lastRequest().messages[0].content.filter((p) => p.type === 'text').map((p) => p.text).join('\n');
    assert.match(docText, /Quarterly revenue grew\./);
    assert.ok(!lastRequest().messages[0].content.some((p) => p.type === 'document'));

    const lie = await post({
      model: 'vision',
      max_tokens: 9,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: PNG_1x1 } }] }],
    });
    assert.equal(lie.status, 400);
    assert.match(lie.body.error.message, /image\/png/);
  });
});

test('every event of a stream is written as JSON.stringify would write its data (deltas come from a template)', () => {
  const renderer = new MessageEventRenderer({ id: 'msg_x', model: 'm' });
  const tricky = ['plain', 'quote " and \\ backslash', 'line\nbreak\ttab', 'émoji 🚀 and \u2028 separator', '\u0000 control', '</script>'];
  const parts = [
    { type: 'start', model: 'm' },
    { type: 'reasoning-start', id: 'r' },
    ...tricky.map((delta) => ({ type: 'reasoning-delta', id: 'r', delta })),
    { type: 'reasoning-end', id: 'r', signature: 'sig"==' },
    { type: 'text-start', id: 't' },
    ...tricky.map((delta) => ({ type: 'text-delta', id: 't', delta })),
    { type: 'text-end', id: 't' },
    { type: 'tool-input-start', id: 'call_1', toolName: 'f' },
    // A tool's input is a JSON object, so its deltas are the tricky text as JSON, cut anywhere.
    ...[0, 7, 19, 33].map((at, i, cuts) => ({ type: 'tool-input-delta', id: 'call_1', delta: JSON.stringify({ k: tricky.join('') }).slice(at, cuts[i + 1]) })),
    { type: 'tool-input-end', id: 'call_1' },
    { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 } },
  ];
  const events = [...renderer.begin(), ...parts.flatMap((p) => renderer.push(p)), ...renderer.end()];
  const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.type);
  assert.deepEqual(new Set(deltas), new Set(['thinking_delta', 'signature_delta', 'text_delta', 'input_json_delta']));
  for (const event of events) assert.equal(eventJson(event), JSON.stringify(event.data));
});

describe('count_tokens', () => {
  test('the SDK counts a prompt through the provider tokenizer', async () => {
    // The scripted provider counts one token per word.
    const counted = await client.messages.countTokens({ model: 'm1', messages: user('three little words'), system: 'be brief' });
    assert.deepEqual(counted, { input_tokens: 5 });
  });
});

describe('errors', () => {
  test('an unknown model is a 404 not_found_error; the SDK raises NotFoundError', async () => {
    await assert.rejects(client.messages.create({ model: 'nope', max_tokens: 5, messages: user('x') }), (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError);
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'not_found_error');
      return true;
    });
  });

  test('a route Switchboard does not serve (message batches) is a 404 not_found_error the SDK raises as NotFoundError', async () => {
    await assert.rejects(client.messages.batches.list(), (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError, String(err));
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'not_found_error');
      assert.match(err.error.error.message, /Unknown route GET \/v1\/messages\/batches/);
      return true;
    });
  });

  test('a failure before the first token is an HTTP error with retry-after', async () => {
    const res = await post({ model: 'm1', max_tokens: 5, messages: user('script:fail-before') });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
    assert.deepEqual(res.body.error, { type: 'rate_limit_error', message: 'slow down' });
    assert.equal(res.body.type, 'error');
    assert.equal(res.body.request_id, res.headers.get('request-id'));
  });

  test('a tool_result that answers no earlier tool_use is a 400 naming it', async () => {
    const res = await post({
      model: 'm1',
      max_tokens: 5,
      messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_orphan', content: 'x' }] }],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.type, 'invalid_request_error');
    assert.match(res.body.error.message, /toolu_orphan/);
  });

  test("two tools of one name (a custom tool and a server tool included) are Anthropic's 400, word for word", async () => {
    const tool = (name) => ({ name, input_schema: { type: 'object' } });
    for (const tools of [[tool('f'), tool('f')], [tool('web_search'), { type: 'web_search_20250305', name: 'web_search' }]]) {
      const res = await post({ model: 'm1', max_tokens: 5, messages: user('hi'), tools });
      assert.equal(res.status, 400);
      assert.deepEqual(res.body.error, { type: 'invalid_request_error', message: 'tools: Tool names must be unique.' });
    }
    assert.equal((await post({ model: 'm1', max_tokens: 5, messages: user('hi'), tools: [tool('f'), tool('g')] })).status, 200);
  });

  test('malformed JSON is an invalid_request_error', async () => {
    const res = await post('{"model":', {});
    assert.equal(res.status, 400);
    assert.equal(res.body.error.type, 'invalid_request_error');
  });
});
