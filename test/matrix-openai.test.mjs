// Golden matrix, OpenAI dialect (POST /v1/chat/completions) × every provider, over HTTP against
// the real server. Remote providers replay recorded upstream streams (test/fixtures/<provider>/)
// through their loopback fakes; the expected client streams are in
// test/fixtures/matrix/openai/<provider>.json, asserted chunk by chunk (id and created are
// checked, then left out of the comparison). The local provider runs the tiny random-weight
// model, so its cells assert structure (order, roles, parsable tool arguments, usage sums,
// finish reasons) and exact prompt token counts, not text. See docs/providers.md, "Golden matrix".
// Build first: npx tsc -p tsconfig.json

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { getLlama } from 'node-llama-cpp';
import { MODELS, REMOTE_PROVIDERS, RESET_ERROR, RESET_TEXT, readJsonFixture, startMatrix } from './helpers/matrix.mjs';
import { TEST_MODEL_PATH } from './helpers/model.mjs';
import { postJson, readSse } from './helpers/server.mjs';
import { validateOpenAI } from './helpers/openai-schema.mjs';

let rig;
before(async () => {
  rig = await startMatrix();
});
after(async () => rig?.close());

const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather',
    parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['location'] },
  },
};
const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } };
const DATE = { type: 'function', function: { name: 'get_date', parameters: { type: 'object', properties: {} } } };

const user = (content) => ({ role: 'user', content });

