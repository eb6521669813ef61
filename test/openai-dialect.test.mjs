// The OpenAI dialect over HTTP, with the official `openai` client and raw SSE, against a
// scripted provider whose canonical parts are known exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { GatewayError } from '../dist/core/errors.js';
import { startServer, postJson, readSse } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';
import { validateOpenAI } from './helpers/openai-schema.mjs';

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
      models: [
        { id: 'm1', aliases: ['fast'], provider: 'scripted', model: 'x', pricing: { input: 1, output: 2 } },
        { id: 'vision', provider: 'scripted', model: 'y', modalities: ['text', 'image'] },
      ],
    },
  });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused-in-open-mode', maxRetries: 0 });
});
after(async () => s?.close());

const user = (content) => [{ role: 'user', content }];

test('buffered completion validates against OpenAI schema, with usage, cost and confidence_score', async () => {
  const completion = await client.chat.completions.create({ model: 'm1', messages: user('hi') });
  const check = validateOpenAI('CreateChatCompletionResponse', completion);
  assert.ok(check.ok, check.errors.join('\n'));
  assert.equal(completion.choices[0].message.content, 'Hello world');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.deepEqual(
    { p: completion.usage.prompt_tokens, c: completion.usage.completion_tokens, t: completion.usage.total_tokens },
    { p: 7, c: 2, t: 9 },
  );
  // pricing: 7 × $1/M + 2 × $2/M
  assert.equal(completion.usage.cost, (7 * 1 + 2 * 2) / 1e6);
  assert.equal(completion.confidence_score, 50);
  assert.ok(Number.isInteger(completion.created));
});

test('streaming: role in the first delta, chunks validate, usage chunk then [DONE]', async () => {
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm1', stream: true, messages: user('hi') }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(res.headers.get('x-switchboard-provider'), 'scripted');
  const { events } = await readSse(res);
  assert.equal(events.at(-1).data, '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
  for (const chunk of chunks) {
    const check = validateOpenAI('CreateChatCompletionStreamResponse', chunk);
    assert.ok(check.ok, check.errors.join('\n'));
  }
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  assert.equal(chunks.filter((c) => c.choices[0]?.delta?.role).length, 1, 'role only in the first delta');
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Hello world');
  const finish = chunks.find((c) => c.choices[0]?.finish_reason);
  assert.equal(finish.choices[0].finish_reason, 'stop');
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.total_tokens, 9);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id for every chunk');
});

test('streamed tool calls: index, id and name first, then argument fragments; the SDK reassembles them', async () => {
  const stream = client.chat.completions.stream({
    model: 'm1',
    messages: user('script:tools'),
    tools: [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } },
      { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
    ],
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const final = await stream.finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.deepEqual(
    calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
    [
      ['call_a', 'get_weather', { location: 'Boston' }],
      ['call_b', 'get_time', {}],
    ],
  );
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  const toolDeltas = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.ok(toolDeltas.every((d) => Number.isInteger(d.index)), 'every tool delta has an index');
  const firstOfB = toolDeltas.find((d) => d.index === 1);
  assert.deepEqual([firstOfB.id, firstOfB.function.name, firstOfB.function.arguments], ['call_b', 'get_time', '']);
});

test('a tool result round trip reaches the provider as canonical tool parts', async () => {
  const before = scripted.requests.length;
  await client.chat.completions.create({
    model: 'm1',
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '12 degrees' },
    ],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
  });
  const sent = scripted.requests[before];
  assert.deepEqual(sent.messages[1].content[0], { type: 'tool-call', id: 'call_1', name: 'get_weather', arguments: '{"location":"Oslo"}' });
  assert.equal(sent.messages[2].role, 'tool');
  assert.equal(sent.messages[2].content[0].toolCallId, 'call_1');
  assert.equal(sent.messages[2].content[0].content[0].text, '12 degrees');
});

test('an upstream failure before the first token is an HTTP error in OpenAI shape with Retry-After', async () => {
  const res = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('script:fail-before') });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  assert.ok(validateOpenAI('ErrorResponse', res.body).ok);
  assert.equal(res.body.error.type, 'rate_limit_error');
});

test('a failure after the first token ends the stream with an error chunk and [DONE]; the SDK raises it', async () => {
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm1', stream: true, messages: user('script:fail-after') }),
  });
  const { events } = await readSse(res);
  assert.equal(events.at(-1).data, '[DONE]');
  const error = JSON.parse(events.at(-2).data);
  assert.equal(error.error.code, 'upstream_5xx');
  assert.match(error.error.message, /reset/);
  assert.equal(JSON.parse(events[1].data).choices[0].delta.content, 'partial');

  const stream = await client.chat.completions.create({ model: 'm1', stream: true, messages: user('script:fail-after') });
  await assert.rejects(async () => {
    for await (const _ of stream);
  }, /reset/);
});

