// Golden matrix, Eden dialect (seed 002: POST /v2/text/chat, buffered per-provider results, and
// /v2/text/chat/stream, raw text) × every provider, over HTTP against the real server. Remote
// providers replay recorded upstream streams (test/fixtures/<provider>/) through their loopback
// fakes; the expected results are in test/fixtures/matrix/eden/<provider>.json. The raw-text
// stream carries text only (no events, tool calls, usage or reasoning): those cells are asserted
// on the buffered result. The local provider runs the tiny random-weight model, so its cells
// assert structure. See docs/providers.md, "Golden matrix".
// Build first: npx tsc -p tsconfig.json

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, REMOTE_PROVIDERS, RESET_ERROR, RESET_TEXT, readJsonFixture, startMatrix } from './helpers/matrix.mjs';
import { postJson } from './helpers/server.mjs';

let rig;
before(async () => {
  rig = await startMatrix();
});
after(async () => rig?.close());

const WEATHER = {
  name: 'get_weather',
  description: 'Current weather',
  parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['location'] },
};
const TIME = { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } };
const DATE = { name: 'get_date', parameters: { type: 'object', properties: {} } };

const chat = (body) => postJson(`${rig.url}/v2/text/chat`, body);

/** Reads a raw text stream to its end; `error` is set when the body did not end cleanly. */
async function streamText(body) {
  const res = await fetch(`${rig.url}/v2/text/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let error;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch (err) {
    error = err;
  }
  return { res, text, error };
}

describe('Eden dialect × remote providers', () => {
  for (const provider of REMOTE_PROVIDERS) {
    describe(provider, () => {
      const providers = MODELS[provider];
      const expected = readJsonFixture(`matrix/eden/${provider}.json`);

      test('plain text, buffered', async () => {
        rig.queue(provider, 'text');
        const res = await chat({ providers, text: 'Say hello.' });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { [providers]: expected['text-buffered'] });
      });

      test('streamed text: the raw generated text, cleanly ended', async () => {
        rig.queue(provider, 'text');
        const { res, text, error } = await streamText({ providers, text: 'Say hello.' });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/plain/);
        assert.equal(error, undefined);
        assert.equal(text, expected['text-stream']);
      });

      test('tool call with arguments split over many upstream deltas: reassembled in tool_calls', async () => {
        rig.queue(provider, 'tool-call');
        const res = await chat({ providers, text: 'Weather in San Francisco?', available_tools: [WEATHER] });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body[providers], expected['tool-call-buffered']);
      });

      test('two parallel tool calls', async () => {
        rig.queue(provider, 'two-tool-calls');
        const res = await chat({ providers, text: 'Weather in Paris, time in Tokyo?', available_tools: [WEATHER, TIME, DATE] });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body[providers], expected['two-tool-calls-buffered']);
      });

      test('tool result round trip: the upstream receives the call and its result in its own format', async () => {
        rig.queue(provider, 'text');
        const res = await chat({
          providers,
          previous_history: [
            { role: 'user', message: 'Weather in Oslo?' },
            { role: 'assistant', message: '', tool_calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"location":"Oslo"}' }] },
          ],
          tool_results: [{ id: 'call_1', result: '12 degrees' }],
          available_tools: [WEATHER],
        });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body[providers].generated_text, expected['text-stream']);
        assert.deepEqual(rig.lastUpstreamBody(provider).messages, expected['tool-result-upstream-messages']);
      });

      test('usage (buffered result; the raw-text stream carries none)', async () => {
        rig.queue(provider, 'usage');
        const res = await chat({ providers, text: 'Again?', max_tokens: 3 });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body[providers].usage, expected.usage);
        assert.equal(res.body[providers].finish_reason, 'length');
      });

      test('reasoning stays out of generated_text and the stream; original_response has it apart', async () => {
        rig.queue(provider, 'reasoning');
        const res = await chat({ providers, text: 'GCD of 1071 and 462?', reasoning_effort: 'low', show_original_response: true });
        assert.equal(res.status, 200, res.text);
        const result = res.body[providers];
        assert.equal(result.generated_text, 'The GCD is 21.');
        const { text, reasoning, finish_reason } = result.original_response;
        assert.deepEqual({ text, reasoning, finish_reason }, expected['reasoning-original-response']);
        const sent = rig.lastUpstreamBody(provider);
        for (const [path, value] of Object.entries(expected['reasoning-upstream'])) {
          assert.deepEqual(path.split('.').reduce((o, k) => o?.[k], sent), value, `upstream ${path}`);
        }
        rig.queue(provider, 'reasoning');
        assert.equal((await streamText({ providers, text: 'GCD of 1071 and 462?', reasoning_effort: 'low' })).text, 'The GCD is 21.');
      });

      test('upstream error before the first token → HTTP error in Eden shape (buffered and stream)', async () => {
        const want = expected['error-before-first-token'];
        for (const route of ['/v2/text/chat', '/v2/text/chat/stream']) {
          rig.queue(provider, 'error-before');
          const res = await postJson(`${rig.url}${route}`, { providers, text: 'Hi' });
          assert.equal(res.status, want.status, res.text);
          assert.deepEqual(res.body, want.body);
          for (const [name, value] of Object.entries(want.headers ?? {})) assert.equal(res.headers.get(name), value, name);
        }
      });

      test('upstream error after the first token → error line, and the body never ends cleanly', async () => {
        rig.queue(provider, 'error-after');
        const { res, text, error } = await streamText({ providers, text: 'Hi' });
        assert.equal(res.status, 200);
        assert.equal(text, expected['error-after-first-token-stream']);
        assert.ok(error, 'the chunked body must not end cleanly');
        // Buffered, nothing was sent yet: the same failure is an HTTP error, never a partial 200.
        rig.queue(provider, 'error-after');
        const buffered = await chat({ providers, text: 'Hi' });
        assert.equal(buffered.status, expected['error-after-first-token-buffered'].status, buffered.text);
        assert.deepEqual(buffered.body, expected['error-after-first-token-buffered'].body);
      });

      test('connection cut mid-stream → error line, never a clean end', async () => {
        rig.queue(provider, 'reset');
        const { text, error } = await streamText({ providers, text: 'Hi' });
        assert.ok(text.startsWith(`${RESET_TEXT[provider]}\n`), text);
        const line = JSON.parse(text.slice(RESET_TEXT[provider].length + 1));
        assert.deepEqual([line.error.type, line.error.code], ['provider_error', RESET_ERROR[provider].code]);
        assert.match(line.error.message, RESET_ERROR[provider].message);
        assert.ok(error, 'the chunked body must not end cleanly');
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// local: the tiny random-weight model. Text is gibberish, so structure is asserted instead.

describe('Eden dialect × local (tiny model: structure, not text)', () => {
  const providers = MODELS.local;
  const CITY = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'], additionalProperties: false } };
  const ALARM = { name: 'set_alarm', parameters: { type: 'object', properties: { enabled: { type: 'boolean' } }, required: ['enabled'], additionalProperties: false } };

  test('plain text, buffered, and the same text streamed raw; usage sums', async () => {
    const res = await chat({ providers, text: 'Say hello.', max_tokens: 8 });
    assert.equal(res.status, 200, res.text);
    const r = res.body[providers];
    assert.equal(r.status, 'success');
    assert.ok(r.generated_text.length > 0);
    assert.equal(r.finish_reason, 'length');
    assert.deepEqual(r.message.map((m) => m.role), ['user', 'assistant']);
    assert.equal(r.message[1].message, r.generated_text);
    assert.equal(r.usage.completion_tokens, 8);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
    const { text, error } = await streamText({ providers, text: 'Say hello.', max_tokens: 8 });
    assert.equal(error, undefined);
    assert.equal(text, r.generated_text, 'temperature 0 by default: the same text');
  });

  test('tool call (tool_choice required): one call whose arguments parse', async () => {
    const res = await chat({ providers, text: 'Do something', available_tools: [CITY, ALARM], tool_choice: 'required', max_tokens: 60 });
    assert.equal(res.status, 200, res.text);
    const r = res.body[providers];
    assert.equal(r.finish_reason, 'tool_calls');
    assert.equal(r.tool_calls.length, 1);
    assert.ok(['get_weather', 'set_alarm'].includes(r.tool_calls[0].name));
    assert.equal(typeof JSON.parse(r.tool_calls[0].arguments), 'object');
    assert.deepEqual(r.message.at(-1).tool_calls, r.tool_calls);
  });

  test('tool result round trip: the call and its result reach the model', async () => {
    const plain = await chat({ providers, text: 'Weather in Oslo?', max_tokens: 2 });
    const res = await chat({
      providers,
      previous_history: [
        { role: 'user', message: 'Weather in Oslo?' },
        { role: 'assistant', message: '', tool_calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
      ],
      tool_results: [{ id: 'call_1', result: { temp_c: 12 } }],
      max_tokens: 2,
    });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body[providers].usage.prompt_tokens >= plain.body[providers].usage.prompt_tokens + 30);
  });

  test('error before the first token (prompt larger than the context) → HTTP 400 in Eden shape', async () => {
    for (const route of ['/v2/text/chat', '/v2/text/chat/stream']) {
      const res = await postJson(`${rig.url}${route}`, { providers, text: 'token '.repeat(1500) });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.type, 'invalid_request_error');
      assert.equal(res.body.error.code, 'context_length_exceeded');
    }
  });
});
