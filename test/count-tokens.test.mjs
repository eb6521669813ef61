// POST /v1/messages/count_tokens through the official Anthropic SDK: Anthropic and Bedrock
// upstreams count the prompt themselves (loopback fakes speaking their real wire formats); a
// Bedrock model without token counting, and an OpenAI-compatible upstream, get an estimate. The
// `x-switchboard-token-count` header says which. Upstream failures keep their Anthropic shape.
// Build first: npx tsc -p tsconfig.json
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startServer } from './helpers/server.mjs';
import { fakeTokenCount as anthropicCount, startFakeAnthropic } from './helpers/fake-anthropic-upstream.mjs';
import { fakeTokenCount as bedrockCount, startFakeBedrock } from './helpers/fake-bedrock-upstream.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

const ACCESS_KEY_ID = 'AKIDCOUNTTOKENSTEST';
const SECRET = 'count/tokens+secret';
// The Bedrock provider reads the secret's variable when it signs.
process.env.SB_COUNT_BEDROCK_SECRET = SECRET;

let anthropicFake;
let bedrockFake;
let openaiFake;
let server;
let client;

before(async () => {
  anthropicFake = await startFakeAnthropic({ apiKey: 'sk-ant-count' });
  bedrockFake = await startFakeBedrock({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET });
  openaiFake = await startFakeOpenAI();
  const bedrock = (id, model) => ({
    id,
    provider: 'bedrock',
    model,
    baseUrl: bedrockFake.url,
    region: 'eu-west-3',
    options: { accessKeyId: ACCESS_KEY_ID, secretAccessKeyEnv: 'SB_COUNT_BEDROCK_SECRET' },
  });
  server = await startServer({
    env: { SB_COUNT_ANTHROPIC_KEY: 'sk-ant-count' },
    config: {
      router: { retries: 0 },
      defaultModel: 'claude',
      models: [
        { id: 'claude', provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: anthropicFake.url, apiKeyEnv: 'SB_COUNT_ANTHROPIC_KEY' },
        bedrock('claude-bedrock', 'anthropic.claude-3-7-sonnet-20250219-v1:0'),
        bedrock('profile-bedrock', 'us.anthropic.claude-sonnet-4-6'),
        bedrock('llama-bedrock', 'meta.llama3-70b-instruct-v1:0'),
        { id: 'compat', provider: 'openai', model: 'compat-1', baseUrl: openaiFake.url },
      ],
    },
  });
  client = new Anthropic({ baseURL: server.url, apiKey: 'x', maxRetries: 0 });
});
after(async () => {
  await server?.close();
  await anthropicFake?.close();
  await bedrockFake?.close();
  await openaiFake?.close();
});

const WEATHER_TOOL = { name: 'weather', description: 'Current weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const PROMPT = {
  system: 'You answer in one sentence.',
  messages: [
    { role: 'user', content: 'What is the weather in Lyon?' },
    { role: 'assistant', content: 'Let me check.' },
    { role: 'user', content: 'Thanks; and in Porto?' },
  ],
  tools: [WEATHER_TOOL],
};

async function count(body) {
  const { data, response } = await client.messages.countTokens(body).withResponse();
  return { tokens: data.input_tokens, source: response.headers.get('x-switchboard-token-count') };
}