test('n=2 returns two choices (emulated by two provider calls) with usage summed', async () => {
  const before = scripted.requests.length;
  const completion = await client.chat.completions.create({ model: 'm1', n: 2, messages: user('hi') });
  assert.equal(completion.choices.length, 2);
  assert.deepEqual(completion.choices.map((c) => c.index), [0, 1]);
  assert.equal(scripted.requests.length - before, 2);
  assert.equal(completion.usage.completion_tokens, 4);
  assert.equal(completion.usage.prompt_tokens, 7);
  // Usage counts the prompt once, as OpenAI's; the cost is what the two calls were billed
  // (m1: $1/M input, $2/M output): the prompt twice.
  assert.equal(completion.usage.cost, (2 * 7 * 1 + 4 * 2) / 1e6);
});

test('reasoning is split from content, and dropped with reasoning.exclude', async () => {
  const withReasoning = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('script:reasoning'), reasoning: { effort: 'low' } });
  assert.equal(withReasoning.body.choices[0].message.reasoning, 'Let me think.');
  assert.equal(withReasoning.body.choices[0].message.content, 'Answer.');
  assert.equal(scripted.requests.at(-1).reasoning.effort, 'low');
  const excluded = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('script:reasoning'), reasoning: { exclude: true } });
  assert.equal(excluded.body.choices[0].message.reasoning, undefined);
  assert.equal(excluded.body.choices[0].message.content, 'Answer.');
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm1', stream: true, messages: user('script:reasoning') }),
  });
  const deltas = (await readSse(res)).events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0]?.delta ?? {});
  assert.equal(deltas.map((d) => d.reasoning ?? '').join(''), 'Let me think.');
  assert.equal(deltas.map((d) => d.content ?? '').join(''), 'Answer.');
});

test('structured output is validated: a mismatch is an error, never a pass', async () => {
  const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
  const good = await postJson(`${s.url}/v1/chat/completions`, {
    model: 'm1',
    messages: user('script:json'),
    response_format: { type: 'json_schema', json_schema: { name: 'r', schema } },
  });
  assert.equal(good.status, 200);
  assert.deepEqual(JSON.parse(good.body.choices[0].message.content), { ok: true });
  const usage = async () => (await (await fetch(`${s.url}/v1/usage?model=m1`)).json()).totals;
  const before = await usage();
  const bad = await postJson(`${s.url}/v1/chat/completions`, {
    model: 'm1',
    messages: user('script:bad-json'),
    response_format: { type: 'json_schema', json_schema: { name: 'r', schema } },
  });
  assert.equal(bad.status, 502);
  assert.equal(bad.body.error.code, 'structured_output_invalid');
  // The answer was generated in full, and billed: its row has the tokens the provider reported (3 in, 4 out).
  let after = await usage();
  while (after.requests === before.requests) after = (await new Promise((resolve) => setTimeout(resolve, 20)), await usage());
  assert.deepEqual([after.input_tokens - before.input_tokens, after.output_tokens - before.output_tokens], [3, 4]);
});

test('a schema with an $id works on every call, and one declaring draft 2020-12 or 2019-09 (as zod 4 writes) is read as that draft', async () => {
  const ask = (schema, script = 'script:json') =>
    postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user(script), response_format: { type: 'json_schema', json_schema: { name: 'r', schema } } });
  const withId = { $id: 'https://example.com/schemas/ok', type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
  for (let call = 0; call < 3; call++) assert.equal((await ask(withId)).status, 200, `call ${call}`);
  // The same $id on another schema is another schema.
  const sameIdOther = { ...withId, properties: { ok: { type: 'string' } } };
  assert.equal((await ask(sameIdOther)).status, 502, 'validated against its own schema (ok must be a string)');
  for (const draft of ['https://json-schema.org/draft/2020-12/schema', 'https://json-schema.org/draft/2019-09/schema', 'http://json-schema.org/draft-07/schema#']) {
    const schema = { $schema: draft, type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
    assert.equal((await ask(schema)).status, 200, draft);
    const bad = await ask(schema, 'script:bad-json');
    assert.equal(bad.status, 502, draft);
    assert.equal(bad.body.error.code, 'structured_output_invalid');
  }
  // A keyword draft-07 does not have (dependentRequired, 2019-09 on) is enforced where the schema declares a draft that has it.
  const dependent = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], dependentRequired: { ok: ['why'] } };
  assert.equal((await ask(dependent)).status, 200, 'draft-07: not a keyword');
  assert.equal((await ask({ ...dependent, $schema: 'https://json-schema.org/draft/2020-12/schema' })).status, 502, '2020-12: enforced');
  const invalid = await ask({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'objekt' });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.error.code, 'invalid_schema');
  // $refs that only lead to each other: Ajv recursed until the stack ran out, and said just that.
  const loop = await ask({ $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' });
  assert.equal(loop.status, 400);
  assert.equal(loop.body.error.code, 'invalid_schema');
  assert.match(loop.body.error.message, /\$ref chain loops/);
});