async function chat(body) {
  return fetch(`${rig.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/**
 * The SSE data payloads of a streamed completion, parsed ('[DONE]' kept as the string). Every
 * chunk must validate against OpenAI's schema and share one id and created; those two are then
 * dropped so the rest can be compared with the fixture.
 */
async function streamOf(body) {
  const res = await chat({ ...body, stream: true });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const { events } = await readSse(res);
  const ids = new Set();
  const out = events.map((e) => {
    assert.equal(e.event, undefined, 'OpenAI streams have no event: lines');
    if (e.data === '[DONE]') return e.data;
    const value = JSON.parse(e.data);
    if (value.error) return value;
    const check = validateOpenAI('CreateChatCompletionStreamResponse', value);
    assert.ok(check.ok, `${e.data}\n${check.errors.join('\n')}`);
    ids.add(value.id);
    assert.ok(Number.isInteger(value.created));
    const { id: _id, created: _created, ...rest } = value;
    return rest;
  });
  assert.equal(ids.size, 1, 'one id for every chunk');
  assert.match([...ids][0], /^chatcmpl-/);
  return out;
}

describe('OpenAI dialect × remote providers', () => {
  for (const provider of REMOTE_PROVIDERS) {
    describe(provider, () => {
      const model = MODELS[provider];
      const expected = readJsonFixture(`matrix/openai/${provider}.json`);

      test('plain text, buffered', async () => {
        rig.queue(provider, 'text');
        const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user('Say hello.')] });
        assert.equal(res.status, 200, res.text);
        const check = validateOpenAI('CreateChatCompletionResponse', res.body);
        assert.ok(check.ok, check.errors.join('\n'));
        const { id, created, ...rest } = res.body;
        assert.match(id, /^chatcmpl-/);
        assert.ok(Number.isInteger(created));
        assert.deepEqual(rest, expected['text-buffered']);
      });

      test('streamed text', async () => {
        rig.queue(provider, 'text');
        assert.deepEqual(await streamOf({ model, messages: [user('Say hello.')] }), expected['text-stream']);
      });

      test('streamed tool call, arguments split over many deltas (index on every delta)', async () => {
        rig.queue(provider, 'tool-call');
        const chunks = await streamOf({ model, messages: [user('Weather in San Francisco?')], tools: [WEATHER] });
        assert.deepEqual(chunks, expected['tool-call-stream']);
        const args = chunks.flatMap((c) => c.choices?.[0]?.delta?.tool_calls ?? []).map((t) => t.function.arguments).join('');
        assert.deepEqual(JSON.parse(args), { location: 'San Francisco, CA', unit: 'fahrenheit' });
      });

      test('two parallel tool calls; the official client reassembles them', async () => {
        rig.queue(provider, 'two-tool-calls');
        const chunks = await streamOf({ model, messages: [user('Weather in Paris, time in Tokyo?')], tools: [WEATHER, TIME, DATE] });
        assert.deepEqual(chunks, expected['two-tool-calls-stream']);

        rig.queue(provider, 'two-tool-calls');
        const client = new OpenAI({ baseURL: `${rig.url}/v1`, apiKey: 'unused', maxRetries: 0 });
        const stream = client.chat.completions.stream({ model, messages: [user('Weather in Paris, time in Tokyo?')], tools: [WEATHER, TIME, DATE] });
        for await (const _ of stream);
        const final = await stream.finalChatCompletion();
        const calls = final.choices[0].message.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]);
        assert.deepEqual(calls.slice(0, 2), [
          ['get_weather', { location: 'Paris' }],
          ['get_time', { tz: 'Asia/Tokyo' }],
        ]);
        assert.equal(final.choices[0].finish_reason, 'tool_calls');
      });

      test('tool result round trip: the upstream receives the call, its result and the signed reasoning in its own format', async () => {
        rig.queue(provider, 'text');
        const chunks = await streamOf({
          model,
          messages: [
            user('Weather in Oslo?'),
            {
              role: 'assistant',
              content: null,
              // as a reasoning stream's finish chunk gave them (Anthropic and Bedrock need them back
              // unchanged; OpenAI-compatible upstreams take no reasoning in the history)
              reasoning_details: [
                { type: 'reasoning.text', text: 'Oslo weather: call the tool.', signature: 'EqQBsig-Oslo==', index: 0 },
                { type: 'reasoning.encrypted', data: 'RWRhY3RlZA==', index: 1 },
              ],
              tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Oslo"}' } }],
            },
            { role: 'tool', tool_call_id: 'call_1', content: '12 degrees' },
          ],
          tools: [WEATHER],
        });
        assert.deepEqual(chunks, expected['text-stream']);
        const body = rig.lastUpstreamBody(provider);
        assert.deepEqual(body.messages, expected['tool-result-upstream-messages']);
      });

      test('tool loop with reasoning on: thinking stays on only when the signed thinking comes back', async () => {
        const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Oslo"}' } };
        const loop = (assistant) => ({
          model,
          reasoning: { effort: 'low' },
          tools: [WEATHER],
          messages: [user('Weather in Oslo?'), { role: 'assistant', content: null, tool_calls: [call], ...assistant }, { role: 'tool', tool_call_id: 'call_1', content: '12 degrees' }],
        });
        const want = expected['tool-loop-reasoning-upstream'];
        const cases = [
          ['with-signed-thinking', { reasoning_details: [{ type: 'reasoning.text', text: 'Oslo weather: call the tool.', signature: 'EqQBsig-Oslo==', index: 0 }] }],
          ['without-thinking', {}],
        ];
        for (const [name, assistant] of cases) {
          rig.queue(provider, 'text');
          assert.deepEqual(await streamOf(loop(assistant)), expected['text-stream'], name);
          const sent = rig.lastUpstreamBody(provider);
          for (const [path, value] of Object.entries(want[name])) {
            assert.deepEqual(path.split('.').reduce((o, k) => o?.[k], sent) ?? null, value, `${name}: upstream ${path}`);
          }
        }
      });

      test('usage at the end of the stream (prompt caching included)', async () => {
        rig.queue(provider, 'usage');
        const chunks = await streamOf({ model, messages: [user('Again?')], max_tokens: 3 });
        assert.deepEqual(chunks, expected['usage-stream']);
      });

      test('reasoning streams apart from the content', async () => {
        rig.queue(provider, 'reasoning');
        const chunks = await streamOf({ model, messages: [user('GCD of 1071 and 462?')], reasoning: { effort: 'low' } });
        assert.deepEqual(chunks, expected['reasoning-stream']);
        const sent = rig.lastUpstreamBody(provider);
        // Buffered: the same reasoning in message.reasoning and message.reasoning_details.
        rig.queue(provider, 'reasoning');
        const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user('GCD of 1071 and 462?')], reasoning: { effort: 'low' } });
        const { message } = res.body.choices[0];
        assert.equal(message.content, 'The GCD is 21.');
        assert.equal(message.reasoning, chunks.map((c) => c.choices?.[0]?.delta.reasoning ?? '').join(''));
        assert.deepEqual(message.reasoning_details, chunks.at(-3).choices[0].delta.reasoning_details);
        // The official client keeps reasoning_details on the final message, ready to send back.
        rig.queue(provider, 'reasoning');
        const client = new OpenAI({ baseURL: `${rig.url}/v1`, apiKey: 'unused', maxRetries: 0 });
        const stream = client.chat.completions.stream({ model, messages: [user('GCD of 1071 and 462?')], reasoning_effort: 'low' });
        for await (const _ of stream);
        const final = await stream.finalChatCompletion();
        assert.deepEqual(final.choices[0].message.reasoning_details, message.reasoning_details);
        for (const [path, value] of Object.entries(expected['reasoning-upstream'])) {
          assert.deepEqual(path.split('.').reduce((o, k) => o?.[k], sent), value, `upstream ${path}`);
        }
      });

      test('upstream error before the first token → HTTP error in OpenAI shape', async () => {
        rig.queue(provider, 'error-before');
        for (const stream of [false, true]) {
          if (stream) rig.queue(provider, 'error-before');
          const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user('Hi')], stream });
          assert.equal(res.status, expected['error-before-first-token'].status, res.text);
          assert.match(res.headers.get('content-type'), /^application\/json/);
          assert.deepEqual(res.body, expected['error-before-first-token'].body);
          for (const [name, value] of Object.entries(expected['error-before-first-token'].headers ?? {})) assert.equal(res.headers.get(name), value, name);
        }
      });

      test('upstream error after the first token → in-stream error event, then [DONE]', async () => {
        rig.queue(provider, 'error-after');
        assert.deepEqual(await streamOf({ model, messages: [user('Hi')] }), expected['error-after-first-token-stream']);
        // Buffered, nothing was sent yet: the same failure is an HTTP error, never a partial 200.
        rig.queue(provider, 'error-after');
        const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user('Hi')] });
        assert.equal(res.status, expected['error-after-first-token-buffered'].status, res.text);
        assert.deepEqual(res.body, expected['error-after-first-token-buffered'].body);
      });

      test('connection cut mid-stream → in-stream error event, never a clean end', async () => {
        rig.queue(provider, 'reset');
        const chunks = await streamOf({ model, messages: [user('Hi')] });
        assert.equal(chunks.at(-1), '[DONE]');
        const { error } = chunks.at(-2);
        assert.deepEqual([error.type, error.code, error.param], ['upstream_error', RESET_ERROR[provider].code, null]);
        assert.match(error.message, RESET_ERROR[provider].message);
        const deltas = chunks.slice(0, -2);
        assert.equal(deltas.map((c) => c.choices[0].delta.content).join(''), RESET_TEXT[provider]);
        assert.ok(deltas.every((c) => c.choices[0].finish_reason === null && !c.usage), 'no finish, no usage');
      });

      test('logprobs: passed through where the upstream has them, else a 400 naming the field', async () => {
        if (provider === 'openai') rig.queue(provider, 'text');
        const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user('Say hello.')], logprobs: true });
        if (provider === 'openai') {
          assert.equal(res.status, 200, res.text);
          assert.ok(Array.isArray(res.body.choices[0].logprobs.content));
          return;
        }
        assert.equal(res.status, 400, res.text);
        assert.deepEqual([res.body.error.param, res.body.error.code], ['logprobs', 'unsupported_parameter']);
        assert.match(res.body.error.message, new RegExp(`provider ${provider}`));
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// local: the tiny random-weight model. Text is gibberish, so structure is asserted instead.

describe('OpenAI dialect × local (tiny model: structure, not text)', () => {
  const model = MODELS.local;
  let vocab;
  before(async () => {
    const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true });
    vocab = { llama, model: await llama.loadModel({ modelPath: TEST_MODEL_PATH, vocabOnly: true }) };
  });
  after(async () => {
    await vocab?.model.dispose();
    await vocab?.llama.dispose();
  });
  // Small schemas: the random model fills grammar-constrained strings up to their maxLength.
  const CITY = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'], additionalProperties: false } } };
  const ALARM = { type: 'function', function: { name: 'set_alarm', parameters: { type: 'object', properties: { enabled: { type: 'boolean' } }, required: ['enabled'], additionalProperties: false } } };

  /** Tokens of a ChatML prompt written by hand (Qwen's template, as the model's metadata has it). */
  const tokens = (text) => vocab.model.tokenize(text, true).length;
  const chatml = (turns) => turns.map(([role, text]) => `<|im_start|>${role}\n${text}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';

  /** Checks a local stream's shape; returns {content, reasoning, calls, finish, usage}. */
  function structure(chunks) {
    assert.equal(chunks.at(-1), '[DONE]');
    const usageChunk = chunks.at(-2);
    assert.deepEqual(usageChunk.choices, [], 'the usage chunk has no choices');
    const body = chunks.slice(0, -2);
    assert.ok(body.length >= 2, 'at least one delta and the finish chunk');
    assert.equal(body[0].choices[0].delta.role, 'assistant', 'role in the first delta');
    assert.equal(body.filter((c) => c.choices[0].delta.role).length, 1, 'role only once');
    const finishes = body.filter((c) => c.choices[0].finish_reason !== null);
    assert.equal(finishes.length, 1, 'one finish chunk');
    assert.equal(finishes[0], body.at(-1), 'the finish chunk is the last delta');
    assert.deepEqual(body.at(-1).choices[0].delta, {});
    for (const c of body) assert.equal(c.model, model);
    const deltas = body.map((c) => c.choices[0].delta);
    const u = usageChunk.usage;
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    return {
      content: deltas.map((d) => d.content ?? '').join(''),
      contentDeltas: deltas.filter((d) => d.content).length,
      reasoning: deltas.map((d) => d.reasoning ?? '').join(''),
      kinds: deltas.map((d) => (d.reasoning ? 'reasoning' : d.content ? 'content' : d.tool_calls ? 'tool' : 'other')),
      toolDeltas: deltas.flatMap((d) => d.tool_calls ?? []),
      finish: body.at(-1).choices[0].finish_reason,
      usage: u,
    };
  }

  test('plain text, buffered: content, finish length at max_tokens, usage counted exactly', async () => {
    const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user('Say hello.')], max_tokens: 8, seed: 1, temperature: 0 });
    assert.equal(res.status, 200, res.text);
    const check = validateOpenAI('CreateChatCompletionResponse', res.body);
    assert.ok(check.ok, check.errors.join('\n'));
    const [choice] = res.body.choices;
    assert.equal(choice.message.role, 'assistant');
    assert.equal(typeof choice.message.content, 'string');
    assert.ok(choice.message.content.length > 0);
    assert.equal(choice.finish_reason, 'length');
    assert.equal(res.body.usage.prompt_tokens, tokens(chatml([['user', 'Say hello.']])));
    assert.equal(res.body.usage.completion_tokens, 8);
    assert.equal(res.body.usage.total_tokens, res.body.usage.prompt_tokens + 8);
  });

  test('streamed text and usage at the end: deltas, one finish, usage chunk, [DONE]', async () => {
    const chunks = await streamOf({ model, messages: [user('Say hello.')], max_tokens: 8, seed: 1, temperature: 0 });
    const s = structure(chunks);
    assert.ok(s.kinds.slice(0, -1).every((k) => k === 'content' || k === 'other'));
    assert.ok(s.content.length > 0 && s.contentDeltas >= 2, 'the text arrives over several deltas');
    assert.equal(s.finish, 'length');
    assert.equal(s.usage.completion_tokens, 8);
    assert.equal(s.usage.prompt_tokens, tokens(chatml([['user', 'Say hello.']])));
    // The same request buffered gives the same text (seeded, temperature 0).
    const buffered = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user('Say hello.')], max_tokens: 8, seed: 1, temperature: 0 });
    assert.equal(buffered.body.choices[0].message.content, s.content);
  });

  test('streamed tool call forced by name: index/id/name first, arguments over many deltas, parsable', async () => {
    const chunks = await streamOf({
      model,
      messages: [user('Weather in Paris?')],
      tools: [CITY, ALARM],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 60,
      seed: 3,
    });
    const s = structure(chunks);
    assert.equal(s.finish, 'tool_calls');
    assert.ok(s.toolDeltas.length >= 3, `arguments over many deltas (${s.toolDeltas.length} tool deltas)`);
    assert.ok(s.toolDeltas.every((d) => d.index === 0));
    const [head, ...rest] = s.toolDeltas;
    assert.match(head.id, /^call_/);
    assert.deepEqual([head.type, head.function.name, head.function.arguments], ['function', 'get_weather', '']);
    assert.ok(rest.every((d) => d.id === undefined && d.function.name === undefined && d.function.arguments.length > 0));
    const args = JSON.parse(rest.map((d) => d.function.arguments).join(''));
    assert.equal(typeof args.city, 'string');
    assert.ok(['celsius', 'fahrenheit'].includes(args.unit));
    assert.equal(s.content, '');
  });

  test('tool_choice required: the grammar picks one of the tools, arguments parse', async () => {
    const chunks = await streamOf({ model, messages: [user('Do something')], tools: [CITY, ALARM], tool_choice: 'required', max_tokens: 60, seed: 4 });
    const s = structure(chunks);
    assert.equal(s.finish, 'tool_calls');
    assert.ok(['get_weather', 'set_alarm'].includes(s.toolDeltas[0].function.name));
    assert.equal(typeof JSON.parse(s.toolDeltas.slice(1).map((d) => d.function.arguments).join('')), 'object');
  });

  test('tool result round trip: the call and its result are in the prompt the model read', async () => {
    const messages = [
      user('Weather in Oslo?'),
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp_c":12}' },
    ];
    const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages, max_tokens: 4, seed: 1 });
    assert.equal(res.status, 200, res.text);
    // Qwen's format: the call as <tool_call> JSON in the assistant turn, the result as
    // <tool_response> in a user turn (no tools offered, so no tool system block). node-llama-cpp
    // shows a JSON result as JSON (re-spaced); a plain-text result would be shown JSON-quoted.
    const prompt = chatml([
      ['user', 'Weather in Oslo?'],
      ['assistant', '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Oslo"}}\n</tool_call>'],
      ['user', '<tool_response>\n{"temp_c": 12}\n</tool_response>'],
    ]);
    // node-llama-cpp tokenizes the tool response apart from the newline after it ("}" "\n"
    // rather than "}\n"), so the count may exceed the whole-string count by one token.
    const expectedTokens = tokens(prompt);
    const got = res.body.usage.prompt_tokens;
    assert.ok(got === expectedTokens || got === expectedTokens + 1, `prompt tokens ${got}, the hand-written prompt has ${expectedTokens}`);
    // Without the call and its result the prompt is far shorter: they were not dropped.
    assert.ok(got >= tokens(chatml([['user', 'Weather in Oslo?']])) + 40);
    assert.equal(res.body.usage.completion_tokens, 4);
  });

  test('reasoning: a prefilled open thought streams as reasoning deltas, then content', async () => {
    // The random model never opens a thought by itself; an assistant turn that ends inside one does.
    const chunks = await streamOf({
      model,
      messages: [user('What is 2 + 2?'), { role: 'assistant', content: '', reasoning: 'Let me think.' }],
      reasoning: { enabled: true, max_tokens: 5 },
      max_tokens: 16,
      seed: 2,
    });
    const s = structure(chunks);
    const runs = s.kinds.filter((k, i, a) => k !== 'other' && k !== a[i - 1]);
    assert.deepEqual(runs, ['reasoning', 'content'], `reasoning first, then content: ${s.kinds.join(',')}`);
    assert.ok(s.reasoning.length > 0 && s.content.length > 0);
    assert.equal(s.usage.completion_tokens_details.reasoning_tokens, 5);
    assert.equal(s.usage.completion_tokens, 16);
  });

  test('error before the first token (prompt larger than the context) → HTTP 400 in OpenAI shape', async () => {
    const long = 'token '.repeat(1500);
    for (const stream of [false, true]) {
      const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user(long)], stream });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.type, 'invalid_request_error');
      assert.equal(res.body.error.code, 'context_length_exceeded');
      assert.equal(res.body.error.param, 'messages');
      assert.match(res.body.error.message, /maximum context length is 1024 tokens/);
      assert.match(res.body.error.message, /but the prompt is \d+ tokens/, 'counted exactly');
    }
    // Far beyond the context, it is refused before tokenizing: what tokenizing took held every
    // other request (a 17 MB prompt: 5 s). No token is longer than 128 characters in this vocabulary.
    const huge = 'x'.repeat(1024 * 128 + 1);
    const res = await postJson(`${rig.url}/v1/chat/completions`, { model, messages: [user(huge)] });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.code, 'context_length_exceeded');
    assert.match(res.body.error.message, /but the prompt is at least 1025 tokens/);
  });

  test('error after the first token (context fills inside the tool arguments) → in-stream error, then [DONE]', async () => {
    // A prompt that leaves about 60 tokens of the 1024-token context, and a forced call whose only
    // argument must be longer than that: the call starts, its arguments stream, then the context
    // runs out. No finish chunk, no usage chunk.
    const essay = { type: 'function', function: { name: 'write', parameters: { type: 'object', properties: { text: { type: 'string', minLength: 1500 } }, required: ['text'] } } };
    const chunks = await streamOf({ model, messages: [user('token '.repeat(820))], tools: [essay], tool_choice: { type: 'function', function: { name: 'write' } }, seed: 1 });
    assert.equal(chunks.at(-1), '[DONE]');
    assert.deepEqual(chunks.at(-2), {
      error: { message: "The model's context filled up while writing tool call arguments", type: 'invalid_request_error', param: null, code: 'context_length_exceeded' },
    });
    const body = chunks.slice(0, -2);
    assert.equal(body[0].choices[0].delta.tool_calls[0].function.name, 'write');
    assert.ok(body.length > 2, 'argument deltas came before the error');
    assert.ok(body.every((c) => c.choices[0].finish_reason === null && !c.usage), 'no finish and no usage after a failure');
  });

  test('two parallel tool calls are not applicable: a forced call is exactly one call', async () => {
    // The dialect cannot reach the only lever that makes the random model open a second call
    // (a logit bias on <tool_call>); forced calls (named/required) are single by design. See
    // docs/providers.md, "Golden matrix".
    const chunks = await streamOf({ model, messages: [user('Weather in Paris and Rome?')], tools: [CITY], tool_choice: 'required', max_tokens: 60, seed: 6 });
    const s = structure(chunks);
    assert.deepEqual([...new Set(s.toolDeltas.map((d) => d.index))], [0], 'a forced call is exactly one call');
  });
});