describe('an Anthropic upstream', () => {
  test("counts the prompt itself: the client gets Anthropic's number for the prompt fields it accepts", async () => {
    const counted = await count({ model: 'claude', ...PROMPT, thinking: { type: 'enabled', budget_tokens: 2048 } });
    const sent = anthropicFake.requests.at(-1);
    assert.equal(sent.url, '/v1/messages/count_tokens');
    assert.equal(sent.headers['x-api-key'], 'sk-ant-count');
    assert.ok(sent.headers['anthropic-version']);
    // Only the prompt's fields: the fake refuses any other ("Extra inputs are not permitted").
    assert.deepEqual(Object.keys(sent.body).sort(), ['messages', 'model', 'system', 'thinking', 'tools']);
    assert.equal(sent.body.model, 'claude-sonnet-4-5');
    assert.deepEqual(sent.body.thinking, { type: 'enabled', budget_tokens: 2048 });
    assert.equal(sent.body.tools[0].name, 'weather');
    assert.equal(sent.body.messages.length, 3);
    assert.deepEqual(counted, { tokens: anthropicCount(sent.body), source: 'upstream' });
  });

  test('an upstream 429 is a 429 rate_limit_error with its Retry-After', async () => {
    anthropicFake.enqueueCount({ status: 429, error: { type: 'rate_limit_error', message: 'slow down' }, headers: { 'retry-after': '9' } });
    await assert.rejects(count({ model: 'claude', ...PROMPT }), (err) => {
      assert.ok(err instanceof Anthropic.RateLimitError, String(err));
      assert.equal(err.headers.get('retry-after'), '9');
      return true;
    });
  });

  test('an answer without input_tokens is a 502 api_error, and the next count works', async () => {
    anthropicFake.enqueueCount({ body: '{"tokens": "many"}' });
    await assert.rejects(count({ model: 'claude', ...PROMPT }), (err) => {
      assert.equal(err.status, 502);
      assert.equal(err.error.error.type, 'api_error');
      assert.match(err.error.error.message, /input_tokens/);
      return true;
    });
    assert.equal((await count({ model: 'claude', messages: PROMPT.messages })).source, 'upstream');
  });
});

describe('a Bedrock upstream', () => {
  test('CountTokens counts the Converse input the chat call would send (signed, without inferenceConfig)', async () => {
    const counted = await count({ model: 'claude-bedrock', ...PROMPT });
    const sent = bedrockFake.requests.at(-1);
    assert.equal(sent.operation, 'count-tokens');
    assert.equal(sent.modelId, 'anthropic.claude-3-7-sonnet-20250219-v1:0');
    assert.equal(sent.signatureValid, true);
    const converse = sent.body.input.converse;
    assert.deepEqual(converse.system, [{ text: PROMPT.system }]);
    assert.equal(converse.messages.length, 3);
    assert.equal(converse.toolConfig.tools[0].toolSpec.name, 'weather');
    assert.equal(converse.inferenceConfig, undefined);
    assert.deepEqual(counted, { tokens: bedrockCount(converse), source: 'upstream' });
  });

  test('a cross-region profile id CountTokens refuses is counted as its base model, which is then asked directly', async () => {
    bedrockFake.enqueueCount({ error: 'ValidationException', message: "The provided model doesn't support counting tokens." });
    const before = bedrockFake.requests.length;
    const first = await count({ model: 'profile-bedrock', ...PROMPT });
    assert.equal(first.source, 'upstream');
    assert.deepEqual(bedrockFake.requests.slice(before).map((r) => r.modelId), ['us.anthropic.claude-sonnet-4-6', 'anthropic.claude-sonnet-4-6']);
    const second = await count({ model: 'profile-bedrock', ...PROMPT });
    assert.deepEqual(second, first);
    assert.deepEqual(bedrockFake.requests.slice(before + 2).map((r) => r.modelId), ['anthropic.claude-sonnet-4-6']);
  });

  test('a model Bedrock cannot count gets an estimate, and is not asked again', async () => {
    bedrockFake.enqueueCount({ error: 'ValidationException', message: "The provided model doesn't support counting tokens." });
    const before = bedrockFake.requests.length;
    const first = await count({ model: 'llama-bedrock', ...PROMPT });
    assert.equal(first.source, 'estimate');
    assert.ok(first.tokens > 0);
    assert.equal(bedrockFake.requests.length, before + 1);
    const second = await count({ model: 'llama-bedrock', ...PROMPT });
    assert.deepEqual(second, first);
    assert.equal(bedrockFake.requests.length, before + 1);
  });

  test('any other ValidationException is a 400 invalid_request_error', async () => {
    bedrockFake.enqueueCount({ error: 'ValidationException', message: 'messages.0.content: too many blocks' });
    await assert.rejects(count({ model: 'claude-bedrock', ...PROMPT }), (err) => {
      assert.equal(err.status, 400);
      assert.equal(err.error.error.type, 'invalid_request_error');
      return true;
    });
  });
});

test('an OpenAI-compatible upstream has no count endpoint: an estimate, without an upstream call', async () => {
  const before = openaiFake.requests.length;
  const counted = await count({ model: 'compat', ...PROMPT });
  assert.equal(counted.source, 'estimate');
  assert.ok(counted.tokens > 0);
  assert.equal(openaiFake.requests.length, before);
});