test("a schema past OpenAI's Structured Outputs size limits is a 400 naming the limit; a large one within them compiles (3,000 properties overflowed Ajv's stack)", async () => {
  const ask = (schema) =>
    postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('script:json'), response_format: { type: 'json_schema', json_schema: { name: 'r', schema } } });
  const integers = (n, prefix = 'p') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, { type: 'integer' }]));
  const withOk = (properties, extra = {}) => ({ type: 'object', properties: { ok: { type: 'boolean' }, ...properties }, required: ['ok'], ...extra });

  for (const n of [3000, 4999]) {
    const res = await ask(withOk(integers(n)));
    assert.equal(res.status, 200, `${n + 1} properties: ${JSON.stringify(res.body.error)}`);
    assert.deepEqual(JSON.parse(res.body.choices[0].message.content), { ok: true });
  }
  const refusals = [
    [withOk(integers(5000)), /5001 object properties; at most 5000/],
    [withOk({}, { $defs: { elsewhere: { type: 'object', properties: integers(5000) } } }), /5001 object properties/],
    [withOk({ a: { enum: Array.from({ length: 600 }, (_, i) => i) }, b: { type: 'array', items: { enum: Array.from({ length: 401 }, (_, i) => i) } } }), /1001 values; at most 1000/],
    [withOk({ a: { type: 'string', enum: Array.from({ length: 300 }, (_, i) => `${'x'.repeat(56)}${String(i).padStart(4, '0')}`) } }), /enum of 300 string values has 18000 characters/],
    [withOk(integers(4100, 'a_property_name_of_thirty_ch_')), /characters; at most 120000/],
  ];
  for (const [schema, message] of refusals) {
    const res = await ask(schema);
    assert.equal(res.status, 400, String(message));
    assert.equal(res.body.error.code, 'invalid_schema');
    assert.equal(res.body.error.param, 'response_format');
    assert.match(res.body.error.message, message);
  }
});

