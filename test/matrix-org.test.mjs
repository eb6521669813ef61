// Golden matrix, organisation chat dialect (seeds 000/001: POST /api/v3/organizations/{org}/ai/chat
// and /ai/chat/stream) × every provider, over HTTP against the real server. Remote providers
// replay recorded upstream streams (test/fixtures/<provider>/) through their loopback fakes; the
// expected client streams are in test/fixtures/matrix/org/<provider>.json, asserted event by event
// (id:, event: and data: of each). The request id is checked against the x-request-id header,
// then written as "<requestId>". The local provider runs the tiny random-weight model, so its
// cells assert structure. See docs/providers.md, "Golden matrix".
// Build first: npx tsc -p tsconfig.json

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, REMOTE_PROVIDERS, RESET_ERROR, RESET_TEXT, readJsonFixture, startMatrix } from './helpers/matrix.mjs';
import { postJson, readSse } from './helpers/server.mjs';

let rig;
let base;
before(async () => {
  rig = await startMatrix();
  base = `${rig.url}/api/v3/organizations/acme/ai`;
});
after(async () => rig?.close());

const spec = (name, json, description) => ({ toolSpec: { name, ...(description ? { description } : {}), inputSchema: { json } } });
const WEATHER = spec('get_weather', { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['location'] }, 'Current weather');
const TIME = spec('get_time', { type: 'object', properties: { tz: { type: 'string' } } });
const DATE = spec('get_date', { type: 'object', properties: {} });

const user = (content) => ({ role: 'user', content });

/** Replaces the request id (checked against the header) by the fixtures' placeholder, anywhere in `value`. */
function placeholder(value, requestId) {
  assert.match(requestId, /\S/);
  return JSON.parse(JSON.stringify(value).replaceAll(JSON.stringify(requestId), '"<requestId>"'));
}

