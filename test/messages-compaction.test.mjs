// Compaction requests (`compaction: {type: "summarize"}` on POST /v1/messages,
// src/dialects/messages/compaction.ts), with the Anthropic SDK in front of a loopback Anthropic
// upstream: the model is asked for a summary of the conversation, the response holds only a
// `compaction` block (stop_reason "compaction"), and a later request that sends the block first
// gets the summary in front of its conversation instead of the turns it replaced. The SDK's tool
// runner compacting against the local model is in sdk-helpers-local.test.mjs.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicAnswerSse } from './helpers/fake-anthropic-upstream.mjs';
import { notAnthropicAlone, startAnthropicGateway } from './helpers/anthropic-gateway.mjs';

let gateway;
let fake;
let s;
let client;

before(async () => {
  gateway = await startAnthropicGateway((claude, upstream) => [
    claude('claude'),
    // The gateway applies context_management (autocompact included) itself for this one.
    notAnthropicAlone('other', upstream),
  ]);
  ({ fake, server: s, client } = gateway);
});

after(() => gateway.close());

/** An answer of `text` (30 in / 9 out). */
const answerSse = (text) => anthropicAnswerSse(text, { input: 30, output: 9 });
const SUMMARY = 'The user asked about tides; the assistant explained the moon.';
const conversation = [
  { role: 'user', content: 'Why are there tides?' },
  { role: 'assistant', content: 'Mostly the moon.' },
  { role: 'user', content: 'And the sun?' },
];
const ask = (extra = {}) => ({ model: 'claude', max_tokens: 300, system: 'Be brief.', messages: conversation, compaction: { type: 'summarize' }, ...extra });
const rawPost = (path, body) =>
  fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body) });

test('a compaction request answers with one compaction block holding the summary; stop_reason compaction; the model was asked for a summary of the conversation', async () => {
  fake.enqueue({ sse: answerSse(SUMMARY) });
  const message = await client.beta.messages.create(ask());
  assert.deepEqual(message.content, [{ type: 'compaction', content: SUMMARY, encrypted_content: null }]);
  assert.equal(message.stop_reason, 'compaction');
  assert.deepEqual(message.usage.iterations, [{ type: 'compaction', input_tokens: 30, output_tokens: 9, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cache_creation: null }]);
  const sent = fake.requests.at(-1).body;
  assert.deepEqual(sent.system, [{ type: 'text', text: 'Be brief.' }]);
  // The conversation as it was, then the request for a summary.
  assert.deepEqual(sent.messages.slice(0, 2), [
    { role: 'user', content: [{ type: 'text', text: 'Why are there tides?' }] },
    { role: 'assistant', content: [{ type: 'text', text: 'Mostly the moon.' }] },
  ]);
  const asked = JSON.stringify(sent.messages.at(-1));
  assert.match(asked, /And the sun\?/);
  assert.match(asked, /Summarize the conversation above/);

  fake.enqueue({ sse: answerSse(SUMMARY) });
  await client.beta.messages.create(ask({ compaction: { type: 'summarize', instructions: 'Three words only.' } }));
  assert.match(JSON.stringify(fake.requests.at(-1).body.messages.at(-1)), /Three words only\./);
});

test('streamed: a compaction block start, one compaction_delta with the whole summary, its stop; the SDK stream adds up to the same block', async () => {
  fake.enqueue({ sse: answerSse(SUMMARY) });
  const res = await rawPost('/v1/messages', { ...ask(), stream: true });
  const events = (await res.text())
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)));
  const blockEvents = events.filter((e) => e.type.startsWith('content_block_'));
  assert.deepEqual(blockEvents, [
    { type: 'content_block_start', index: 0, content_block: { type: 'compaction', content: null, encrypted_content: null } },
    { type: 'content_block_delta', index: 0, delta: { type: 'compaction_delta', content: SUMMARY, encrypted_content: null } },
    { type: 'content_block_stop', index: 0 },
  ]);
  assert.equal(events.find((e) => e.type === 'message_delta').delta.stop_reason, 'compaction');

  fake.enqueue({ sse: answerSse(SUMMARY) });
  const final = await client.beta.messages.stream(ask()).finalMessage();
  assert.deepEqual(final.content, [{ type: 'compaction', content: SUMMARY, encrypted_content: null }]);
});

