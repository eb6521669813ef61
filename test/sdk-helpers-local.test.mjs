// The official SDKs' higher-level helpers, as an application uses them, against the real local
// model: OpenAI's `parse` and `stream` with a zod response format and its tool runner with zod
// functions; Anthropic's `messages.parse` with a zod output format and its beta tool runner. Each
// helper validates what the server sent with the application's own zod schema, so a field the
// grammar let through wrongly, or a tool round trip the dialect renders wrongly, fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodFunction, zodResponseFormat } from 'openai/helpers/zod';
import Anthropic from '@anthropic-ai/sdk';
import { zodOutputFormat } from '@anthropic-ai/sdk/helpers/zod';
import { betaZodTool } from '@anthropic-ai/sdk/helpers/beta/zod';
import { z } from 'zod';
import { startServer } from './helpers/server.mjs';
import { ensureTestModel } from './helpers/model.mjs';

let s;
let openai;
let anthropic;

before(async () => {
  const model = ensureTestModel();
  s = await startServer({
    config: {
      local: { threads: 1, parallel: 2, queueLimit: 8, contextSize: 2048 },
      defaultModel: 'tiny',
      models: [{ id: 'tiny', provider: 'local', model, contextLength: 2048 }],
    },
  });
  openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: s.url, apiKey: 'x', maxRetries: 0 });
});
after(async () => s?.close());

const Sea = z.object({
  mood: z.enum(['calm', 'stormy']),
  safe: z.boolean(),
  depth: z.number().int(),
  note: z.string().max(12),
});
const Alarm = z.object({ hour: z.number().int().min(0).max(23), loud: z.boolean() });
// For Anthropic's helpers, which move the constraints its structured outputs lack (maxLength,
// minimum…) into descriptions, as Anthropic's own API would not enforce them either.
const Mood = z.object({ mood: z.enum(['calm', 'stormy']), safe: z.boolean(), depth: z.number().int() });
const Nap = z.object({ kind: z.enum(['wake', 'nap']), loud: z.boolean() });
const user = (content) => [{ role: 'user', content }];

/** OpenAI's tool runner on a forced `set_alarm` (zod-validated) call; `run` is the function it calls. */
const alarmRunner = ({ content, seed, run, stream = false }) =>
  openai.chat.completions.runTools({
    model: 'tiny',
    messages: user(content),
    seed,
    max_tokens: 60,
    ...(stream ? { stream: true } : {}),
    tools: [zodFunction({ name: 'set_alarm', parameters: Alarm, function: run })],
    tool_choice: { type: 'function', function: { name: 'set_alarm' } },
  });

/** Anthropic's beta tool runner on a forced `set_alarm` (Nap, zod-validated) call through `client`. */
const napRunner = (client, { content, maxTokens = 60, maxIterations, run = () => 'ok', stream = false }) =>
  client.beta.messages.toolRunner({
    model: 'tiny',
    max_tokens: maxTokens,
    messages: user(content),
    tools: [betaZodTool({ name: 'set_alarm', description: 'Set an alarm', inputSchema: Nap, run })],
    tool_choice: { type: 'tool', name: 'set_alarm' },
    max_iterations: maxIterations,
    ...(stream ? { stream: true } : {}),
  });

test('openai chat.completions.parse with zodResponseFormat: message.parsed passes the zod schema', async () => {
  const completion = await openai.chat.completions.parse({
    model: 'tiny',
    messages: user('Describe the sea.'),
    seed: 3,
    max_tokens: 150,
    response_format: zodResponseFormat(Sea, 'sea'),
  });
  const message = completion.choices[0].message;
  assert.equal(completion.choices[0].finish_reason, 'stop', 'the grammar closes the object before max_tokens');
  assert.deepEqual(message.parsed, Sea.parse(JSON.parse(message.content)));
  assert.equal(message.refusal, null);
});

test('openai chat.completions.stream with zodResponseFormat: the final completion is parsed the same', async () => {
  const stream = openai.chat.completions.stream({
    model: 'tiny',
    messages: user('Describe the sea again.'),
    seed: 4,
    max_tokens: 150,
    response_format: zodResponseFormat(Sea, 'sea'),
  });
  let deltas = 0;
  stream.on('content.delta', () => deltas++);
  const final = await stream.finalChatCompletion();
  assert.ok(deltas > 1, 'the JSON arrived in pieces');
  const message = final.choices[0].message;
  assert.deepEqual(message.parsed, Sea.parse(JSON.parse(message.content)));
});