/** The events of a streamed chat as {id, event, data (parsed)}. */
async function streamOf(body) {
  const res = await fetch(`${base}/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const { events } = await readSse(res);
  return placeholder(
    events.map((e) => ({ id: e.id, event: e.event, data: JSON.parse(e.data) })),
    res.headers.get('x-request-id'),
  );
}

async function buffered(body) {
  const res = await postJson(`${base}/chat`, body);
  return { ...res, body: res.body && placeholder(res.body, res.headers.get('x-request-id')) };
}

describe('organisation chat × remote providers', () => {
  for (const provider of REMOTE_PROVIDERS) {
    describe(provider, () => {
      const modelId = MODELS[provider];
      const expected = readJsonFixture(`matrix/org/${provider}.json`);

      test('plain text, buffered', async () => {
        rig.queue(provider, 'text');
        const res = await buffered({ modelId, messages: [user('Say hello.')] });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, expected['text-buffered']);
      });

      test('streamed text', async () => {
        rig.queue(provider, 'text');
        assert.deepEqual(await streamOf({ modelId, messages: [user('Say hello.')] }), expected['text-stream']);
      });

      test('streamed tool call: arguments split over many upstream deltas arrive as one complete tool_use', async () => {
        rig.queue(provider, 'tool-call');
        const events = await streamOf({ modelId, messages: [user('Weather in San Francisco?')], toolConfig: { tools: [WEATHER] } });
        assert.deepEqual(events, expected['tool-call-stream']);
      });

      test('two parallel tool calls, streamed and buffered (toolUse becomes an array)', async () => {
        rig.queue(provider, 'two-tool-calls');
        const body = { modelId, messages: [user('Weather in Paris, time in Tokyo?')], toolConfig: { tools: [WEATHER, TIME, DATE] } };
        assert.deepEqual(await streamOf(body), expected['two-tool-calls-stream']);
        rig.queue(provider, 'two-tool-calls');
        const res = await buffered(body);
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, expected['two-tool-calls-buffered']);
      });

      test('tool result round trip: the upstream receives the call and its result in its own format', async () => {
        rig.queue(provider, 'text');
        const events = await streamOf({
          modelId,
          messages: [
            user('Weather in Oslo?'),
            { role: 'assistant', content: [{ toolUse: { toolUseId: 'call_1', name: 'get_weather', input: { location: 'Oslo' } } }] },
            { role: 'user', content: [{ toolResult: { toolUseId: 'call_1', content: [{ text: '12 degrees' }] } }] },
          ],
          toolConfig: { tools: [WEATHER] },
        });
        assert.deepEqual(events, expected['text-stream']);
        // OpenAI carries the dialect's tool guidance (a system prompt) in `messages`; the others
        // in a separate field. The turns after it are compared.
        const sent = rig.lastUpstreamBody(provider).messages.filter((m) => m.role !== 'system');
        assert.deepEqual(sent, expected['tool-result-upstream-messages']);
      });

      test('usage at the end of the stream (in done; cached prompt tokens counted as input)', async () => {
        rig.queue(provider, 'usage');
        assert.deepEqual(await streamOf({ modelId, messages: [user('Again?')], maxTokens: 3 }), expected['usage-stream']);
      });

      test('reasoning from the upstream never leaks into content (this dialect has no reasoning field)', async () => {
        rig.queue(provider, 'reasoning');
        assert.deepEqual(await streamOf({ modelId, messages: [user('GCD of 1071 and 462?')] }), expected['reasoning-stream']);
      });

      test('upstream error before the first token → HTTP error in the organisation shape', async () => {
        const want = expected['error-before-first-token'];
        rig.queue(provider, 'error-before');
        const res = await buffered({ modelId, messages: [user('Hi')] });
        assert.equal(res.status, want.status, res.text);
        assert.deepEqual(res.body, want.body);
        for (const [name, value] of Object.entries(want.headers ?? {})) assert.equal(res.headers.get(name), value, name);

        rig.queue(provider, 'error-before');
        const streamed = await postJson(`${base}/chat/stream`, { modelId, messages: [user('Hi')] });
        assert.equal(streamed.status, want.status, streamed.text);
        assert.match(streamed.headers.get('content-type'), /^application\/json/);
        assert.deepEqual(placeholder(streamed.body, streamed.headers.get('x-request-id')), want.body);
      });

      test('upstream error after the first token → in-stream error event, no done', async () => {
        rig.queue(provider, 'error-after');
        assert.deepEqual(await streamOf({ modelId, messages: [user('Hi')] }), expected['error-after-first-token-stream']);
        // Buffered, nothing was sent yet: the same failure is an HTTP error, never a partial 200.
        rig.queue(provider, 'error-after');
        const res = await buffered({ modelId, messages: [user('Hi')] });
        assert.equal(res.status, expected['error-after-first-token-buffered'].status, res.text);
        assert.deepEqual(res.body, expected['error-after-first-token-buffered'].body);
      });

      test('connection cut mid-stream → error event, never a done', async () => {
        rig.queue(provider, 'reset');
        const events = await streamOf({ modelId, messages: [user('Hi')] });
        assert.equal(events[0].event, 'start');
        const last = events.at(-1);
        assert.equal(last.event, 'error');
        assert.deepEqual([last.data.error.type, last.data.error.code, last.data.requestId], ['upstream_error', RESET_ERROR[provider].code, '<requestId>']);
        assert.match(last.data.error.message, RESET_ERROR[provider].message);
        const middle = events.slice(1, -1);
        assert.ok(middle.every((e) => e.event === 'content'));
        assert.equal(middle.map((e) => e.data.delta).join(''), RESET_TEXT[provider]);
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// local: the tiny random-weight model. Text is gibberish, so structure is asserted instead.

describe('organisation chat × local (tiny model: structure, not text)', () => {
  const modelId = MODELS.local;
  const CITY = spec('get_weather', { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'], additionalProperties: false });
  const ALARM = spec('set_alarm', { type: 'object', properties: { enabled: { type: 'boolean' } }, required: ['enabled'], additionalProperties: false });

  /** start first, ids chunk-0…, one terminal event last; returns the events between. */
  function structure(events, terminal = 'done') {
    events.forEach((e, i) => assert.equal(e.id, `chunk-${i}`));
    assert.equal(events[0].event, 'start');
    assert.deepEqual(events[0].data, { requestId: '<requestId>', model: modelId, streaming: true });
    assert.equal(events.at(-1).event, terminal);
    assert.equal(events.filter((e) => e.event === 'done' || e.event === 'error').length, 1, 'exactly one done or error');
    return events.slice(1, -1);
  }

  test('plain text, buffered: content, finishReason length at maxTokens, usage sums', async () => {
    const res = await buffered({ modelId, messages: [user('Say hello.')], maxTokens: 8, temperature: 0 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.response.role, 'assistant');
    assert.ok(res.body.response.content.length > 0);
    assert.equal(res.body.response.toolUse, undefined);
    assert.equal(res.body.finishReason, 'length');
    assert.equal(res.body.requestId, '<requestId>');
    const u = res.body.usage;
    assert.ok(u.inputTokens > 0);
    assert.equal(u.outputTokens, 8);
    assert.equal(u.totalTokens, u.inputTokens + u.outputTokens);
  });

  test('streamed text and usage at the end: start, content deltas, done with usage; same text as buffered', async () => {
    const events = await streamOf({ modelId, messages: [user('Say hello.')], maxTokens: 8, temperature: 0 });
    const middle = structure(events);
    assert.ok(middle.length >= 2 && middle.every((e) => e.event === 'content' && e.data.complete === false && e.data.delta.length > 0));
    const done = events.at(-1).data;
    assert.equal(done.complete, true);
    assert.equal(done.finishReason, 'length');
    assert.equal(done.usage.outputTokens, 8);
    assert.equal(done.usage.totalTokens, done.usage.inputTokens + 8);
    const same = await buffered({ modelId, messages: [user('Say hello.')], maxTokens: 8, temperature: 0 });
    assert.equal(same.body.response.content, middle.map((e) => e.data.delta).join(''));
    assert.deepEqual(same.body.usage, done.usage);
  });

  test('tool call forced by name (toolChoice {tool}): one complete tool_use, input matches the schema', async () => {
    const events = await streamOf({ modelId, messages: [user('Weather in Paris?')], toolConfig: { tools: [CITY, ALARM], toolChoice: { tool: { name: 'get_weather' } } }, maxTokens: 60 });
    const middle = structure(events);
    const uses = middle.filter((e) => e.event === 'tool_use');
    assert.equal(uses.length, 1);
    const { toolUse } = uses[0].data;
    assert.equal(toolUse.name, 'get_weather');
    assert.match(toolUse.toolUseId, /^call_/);
    assert.equal(typeof toolUse.input.city, 'string');
    assert.ok(['celsius', 'fahrenheit'].includes(toolUse.input.unit));
    assert.equal(events.at(-1).data.finishReason, 'tool_use');
  });

  test('tool call required (toolChoice {any}): one of the tools, with an object input', async () => {
    const events = await streamOf({ modelId, messages: [user('Do something')], toolConfig: { tools: [CITY, ALARM], toolChoice: { any: {} } }, maxTokens: 60 });
    const uses = structure(events).filter((e) => e.event === 'tool_use');
    assert.equal(uses.length, 1);
    assert.ok(['get_weather', 'set_alarm'].includes(uses[0].data.toolUse.name));
    assert.equal(typeof uses[0].data.toolUse.input, 'object');
    assert.equal(events.at(-1).data.finishReason, 'tool_use');
  });

  test('tool result round trip: the result reaches the model (prompt grows by the call and result)', async () => {
    const question = { modelId, messages: [user('Weather in Oslo?')], maxTokens: 2 };
    const plain = await buffered(question);
    const res = await buffered({
      ...question,
      messages: [
        user('Weather in Oslo?'),
        { role: 'assistant', content: [{ toolUse: { toolUseId: 'call_1', name: 'get_weather', input: { location: 'Oslo' } } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'call_1', content: [{ json: { temp_c: 12 } }] } }] },
      ],
    });
    assert.equal(res.status, 200, res.text);
    // The OpenAI matrix pins the exact prompt; here: the call and result turns add ~40 tokens.
    assert.ok(res.body.usage.inputTokens >= plain.body.usage.inputTokens + 40, `${res.body.usage.inputTokens} vs ${plain.body.usage.inputTokens}`);
    assert.equal(res.body.usage.outputTokens, 2);
  });

  test('error before the first token (prompt larger than the context) → HTTP 400 in the organisation shape', async () => {
    for (const route of ['chat', 'chat/stream']) {
      const res = await postJson(`${base}/${route}`, { modelId, messages: [user('token '.repeat(1500))] });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.type, 'context_length_exceeded');
      assert.equal(res.body.error.code, 'context_length_exceeded');
      assert.equal(res.body.error.field, 'messages');
      assert.equal(res.body.requestId, res.headers.get('x-request-id'));
    }
  });

  test('error after the first token (context fills inside tool arguments) → error event, no done', async () => {
    const essay = spec('write', { type: 'object', properties: { text: { type: 'string', minLength: 1500 } }, required: ['text'] });
    // The prompt (tool guidance included) leaves about 60 tokens of the 1024-token context.
    const events = await streamOf({ modelId, messages: [user('token '.repeat(760))], toolConfig: { tools: [essay], toolChoice: { tool: { name: 'write' } } } });
    structure(events, 'error');
    assert.deepEqual(events.at(-1).data, {
      error: { type: 'context_length_exceeded', message: "The model's context filled up while writing tool call arguments", code: 'context_length_exceeded' },
      requestId: '<requestId>',
    });
    // The call never completed, so it is never announced half-way.
    assert.ok(!events.some((e) => e.event === 'tool_use'));
  });
});