test('the compaction block sent back first stands in for the turns it replaced: the summary goes in front, as a note in the user turn', async () => {
  fake.enqueue({ sse: answerSse('Partly the sun too.') });
  const compacted = [{ role: 'assistant', content: [{ type: 'compaction', content: SUMMARY, encrypted_content: null }] }, { role: 'user', content: 'And the sun?' }];
  const message = await client.beta.messages.create({ model: 'claude', max_tokens: 50, system: 'Be brief.', messages: compacted });
  assert.equal(message.content[0].text, 'Partly the sun too.');
  const sent = fake.requests.at(-1).body;
  assert.deepEqual(sent.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.equal(sent.messages.length, 1, 'the note and the new message make one user turn');
  const [note, question] = sent.messages[0].content;
  assert.ok(note.text.includes(SUMMARY) && note.text.startsWith('Summary of the conversation'), note.text);
  assert.deepEqual(question, { type: 'text', text: 'And the sun?' });
  // The block alone is a conversation the model can answer.
  fake.enqueue({ sse: answerSse('Go on.') });
  await client.beta.messages.create({ model: 'claude', max_tokens: 50, messages: compacted.slice(0, 1) });
  assert.equal(fake.requests.at(-1).body.messages[0].role, 'user');
  // A failed compaction (no summary) changes nothing.
  fake.enqueue({ sse: answerSse('ok') });
  await client.beta.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'assistant', content: [{ type: 'compaction', content: null }] }, { role: 'user', content: 'Hi' }] });
  assert.deepEqual(fake.requests.at(-1).body.messages, [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);
});

test('the whole history sent back with a compaction block in it (as after autocompact): the turns before the last summary are left out', async () => {
  fake.enqueue({ sse: answerSse('Still cloudy.') });
  const history = [
    { role: 'user', content: 'Weather in Oslo?' },
    { role: 'assistant', content: 'Cloudy.' },
    { role: 'user', content: 'And tomorrow?' },
    { role: 'assistant', content: [{ type: 'compaction', content: SUMMARY, encrypted_content: null }, { type: 'text', text: 'Rain tomorrow.' }] },
    { role: 'user', content: 'And after?' },
  ];
  await client.beta.messages.create({ model: 'claude', max_tokens: 50, messages: history });
  const sent = fake.requests.at(-1).body.messages;
  assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'user']);
  assert.ok(sent[0].content[0].text.includes(SUMMARY), 'the summary first');
  assert.ok(!JSON.stringify(sent).includes('Weather in Oslo?'), 'nothing before it');
  assert.deepEqual(sent.slice(1), [{ role: 'assistant', content: [{ type: 'text', text: 'Rain tomorrow.' }] }, { role: 'user', content: [{ type: 'text', text: 'And after?' }] }]);
  // A failed compaction (no summary) stands in for nothing: everything goes.
  fake.enqueue({ sse: answerSse('ok') });
  await client.beta.messages.create({ model: 'claude', max_tokens: 50, messages: [history[0], { role: 'assistant', content: [{ type: 'compaction', content: null }, { type: 'text', text: 'Cloudy.' }] }, history[4]] });
  assert.equal(fake.requests.at(-1).body.messages[0].content[0].text, 'Weather in Oslo?');
});

test('a compaction request refuses what only shapes a reply, and context_management; a compaction block only in an assistant turn, never empty', async () => {
  const before = fake.requests.length;
  const refused = async (body, field) => {
    const res = await rawPost('/v1/messages', body);
    const json = await res.json();
    assert.equal(res.status, 400, JSON.stringify(json));
    assert.equal(json.error.type, 'invalid_request_error');
    assert.match(json.error.message, new RegExp(field.replace('.', '\\.')));
  };
  await refused(ask({ stop_sequences: ['END'] }), 'stop_sequences');
  await refused(ask({ output_config: { format: { type: 'json_schema', schema: { type: 'object' } } } }), 'output_config.format');
  await refused(ask({ context_management: { edits: [{ type: 'clear_thinking_20251015' }] } }), 'context_management');
  await refused(ask({ tools: [{ name: 't', input_schema: { type: 'object' } }], tool_choice: { type: 'any' } }), 'tool_choice');
  await refused(ask({ fallbacks: [{ model: 'claude' }] }), 'fallbacks');
  await refused(ask({ compaction: { type: 'rewrite' } }), 'compaction');
  await refused({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'compaction', content: SUMMARY }] }] }, 'compaction');
  await refused({ model: 'claude', max_tokens: 5, messages: [{ role: 'assistant', content: [{ type: 'compaction', content: '' }] }, { role: 'user', content: 'x' }] }, 'content');
  assert.equal(fake.requests.length, before, 'no model ran');
});