test('openai runTools with a zod function: the forced call is parsed, run, and its result sent back', async () => {
  const calls = [];
  const runner = alarmRunner({ content: 'Wake me up.', seed: 5, run: (args) => (calls.push(args), { ok: true, at: args.hour }) });
  const result = await runner.finalFunctionToolCallResult();
  assert.equal(calls.length, 1, 'a forced function is called once');
  assert.deepEqual(calls[0], Alarm.parse(calls[0]));
  assert.deepEqual(JSON.parse(result), { ok: true, at: calls[0].hour });
  const call = await runner.finalFunctionToolCall();
  assert.equal(call.name, 'set_alarm');
  assert.deepEqual(call.parsed_arguments, calls[0]);
  // The runner's transcript: the user turn, the assistant's call, the tool's answer.
  assert.deepEqual(runner.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
});

test('openai: the tool result the runner produced is accepted by the server on the next turn', async () => {
  // What an application does after runTools with a forced call: send the transcript back for an answer.
  const runner = alarmRunner({ content: 'Wake me at seven.', seed: 6, run: () => ({ ok: true }) });
  await runner.done();
  const answer = await openai.chat.completions.create({ model: 'tiny', messages: runner.messages, max_tokens: 8, tool_choice: 'none', tools: [{ type: 'function', function: { name: 'set_alarm', parameters: z.toJSONSchema(Alarm) } }] });
  assert.equal(answer.choices[0].message.tool_calls, undefined, "tool_choice 'none' answers in text");
  assert.ok(answer.usage.prompt_tokens > 0);
});

test('anthropic messages.parse with zodOutputFormat: parsed_output passes the zod schema', async () => {
  const message = await anthropic.messages.parse({
    model: 'tiny',
    max_tokens: 150,
    messages: user('Describe the sea.'),
    output_config: { format: zodOutputFormat(Mood) },
  });
  assert.equal(message.stop_reason, 'end_turn');
  const text = message.content.find((b) => b.type === 'text').text;
  assert.deepEqual(message.parsed_output, Mood.parse(JSON.parse(text)));
});

test('anthropic beta tool runner with a zod tool: each forced call is validated, run, and its tool_result accepted', async () => {
  const calls = [];
  const alarm = betaZodTool({
    name: 'set_alarm',
    description: 'Set an alarm',
    inputSchema: Nap,
    run: (input) => {
      calls.push(input);
      return `alarm set: ${input.kind}`;
    },
  });
  const runner = anthropic.beta.messages.toolRunner({
    model: 'tiny',
    max_tokens: 60,
    messages: user('Wake me up.'),
    tools: [alarm],
    tool_choice: { type: 'tool', name: 'set_alarm' },
    // The forced choice would ask for the tool again on every turn: two rounds prove the loop.
    max_iterations: 2,
  });
  const turns = [];
  for await (const message of runner) turns.push(message);
  assert.equal(turns.length, 2);
  for (const turn of turns) {
    assert.equal(turn.stop_reason, 'tool_use');
    assert.equal(turn.content.find((b) => b.type === 'tool_use').name, 'set_alarm');
  }
  assert.ok(calls.length >= 1, 'the tool ran');
  for (const input of calls) assert.deepEqual(input, Nap.parse(input));
  // The second turn was asked with the first turn's tool_result in its messages: the server took it.
  const sent = runner.params.messages;
  const results = sent.filter((m) => m.role === 'user' && Array.isArray(m.content) && m.content.some((b) => b.type === 'tool_result'));
  assert.ok(results.length >= 1, JSON.stringify(sent).slice(0, 500));
});

/** An Anthropic client that also records each request body it sends. */
function recordingAnthropic() {
  const sent = [];
  const client = new Anthropic({
    baseURL: s.url,
    apiKey: 'x',
    maxRetries: 0,
    fetch: (url, init) => {
      if (typeof init?.body === 'string') sent.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
  return { client, sent };
}

test('message threads: the SDK thread helper creates, then continues with only the new message; the server puts the conversation back', async () => {
  const { client, sent } = recordingAnthropic();
  const thread = client.beta.messages.thread({ model: 'tiny', max_tokens: 6, system: 'Be brief.' });
  const first = await thread.send({ role: 'user', content: 'Hello there' });
  const second = await thread.send({ role: 'user', content: 'And again' });
  assert.deepEqual(sent[0].thread, { type: 'create' });
  assert.equal(sent[0].system, 'Be brief.');
  assert.deepEqual(sent[1].thread, { type: 'continue', previous_message_id: first.id });
  assert.equal(sent[1].system, undefined, 'system is left to the thread');
  assert.equal(sent[1].messages.length, 1, 'only the new message goes over the wire');
  // The model saw the whole conversation: the first prompt, the first reply and the new turn.
  assert.ok(second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens, `${JSON.stringify(first.usage)} then ${JSON.stringify(second.usage)}`);
  const third = await thread.send({ role: 'user', content: 'Once more' });
  assert.equal(sent[2].thread.previous_message_id, second.id);
  assert.ok(third.usage.input_tokens > second.usage.input_tokens + second.usage.output_tokens);
});

test('message threads: the refusals carry the error codes the SDK acts on', async () => {
  const post = async (path, body) => {
    const res = await fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const base = { model: 'tiny', max_tokens: 4, messages: user('Hi') };
  const unknown = await post('/v1/messages', { ...base, thread: { type: 'continue', previous_message_id: 'msg_nothing_here' } });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.type, 'not_found_error');
  assert.deepEqual(unknown.body.error.details, { error_code: 'thread_not_found' });

  const created = await post('/v1/messages', { ...base, system: 'S', thread: { type: 'create' } });
  assert.equal(created.status, 200);
  const next = { ...base, thread: { type: 'continue', previous_message_id: created.body.id } };
  const repeated = await post('/v1/messages', { ...next, system: 'S' });
  assert.equal(repeated.status, 400, 'system comes from the thread on a continue');
  assert.equal((await post('/v1/messages', next)).status, 200, 'a refused continue left the thread open');
  const again = await post('/v1/messages', next);
  assert.equal(again.status, 400);
  assert.equal(again.body.error.type, 'invalid_request_error');
  assert.deepEqual(again.body.error.details, { error_code: 'thread_already_continued' });
  // The SDK picks its error class by status and error_code together: these are the ones it names.
  const { thread, ...rest } = next;
  await assert.rejects(anthropic.beta.messages.create({ ...rest, thread }), Anthropic.ThreadAlreadyContinuedError);
  await assert.rejects(anthropic.beta.messages.create({ ...rest, thread: { ...thread, previous_message_id: 'msg_gone' } }), Anthropic.ThreadNotFoundError);

  // The async runs hold no threads: refused in the form the SDK falls back from.
  const queued = await post('/v1/messages/async', { ...base, thread: { type: 'create' } });
  assert.equal(queued.status, 400);
  assert.deepEqual(queued.body.error.details, { error_code: 'thread_unsupported_request', unsupported: ['thread'] });
});

test('the beta tool runner threads its loop: each later turn sends only the tool result', async () => {
  const { client, sent } = recordingAnthropic();
  const runner = napRunner(client, { content: 'Nap?', maxIterations: 3 });
  const turns = [];
  for await (const message of runner) turns.push(message);
  assert.equal(turns.length, 3);
  assert.deepEqual(sent.map((b) => b.thread?.type), ['create', 'continue', 'continue']);
  for (const [i, body] of sent.slice(1).entries()) {
    assert.equal(body.thread.previous_message_id, turns[i].id);
    assert.deepEqual(body.messages.map((m) => m.content.map((b) => b.type)), [['tool_result']], 'only the tool result goes over the wire');
    assert.equal(body.tools, undefined, 'tools come from the thread');
  }
});

test('the beta tool runner compacts between turns on the local model: a compaction request, then its block opens the history', async () => {
  const { client, sent } = recordingAnthropic();
  const runner = napRunner(client, { content: 'Nap?', maxTokens: 40, maxIterations: 2 });
  const messages = [];
  for await (const message of runner) {
    messages.push(message);
    if (messages.length === 1) runner.compactBeforeNextTurn();
  }
  const compactions = sent.filter((b) => b.compaction);
  assert.equal(compactions.length, 1);
  assert.equal(compactions[0].tool_choice, undefined, 'the SDK leaves a forced tool choice out of a compaction');
  assert.deepEqual(compactions[0].messages.map((m) => m.role), ['user', 'assistant', 'user'], 'the whole conversation is summarized');
  const compaction = messages.find((m) => m.stop_reason === 'compaction');
  assert.ok(compaction, `stop reasons: ${messages.map((m) => m.stop_reason)}`);
  assert.equal(compaction.content.length, 1);
  assert.equal(compaction.content[0].type, 'compaction');
  assert.equal(typeof compaction.content[0].content, 'string', 'the test model wrote a summary');
  // The turn after it sends the compaction alone, in place of the turns it summarized.
  assert.deepEqual(sent.at(-1).messages, [{ role: 'assistant', content: compaction.content }]);
  assert.equal(messages.at(-1).stop_reason, 'tool_use', 'the model went on from the summary');
});

test('openai runTools streaming: content and tool-call deltas assemble into the same parsed call', async () => {
  const calls = [];
  const runner = alarmRunner({ content: 'Wake me up.', seed: 8, stream: true, run: (args) => (calls.push(args), 'ok') });
  let argumentDeltas = 0;
  runner.on('chunk', (chunk) => {
    if (chunk.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments) argumentDeltas++;
  });
  await runner.done();
  assert.ok(argumentDeltas > 1, 'the arguments arrived in pieces');
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0], Alarm.parse(calls[0]));
  assert.deepEqual((await runner.finalFunctionToolCall()).parsed_arguments, calls[0]);
});

test('anthropic beta tool runner streaming: each turn is a message stream whose tool_use input validates', async () => {
  const calls = [];
  const { client, sent } = recordingAnthropic();
  const runner = napRunner(client, { content: 'Nap time?', maxIterations: 2, run: (input) => (calls.push(input), 'ok'), stream: true });
  let inputDeltas = 0;
  let turns = 0;
  for await (const stream of runner) {
    stream.on('inputJson', () => inputDeltas++);
    const message = await stream.finalMessage();
    turns++;
    const use = message.content.find((b) => b.type === 'tool_use');
    assert.deepEqual(use.input, Nap.parse(use.input));
  }
  assert.equal(turns, 2);
  // A streamed reply that reached message_stop is held: the second turn continues it (a miss
  // would show as a refused continue and a replay under a new thread).
  assert.deepEqual(sent.map((b) => b.thread?.type), ['create', 'continue']);
  assert.ok(inputDeltas > 1, 'input_json_delta events arrived');
  assert.ok(calls.length >= 1);
});
