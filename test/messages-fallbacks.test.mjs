// Server-side fallback on a refusal (`fallbacks` on POST /v1/messages, src/dialects/messages/
// fallbacks.ts), with the official Anthropic SDK in front and loopback upstreams speaking the real
// wire formats behind: a model served by Anthropic declines (stop_reason "refusal"), the same
// request goes to the next model — on Anthropic, or on an OpenAI-compatible upstream — and the
// response carries what the declining model wrote, a `fallback` block at the boundary, and
// usage.iterations with each model's tokens.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { createAnthropicProvider } from '../dist/providers/anthropic/index.js';
import { startServer } from './helpers/server.mjs';
import { anthropicAnswerSse, loadAnthropicFixture, startFakeAnthropic } from './helpers/fake-anthropic-upstream.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

const ADMIN = 'admin-secret-fallbacks';
const BETA = 'server-side-fallback-2026-06-01';
let anthropic;
let openai;
let s;
let client;

before(async () => {
  [anthropic, openai] = await Promise.all([startFakeAnthropic(), startFakeOpenAI()]);
  const claude = (id, model, extra = {}) => ({ id, provider: 'anthropic', model, baseUrl: anthropic.url, apiKeyEnv: 'ANTHROPIC_TEST_KEY', ...extra });
  s = await startServer({
    providers: { anthropic: createAnthropicProvider },
    env: { ANTHROPIC_TEST_KEY: 'sk-ant-test', SWITCHBOARD_ADMIN_KEY: ADMIN },
    config: {
      router: { retries: 0 },
      defaultModel: 'fable',
      models: [
        claude('fable', 'claude-fable-5'),
        claude('opus', 'claude-opus-4-8'),
        claude('haiku', 'claude-haiku-4-5'),
        // Its configured content-policy fallbacks are what `fallbacks: "default"` names.
        claude('fable-default', 'claude-fable-5', { routing: { contentPolicyFallbacks: ['opus'] } }),
        { id: 'gpt', provider: 'openai', model: 'gpt-up', baseUrl: openai.url },
        // Nothing listens there: a fallback that cannot start.
        { id: 'down', provider: 'openai', model: 'gone', baseUrl: 'http://127.0.0.1:9/v1' },
      ],
    },
  });
  client = new Anthropic({ baseURL: s.url, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await s.close();
  await Promise.all([anthropic.close(), openai.close()]);
});

const DETAILS = { type: 'refusal', category: 'cyber', explanation: 'Declined under the usage policy.' };
/** text.sse ("Hello, wörld! 👋", 25 in / 6 out) ending in a refusal. */
const refusalSse = (details = DETAILS) =>
  loadAnthropicFixture('text.sse').replace('"stop_reason":"end_turn","stop_sequence":null', `"stop_reason":"refusal","stop_sequence":null,"stop_details":${JSON.stringify(details)}`);
/** An answer with text and counts of its own. */
const answerSse = (text, input, output) => anthropicAnswerSse(text, { input, output });
const ask = (extra = {}) => ({ model: 'fable', max_tokens: 50, messages: [{ role: 'user', content: 'Tell me.' }], betas: [BETA], ...extra });
const boundary = (from, to, category = 'cyber') => ({ type: 'fallback', from: { model: from }, to: { model: to }, trigger: { type: 'refusal', category } });
const iteration = (type, model, input, output) => ({ type, model, input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cache_creation: null });
const rawPost = (body) =>
  fetch(`${s.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body) });
const sseEvents = (text) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)));

test('a refusal goes on to the fallback: what the declining model wrote, a fallback block, the answer; usage.iterations per model', async () => {
  const before = anthropic.requests.length;
  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('Served by opus.', 30, 4) });
  const { data: message, response } = await client.beta.messages.create(ask({ fallbacks: [{ model: 'opus' }] })).withResponse();
  assert.deepEqual(message.content, [{ type: 'text', text: 'Hello, wörld! 👋', citations: null }, boundary('fable', 'opus'), { type: 'text', text: 'Served by opus.', citations: null }]);
  // A buffered reply's served-by headers name the call that answered, as its body does.
  assert.equal(response.headers.get('x-switchboard-model'), 'opus');
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.stop_details, null, "the refusal's details were the declining model's");
  assert.equal(message.model, 'opus', 'the model that answered');
  assert.equal(message.usage.input_tokens, 30);
  assert.equal(message.usage.output_tokens, 4);
  assert.deepEqual(message.usage.iterations, [iteration('message', 'fable', 25, 6), iteration('fallback_message', 'opus', 30, 4)]);
  // The same request, to each model in turn.
  const [first, second] = anthropic.requests.slice(before).map((r) => r.body);
  assert.deepEqual([first.model, second.model], ['claude-fable-5', 'claude-opus-4-8']);
  assert.deepEqual(second.messages, first.messages);
  assert.equal(second.max_tokens, 50);
});

test('streamed: one message_start, the boundary block between the two models’ blocks (no deltas), iterations on message_delta; the SDK’s stream adds up to the same message', async () => {
  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('Streamed by opus.', 30, 4) });
  const res = await rawPost({ ...ask({ fallbacks: [{ model: 'opus' }], stream: true }), betas: undefined });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-switchboard-model'), 'fable', 'a stream names the model it began with: its headers left before any fallback');
  const events = sseEvents(await res.text());
  assert.equal(events.filter((e) => e.type === 'message_start').length, 1);
  assert.equal(events.filter((e) => e.type === 'message_stop').length, 1);
  const starts = events.filter((e) => e.type === 'content_block_start');
  assert.deepEqual(starts.map((e) => [e.index, e.content_block.type]), [[0, 'text'], [1, 'fallback'], [2, 'text']]);
  assert.deepEqual(starts[1].content_block, boundary('fable', 'opus'));
  assert.equal(events.filter((e) => e.type === 'content_block_delta' && e.index === 1).length, 0);
  // Each block stops before the next starts, as Anthropic streams them.
  const order = events.filter((e) => e.type.startsWith('content_block_') && e.type !== 'content_block_delta').map((e) => `${e.type.slice(14)}${e.index}`);
  assert.deepEqual(order, ['start0', 'stop0', 'start1', 'stop1', 'start2', 'stop2']);
  const delta = events.find((e) => e.type === 'message_delta');
  assert.equal(delta.delta.stop_reason, 'end_turn');
  assert.deepEqual(delta.usage.iterations, [iteration('message', 'fable', 25, 6), iteration('fallback_message', 'opus', 30, 4)]);

  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('Streamed by opus.', 30, 4) });
  const final = await client.beta.messages.stream(ask({ fallbacks: [{ model: 'opus' }] })).finalMessage();
  assert.deepEqual(final.content, [{ type: 'text', text: 'Hello, wörld! 👋', citations: null }, boundary('fable', 'opus'), { type: 'text', text: 'Streamed by opus.', citations: null }]);
  assert.deepEqual(final.usage.iterations, delta.usage.iterations);
});

test('any model behind the gateway can take over: an OpenAI-compatible upstream answers, and its own refusal (content_filter) hands on too', async () => {
  anthropic.enqueue({ sse: refusalSse() });
  openai.enqueue({ type: 'text', text: 'From the OpenAI-compatible upstream.', chunks: 2 });
  const message = await client.beta.messages.create(ask({ fallbacks: [{ model: 'gpt' }] }));
  assert.deepEqual(message.content.slice(1), [boundary('fable', 'gpt'), { type: 'text', text: 'From the OpenAI-compatible upstream.', citations: null }]);
  assert.equal(openai.requests.at(-1).body.model, 'gpt-up');

  openai.enqueue({ type: 'text', text: 'I will not.', finishReason: 'content_filter' });
  anthropic.enqueue({ sse: answerSse('Opus instead.', 9, 3) });
  const handedOn = await client.beta.messages.create(ask({ model: 'gpt', fallbacks: [{ model: 'opus' }] }));
  assert.deepEqual(handedOn.content, [{ type: 'text', text: 'I will not.', citations: null }, boundary('gpt', 'opus', null), { type: 'text', text: 'Opus instead.', citations: null }]);
});

test('every model declines: the last refusal stands, with each boundary; a fallback that cannot start is passed over without one', async () => {
  const last = { type: 'refusal', category: 'bio', explanation: 'Declined too.' };
  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: refusalSse(last) });
  const exhausted = await client.beta.messages.create(ask({ fallbacks: [{ model: 'opus' }] }));
  assert.equal(exhausted.stop_reason, 'refusal');
  assert.deepEqual(exhausted.stop_details, last);
  assert.deepEqual(exhausted.content.map((b) => b.type), ['text', 'fallback', 'text']);
  assert.deepEqual(exhausted.usage.iterations.map((i) => [i.type, i.model]), [['message', 'fable'], ['fallback_message', 'opus']]);

  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('Haiku here.', 5, 2) });
  const skipped = await client.beta.messages.create(ask({ fallbacks: [{ model: 'down' }, { model: 'haiku' }] }));
  assert.deepEqual(skipped.content.slice(1), [boundary('fable', 'haiku'), { type: 'text', text: 'Haiku here.', citations: null }]);
  assert.ok(s.logLines.some((l) => l.includes('a fallback model could not start')), 'the skipped model is logged');

  // None starts: the refusal stands as it came, without a boundary or iterations.
  anthropic.enqueue({ sse: refusalSse() });
  const alone = await client.beta.messages.create(ask({ fallbacks: [{ model: 'down' }] }));
  assert.equal(alone.stop_reason, 'refusal');
  assert.deepEqual(alone.content.map((b) => b.type), ['text']);
  assert.equal('iterations' in alone.usage, false);
});

test('no refusal, no fallback call; "default" is the model’s configured contentPolicyFallbacks', async () => {
  const before = anthropic.requests.length;
  anthropic.enqueue({ sse: answerSse('Fine.', 5, 1) });
  const plain = await client.beta.messages.create(ask({ fallbacks: [{ model: 'opus' }] }));
  assert.deepEqual(plain.content, [{ type: 'text', text: 'Fine.', citations: null }]);
  assert.equal('iterations' in plain.usage, false);
  assert.equal(anthropic.requests.length, before + 1);

  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('Default chain.', 5, 1) });
  const byDefault = await client.beta.messages.create(ask({ model: 'fable-default', fallbacks: 'default' }));
  assert.deepEqual(byDefault.content[1], boundary('fable-default', 'opus'));
  // A model with none configured answers alone.
  anthropic.enqueue({ sse: refusalSse() });
  const none = await client.beta.messages.create(ask({ fallbacks: 'default' }));
  assert.equal(none.stop_reason, 'refusal');
});

test("an entry's overrides apply to its attempt only: max_tokens, output_config, thinking null (the model's default)", async () => {
  const before = anthropic.requests.length;
  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('{"ok":true}', 5, 3) });
  const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
  await client.beta.messages.create(
    ask({
      max_tokens: 2048,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      fallbacks: [{ model: 'opus', max_tokens: 77, thinking: null, output_config: { format: { type: 'json_schema', schema } } }],
    }),
  );
  const [first, second] = anthropic.requests.slice(before).map((r) => r.body);
  assert.equal(first.max_tokens, 2048);
  assert.deepEqual(first.thinking, { type: 'enabled', budget_tokens: 1024 });
  assert.equal(first.tools, undefined);
  assert.equal(second.max_tokens, 77);
  assert.equal(second.thinking, undefined, 'null: the model runs without the request’s thinking');
  // JSON output reaches Anthropic as the answer tool the provider emulates it with, on this attempt only.
  assert.deepEqual(second.tools?.map((t) => t.input_schema), [schema]);
});

test('a fallback turn sent back as history is accepted; its boundary block is not part of the prompt', async () => {
  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('First answer.', 5, 2) });
  const first = await client.beta.messages.create(ask({ fallbacks: [{ model: 'opus' }] }));
  anthropic.enqueue({ sse: answerSse('Second answer.', 5, 2) });
  const history = [{ role: 'user', content: 'Tell me.' }, { role: 'assistant', content: first.content }, { role: 'user', content: 'More.' }];
  const second = await client.beta.messages.create(ask({ model: 'opus', messages: history }));
  assert.equal(second.content[0].text, 'Second answer.');
  const sent = anthropic.requests.at(-1).body.messages[1].content;
  assert.deepEqual(sent.map((b) => b.type), ['text', 'text']);
  // Only an assistant turn holds one.
  const misplaced = await rawPost({ model: 'opus', max_tokens: 5, messages: [{ role: 'user', content: [boundary('fable', 'opus')] }] });
  assert.equal(misplaced.status, 400);
});

test('bad chains are a 400 naming the entry, before any model runs; threads and mcp_servers do not combine with fallbacks', async () => {
  const before = anthropic.requests.length;
  const refused = async (body, pattern) => {
    const res = await rawPost(body);
    const json = await res.json();
    assert.equal(res.status, 400, JSON.stringify(json));
    assert.equal(json.error.type, 'invalid_request_error');
    assert.match(json.error.message, pattern);
    return json;
  };
  const base = { model: 'fable', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] };
  await refused({ ...base, fallbacks: [{ model: 'nope' }] }, /fallbacks\[0\]\.model/);
  await refused({ ...base, fallbacks: [{ model: 'opus' }, { model: 'opus' }] }, /fallbacks\[1\]\.model.*already in the chain/);
  await refused({ ...base, fallbacks: [{ model: 'fable' }] }, /already in the chain/);
  await refused({ ...base, fallbacks: [{ model: 'opus' }, { model: 'haiku' }, { model: 'gpt' }, { model: 'down' }] }, /fallbacks/);
  await refused({ ...base, fallbacks: [] }, /fallbacks/);
  await refused({ ...base, fallbacks: [{ model: 'opus', temperature: 1 }] }, /fallbacks/);
  await refused({ ...base, fallbacks: [{ model: 'gpt', speed: 'fast' }] }, /fallbacks\[0\].*speed/);
  await refused({ ...base, fallbacks: [{ model: 'opus' }], mcp_servers: [{ type: 'url', url: 'https://example.com/mcp', name: 'm' }] }, /mcp_servers/);
  const threaded = await refused({ ...base, fallbacks: [{ model: 'opus' }], thread: { type: 'create' } }, /fallbacks/);
  assert.deepEqual(threaded.error.details, { error_code: 'thread_unsupported_request', unsupported: ['fallbacks'] });
  assert.equal(anthropic.requests.length, before, 'no model ran');
});

test('each model’s call is accounted: the request log has the declining and the serving call, under the request id and <id>-f1', async () => {
  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('Counted.', 30, 4) });
  const { response } = await client.beta.messages.create(ask({ fallbacks: [{ model: 'opus' }] })).withResponse();
  const id = response.headers.get('request-id');
  const res = await fetch(`${s.url}/admin/requests?limit=100`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const rows = (await res.json()).data.filter((r) => r.id === id || r.id === `${id}-f1`);
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  assert.equal(byId[id]?.model, 'fable');
  assert.equal(byId[id].output_tokens, 6);
  assert.equal(byId[`${id}-f1`]?.model, 'opus');
  assert.equal(byId[`${id}-f1`].output_tokens, 4);
  // The HTTP request's one log line sums both calls.
  const line = s.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.reqId === id);
  assert.deepEqual([line?.model, line?.inputTokens, line?.outputTokens], ['fable,opus', 55, 10]);
});

test('an async run takes the same chain: its events and its final message carry the boundary and the iterations', async () => {
  anthropic.enqueue({ sse: refusalSse() });
  anthropic.enqueue({ sse: answerSse('Async by opus.', 30, 4) });
  const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
  const submitted = await fetch(`${s.url}/v1/messages/async`, { method: 'POST', headers, body: JSON.stringify({ ...ask({ fallbacks: [{ model: 'opus' }] }), betas: undefined }) });
  assert.equal(submitted.status, 202);
  const { message_id: id } = await submitted.json();
  // The observer's stream ends when the run does.
  const events = sseEvents(await (await fetch(`${s.url}/v1/messages/async/${id}/events`, { headers })).text());
  assert.deepEqual(events.filter((e) => e.type === 'content_block_start').map((e) => e.content_block.type), ['text', 'fallback', 'text']);
  const run = await (await fetch(`${s.url}/v1/messages/async/${id}`, { headers })).json();
  assert.equal(run.status, 'completed');
  const { message } = run;
  assert.deepEqual(message.content[1], boundary('fable', 'opus'));
  assert.deepEqual(message.usage.iterations.map((i) => i.type), ['message', 'fallback_message']);
  // The run's usage counts both models.
  assert.equal(run.usage.output_tokens, 10);
});