test("metadata within OpenAI's limits (16 pairs, keys of 64 characters, values of 512) is accepted; past them, a 400 naming the field", async () => {
  const ask = (metadata) => postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('hi'), metadata });
  const pairs = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${'k'.repeat(62)}${String(i).padStart(2, '0')}`, 'v'.repeat(512)]));
  assert.equal((await ask(pairs(16))).status, 200);
  for (const [metadata, param, message] of [
    [pairs(17), 'metadata', /at most 16 key-value pairs, got 17/],
    [{ ['k'.repeat(65)]: 'v' }, `metadata.${'k'.repeat(65)}`, /keys are at most 64 characters/],
    [{ k: 'v'.repeat(513) }, 'metadata.k', /values are at most 512 characters/],
  ]) {
    const res = await ask(metadata);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.param, param);
    assert.match(res.body.error.message, message);
  }
});

test('vision parts: data URIs are checked from the bytes; a text-only model refuses images', async () => {
  const image = (url) => [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url } }] }];
  const refused = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: image(`data:image/png;base64,${PNG_1x1}`) });
  assert.equal(refused.status, 400);
  assert.match(refused.body.error.message, /image/);
  const accepted = await postJson(`${s.url}/v1/chat/completions`, { model: 'vision', messages: image(`data:image/png;base64,${PNG_1x1}`) });
  assert.equal(accepted.status, 200);
  const part = scripted.requests.at(-1).messages[0].content[1];
  assert.equal(part.type, 'image');
  assert.equal(part.mediaType, 'image/png');
  const mismatch = await postJson(`${s.url}/v1/chat/completions`, { model: 'vision', messages: image(`data:image/jpeg;base64,${PNG_1x1}`) });
  assert.equal(mismatch.status, 400);
  assert.equal(mismatch.body.error.code, 'media_type_mismatch');
  const remote = await postJson(`${s.url}/v1/chat/completions`, { model: 'vision', messages: image('https://example.com/cat.jpg') });
  assert.equal(remote.status, 200);
  assert.equal(scripted.requests.at(-1).messages[0].content[1].url, 'https://example.com/cat.jpg');
});

test('the alias route and model aliases (including "default") serve the same model', async () => {
  for (const model of ['m1', 'fast', 'default']) {
    const res = await postJson(`${s.url}/api/v3/inference/chat/completions`, { model, messages: user('hi') });
    assert.equal(res.status, 200, model);
    assert.equal(res.body.model, 'm1');
  }
});

test('GET /v1/models lists every id and alias in OpenAI list format', async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  for (const id of ['m1', 'fast', 'default', 'vision']) assert.ok(ids.includes(id), id);
  const raw = await (await fetch(`${s.url}/v1/models`)).json();
  const check = validateOpenAI('ListModelsResponse', raw);
  assert.ok(check.ok, check.errors.join('\n'));
});

test('X-Session-ID keeps the conversation server-side and reads it back', async () => {
  const sid = `sess-${Date.now()}`;
  const sessionClient = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0, defaultHeaders: { 'X-Session-ID': sid } });
  await sessionClient.chat.completions.create({ model: 'm1', messages: [{ role: 'system', content: 'be brief' }, ...user('first question')] });
  await sessionClient.chat.completions.create({ model: 'm1', messages: user('second question') });
  const sent = scripted.requests.at(-1).messages.map((m) => [m.role, m.content.map((p) => p.text).join('')]);
  assert.deepEqual(sent, [
    ['user', 'first question'],
    ['assistant', 'Hello world'],
    ['user', 'second question'],
  ]);
  const session = await (await fetch(`${s.url}/v1/sessions/${sid}`)).json();
  assert.deepEqual(
    session.messages.map((m) => [m.role, m.content]),
    [
      ['user', 'first question'],
      ['assistant', 'Hello world'],
      ['user', 'second question'],
      ['assistant', 'Hello world'],
    ],
  );
  assert.equal((await fetch(`${s.url}/v1/sessions/nope-${Date.now()}`)).status, 404);
});

test('a session carries a tool loop: the next request sends only the tool results for the calls the session holds', async () => {
  const sid = `tools-${Date.now()}`;
  const headers = { 'x-session-id': sid };
  const tools = ['get_weather', 'get_time'].map((name) => ({ type: 'function', function: { name, parameters: { type: 'object' } } }));
  const first = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', tools, messages: user('script:tools') }, headers);
  assert.equal(first.status, 200);
  assert.deepEqual(first.body.choices[0].message.tool_calls.map((c) => c.id), ['call_a', 'call_b']);
  const results = [
    { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
    { role: 'tool', tool_call_id: 'call_b', content: 'noon' },
  ];
  const second = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', tools, messages: results }, headers);
  assert.equal(second.status, 200, JSON.stringify(second.body));
  const sent = scripted.requests.at(-1).messages;
  assert.deepEqual(sent.map((m) => [m.role, m.content.map((p) => p.type).join(',')]), [
    ['user', 'text'],
    ['assistant', 'tool-call,tool-call'],
    ['tool', 'tool-result'],
    ['tool', 'tool-result'],
  ]);
  // A result for a call neither the session nor the request holds is still refused, indexed in the request.
  const orphan = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: [...user('x'), { role: 'tool', tool_call_id: 'call_zz', content: 'r' }] }, headers);
  assert.equal(orphan.status, 400);
  assert.equal(orphan.body.error.param, 'messages[1].tool_call_id');
});

test('a session id of the longest allowed length (128) is kept and read back; a longer path id is a 414 in OpenAI shape', async () => {
  const sid = `long-${Date.now()}-`.padEnd(128, 'x');
  const first = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('remember me') }, { 'x-session-id': sid });
  assert.equal(first.status, 200);
  const res = await fetch(`${s.url}/v1/sessions/${sid}`);
  assert.equal(res.status, 200);
  assert.deepEqual((await res.json()).messages.map((m) => m.content), ['remember me', 'Hello world']);
  const tooLong = await fetch(`${s.url}/v1/sessions/${'y'.repeat(600)}`);
  assert.equal(tooLong.status, 414);
  const body = await tooLong.json();
  assert.equal(body.error.code, 'path_parameter_too_long');
  assert.equal(body.error.type, 'invalid_request_error');
});

test('prompt_truncate_len drops the oldest non-system turns to fit', async () => {
  // The scripted provider counts one token per word.
  const messages = [
    { role: 'system', content: 'sys prompt' },
    { role: 'user', content: 'one two three four' },
    { role: 'assistant', content: 'five six seven' },
    { role: 'user', content: 'eight nine' },
  ];
  await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages, prompt_truncate_len: 7 });
  assert.deepEqual(
    scripted.requests.at(-1).messages.map((m) => m.content[0].text),
    ['sys prompt', 'five six seven', 'eight nine'],
  );
  await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages, prompt_truncate_len: 100 });
  assert.equal(scripted.requests.at(-1).messages.length, 4);
});

test("OpenAI's other request fields: accepted where Switchboard honours the value, else a 400 naming the field", async () => {
  // Accepted: what the SDK's types offer and a client may well send.
  const stream = await client.chat.completions.create({
    model: 'm1',
    messages: user('hello there'),
    stream: true,
    stream_options: { include_usage: true, include_obfuscation: false },
    store: false,
    service_tier: 'auto',
    safety_identifier: 'user-hash-1',
    prompt_cache_key: 'conversation-7',
    modalities: ['text'],
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Hello world');
  // Refused, each with its own reason.
  const refused = [
    ['audio', { voice: 'alloy', format: 'mp3' }],
    ['modalities', ['text', 'audio']],
    ['prediction', { type: 'content', content: 'x' }],
    ['web_search_options', {}],
    ['functions', [{ name: 'f', parameters: {} }]],
    ['function_call', 'auto'],
    ['prompt_cache_retention', '24h'],
    ['store', true],
    ['service_tier', 'flex'],
  ];
  for (const [field, value] of refused) {
    await assert.rejects(client.chat.completions.create({ model: 'm1', messages: user('hi'), [field]: value }), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `${field}: ${err}`);
      assert.equal(err.param, field);
      assert.equal(err.code, 'unsupported_parameter', field);
      assert.ok(err.error.message.startsWith(`${field}:`) || err.error.message.startsWith(`${field} '`), `${field}: ${err.error.message}`);
      return true;
    });
  }
  // logit_bias and verbosity are honoured where the provider can (logit_bias: local and
  // OpenAI-compatible; verbosity: OpenAI-compatible upstreams); this scripted one cannot.
  for (const [field, value] of [['logit_bias', { 1734: -100 }], ['verbosity', 'low']]) {
    await assert.rejects(client.chat.completions.create({ model: 'm1', messages: user('hi'), [field]: value }), (err) => {
      assert.equal(err.param, field);
      assert.equal(err.code, 'unsupported_parameter');
      assert.match(err.error.message, new RegExp(`does not support '${field}'`));
      return true;
    });
  }
});

