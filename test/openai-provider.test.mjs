// The OpenAI-compatible provider against a loopback upstream speaking the real wire format:
// canonical parts event by event, the body sent upstream, every fault mapped, and aborts.
// Build first: npx tsc -p tsconfig.json

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';
import { createOpenAIProvider } from '../dist/providers/openai/index.js';
import { GatewayError } from '../dist/core/errors.js';
import { errorFromTransport, parseRetryAfter } from '../dist/providers/openai/errors.js';

const logger = pino({ level: 'silent' });
let fake;
let provider;

before(async () => {
  fake = await startFakeOpenAI();
  provider = createOpenAIProvider({ logger, config: {}, dataDir: '.' });
});
after(async () => {
  await provider.close();
  await fake.close();
});
beforeEach(() => fake.reset());

function deployment(overrides = {}) {
  return { name: 'test-openai', provider: 'openai', model: 'gpt-test', baseUrl: fake.url, apiKey: 'sk-test', weight: 1, maxConcurrent: 0, options: {}, ...overrides };
}

function context(dep = deployment(), signal = new AbortController().signal, extra = {}) {
  return { model: { id: 'm' }, deployment: dep, signal, requestId: 'req-123', logger, ...extra };
}

const user = (text) => ({ role: 'user', content: [{ type: 'text', text }] });

function chat(extra = {}) {
  return { model: 'm', messages: [user('Hi')], ...extra };
}

async function collect(request = chat(), dep = deployment(), signal) {
  const parts = [];
  for await (const part of provider.stream(request, context(dep, signal))) parts.push(part);
  return parts;
}

