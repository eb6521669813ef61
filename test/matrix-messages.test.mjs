// Golden matrix, Messages dialect (POST /v1/messages, Anthropic's wire format) × every provider,
// over HTTP against the real server. Remote providers replay recorded upstream streams
// (test/fixtures/<provider>/) through their loopback fakes; the expected client streams are in
// test/fixtures/matrix/messages/<provider>.json, asserted event by event (event: name and data).
// The message id and request id are checked, then written as "<messageId>" / "<requestId>". The
// local provider runs the tiny random-weight model, so its cells assert structure. See
// docs/providers.md, "Golden matrix".
// Build first: npx tsc -p tsconfig.json

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { MODELS, REMOTE_PROVIDERS, RESET_ERROR, RESET_TEXT, readJsonFixture, startMatrix } from './helpers/matrix.mjs';
import { postJson, readSse } from './helpers/server.mjs';

let rig;
before(async () => {
  rig = await startMatrix();
});
after(async () => rig?.close());

const WEATHER = {
  name: 'get_weather',
  description: 'Current weather',
  input_schema: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['location'] },
};
const TIME = { name: 'get_time', input_schema: { type: 'object', properties: { tz: { type: 'string' } } } };
const DATE = { name: 'get_date', input_schema: { type: 'object', properties: {} } };

const user = (content) => ({ role: 'user', content });

/** Puts the fixtures' placeholders in for the message id and the request id (both checked). */
function placeholders(value, { requestId, messageId }) {
  let text = JSON.stringify(value);
  if (requestId) text = text.replaceAll(JSON.stringify(requestId), '"<requestId>"');
  if (messageId) text = text.replaceAll(JSON.stringify(messageId), '"<messageId>"');
  return JSON.parse(text);
}