test("the fields openai 6.4x added: prompt_cache_breakpoint, prompt_cache_options, in_memory retention and reasoning_effort 'max' are honoured; moderation is refused with its reason", async () => {
  const before = scripted.requests.length;
  const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  const mark = { prompt_cache_breakpoint: { mode: 'explicit' } };
  await client.chat.completions.create({
    model: 'vision',
    messages: [
      { role: 'system', content: [{ type: 'text', text: 'rules', ...mark }] },
      { role: 'user', content: [{ type: 'text', text: 'one', ...mark }, { type: 'image_url', image_url: { url: png }, ...mark }] },
      { role: 'assistant', content: [{ type: 'text', text: 'two', ...mark }] },
      // A part's own cache_control wins over the breakpoint, and is not counted among them.
      { role: 'user', content: [{ type: 'text', text: 'three', cache_control: { type: 'ephemeral' }, ...mark }, { type: 'text', text: 'four', ...mark }] },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' }, ...mark }, { type: 'text', text: 'five' }] },
    ],
    prompt_cache_options: { mode: 'explicit', ttl: '30m' },
    prompt_cache_retention: 'in_memory',
    reasoning_effort: 'max',
  });
  const sent = scripted.requests[before];
  const cache = sent.messages.map((m) => m.content.map((p) => p.cacheControl ?? null));
  const hour = { type: 'ephemeral', ttl: '1h' };
  // Six breakpoints: the latest four are kept (OpenAI writes no more, Anthropic takes no more).
  assert.deepEqual(cache, [[null], [null, hour], [hour], [{ type: 'ephemeral' }, hour], [hour, null]]);
  assert.deepEqual(sent.reasoning, { enabled: true, effort: 'max' });

  // The older spelling of in-memory retention, and nulls where the SDK allows them.
  const ok = await client.chat.completions.create({ model: 'm1', messages: user('hi'), prompt_cache_retention: 'in-memory', prompt_cache_key: null, safety_identifier: null, moderation: null });
  assert.equal(ok.choices[0].message.content, 'Hello world');

  for (const [field, value, message] of [
    ['moderation', { model: 'omni-moderation-latest', policy: { input: { mode: 'block' } } }, /^moderation: moderated completions are not supported/],
    ['prompt_cache_retention', '24h', /^prompt_cache_retention: only in-memory retention/],
  ]) {
    await assert.rejects(client.chat.completions.create({ model: 'm1', messages: user('hi'), [field]: value }), (err) => {
      assert.equal(err.status, 400, field);
      assert.equal(err.param, field);
      assert.equal(err.code, 'unsupported_parameter');
      assert.match(err.error.message, message);
      return true;
    });
  }
  for (const [body, param] of [
    [{ prompt_cache_options: { ttl: '1h' } }, 'prompt_cache_options.ttl'],
    [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'x', prompt_cache_breakpoint: { mode: 'implicit' } }] }] }, 'messages[0].content[0].prompt_cache_breakpoint.mode'],
    [{ reasoning_effort: 'maximum' }, 'reasoning_effort'],
  ]) {
    await assert.rejects(client.chat.completions.create({ model: 'm1', messages: user('hi'), ...body }), (err) => {
      assert.equal(err.status, 400, param);
      assert.equal(err.param, param);
      return true;
    });
  }
});

test('tool_choice allowed_tools: the model can call only the listed tools, in auto or required mode', async () => {
  const fn = (name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: {} } } });
  const tools = [fn('get_weather'), fn('get_time'), fn('send_mail')];
  const allowed = (mode, names) => ({ type: 'allowed_tools', allowed_tools: { mode, tools: names.map((name) => ({ type: 'function', function: { name } })) } });
  const before = scripted.requests.length;
  await client.chat.completions.create({ model: 'm1', messages: user('hi'), tools, tool_choice: allowed('required', ['get_time', 'get_weather']) });
  await client.chat.completions.create({ model: 'm1', messages: user('hi'), tools, tool_choice: allowed('auto', ['send_mail']) });
  const [required, auto] = scripted.requests.slice(before);
  assert.deepEqual(required.tools.map((t) => t.name), ['get_weather', 'get_time']);
  assert.deepEqual(required.toolChoice, { type: 'required' });
  assert.deepEqual(auto.tools.map((t) => t.name), ['send_mail']);
  assert.deepEqual(auto.toolChoice, { type: 'auto' });

  for (const [body, param, message] of [
    [{ tools, tool_choice: allowed('auto', ['delete_all']) }, 'tool_choice.allowed_tools.tools[0]', /'delete_all', which is not in tools/],
    [{ tools, tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [{ type: 'mcp', server_label: 'x' }] } } }, 'tool_choice.allowed_tools.tools[0]', /lists function tools/],
    [{ tool_choice: allowed('auto', ['get_time']) }, 'tool_choice', /needs tools/],
  ]) {
    await assert.rejects(client.chat.completions.create({ model: 'm1', messages: user('hi'), ...body }), (err) => {
      assert.equal(err.status, 400);
      assert.equal(err.param, param);
      assert.match(err.error.message, message);
      return true;
    });
  }
});