test("autocompact (context_management's compact_20260112) for a model Anthropic does not serve alone: past the trigger, the summary's block, then the answer from it", async () => {
  const autocompact = (extra = {}) => ({ context_management: { edits: [{ type: 'compact_20260112', trigger: { type: 'input_tokens', value: 1 }, ...extra }] } });
  const before = fake.requests.length;
  fake.enqueue({ sse: answerSse(SUMMARY) });
  fake.enqueue({ sse: answerSse('Partly the sun.') });
  const message = await client.beta.messages.create({ model: 'other', max_tokens: 300, system: 'Be brief.', messages: conversation, ...autocompact() });
  assert.deepEqual(message.content, [{ type: 'compaction', content: SUMMARY, encrypted_content: null }, { type: 'text', text: 'Partly the sun.', citations: null }]);
  assert.equal(message.stop_reason, 'end_turn', "the answer's, not the compaction's");
  assert.deepEqual(message.usage.iterations.map((i) => [i.type, i.input_tokens, i.output_tokens]), [['compaction', 30, 9], ['message', 30, 9]]);
  const [asked, answered] = fake.requests.slice(before).map((r) => r.body);
  assert.match(asked.messages.at(-1).content.at(-1).text, /^Summarize the conversation above/, 'the summary was asked for after the conversation');
  // The answer was asked with the summary in place of the turns before the last one.
  assert.deepEqual(answered.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.equal(answered.messages.length, 1);
  const [note, question] = answered.messages[0].content;
  assert.ok(note.text.includes(SUMMARY));
  assert.deepEqual(question, { type: 'text', text: 'And the sun?' });

  // Streamed: the compaction block's start, its one delta and stop, then the answer's blocks.
  fake.enqueue({ sse: answerSse(SUMMARY) });
  fake.enqueue({ sse: answerSse('Partly the sun.') });
  const res = await rawPost('/v1/messages', { model: 'other', max_tokens: 300, messages: conversation, stream: true, ...autocompact() });
  const events = (await res.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  assert.deepEqual(events.filter((e) => e.type === 'content_block_start').map((e) => [e.index, e.content_block.type]), [[0, 'compaction'], [1, 'text']]);
  assert.equal(events.find((e) => e.type === 'message_delta').delta.stop_reason, 'end_turn');

  // pause_after_compaction: the compaction alone, as a compaction request answers.
  fake.enqueue({ sse: answerSse(SUMMARY) });
  const paused = await client.beta.messages.create({ model: 'other', max_tokens: 300, messages: conversation, ...autocompact({ pause_after_compaction: true }) });
  assert.deepEqual([paused.stop_reason, paused.content.map((b) => b.type)], ['compaction', ['compaction']]);
  // Below the trigger: one call, the plain answer.
  const calls = fake.requests.length;
  fake.enqueue({ sse: answerSse('Partly the sun.') });
  const plain = await client.beta.messages.create({ model: 'other', max_tokens: 300, messages: conversation, ...autocompact({ trigger: { type: 'input_tokens', value: 1e6 } }) });
  assert.deepEqual(plain.content.map((b) => b.type), ['text']);
  assert.equal(fake.requests.length, calls + 1);
});

test('count_tokens takes compaction and ignores it: the count is of the conversation as sent', async () => {
  const { compaction: _c, ...plain } = ask();
  const count = async (body) => (await (await rawPost('/v1/messages/count_tokens', body)).json()).input_tokens;
  const withField = await count(ask());
  assert.ok(withField > 0);
  assert.equal(withField, await count(plain));
});

test("a compaction block Anthropic makes itself (context_management's compaction edit, passed through) reaches the client with its summary and encrypted content", async () => {
  const sse = [
    ['message_start', { type: 'message_start', message: { id: 'msg_up', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 40, output_tokens: 1 } } }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'compaction', content: null, encrypted_content: null } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'compaction_delta', content: SUMMARY, encrypted_content: 'opaque-123' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Partly the sun.' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 1 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 12 } }],
    ['message_stop', { type: 'message_stop' }],
  ]
    .map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    .join('');
  fake.enqueue({ sse });
  const edits = { edits: [{ type: 'compact_20260112', trigger: { type: 'input_tokens', value: 10 } }] };
  const message = await client.beta.messages.create({ model: 'claude', max_tokens: 50, messages: conversation, context_management: edits });
  assert.deepEqual(fake.requests.at(-1).body.context_management, edits, 'passed to Anthropic as written');
  assert.deepEqual(message.content, [{ type: 'compaction', content: SUMMARY, encrypted_content: 'opaque-123' }, { type: 'text', text: 'Partly the sun.', citations: null }]);
});
