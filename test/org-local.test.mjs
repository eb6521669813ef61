// The organisation chat on the real local provider (tiny test model): a buffered and a streamed
// call, and a forced tool call that comes through exactly as it does through the OpenAI dialect.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLocalProvider } from '../dist/providers/local/index.js';
import { TOOL_GUIDANCE } from '../dist/dialects/org/parse-request.js';
import { ensureTestModel } from './helpers/model.mjs';
import { postJson, readSse, startServer } from './helpers/server.mjs';

let server;
let base;
const weather = {
  name: 'get_weather',
  description: 'Current weather in a city',
  schema: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'], additionalProperties: false },
};

before(async () => {
  server = await startServer({
    config: {
      local: { threads: 1, parallel: 2, contextSize: 1024 },
      models: [{ id: 'tiny', provider: 'local', model: ensureTestModel(), contextLength: 1024 }],
    },
    providers: { local: createLocalProvider },
  });
  base = `${server.url}/api/v3/organizations/acme/ai`;
});
after(() => server.close());

test('buffered call on the local model', async () => {
  const res = await postJson(`${base}/chat`, { modelId: 'tiny', messages: [{ role: 'user', content: 'Say hello.' }], maxTokens: 12, temperature: 0 });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.body).sort(), ['finishReason', 'model', 'requestId', 'response', 'usage']);
  assert.equal(res.body.response.role, 'assistant');
  assert.equal(typeof res.body.response.content, 'string');
  assert.equal(res.body.model, 'tiny');
  assert.ok(['stop', 'length'].includes(res.body.finishReason));
  const { inputTokens, outputTokens, totalTokens } = res.body.usage;
  assert.ok(inputTokens > 0 && outputTokens > 0 && outputTokens <= 12);
  assert.equal(totalTokens, inputTokens + outputTokens);
});

test('streamed call on the local model: start, content deltas, done with usage', async () => {
  const res = await fetch(`${base}/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ modelId: 'tiny', messages: [{ role: 'user', content: 'Count to three.' }], maxTokens: 10, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  const { events } = await readSse(res);
  assert.equal(events[0].event, 'start');
  assert.deepEqual(JSON.parse(events[0].data), { requestId: res.headers.get('x-request-id'), model: 'tiny', streaming: true });
  const done = events.at(-1);
  assert.equal(done.event, 'done');
  const content = events.slice(1, -1);
  assert.ok(content.length > 0);
  events.forEach((e, i) => assert.equal(e.id, `chunk-${i}`));
  for (const e of content) {
    assert.equal(e.event, 'content');
    const data = JSON.parse(e.data);
    assert.equal(data.complete, false);
    assert.equal(typeof data.delta, 'string');
  }
  const usage = JSON.parse(done.data).usage;
  assert.equal(JSON.parse(done.data).complete, true);
  assert.ok(usage.outputTokens > 0 && usage.outputTokens <= 10);
});

test('a forced tool call comes through the org dialect exactly as through the OpenAI dialect', async () => {
  const org = await postJson(`${base}/chat`, {
    modelId: 'tiny',
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    maxTokens: 60,
    temperature: 0,
    toolConfig: { tools: [{ toolSpec: { name: weather.name, description: weather.description, inputSchema: { json: weather.schema } } }], toolChoice: { tool: { name: 'get_weather' } } },
  });
  assert.equal(org.status, 200, org.text);
  assert.equal(org.body.finishReason, 'tool_use');
  const use = org.body.response.toolUse;
  assert.equal(use.name, 'get_weather');
  assert.match(use.toolUseId, /^call_/);
  assert.equal(typeof use.input.city, 'string');
  assert.deepEqual(Object.keys(use.input), ['city']);

  // The same canonical request through /v1/chat/completions (the org dialect's tool guidance
  // is its system message) gives the same call.
  const openai = await postJson(`${server.url}/v1/chat/completions`, {
    model: 'tiny',
    messages: [{ role: 'system', content: TOOL_GUIDANCE }, { role: 'user', content: 'Weather in Paris?' }],
    max_tokens: 60,
    temperature: 0,
    tools: [{ type: 'function', function: { name: weather.name, description: weather.description, parameters: weather.schema } }],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  assert.equal(openai.status, 200, openai.text);
  const call = openai.body.choices[0].message.tool_calls[0];
  assert.equal(openai.body.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, use.name);
  assert.deepEqual(JSON.parse(call.function.arguments), use.input);
});

test('a forced tool call streams as one tool_use event', async () => {
  const res = await fetch(`${base}/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      modelId: 'tiny',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      maxTokens: 60,
      temperature: 0,
      toolConfig: { tools: [{ toolSpec: { name: weather.name, inputSchema: { json: weather.schema } } }], toolChoice: { any: {} } },
    }),
  });
  const { events } = await readSse(res);
  assert.deepEqual(events.map((e) => e.event), ['start', 'tool_use', 'done']);
  const { toolUse } = JSON.parse(events[1].data);
  assert.equal(toolUse.name, 'get_weather');
  assert.equal(typeof toolUse.input.city, 'string');
  assert.equal(JSON.parse(events[2].data).finishReason, 'tool_use');
});