test("what the SDK's types allow and Switchboard cannot honour is refused with its reason: custom tools and their calls, function messages, stored assistant audio, a deprecated function_call", async () => {
  const custom = { type: 'custom', custom: { name: 'run_sql', description: 'SQL', format: { type: 'grammar', grammar: { syntax: 'lark', definition: 'start: /.+/' } } } };
  const fn = { type: 'function', function: { name: 'f' } };
  for (const [body, param, message] of [
    [{ tools: [fn, custom] }, 'tools[1]', /^Custom tools \(free-form input\) are not supported/],
    [{ tools: [fn], tool_choice: { type: 'custom', custom: { name: 'run_sql' } } }, 'tool_choice', /^Custom tools are not supported/],
    [{ messages: [...user('q'), { role: 'assistant', tool_calls: [{ id: 'c1', type: 'custom', custom: { name: 'run_sql', input: 'SELECT 1' } }] }] }, 'messages[1].tool_calls[0]', /^Custom tool calls are not supported/],
    [{ messages: [...user('q'), { role: 'function', name: 'f', content: '1' }] }, 'messages[1]', /^Function messages/],
    [{ messages: [...user('q'), { role: 'assistant', content: null, audio: { id: 'audio_1' } }, ...user('again')] }, 'messages[1].audio', /^Assistant audio/],
    [{ messages: [...user('q'), { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } }, ...user('again')] }, 'messages[1].function_call', /^The deprecated function_call/],
  ]) {
    await assert.rejects(client.chat.completions.create({ model: 'm1', messages: user('hi'), ...body }), (err) => {
      assert.equal(err.status, 400, param);
      assert.equal(err.param, param);
      assert.equal(err.code, 'unsupported_parameter', param);
      assert.match(err.error.message, message);
      return true;
    });
  }
});

test('an assistant message sent back as a response gave it (and as OpenAI gives it: annotations, audio, function_call) is accepted', async () => {
  const first = await client.chat.completions.create({ model: 'm1', messages: user('hello there') });
  const echoed = first.choices[0].message;
  const second = await client.chat.completions.create({ model: 'm1', messages: [...user('hello there'), echoed, ...user('and again')] });
  assert.equal(second.choices[0].message.content, 'Hello world');
  const asOpenAIGivesIt = { role: 'assistant', content: 'Paris.', refusal: null, annotations: [], audio: null, function_call: null };
  const third = await client.chat.completions.create({ model: 'm1', messages: [...user('Capital of France?'), asOpenAIGivesIt, ...user('Thanks')] });
  assert.equal(third.choices[0].finish_reason, 'stop');
  const sent = scripted.requests.at(-1).messages.map((m) => [m.role, m.content.map((p) => p.text).join('')]);
  assert.deepEqual(sent, [['user', 'Capital of France?'], ['assistant', 'Paris.'], ['user', 'Thanks']]);
});