/** Parts yielded before the failure, and the failure (which must be a GatewayError). */
async function failure(request = chat(), dep = deployment()) {
  const parts = [];
  try {
    for await (const part of provider.stream(request, context(dep))) parts.push(part);
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${error?.stack ?? error}`);
    return { parts, error };
  }
  assert.fail(`expected a failure, got ${JSON.stringify(parts)}`);
}

const sent = () => fake.requests.at(-1).body;

describe('streamed answers → canonical parts', () => {
  test('text streamed in chunks: start, text triple, finish with usage', async () => {
    fake.enqueue({ type: 'text', deltas: ['Hel', 'lo', ' world'], id: 'chatcmpl-1' });
    assert.deepEqual(await collect(), [
      { type: 'start', model: 'gpt-test', responseId: 'chatcmpl-1' },
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: 'Hel' },
      { type: 'text-delta', id: 'text-0', delta: 'lo' },
      { type: 'text-delta', id: 'text-0', delta: ' world' },
      { type: 'text-end', id: 'text-0' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 3, totalTokens: 15 } },
    ]);
  });

  test('a tool call whose arguments are split over many deltas', async () => {
    const args = '{"city":"Paris","unit":"celsius","days":3}';
    fake.enqueue({ type: 'tool-calls', calls: [{ id: 'call_abc', name: 'get_weather', arguments: args, split: 12 }] });
    const parts = await collect();
    assert.deepEqual(parts[0], { type: 'start', model: 'gpt-test', responseId: parts[0].responseId });
    assert.deepEqual(parts[1], { type: 'tool-input-start', id: 'call_abc', toolName: 'get_weather' });
    const deltas = parts.slice(2, -2);
    assert.equal(deltas.length, 12);
    assert.ok(deltas.every((p) => p.type === 'tool-input-delta' && p.id === 'call_abc'));
    assert.equal(deltas.map((p) => p.delta).join(''), args);
    assert.deepEqual(parts.at(-2), { type: 'tool-input-end', id: 'call_abc' });
    assert.equal(parts.at(-1).type, 'finish');
    assert.equal(parts.at(-1).finishReason, 'tool-calls');
  });

  for (const interleave of [false, true]) {
    test(`two parallel tool calls (${interleave ? 'interleaved' : 'one after the other'})`, async () => {
      const calls = [
        { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}', split: 3 },
        { id: 'call_2', name: 'get_time', arguments: '{"tz":"Europe/Paris"}', split: 5 },
      ];
      fake.enqueue({ type: 'tool-calls', calls, interleave });
      const parts = await collect();
      for (const call of calls) {
        const own = parts.filter((p) => p.id === call.id);
        assert.deepEqual(own[0], { type: 'tool-input-start', id: call.id, toolName: call.name });
        assert.equal(own.filter((p) => p.type === 'tool-input-delta').map((p) => p.delta).join(''), call.arguments);
        assert.deepEqual(own.at(-1), { type: 'tool-input-end', id: call.id });
      }
      // Both ends come when the choice finishes, after every delta.
      const lastDelta = parts.findLastIndex((p) => p.type === 'tool-input-delta');
      assert.ok(parts.findIndex((p) => p.type === 'tool-input-end') > lastDelta);
      assert.equal(parts.at(-1).finishReason, 'tool-calls');
    });
  }

  test('text before a tool call is closed when the call starts', async () => {
    fake.enqueue({ type: 'tool-calls', text: 'Checking.', calls: [{ id: 'call_1', name: 'f', arguments: '{}', split: 1 }] });
    const types = (await collect()).map((p) => p.type);
    assert.deepEqual(types, ['start', 'text-start', 'text-delta', 'text-end', 'tool-input-start', 'tool-input-delta', 'tool-input-end', 'finish']);
  });

  test('usage arrives after the finish chunk; finish waits for it and converts every counter', async () => {
    const usage = { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28, prompt_tokens_details: { cached_tokens: 5 }, completion_tokens_details: { reasoning_tokens: 3 } };
    fake.enqueue({ type: 'text', text: 'ok', chunks: 1, usage });
    const parts = await collect();
    assert.equal(parts.filter((p) => p.type === 'finish').length, 1);
    assert.deepEqual(parts.at(-1), {
      type: 'finish',
      finishReason: 'stop',
      usage: { inputTokens: 20, outputTokens: 8, totalTokens: 28, cacheReadTokens: 5, reasoningTokens: 3 },
    });
  });

  test('no usage chunk: finish with zeros', async () => {
    fake.enqueue({ type: 'text', text: 'ok', chunks: 1, usage: false });
    assert.deepEqual((await collect()).at(-1).usage, { inputTokens: 0, outputTokens: 0, totalTokens: 0 });
  });

  test('finish_reason length and content_filter are mapped', async () => {
    fake.enqueue({ type: 'text', text: 'cut', chunks: 1, finishReason: 'length' }, { type: 'text', text: 'x', chunks: 1, finishReason: 'content_filter' });
    assert.equal((await collect()).at(-1).finishReason, 'length');
    assert.equal((await collect()).at(-1).finishReason, 'content-filter');
  });

  test('reasoning_content deltas become a reasoning triple before the text', async () => {
    fake.enqueue({ type: 'text', reasoning: ['Let me', ' think.'], deltas: ['Four.'] });
    const parts = await collect();
    assert.deepEqual(parts.slice(1, -1), [
      { type: 'reasoning-start', id: 'reasoning-0' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: 'Let me' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: ' think.' },
      { type: 'reasoning-end', id: 'reasoning-0' },
      { type: 'text-start', id: 'text-1' },
      { type: 'text-delta', id: 'text-1', delta: 'Four.' },
      { type: 'text-end', id: 'text-1' },
    ]);
  });

  test("OpenRouter's `reasoning` delta field is read too; reasoning.exclude hides it", async () => {
    fake.enqueue({ type: 'text', reasoning: ['hmm'], reasoningField: 'reasoning', deltas: ['A'] });
    assert.deepEqual((await collect()).filter((p) => p.type === 'reasoning-delta').map((p) => p.delta), ['hmm']);
    fake.enqueue({ type: 'text', reasoning: ['hmm'], deltas: ['A'] });
    const hidden = await collect(chat({ reasoning: { enabled: true, exclude: true } }));
    assert.deepEqual(hidden.map((p) => p.type), ['start', 'text-start', 'text-delta', 'text-end', 'finish']);
  });

  test('n = 2: every part carries its choice; one finish per choice, usage counted once', async () => {
    fake.enqueue({ type: 'text', choices: [['A', 'B'], ['C']], usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 } });
    const parts = await collect(chat({ n: 2 }));
    assert.equal(sent().n, 2);
    assert.deepEqual(parts[0].type, 'start');
    const of = (choice) => parts.filter((p) => p.choice === choice);
    assert.deepEqual(of(0).filter((p) => p.type === 'text-delta').map((p) => p.delta), ['A', 'B']);
    assert.deepEqual(of(1).filter((p) => p.type === 'text-delta').map((p) => p.delta), ['C']);
    assert.deepEqual(parts.filter((p) => p.type === 'finish'), [
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 10, outputTokens: 3, totalTokens: 13 }, choice: 0 },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 10, outputTokens: 0, totalTokens: 10 }, choice: 1 },
    ]);
    // Interleaved as sent: choice 1 starts before choice 0 ends.
    assert.ok(parts.findIndex((p) => p.choice === 1 && p.type === 'text-delta') < parts.findIndex((p) => p.choice === 0 && p.type === 'text-end'));
    assert.equal(provider.capabilities(deployment()).multipleChoices, true);
  });

  test('logprobs → meanTokenProbability = mean of exp(logprob)', async () => {
    fake.enqueue({ type: 'text', deltas: ['a', 'b'], logprobs: [-0.1, -0.7] });
    const parts = await collect(chat({ logprobs: { top: 0 } }));
    assert.equal(sent().logprobs, true);
    const expected = (Math.exp(-0.1) + Math.exp(-0.7)) / 2;
    assert.ok(Math.abs(parts.at(-1).meanTokenProbability - expected) < 1e-12);
  });

  test('an upstream that ignores stream:true and answers with JSON gives the same parts', async () => {
    fake.enqueue({ type: 'tool-calls', text: 'Sure.', calls: [{ id: 'call_9', name: 'f', arguments: '{"a":1}' }], buffered: true, id: 'chatcmpl-b' });
    assert.deepEqual(await collect(), [
      { type: 'start', model: 'gpt-test', responseId: 'chatcmpl-b' },
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: 'Sure.' },
      { type: 'text-end', id: 'text-0' },
      { type: 'tool-input-start', id: 'call_9', toolName: 'f' },
      { type: 'tool-input-delta', id: 'call_9', delta: '{"a":1}' },
      { type: 'tool-input-end', id: 'call_9' },
      { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 12, outputTokens: 4, totalTokens: 16 } },
    ]);
  });

  test('parts are yielded as chunks arrive, not when the upstream is done', async () => {
    let release;
    const released = new Promise((resolve) => (release = resolve));
    const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'c', model: 'x', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    fake.enqueue({
      type: 'handler',
      async handle(req, res) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk({ content: 'first' }));
        await released; // the rest only once the test has seen the first delta
        res.end(chunk({ content: ' second' }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
      },
    });
    const iterator = provider.stream(chat(), context())[Symbol.asyncIterator]();
    const early = [];
    while (early.at(-1)?.type !== 'text-delta') early.push((await iterator.next()).value);
    assert.deepEqual(early.at(-1), { type: 'text-delta', id: 'text-0', delta: 'first' });
    release();
    const rest = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value);
    assert.deepEqual(rest.map((p) => p.type), ['text-delta', 'text-end', 'finish']);
  });

  test('a stream with a finish_reason but no [DONE] still finishes', async () => {
    fake.enqueue({
      type: 'chunks',
      done: false,
      chunks: [
        { id: 'c1', model: 'x', choices: [{ index: 0, delta: { content: 'A' }, finish_reason: null }] },
        { id: 'c1', model: 'x', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      ],
    });
    assert.deepEqual((await collect()).map((p) => p.type), ['start', 'text-start', 'text-delta', 'text-end', 'finish']);
  });

  test('a finish_reason repeated on the usage chunk does not override the first', async () => {
    const head = { id: 'c3', model: 'x' };
    fake.enqueue({
      type: 'chunks',
      chunks: [
        { ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_r', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: null }] },
        { ...head, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
        { ...head, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
      ],
    });
    const parts = await collect();
    assert.equal(parts.filter((p) => p.type === 'tool-input-end').length, 1);
    assert.deepEqual(parts.at(-1), { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 3, outputTokens: 2, totalTokens: 5 } });
  });

  test('a tool call without an id (some local servers) gets one; "stop" after tool calls means tool-calls', async () => {
    fake.enqueue({
      type: 'chunks',
      chunks: [
        { id: 'c2', model: 'x', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'f', arguments: '{"q":' } }] }, finish_reason: null }] },
        { id: 'c2', model: 'x', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '1}' } }] }, finish_reason: 'stop' }] },
      ],
    });
    const parts = await collect();
    const start = parts.find((p) => p.type === 'tool-input-start');
    assert.match(start.id, /^call_\w+/);
    assert.equal(parts.filter((p) => p.id === start.id && p.type === 'tool-input-delta').map((p) => p.delta).join(''), '{"q":1}');
    assert.equal(parts.at(-1).finishReason, 'tool-calls');
  });
});

describe('the request sent upstream', () => {
  test('POST {baseUrl}/chat/completions with bearer key, deployment headers and x-request-id; always streamed with usage', async () => {
    await collect(chat(), deployment({ headers: { 'x-team': 'blue' } }));
    const r = fake.requests.at(-1);
    assert.equal(r.method, 'POST');
    assert.equal(r.path, '/v1/chat/completions');
    assert.equal(r.headers.authorization, 'Bearer sk-test');
    assert.equal(r.headers['x-request-id'], 'req-123');
    assert.equal(r.headers['x-team'], 'blue');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.body, { model: 'gpt-test', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } });
    await collect(chat(), deployment({ apiKey: undefined }));
    assert.equal(fake.requests.at(-1).headers.authorization, undefined);
  });

  test('a buffered call (the caller collects the answer): stream false, JSON accepted, the same parts and usage', async () => {
    fake.enqueue({ type: 'tool-calls', text: 'Looking.', calls: [{ name: 'lookup', arguments: '{"q":"cats"}' }] });
    const parts = [];
    for await (const part of provider.stream(chat(), context(deployment(), undefined, { buffered: true }))) parts.push(part);
    const r = fake.requests.at(-1);
    assert.equal(r.body.stream, false);
    assert.equal(r.body.stream_options, undefined, 'usage comes with every buffered completion');
    assert.equal(r.headers.accept, 'application/json');
    assert.equal(parts.filter((p) => p.type === 'text-delta').map((p) => p.delta).join(''), 'Looking.');
    const start = parts.find((p) => p.type === 'tool-input-start');
    assert.equal(start.toolName, 'lookup');
    assert.equal(parts.filter((p) => p.type === 'tool-input-delta').map((p) => p.delta).join(''), '{"q":"cats"}');
    const finish = parts.at(-1);
    assert.equal(finish.type, 'finish');
    assert.equal(finish.finishReason, 'tool-calls');
    assert.ok(finish.usage.inputTokens > 0 && finish.usage.outputTokens > 0, JSON.stringify(finish.usage));
  });

  test('a buffered call waits bufferedTimeoutMs for the whole answer, not firstByteTimeoutMs', async () => {
    fake.enqueue({ type: 'text', text: 'late but whole', firstByteDelayMs: 300 });
    const dep = deployment({ options: { firstByteTimeoutMs: 100 } });
    const parts = [];
    for await (const part of provider.stream(chat(), context(dep, undefined, { buffered: true }))) parts.push(part);
    assert.equal(parts.filter((p) => p.type === 'text-delta').map((p) => p.delta).join(''), 'late but whole');
    fake.enqueue({ type: 'stall', phase: 'headers' });
    const stalled = deployment({ options: { bufferedTimeoutMs: 100 } });
    await assert.rejects(
      (async () => {
        for await (const _ of provider.stream(chat(), context(stalled, undefined, { buffered: true })));
      })(),
      (err) => err instanceof GatewayError && err.kind === 'timeout',
    );
  });

  test('messages: system, named user with image bytes (data URI) and URL (its detail kept), assistant tool call, tool result', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    await collect(
      chat({
        messages: [
          { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
          {
            role: 'user',
            name: 'ann',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image', mediaType: 'image/png', data: png },
              { type: 'image', mediaType: 'image/jpeg', url: 'https://example.com/cat.jpg', detail: 'low' },
            ],
          },
          {
            role: 'assistant',
            content: [
              { type: 'reasoning', text: 'They want the weather.' },
              { type: 'text', text: 'Let me check.' },
              { type: 'tool-call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
            ],
          },
          { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'call_1', name: 'get_weather', content: [{ type: 'text', text: '{"temp":21}' }] }] },
          user('Thanks'),
        ],
      }),
    );
    assert.deepEqual(sent().messages, [
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        name: 'ann',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${Buffer.from(png).toString('base64')}` } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'low' } },
        ],
      },
      { role: 'assistant', content: 'Let me check.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}', name: 'get_weather' },
      { role: 'user', content: 'Thanks' },
    ]);
  });

  test('tool results inside a user turn (Anthropic style) come first as tool messages; tool images follow as a user message', async () => {
    await collect(
      chat({
        messages: [
          { role: 'assistant', content: [{ type: 'tool-call', id: 'call_7', name: 'snap', arguments: '{}' }] },
          {
            role: 'user',
            content: [
              { type: 'tool-result', toolCallId: 'call_7', content: [{ type: 'text', text: 'done' }, { type: 'image', mediaType: 'image/gif', data: new Uint8Array([71, 73, 70]) }] },
              { type: 'text', text: 'Describe it' },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(sent().messages, [
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_7', type: 'function', function: { name: 'snap', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_7', content: 'done' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Attachment returned by tool call call_7:' },
          { type: 'image_url', image_url: { url: 'data:image/gif;base64,R0lG' } },
        ],
      },
      { role: 'user', content: 'Describe it' },
    ]);
  });

  test('video input is refused with a 400, never dropped', async () => {
    const { error } = await failure(chat({ messages: [{ role: 'user', content: [{ type: 'video', mediaType: 'video/mp4', data: new Uint8Array([1]) }] }] }));
    assert.equal(error.kind, 'bad_request');
    assert.equal(error.code, 'unsupported_modality');
  });

  test('tools, named tool_choice, parallel_tool_calls, sampling, max_tokens, response_format, reasoning_effort', async () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    await collect(
      chat({
        // Fields only Anthropic reads stay out of an OpenAI-compatible request.
        tools: [{ name: 'get_weather', description: 'Current weather', parameters, providerFields: { anthropic: { defer_loading: true } } }],
        toolChoice: { type: 'tool', name: 'get_weather' },
        parallelToolCalls: false,
        temperature: 0.2,
        topP: 0.9,
        seed: 7,
        stop: ['END'],
        presencePenalty: 0.1,
        frequencyPenalty: 0.3,
        logitBias: { 1734: -100, 2: 5 },
        verbosity: 'low',
        maxTokens: 99,
        responseFormat: { type: 'json', schema: { type: 'object' }, name: 'my answer' },
        reasoning: { enabled: true, effort: 'low' },
      }),
    );
    const { messages, model, stream, stream_options, ...rest } = sent();
    assert.deepEqual(rest, {
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather', parameters } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      temperature: 0.2,
      top_p: 0.9,
      seed: 7,
      stop: ['END'],
      presence_penalty: 0.1,
      frequency_penalty: 0.3,
      logit_bias: { 1734: -100, 2: 5 },
      verbosity: 'low',
      max_tokens: 99,
      response_format: { type: 'json_schema', json_schema: { name: 'my_answer', schema: { type: 'object' } } },
      reasoning_effort: 'low',
    });
  });

  test('tool_choice auto/none/required, json_object, max_completion_tokens option', async () => {
    const tools = [{ name: 'f', parameters: { type: 'object' } }];
    for (const type of ['auto', 'none', 'required']) {
      await collect(chat({ tools, toolChoice: { type } }));
      assert.equal(sent().tool_choice, type);
    }
    await collect(chat({ responseFormat: { type: 'json' }, maxTokens: 5 }), deployment({ options: { maxCompletionTokens: true } }));
    assert.deepEqual(sent().response_format, { type: 'json_object' });
    assert.equal(sent().max_completion_tokens, 5);
    assert.equal(sent().max_tokens, undefined);
    const { error } = await failure(chat({ tools, toolChoice: { type: 'tool', name: 'missing' } }));
    assert.equal(error.param, 'tool_choice');
  });

  test('reasoning: budget-only maps to an effort; reasoningObject sends OpenRouter’s object instead', async () => {
    await collect(chat({ reasoning: { enabled: true, budgetTokens: 8000 } }));
    assert.equal(sent().reasoning_effort, 'medium');
    await collect(chat({ reasoning: { enabled: true, effort: 'high', budgetTokens: 2000, exclude: true } }), deployment({ options: { reasoningObject: true } }));
    assert.deepEqual(sent().reasoning, { enabled: true, effort: 'high', max_tokens: 2000, exclude: true });
    assert.equal(sent().reasoning_effort, undefined);
  });

  test('top_k/min_p/repetition_penalty only with extendedSampling, and capabilities say exactly that', async () => {
    const base = ['temperature', 'topP', 'seed', 'stop', 'presencePenalty', 'frequencyPenalty', 'logitBias', 'verbosity'];
    assert.deepEqual(provider.capabilities(deployment()).sampling, base);
    const vllm = deployment({ options: { extendedSampling: true } });
    assert.deepEqual(provider.capabilities(vllm).sampling, [...base, 'topK', 'minP', 'repetitionPenalty']);
    await collect(chat({ topK: 40, minP: 0.05, repetitionPenalty: 1.1 }), vllm);
    assert.equal(sent().top_k, 40);
    assert.equal(sent().min_p, 0.05);
    assert.equal(sent().repetition_penalty, 1.1);
    const { error } = await failure(chat({ topK: 40 }));
    assert.equal(error.kind, 'bad_request');
    assert.equal(error.param, 'top_k');
  });

  test('capabilities', () => {
    const caps = provider.capabilities(deployment());
    assert.deepEqual({ ...caps, sampling: undefined }, {
      modalities: ['text', 'image'],
      tools: true,
      structuredOutput: 'native',
      reasoning: true,
      multipleChoices: true,
      logprobs: true,
      sampling: undefined,
      bufferedCalls: true,
    });
  });

  test('keep-alive: sequential requests reuse pooled connections', async () => {
    for (let i = 0; i < 6; i++) await collect();
    fake.enqueue({ type: 'error', status: 429 });
    await failure();
    await collect();
    const ports = fake.requests.map((r) => r.remotePort);
    assert.ok(new Set(ports).size <= 2, `ports ${ports}`);
    assert.equal(provider.stats().upstream_in_flight, 0);
  });

  test('providerOptions.openai fields are passed through; the ones the provider owns are refused', async () => {
    await collect(chat({ providerOptions: { openai: { user: 'u-1', logit_bias: { 50256: -100 } } } }));
    assert.equal(sent().user, 'u-1');
    assert.deepEqual(sent().logit_bias, { 50256: -100 });
    const { error } = await failure(chat({ providerOptions: { openai: { stream: false } } }));
    assert.equal(error.kind, 'bad_request');
  });
});

describe('faults → GatewayError', () => {
  const errorCases = [
    { name: '429 with Retry-After seconds', scenario: { status: 429, headers: { 'retry-after': '7' } }, kind: 'rate_limit', status: 429, retryAfter: 7, retryable: true },
    { name: '429 with retry-after-ms', scenario: { status: 429, headers: { 'retry-after-ms': '1500' } }, kind: 'rate_limit', status: 429, retryAfter: 2, retryable: true },
    {
      name: '400 context_length_exceeded',
      scenario: { status: 400, body: { error: { message: "This model's maximum context length is 8192 tokens.", type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } } },
      kind: 'context_window',
      status: 400,
      retryable: false,
      message: /maximum context length/,
    },
    {
      name: '400 content filter',
      scenario: { status: 400, body: { error: { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", type: null, param: 'prompt', code: 'content_filter' } } },
      kind: 'content_policy',
      status: 400,
      retryable: false,
    },
    {
      name: '400 other',
      scenario: { status: 400, body: { error: { message: "Invalid value for 'temperature'.", type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' } } },
      kind: 'bad_request',
      status: 400,
      retryable: false,
      message: /Invalid value for 'temperature'/,
    },
    { name: '401 upstream key rejected', scenario: { status: 401 }, kind: 'auth', status: 502, message: /Incorrect API key/ },
    { name: '403', scenario: { status: 403 }, kind: 'auth', status: 502 },
    { name: '404 unknown upstream model', scenario: { status: 404 }, kind: 'not_found', status: 404, message: /does not exist/ },
    {
      name: '404 without the API\'s error shape (no such route: a baseUrl without /v1) says so',
      scenario: { status: 404, body: { detail: 'Not Found' } },
      kind: 'not_found',
      status: 404,
      message: /^Upstream answered 404: nothing at \/v1\/chat\/completions: is the deployment's baseUrl right\? .*\(it said: Not Found\)$/,
    },
    { name: '408', scenario: { status: 408 }, kind: 'upstream_5xx', status: 502, retryable: true },
    {
      name: '301 redirect (an http baseUrl for an https API): not followed, and says where it points',
      scenario: { status: 301, body: '<html>moved</html>', headers: { location: 'https://api.example.com/v1/chat/completions', 'content-type': 'text/html' } },
      kind: 'upstream_invalid',
      status: 502,
      retryable: false,
      message: /redirected \(301\) to https:\/\/api\.example\.com\/v1\/chat\/completions; redirects are not followed/,
    },
    { name: '500', scenario: { status: 500 }, kind: 'upstream_5xx', status: 502, retryable: true, message: /server had an error/ },
    { name: '503 with Retry-After', scenario: { status: 503, headers: { 'retry-after': '3' } }, kind: 'upstream_5xx', status: 502, retryable: true, retryAfter: 3 },
    { name: '502 with an HTML body', scenario: { status: 502, body: '<html>bad gateway</html>', headers: { 'content-type': 'text/html' } }, kind: 'upstream_5xx', status: 502, message: /bad gateway/ },
  ];
  for (const c of errorCases) {
    test(c.name, async () => {
      fake.enqueue({ type: 'error', ...c.scenario });
      const { parts, error } = await failure();
      assert.deepEqual(parts, []);
      assert.equal(error.kind, c.kind);
      assert.equal(error.status, c.status);
      if (c.retryAfter !== undefined) assert.equal(error.retryAfter, c.retryAfter);
      if (c.retryable !== undefined) assert.equal(error.retryable, c.retryable);
      if (c.message) assert.match(error.message, c.message);
    });
  }

  test('Retry-After as an HTTP date', async () => {
    fake.enqueue({ type: 'error', status: 429, headers: { 'retry-after': new Date(Date.now() + 30_000).toUTCString() } });
    const { error } = await failure();
    assert.ok(error.retryAfter >= 29 && error.retryAfter <= 31, String(error.retryAfter));
  });

  test('connection refused → upstream_5xx 502, retryable', async () => {
    const port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address();
        s.close(() => resolve(p));
      });
    });
    const { error } = await failure(chat(), deployment({ baseUrl: `http://127.0.0.1:${port}/v1` }));
    assert.equal(error.kind, 'upstream_5xx');
    assert.equal(error.status, 502);
    assert.equal(error.retryable, true);
    assert.match(error.message, /ECONNREFUSED/);
  });

  test('socket reset mid-stream → upstream_5xx after the content already sent', async () => {
    fake.enqueue({ type: 'reset', afterChunks: 3, deltas: ['a', 'b', 'c', 'd'] });
    const { parts, error } = await failure();
    assert.deepEqual(parts.filter((p) => p.type === 'text-delta').map((p) => p.delta), ['a', 'b']);
    assert.equal(error.kind, 'upstream_5xx');
    assert.equal(error.status, 502);
  });

  test('stall before headers → timeout 504 (firstByteTimeoutMs)', async () => {
    fake.enqueue({ type: 'stall', phase: 'headers' });
    const { error } = await failure(chat(), deployment({ options: { firstByteTimeoutMs: 150 } }));
    assert.equal(error.kind, 'timeout');
    assert.equal(error.status, 504);
    assert.equal(error.code, 'upstream_first_byte_timeout');
  });

  test('stall after the first chunk → timeout 504 (idleTimeoutMs)', async () => {
    fake.enqueue({ type: 'stall', phase: 'body' });
    const { parts, error } = await failure(chat(), deployment({ options: { idleTimeoutMs: 150 } }));
    assert.deepEqual(parts.map((p) => p.type), ['start']);
    assert.equal(error.kind, 'timeout');
    assert.equal(error.code, 'upstream_idle_timeout');
  });

  test('a 200 with an HTML body instead of SSE (a proxy\'s or captive portal\'s page) → upstream_invalid quoting it', async () => {
    // With and without a final newline: the page must be named either way, not "ended early".
    for (const body of [undefined, '<html><body>Please log in to the network</body></html>']) {
      fake.enqueue({ type: 'garbage', ...(body ? { body } : {}) });
      const { error } = await failure();
      assert.equal(error.kind, 'upstream_invalid');
      assert.equal(error.status, 502);
      assert.match(error.message, /^The upstream answered with text\/html instead of an event stream or JSON: <html>/);
    }
  });

  test('a JSON content type with a body that is not JSON → upstream_invalid', async () => {
    fake.enqueue({ type: 'garbage', contentType: 'application/json', body: '{"id": "chatcmpl-1", oops' });
    const { error } = await failure();
    assert.equal(error.kind, 'upstream_invalid');
    assert.match(error.message, /not JSON/);
  });

  test('an SSE data line that is not JSON → upstream_invalid', async () => {
    fake.enqueue({ type: 'invalid-sse-json', afterChunks: 2, deltas: ['x', 'y'] });
    const { parts, error } = await failure();
    assert.deepEqual(parts.filter((p) => p.type === 'text-delta').map((p) => p.delta), ['x']);
    assert.equal(error.kind, 'upstream_invalid');
    assert.equal(error.status, 502);
  });

  test('data: {"error": …} mid-stream → the mapped error is thrown', async () => {
    fake.enqueue({ type: 'stream-error', afterChunks: 2, deltas: ['x'] });
    let { parts, error } = await failure();
    assert.equal(parts.filter((p) => p.type === 'text-delta').length, 1);
    assert.equal(error.kind, 'upstream_5xx');
    assert.match(error.message, /server had an error/);
    // OpenRouter puts the HTTP status in `code`.
    fake.enqueue({ type: 'stream-error', afterChunks: 1, error: { message: 'Rate limit exceeded upstream', code: 429 } });
    ({ error } = await failure());
    assert.equal(error.kind, 'rate_limit');
    assert.match(error.message, /Rate limit exceeded upstream/);
  });

  test('a stream that ends without [DONE] and without finish_reason → upstream_invalid, never a quiet finish', async () => {
    fake.enqueue({ type: 'cut', afterChunks: 2, deltas: ['x', 'y'] });
    const { parts, error } = await failure();
    assert.ok(!parts.some((p) => p.type === 'finish'));
    assert.equal(error.kind, 'upstream_invalid');
    assert.match(error.message, /ended early/);
  });

  test('transport error codes the loopback cannot produce', () => {
    const timeouts = { connectTimeoutMs: 10, firstByteTimeoutMs: 20, idleTimeoutMs: 30 };
    const live = new AbortController().signal;
    const connect = errorFromTransport(Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), timeouts, live);
    assert.equal(connect.kind, 'timeout');
    assert.equal(connect.status, 504);
    assert.equal(connect.code, 'upstream_connect_timeout');
    const reset = errorFromTransport(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), timeouts, live);
    assert.equal(reset.kind, 'upstream_5xx');
    assert.equal(reset.retryable, true);
    const parser = errorFromTransport(Object.assign(new Error('Invalid header'), { code: 'HPE_INVALID_HEADER_TOKEN' }), timeouts, live);
    assert.equal(parser.kind, 'upstream_invalid');
    const bug = new TypeError('a bug');
    assert.equal(errorFromTransport(bug, timeouts, live), bug, 'unknown errors are not disguised as upstream failures');
    assert.equal(parseRetryAfter({ 'retry-after': '2.5' }), 3);
    assert.equal(parseRetryAfter({ 'retry-after': 'soon' }), undefined);
  });
});

describe('cancellation', () => {
  test('aborting the signal mid-stream closes the upstream connection at once', async () => {
    fake.enqueue({ type: 'stall', phase: 'body' });
    const controller = new AbortController();
    const iterator = provider.stream(chat(), context(deployment(), controller.signal))[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value.type, 'start');
    const upstream = fake.requests.at(-1);
    controller.abort();
    await assert.rejects(iterator.next(), (err) => err instanceof GatewayError && err.kind === 'cancelled');
    assert.deepEqual(await upstream.closed, { completed: false });
  });

  test('aborting while waiting for headers closes the connection', async () => {
    fake.enqueue({ type: 'stall', phase: 'headers' });
    const controller = new AbortController();
    const arrived = fake.nextRequest();
    const pending = collect(chat(), deployment(), controller.signal);
    const upstream = await arrived;
    controller.abort();
    await assert.rejects(pending, (err) => err instanceof GatewayError && err.kind === 'cancelled');
    assert.deepEqual(await upstream.closed, { completed: false });
  });

  test('a consumer that stops reading (return) closes the connection too', async () => {
    fake.enqueue({ type: 'stall', phase: 'body' });
    const iterator = provider.stream(chat(), context())[Symbol.asyncIterator]();
    await iterator.next();
    const upstream = fake.requests.at(-1);
    await iterator.return();
    assert.deepEqual(await upstream.closed, { completed: false });
  });

  test('an already aborted signal sends nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(collect(chat(), deployment(), controller.signal), (err) => err.kind === 'cancelled');
    assert.equal(fake.requests.length, 0);
  });
});