/** The events of a streamed message as {event, data (parsed)}; data.type must equal event:. */
async function streamOf(body) {
  const res = await fetch(`${rig.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const requestId = res.headers.get('request-id');
  assert.match(requestId, /\S/);
  const { events } = await readSse(res);
  const parsed = events.map((e) => ({ event: e.event, data: JSON.parse(e.data) }));
  for (const e of parsed) assert.equal(e.data.type, e.event, 'data.type repeats the event name');
  const messageId = parsed[0]?.data.message?.id;
  assert.match(messageId, /^msg_/);
  return placeholders(parsed, { requestId, messageId });
}

async function buffered(body) {
  const res = await postJson(`${rig.url}/v1/messages`, body);
  return { ...res, body: res.body && placeholders(res.body, { requestId: res.headers.get('request-id'), messageId: res.body.id }) };
}

describe('Messages dialect × remote providers', () => {
  for (const provider of REMOTE_PROVIDERS) {
    describe(provider, () => {
      const model = MODELS[provider];
      const expected = readJsonFixture(`matrix/messages/${provider}.json`);
      const base = { model, max_tokens: 1024 };

      test('plain text, buffered (official client)', async () => {
        rig.queue(provider, 'text');
        const client = new Anthropic({ baseURL: rig.url, apiKey: 'unused', maxRetries: 0 });
        const message = await client.messages.create({ ...base, messages: [user('Say hello.')] });
        assert.match(message.id, /^msg_/);
        assert.deepEqual(placeholders(message, { messageId: message.id }), expected['text-buffered']);
      });

      test('streamed text', async () => {
        rig.queue(provider, 'text');
        assert.deepEqual(await streamOf({ ...base, messages: [user('Say hello.')] }), expected['text-stream']);
      });

      test('streamed tool call, input_json_delta split over many events', async () => {
        rig.queue(provider, 'tool-call');
        const events = await streamOf({ ...base, messages: [user('Weather in San Francisco?')], tools: [WEATHER] });
        assert.deepEqual(events, expected['tool-call-stream']);
      });

      test('two parallel tool calls; the official client reassembles them', async () => {
        rig.queue(provider, 'two-tool-calls');
        const body = { ...base, messages: [user('Weather in Paris, time in Tokyo?')], tools: [WEATHER, TIME, DATE] };
        assert.deepEqual(await streamOf(body), expected['two-tool-calls-stream']);

        rig.queue(provider, 'two-tool-calls');
        const client = new Anthropic({ baseURL: rig.url, apiKey: 'unused', maxRetries: 0 });
        const final = await client.messages.stream(body).finalMessage();
        assert.deepEqual(
          final.content.slice(0, 2).map((b) => [b.type, b.name, b.input]),
          [
            ['tool_use', 'get_weather', { location: 'Paris' }],
            ['tool_use', 'get_time', { tz: 'Asia/Tokyo' }],
          ],
        );
        assert.equal(final.stop_reason, 'tool_use');
        assert.equal(final.usage.input_tokens, 510);
        assert.equal(final.usage.output_tokens, 120);
      });

      test('tool result round trip with a signed thinking block: the upstream receives them in its own format', async () => {
        rig.queue(provider, 'text');
        const events = await streamOf({
          ...base,
          messages: [
            user('Weather in Oslo?'),
            {
              role: 'assistant',
              content: [
                { type: 'thinking', thinking: 'Oslo weather: call the tool.', signature: 'EqQBsig-Oslo==' },
                { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { location: 'Oslo' } },
              ],
            },
            user([{ type: 'tool_result', tool_use_id: 'call_1', content: '12 degrees' }]),
          ],
          tools: [WEATHER],
        });
        assert.deepEqual(events, expected['text-stream']);
        assert.deepEqual(rig.lastUpstreamBody(provider).messages, expected['tool-result-upstream-messages']);
      });

      test('usage at the end of the stream (message_delta; cache reads and writes apart)', async () => {
        rig.queue(provider, 'usage');
        assert.deepEqual(await streamOf({ ...base, max_tokens: 3, messages: [user('Again?')] }), expected['usage-stream']);
      });

      test('thinking streams as thinking blocks, apart from the text; signatures kept', async () => {
        rig.queue(provider, 'reasoning');
        const events = await streamOf({ model, max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048 }, messages: [user('GCD of 1071 and 462?')] });
        assert.deepEqual(events, expected['reasoning-stream']);
        const sent = rig.lastUpstreamBody(provider);
        for (const [path, value] of Object.entries(expected['reasoning-upstream'])) {
          assert.deepEqual(path.split('.').reduce((o, k) => o?.[k], sent), value, `upstream ${path}`);
        }
      });

      test('upstream error before the first token → HTTP error in Anthropic shape', async () => {
        const want = expected['error-before-first-token'];
        for (const stream of [false, true]) {
          rig.queue(provider, 'error-before');
          const res = await postJson(`${rig.url}/v1/messages`, { ...base, messages: [user('Hi')], stream });
          assert.equal(res.status, want.status, res.text);
          assert.match(res.headers.get('content-type'), /^application\/json/);
          assert.deepEqual(placeholders(res.body, { requestId: res.headers.get('request-id') }), want.body);
          for (const [name, value] of Object.entries(want.headers ?? {})) assert.equal(res.headers.get(name), value, name);
        }
      });

      test('upstream error after the first token → in-stream error event, no message_stop', async () => {
        rig.queue(provider, 'error-after');
        assert.deepEqual(await streamOf({ ...base, messages: [user('Hi')] }), expected['error-after-first-token-stream']);
        // Buffered, nothing was sent yet: the same failure is an HTTP error, never a partial 200.
        rig.queue(provider, 'error-after');
        const res = await postJson(`${rig.url}/v1/messages`, { ...base, messages: [user('Hi')] });
        assert.equal(res.status, expected['error-after-first-token-buffered'].status, res.text);
        assert.deepEqual(placeholders(res.body, { requestId: res.headers.get('request-id') }), expected['error-after-first-token-buffered'].body);
      });

      test('connection cut mid-stream → error event (api_error), never a message_stop', async () => {
        rig.queue(provider, 'reset');
        const events = await streamOf({ ...base, messages: [user('Hi')] });
        const last = events.at(-1);
        assert.equal(last.event, 'error');
        assert.deepEqual([last.data.error.type, last.data.request_id], ['api_error', '<requestId>']);
        assert.match(last.data.error.message, RESET_ERROR[provider].message);
        assert.deepEqual(events.slice(0, 3).map((e) => e.event), ['message_start', 'ping', 'content_block_start']);
        const deltas = events.slice(3, -1);
        assert.ok(deltas.every((e) => e.event === 'content_block_delta'), 'no stop, no message_delta before the error');
        assert.equal(deltas.map((e) => e.data.delta.text).join(''), RESET_TEXT[provider]);
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// local: the tiny random-weight model. Text is gibberish, so structure is asserted instead.

describe('Messages dialect × local (tiny model: structure, not text)', () => {
  const model = MODELS.local;
  const CITY = { name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'], additionalProperties: false } };
  const ALARM = { name: 'set_alarm', input_schema: { type: 'object', properties: { enabled: { type: 'boolean' } }, required: ['enabled'], additionalProperties: false } };

  /**
   * message_start, ping, then well-formed blocks (start, deltas of its kind, stop; indexes 0, 1…),
   * then message_delta and message_stop. Returns the blocks and the final usage and stop reason.
   */
  function structure(events) {
    assert.deepEqual(events.slice(0, 2).map((e) => e.event), ['message_start', 'ping']);
    assert.equal(events[0].data.message.model, model);
    assert.deepEqual(events.slice(-2).map((e) => e.event), ['message_delta', 'message_stop']);
    const blocks = [];
    let open;
    for (const e of events.slice(2, -2)) {
      if (e.event === 'content_block_start') {
        assert.equal(open, undefined, 'one block at a time');
        assert.equal(e.data.index, blocks.length);
        open = { ...e.data.content_block, deltas: [] };
      } else if (e.event === 'content_block_delta') {
        assert.equal(e.data.index, blocks.length);
        open.deltas.push(e.data.delta);
      } else {
        assert.equal(e.event, 'content_block_stop');
        assert.equal(e.data.index, blocks.length);
        blocks.push(open);
        open = undefined;
      }
    }
    assert.equal(open, undefined, 'every block stopped');
    const { delta, usage } = events.at(-2).data;
    assert.ok(usage.input_tokens > 0);
    // The prompt is tokenised before generation starts: message_start already carries its count.
    assert.deepEqual(
      [events[0].data.message.usage.input_tokens, events[0].data.message.usage.output_tokens],
      [usage.input_tokens, 0],
      'message_start reports the prompt tokens',
    );
    return { blocks, stopReason: delta.stop_reason, usage };
  }
  const joined = (block, field) => block.deltas.map((d) => d[field]).join('');

  test('plain text, buffered: one text block, max_tokens stop, usage', async () => {
    const res = await buffered({ model, max_tokens: 8, temperature: 0, messages: [user('Say hello.')] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, '<messageId>');
    assert.equal(res.body.role, 'assistant');
    assert.equal(res.body.content.length, 1);
    assert.equal(res.body.content[0].type, 'text');
    assert.ok(res.body.content[0].text.length > 0);
    assert.equal(res.body.stop_reason, 'max_tokens');
    assert.equal(res.body.usage.output_tokens, 8);
    assert.ok(res.body.usage.input_tokens > 0);
  });

  test('streamed text and usage at the end: text deltas, message_delta with usage; same text as buffered', async () => {
    const events = await streamOf({ model, max_tokens: 8, temperature: 0, messages: [user('Say hello.')] });
    const s = structure(events);
    assert.equal(s.blocks.length, 1);
    assert.equal(s.blocks[0].type, 'text');
    assert.ok(s.blocks[0].deltas.length >= 2 && s.blocks[0].deltas.every((d) => d.type === 'text_delta'));
    assert.equal(s.stopReason, 'max_tokens');
    assert.equal(s.usage.output_tokens, 8);
    const same = await buffered({ model, max_tokens: 8, temperature: 0, messages: [user('Say hello.')] });
    assert.equal(same.body.content[0].text, joined(s.blocks[0], 'text'));
    assert.deepEqual(same.body.usage, s.usage);
  });

  test('tool call forced by name: one tool_use block, input_json_delta fragments parse to a valid input', async () => {
    const events = await streamOf({ model, max_tokens: 60, messages: [user('Weather in Paris?')], tools: [CITY, ALARM], tool_choice: { type: 'tool', name: 'get_weather' } });
    const s = structure(events);
    assert.equal(s.stopReason, 'tool_use');
    const tools = s.blocks.filter((b) => b.type === 'tool_use');
    assert.equal(tools.length, 1);
    assert.equal(tools[0].name, 'get_weather');
    assert.match(tools[0].id, /^call_/);
    assert.deepEqual(tools[0].input, {}, 'input is streamed, not announced');
    assert.ok(tools[0].deltas.length >= 3 && tools[0].deltas.every((d) => d.type === 'input_json_delta'));
    const input = JSON.parse(joined(tools[0], 'partial_json'));
    assert.equal(typeof input.city, 'string');
    assert.ok(['celsius', 'fahrenheit'].includes(input.unit));
  });

  test('tool_choice any: one of the tools, with a parsable input', async () => {
    const events = await streamOf({ model, max_tokens: 60, messages: [user('Do something')], tools: [CITY, ALARM], tool_choice: { type: 'any' } });
    const s = structure(events);
    assert.equal(s.stopReason, 'tool_use');
    const tools = s.blocks.filter((b) => b.type === 'tool_use');
    assert.equal(tools.length, 1);
    assert.ok(['get_weather', 'set_alarm'].includes(tools[0].name));
    assert.equal(typeof JSON.parse(joined(tools[0], 'partial_json')), 'object');
  });

  test('tool result round trip: the call and its result reach the model', async () => {
    const plain = await buffered({ model, max_tokens: 2, messages: [user('Weather in Oslo?')] });
    const res = await buffered({
      model,
      max_tokens: 2,
      messages: [
        user('Weather in Oslo?'),
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { location: 'Oslo' } }] },
        user([{ type: 'tool_result', tool_use_id: 'call_1', content: '{"temp_c":12}' }]),
      ],
    });
    assert.equal(res.status, 200, res.text);
    // The OpenAI matrix pins the exact prompt; here: the call and result turns add ~40 tokens.
    assert.ok(res.body.usage.input_tokens >= plain.body.usage.input_tokens + 40, `${res.body.usage.input_tokens} vs ${plain.body.usage.input_tokens}`);
  });

  test('thinking: a prefilled open thought streams as a thinking block, apart from any text', async () => {
    // The random model never opens a thought by itself; an assistant turn ending inside one does.
    // Messages' smallest thinking budget (1024) is the whole context here, so no budget is set and
    // the thought runs to max_tokens (the OpenAI matrix covers a budget closing it, then text).
    const events = await streamOf({
      model,
      max_tokens: 16,
      messages: [user('What is 2 + 2?'), { role: 'assistant', content: [{ type: 'thinking', thinking: 'Let me think.', signature: 'local' }] }],
    });
    const s = structure(events);
    assert.equal(s.blocks[0].type, 'thinking');
    assert.ok(s.blocks[0].deltas.length > 0 && s.blocks[0].deltas.every((d) => d.type === 'thinking_delta'));
    assert.ok(joined(s.blocks[0], 'thinking').length > 0);
    assert.ok(s.blocks.slice(1).every((b) => b.type === 'text' && b.deltas.every((d) => d.type === 'text_delta')), 'only text after the thought');
    assert.equal(s.stopReason, 'max_tokens');
    assert.equal(s.usage.output_tokens, 16);
  });

  test('error before the first token (prompt larger than the context) → HTTP 400 in Anthropic shape', async () => {
    for (const stream of [false, true]) {
      const res = await postJson(`${rig.url}/v1/messages`, { model, max_tokens: 8, stream, messages: [user('token '.repeat(1500))] });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.type, 'error');
      assert.equal(res.body.error.type, 'invalid_request_error');
      assert.match(res.body.error.message, /maximum context length is 1024 tokens/);
      assert.equal(res.body.request_id, res.headers.get('request-id'));
    }
  });

  test('error after the first token (context fills inside tool arguments) → error event, no message_stop', async () => {
    const essay = { name: 'write', input_schema: { type: 'object', properties: { text: { type: 'string', minLength: 1500 } }, required: ['text'] } };
    const events = await streamOf({ model, max_tokens: 4000, messages: [user('token '.repeat(820))], tools: [essay], tool_choice: { type: 'tool', name: 'write' } });
    assert.deepEqual(events.at(-1), {
      event: 'error',
      data: { type: 'error', error: { type: 'invalid_request_error', message: "The model's context filled up while writing tool call arguments" }, request_id: '<requestId>' },
    });
    assert.deepEqual(events.slice(0, 3).map((e) => e.event), ['message_start', 'ping', 'content_block_start']);
    assert.equal(events[2].data.content_block.name, 'write');
    assert.ok(events.slice(3, -1).length > 0 && events.slice(3, -1).every((e) => e.event === 'content_block_delta'), 'argument deltas, then the error');
  });
});