const MALFORMED = [
  ['not json', '{"model": '],
  ['array body', '[]'],
  ['missing model', { messages: user('hi') }],
  ['missing messages', { model: 'm1' }],
  ['empty messages', { model: 'm1', messages: [] }],
  ['unknown field', { model: 'm1', messages: user('hi'), frobnicate: true }],
  ['stream_options without stream', { model: 'm1', messages: user('hi'), stream_options: { include_usage: true } }],
  ['two tools of one name', { model: 'm1', messages: user('hi'), tools: [{ type: 'function', function: { name: 'f' } }, { type: 'function', function: { name: 'f', description: 'other' } }] }],
  ['bad role', { model: 'm1', messages: [{ role: 'wizard', content: 'hi' }] }],
  ['content not string/array', { model: 'm1', messages: [{ role: 'user', content: 5 }] }],
  ['temperature > 2', { model: 'm1', messages: user('hi'), temperature: 2.5 }],
  ['temperature string', { model: 'm1', messages: user('hi'), temperature: 'hot' }],
  ['top_p > 1', { model: 'm1', messages: user('hi'), top_p: 1.5 }],
  ['negative top_k', { model: 'm1', messages: user('hi'), top_k: -1 }],
  ['max_tokens 0', { model: 'm1', messages: user('hi'), max_tokens: 0 }],
  ['max_tokens float', { model: 'm1', messages: user('hi'), max_tokens: 1.5 }],
  ['n = 0', { model: 'm1', messages: user('hi'), n: 0 }],
  ['n too big', { model: 'm1', messages: user('hi'), n: 100 }],
  ['five stops', { model: 'm1', messages: user('hi'), stop: ['a', 'b', 'c', 'd', 'e'] }],
  ['presence_penalty out of range', { model: 'm1', messages: user('hi'), presence_penalty: 3 }],
  ['bad name', { model: 'm1', messages: [{ role: 'user', content: 'hi', name: 'has space' }] }],
  ['tool without function', { model: 'm1', messages: user('hi'), tools: [{ type: 'function' }] }],
  ['tool_choice unknown tool', { model: 'm1', messages: user('hi'), tools: [{ type: 'function', function: { name: 'a' } }], tool_choice: { type: 'function', function: { name: 'b' } } }],
  ['tool_choice required without tools', { model: 'm1', messages: user('hi'), tool_choice: 'required' }],
  ['function parameters not an object schema', { model: 'm1', messages: user('hi'), tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string' } } }] }],
  ['tool message without id', { model: 'm1', messages: [{ role: 'tool', content: 'x' }] }],
  ['tool result for unknown call', { model: 'm1', messages: [...user('hi'), { role: 'tool', tool_call_id: 'nope', content: 'x' }] }],
  ['bad response_format', { model: 'm1', messages: user('hi'), response_format: { type: 'xml' } }],
  ['bad reasoning effort', { model: 'm1', messages: user('hi'), reasoning: { effort: 'extreme' } }],
  ['bad image url', { model: 'vision', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x' } }] }] }],
  ['bad base64 image', { model: 'vision', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,!!!' } }] }] }],
  ['not an image', { model: 'vision', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${Buffer.from('hello').toString('base64')}` } }] }] }],
  ['unknown model', { model: 'no-such-model', messages: user('hi') }],
  ['bad session id', { model: 'm1', messages: user('hi') }, { 'x-session-id': 'has spaces and / slashes' }],
  ['top_logprobs without logprobs', { model: 'm1', messages: user('hi'), top_logprobs: 2 }],
  ['top_logprobs above 20', { model: 'm1', messages: user('hi'), logprobs: true, top_logprobs: 21 }],
  ['prompt_truncate_len 0', { model: 'm1', messages: user('hi'), prompt_truncate_len: 0 }],
];

test(`${MALFORMED.length} malformed or out-of-range requests each get a 4xx in OpenAI's shape, and the server keeps serving`, async () => {
  for (const [name, body, headers] of MALFORMED) {
    const res = await postJson(`${s.url}/v1/chat/completions`, body, headers);
    assert.ok(res.status >= 400 && res.status < 500, `${name}: status ${res.status} ${res.text}`);
    const check = validateOpenAI('ErrorResponse', res.body);
    assert.ok(check.ok, `${name}: ${res.text}`);
    assert.ok(res.body.error.message.length > 0, name);
  }
  const health = await fetch(`${s.url}/health`);
  assert.equal(health.status, 200);
  const ok = await client.chat.completions.create({ model: 'm1', messages: user('still there?') });
  assert.equal(ok.choices[0].message.content, 'Hello world');
});

test("a function whose parameters are not an object schema: OpenAI's 400, word for word", async () => {
  const res = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('hi'), tools: [{ type: 'function', function: { name: 'send_email', parameters: { type: 'string' } } }] });
  assert.equal(res.status, 400);
  assert.deepEqual(res.body.error, {
    message: `Invalid schema for function 'send_email': schema must be a JSON Schema of 'type: "object"', got 'type: "string"'.`,
    type: 'invalid_request_error',
    param: 'tools[0].function.parameters',
    code: 'invalid_function_parameters',
  });
});

test('keys: with a key created by the CLI the server requires it; revoked keys are refused at once', async () => {
  const cli = (...args) => execFileSync(process.execPath, ['bin/switchboard.js', ...args, '--data-dir', s.dataDir], { encoding: 'utf8' });
  const out = cli('keys', 'create', '--org', 'acme');
  const key = out.trim().split('\n').at(-1);
  assert.match(key, /^sb-/);
  try {
    const anonymous = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('hi') });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.type, 'authentication_error');
    const wrong = await postJson(`${s.url}/v1/chat/completions`, { model: 'm1', messages: user('hi') }, { authorization: 'Bearer sb-wrong' });
    assert.equal(wrong.status, 401);
    const keyed = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: key, maxRetries: 0 });
    const ok = await keyed.chat.completions.create({ model: 'm1', messages: user('hi') });
    assert.equal(ok.choices[0].message.content, 'Hello world');
    const list = cli('keys', 'list');
    assert.match(list, /acme/);
    assert.ok(!list.includes(key), 'keys list never prints the key');
    const id = list.split('\n').find((l) => l.includes('acme')).split('\t')[0];
    cli('keys', 'revoke', id);
    await assert.rejects(keyed.chat.completions.create({ model: 'm1', messages: user('hi') }), (err) => err.status === 401);
  } finally {
    // Leave the shared server open again for the other tests.
    s.server.context.store.db.prepare('DELETE FROM api_keys').run();
  }
});

test('with no keys the server refuses to listen beyond loopback', async () => {
  const { createServer } = await import('../dist/server/app.js');
  const { loadConfig } = await import('../dist/core/config.js');
  const config = loadConfig({ dataDir: `${s.dataDir}/other`, host: '0.0.0.0', port: 0 }, {});
  const server = await createServer({ config, providers: { local: scripted.factory }, logger: (await import('pino')).default({ level: 'silent' }) });
  await assert.rejects(server.listen(), /Refusing to listen on 0\.0\.0\.0/);
  await server.close();
});

test('a server listening beyond loopback (it had a key) never runs open: revoking the last key leaves it refusing requests without one', async () => {
  const { createServer } = await import('../dist/server/app.js');
  const { loadConfig } = await import('../dist/core/config.js');
  const { hashApiKey } = await import('../dist/core/keys.js');
  const config = loadConfig({ dataDir: `${s.dataDir}/network`, host: '0.0.0.0', port: 0 }, {});
  const server = await createServer({ config, providers: { local: scripted.factory }, logger: (await import('pino')).default({ level: 'silent' }) });
  try {
    const record = await server.context.store.createKey({ organisation: 'acme', hash: hashApiKey('sb-network-test-key'), prefix: 'sb-netw' });
    const url = await server.listen();
    const port = new URL(url).port;
    const models = (headers = {}) => fetch(`http://127.0.0.1:${port}/v1/models`, { headers });
    assert.equal((await models({ authorization: 'Bearer sb-network-test-key' })).status, 200);
    await server.context.store.revokeKey(record.id);
    const open = await models();
    assert.equal(open.status, 401);
    assert.equal((await open.json()).error.code, 'missing_api_key');
    assert.equal((await models({ authorization: 'Bearer sb-anything' })).status, 401);
  } finally {
    await server.close();
  }
});

test('a local model the config adds itself (the default one, --model) lists the context it is served with', async () => {
  const { loadConfig } = await import('../dist/core/config.js');
  const { ModelRegistry } = await import('../dist/core/models.js');
  const fs = await import('node:fs');
  // Until the GGUF is loaded: the provider then lists what it serves (test/local-server.test.mjs).
  const defaultModel = (config) => new ModelRegistry(config).defaultModel;
  // 8192 tokens per sequence unless local.contextSize says otherwise (docs/configuration.md).
  assert.equal(defaultModel(loadConfig({}, {})).contextLength, 8192);
  assert.equal(defaultModel(loadConfig({ model: '/models/mine.gguf' }, {})).contextLength, 8192);
  const file = `${s.dataDir}/context.yaml`;
  fs.writeFileSync(file, 'local:\n  contextSize: 3000\n');
  assert.equal(defaultModel(loadConfig({ configFile: file }, {})).contextLength, 3000);
  assert.equal(defaultModel(loadConfig({ configFile: file, model: '/models/mine.gguf' }, {})).contextLength, 3000);
});

test('the GPU backend: flag beats SWITCHBOARD_GPU beats the file; an unknown one is refused', async () => {
  const { loadConfig } = await import('../dist/core/config.js');
  assert.equal(loadConfig({}, {}).local.gpu, false);
  assert.equal(loadConfig({}, { SWITCHBOARD_GPU: 'vulkan' }).local.gpu, 'vulkan');
  assert.equal(loadConfig({ gpu: 'CUDA' }, { SWITCHBOARD_GPU: 'vulkan' }).local.gpu, 'cuda');
  assert.equal(loadConfig({ gpu: 'off' }, { SWITCHBOARD_GPU: 'auto' }).local.gpu, false);
  assert.throws(() => loadConfig({ gpu: 'tpu' }, {}), /Invalid --gpu "tpu"/);
});

test('an empty variable counts as unset; SWITCHBOARD_CACHE_DIR beats the file; ~ in a configured path is the home directory', async () => {
  const { loadConfig } = await import('../dist/core/config.js');
  const { parseModelSource } = await import('../dist/providers/local/source.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const file = `${s.dataDir}/paths.yaml`;
  fs.writeFileSync(file, 'server:\n  dataDir: ~/sb-data\nlocal:\n  gpu: vulkan\n  cacheDir: ~/sb-models\n');
  const fromFile = loadConfig({}, { SWITCHBOARD_CONFIG: file });
  assert.equal(fromFile.local.gpu, 'vulkan');
  assert.equal(fromFile.local.cacheDir, `${os.homedir()}/sb-models`);
  assert.equal(fromFile.server.dataDir, `${os.homedir()}/sb-data`);
  // Empty values leave the file's settings alone (an empty SWITCHBOARD_GPU was `false`).
  const emptied = loadConfig({}, { SWITCHBOARD_CONFIG: file, SWITCHBOARD_GPU: '', SWITCHBOARD_CACHE_DIR: '', SWITCHBOARD_DATA_DIR: '' });
  assert.equal(emptied.local.gpu, 'vulkan');
  assert.equal(emptied.local.cacheDir, `${os.homedir()}/sb-models`);
  assert.equal(emptied.server.dataDir, `${os.homedir()}/sb-data`);
  // An empty SWITCHBOARD_CONFIG does not hide ./switchboard.yaml: it is as if unset.
  const cwd = process.cwd();
  const dir = fs.mkdtempSync(`${os.tmpdir()}/sb-cwd-`);
  fs.writeFileSync(`${dir}/switchboard.yaml`, 'local:\n  gpu: cuda\n');
  process.chdir(dir);
  try {
    assert.equal(loadConfig({}, { SWITCHBOARD_CONFIG: '' }).local.gpu, 'cuda');
  } finally {
    process.chdir(cwd);
  }
  // The variable beats the file.
  assert.equal(loadConfig({}, { SWITCHBOARD_CONFIG: file, SWITCHBOARD_CACHE_DIR: '/var/cache/sb' }).local.cacheDir, '/var/cache/sb');
  // A model path written with ~; another user's home is refused, not made a folder named ~bob.
  assert.deepEqual(parseModelSource('~/models/x.gguf'), { kind: 'file', path: `${os.homedir()}/models/x.gguf` });
  assert.throws(() => parseModelSource('~bob/models/x.gguf'), /only ~\/ \(this user's home\) is expanded/);
  fs.writeFileSync(file, 'local:\n  cacheDir: ~bob/models\n');
  assert.throws(() => loadConfig({}, { SWITCHBOARD_CONFIG: file }), /Cannot use the path '~bob\/models'/);
});
