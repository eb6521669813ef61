// The Anthropic Messages provider against a loopback upstream speaking the real SSE wire format
// (recorded streams in test/fixtures/anthropic/*.sse): canonical parts event by event, the body
// sent upstream, thinking signatures kept across turns, every fault mapped, and aborts.
// Build first: npx tsc -p tsconfig.json

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { loadAnthropicFixture, startFakeAnthropic } from './helpers/fake-anthropic-upstream.mjs';
import { createAnthropicProvider } from '../dist/providers/anthropic/index.js';
import { GatewayError } from '../dist/core/errors.js';
import { primeStream } from '../dist/core/stream.js';
import { assertConversationStartRefused } from './helpers/provider-checks.mjs';

const logger = pino({ level: 'silent' });
let fake;
let provider;

before(async () => {
  fake = await startFakeAnthropic({ apiKey: 'sk-ant-test' });
  provider = createAnthropicProvider({ logger, config: {}, dataDir: '.' });
});
after(async () => {
  await provider.close();
  await fake.close();
});

function deployment(options = {}, overrides = {}) {
  return {
    name: 'test-anthropic',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    baseUrl: fake.url,
    apiKey: 'sk-ant-test',
    weight: 1,
    maxConcurrent: 0,
    options,
    ...overrides,
  };
}

function context(dep = deployment(), signal = new AbortController().signal) {
  return { model: { id: 'claude' }, deployment: dep, signal, requestId: 'req-123', logger };
}

const user = (text) => ({ role: 'user', content: [{ type: 'text', text }] });
const chat = (extra = {}) => ({ model: 'claude', messages: [user('Hi')], ...extra });

async function collect(request = chat(), dep = deployment(), signal) {
  const parts = [];
  for await (const part of provider.stream(request, context(dep, signal))) parts.push(part);
  return parts;
}

/** Parts yielded before the failure, and the failure (a GatewayError). */
async function failure(request = chat(), dep = deployment(), signal) {
  const parts = [];
  try {
    for await (const part of provider.stream(request, context(dep, signal))) parts.push(part);
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${error?.stack ?? error}`);
    return { parts, error };
  }
  assert.fail(`expected a failure, got ${JSON.stringify(parts)}`);
}

const lastRequest = () => fake.requests.at(-1);

/** The canonical assistant message a client would send back, rebuilt from the parts. */
function assistantFrom(parts) {
  const content = [];
  const open = new Map();
  for (const p of parts) {
    if (p.type === 'reasoning-start') open.set(p.id, content.push({ type: 'reasoning', text: '', ...(p.redactedData ? { redactedData: p.redactedData } : {}) }) - 1);
    if (p.type === 'reasoning-delta') content[open.get(p.id)].text += p.delta;
    if (p.type === 'reasoning-end' && p.signature) content[open.get(p.id)].signature = p.signature;
    if (p.type === 'text-start') open.set(p.id, content.push({ type: 'text', text: '' }) - 1);
    if (p.type === 'text-delta') content[open.get(p.id)].text += p.delta;
    if (p.type === 'tool-input-start') open.set(p.id, content.push({ type: 'tool-call', id: p.id, name: p.toolName, arguments: '' }) - 1);
    if (p.type === 'tool-input-delta') content[open.get(p.id)].arguments += p.delta;
  }
  return { role: 'assistant', content };
}

const TEXT_PARTS = [
  { type: 'start', model: 'claude-sonnet-4-5-20250929', responseId: 'msg_01TextA1b2C3d4', usage: { inputTokens: 25, outputTokens: 1, totalTokens: 26, cacheReadTokens: 0, cacheWriteTokens: 0 } },
  { type: 'text-start', id: 'text-0' },
  { type: 'text-delta', id: 'text-0', delta: 'Hello' },
  { type: 'text-delta', id: 'text-0', delta: ', wörld' },
  { type: 'text-delta', id: 'text-0', delta: '! 👋' },
  { type: 'text-end', id: 'text-0' },
  { type: 'finish', finishReason: 'stop', usage: { inputTokens: 25, outputTokens: 6, totalTokens: 31, cacheReadTokens: 0, cacheWriteTokens: 0 } },
];

describe('streamed answers → canonical parts', () => {
  test('plain text: start, text triple, finish with usage; pings ignored; the request as Anthropic wants it', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    assert.deepEqual(await collect(), TEXT_PARTS);
    const req = lastRequest();
    assert.equal(req.url, '/v1/messages');
    assert.equal(req.headers['x-api-key'], 'sk-ant-test');
    assert.equal(req.headers['anthropic-version'], '2023-06-01');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.deepEqual(req.body, {
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
      stream: true,
    });
  });

  test('the same stream cut into 5-byte pieces (events and UTF-8 characters split) gives the same parts', async () => {
    fake.enqueue({ fixture: 'text.sse', chunkSize: 5 });
    assert.deepEqual(await collect(), TEXT_PARTS);
  });

  test('parts are yielded as events arrive, and aborting the signal cuts the upstream request', async () => {
    // Three events, then the upstream goes quiet: the first text delta must arrive anyway.
    fake.enqueue({ fixture: 'text.sse', fault: 'stall-after', faultAfter: 4 });
    const controller = new AbortController();
    const iterator = provider.stream(chat(), context(deployment(), controller.signal))[Symbol.asyncIterator]();
    const seen = [];
    for (;;) {
      const { value } = await iterator.next();
      seen.push(value);
      if (value.type === 'text-delta') break;
    }
    assert.deepEqual(seen, TEXT_PARTS.slice(0, 3));
    const upstream = lastRequest();
    controller.abort();
    await assert.rejects(iterator.next(), (err) => err instanceof GatewayError && err.kind === 'cancelled');
    await upstream.closed; // the fake saw the connection go
  });

  test('a tool call whose JSON arguments are split over many input_json_delta events', async () => {
    fake.enqueue({ fixture: 'tool-call.sse' });
    const parts = await collect(chat({ tools: [{ name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } }] }));
    assert.deepEqual(parts, [
      { type: 'start', model: 'claude-sonnet-4-5-20250929', responseId: 'msg_01ToolCallXyZ', usage: { inputTokens: 472, outputTokens: 2, totalTokens: 474 } },
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: 'Let me check the weather.' },
      { type: 'text-end', id: 'text-0' },
      { type: 'tool-input-start', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', toolName: 'get_weather' },
      { type: 'tool-input-delta', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', delta: '{"location":' },
      { type: 'tool-input-delta', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', delta: ' "San Fra' },
      { type: 'tool-input-delta', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', delta: 'ncisco, C' },
      { type: 'tool-input-delta', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', delta: 'A", "unit' },
      { type: 'tool-input-delta', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', delta: '": "fah' },
      { type: 'tool-input-delta', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', delta: 'renheit"}' },
      { type: 'tool-input-end', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6' },
      { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 472, outputTokens: 89, totalTokens: 561 } },
    ]);
    const args = parts.filter((p) => p.type === 'tool-input-delta').map((p) => p.delta).join('');
    assert.deepEqual(JSON.parse(args), { location: 'San Francisco, CA', unit: 'fahrenheit' });
    assert.deepEqual(lastRequest().body.tools, [
      { name: 'get_weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } }, description: 'Weather' },
    ]);
  });

  test('parallel tool calls, and a tool without arguments gets "{}"', async () => {
    fake.enqueue({ fixture: 'two-tool-calls.sse' });
    const parts = await collect();
    assert.deepEqual(parts.slice(1), [
      { type: 'tool-input-start', id: 'toolu_01Paris', toolName: 'get_weather' },
      { type: 'tool-input-delta', id: 'toolu_01Paris', delta: '{"location": ' },
      { type: 'tool-input-delta', id: 'toolu_01Paris', delta: '"Paris"}' },
      { type: 'tool-input-end', id: 'toolu_01Paris' },
      { type: 'tool-input-start', id: 'toolu_01Tokyo', toolName: 'get_time' },
      { type: 'tool-input-delta', id: 'toolu_01Tokyo', delta: '{"tz": "Asia/' },
      { type: 'tool-input-delta', id: 'toolu_01Tokyo', delta: 'Tokyo"}' },
      { type: 'tool-input-end', id: 'toolu_01Tokyo' },
      { type: 'tool-input-start', id: 'toolu_01NoArgs', toolName: 'get_date' },
      { type: 'tool-input-delta', id: 'toolu_01NoArgs', delta: '{}' },
      { type: 'tool-input-end', id: 'toolu_01NoArgs' },
      { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 510, outputTokens: 120, totalTokens: 630 } },
    ]);
  });

  test('usage with prompt caching: input = input_tokens + cache reads + cache writes; max_tokens → length', async () => {
    fake.enqueue({ fixture: 'cache-usage.sse' });
    const parts = await collect();
    assert.deepEqual(parts.at(-1), {
      type: 'finish',
      finishReason: 'length',
      usage: { inputTokens: 12 + 2048 + 1500, outputTokens: 3, totalTokens: 12 + 2048 + 1500 + 3, cacheReadTokens: 2048, cacheWriteTokens: 1500 },
    });
    // With the writes by TTL (message_start's cache_creation), the 1-hour ones are kept apart.
    const byTtl = loadAnthropicFixture('cache-usage.sse').replace('"cache_creation_input_tokens":1500,', '"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500},');
    assert.ok(byTtl.includes('"ephemeral_1h_input_tokens":500'));
    fake.enqueue({ sse: byTtl });
    assert.equal((await collect()).at(-1).usage.cacheWrite1hTokens, 500);
  });
});

describe('requests sent upstream', () => {
  test('a tool result round trip: tool_use in the assistant turn, tool_result blocks first in one user turn', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    const request = {
      model: 'claude',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief.', cacheControl: { type: 'ephemeral' } }] },
        user('Weather in Paris and Tokyo?'),
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Checking.' },
            { type: 'tool-call', id: 'toolu_1', name: 'get_weather', arguments: '{"location":"Paris"}' },
            { type: 'tool-call', id: 'toolu_2', name: 'get_weather', arguments: '{"location":"Tokyo"}' },
          ],
        },
        { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'toolu_1', name: 'get_weather', content: [{ type: 'text', text: '18°C' }] }] },
        { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'toolu_2', name: 'get_weather', content: [{ type: 'text', text: 'no data' }], isError: true }] },
        user('Thanks — and in °F?'),
      ],
      tools: [{ name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } }],
      toolChoice: { type: 'auto' },
      parallelToolCalls: false,
    };
    await collect(request);
    const body = lastRequest().body;
    assert.deepEqual(body.system, [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }]);
    assert.deepEqual(body.messages, [
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Tokyo?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { location: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { location: 'Tokyo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18°C' }] },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: 'no data' }], is_error: true },
          { type: 'text', text: 'Thanks — and in °F?' },
        ],
      },
    ]);
    assert.deepEqual(body.tools, [{ name: 'get_weather', input_schema: request.tools[0].parameters }]);
    assert.deepEqual(body.tool_choice, { type: 'auto', disable_parallel_tool_use: true });
  });

  test('tool choice: required → any, a named tool → tool, none → none', async () => {
    const tools = [{ name: 'f', parameters: {} }];
    for (const [choice, expected] of [
      [{ type: 'required' }, { type: 'any' }],
      [{ type: 'tool', name: 'f' }, { type: 'tool', name: 'f' }],
      [{ type: 'none' }, { type: 'none' }],
    ]) {
      fake.enqueue({ fixture: 'text.sse' });
      await collect(chat({ tools, toolChoice: choice }));
      assert.deepEqual(lastRequest().body.tool_choice, expected);
      assert.deepEqual(lastRequest().body.tools, [{ name: 'f', input_schema: { type: 'object', properties: {} } }]);
    }
  });

  test('images (bytes, data URI, URL), PDF and text documents, cache_control on parts', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const pdf = new TextEncoder().encode('%PDF-1.4 fake');
    await collect(
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Look:' },
              { type: 'image', mediaType: 'image/png', data: png, cacheControl: { type: 'ephemeral', ttl: '1h' } },
              { type: 'image', mediaType: 'image/jpeg', url: 'data:image/jpeg;base64,/9j/4AAQ' },
              { type: 'image', mediaType: 'image/webp', url: 'https://example.com/cat.webp' },
              { type: 'document', mediaType: 'application/pdf', data: pdf, name: 'report.pdf' },
              { type: 'document', mediaType: 'text/markdown', data: new TextEncoder().encode('# Notes\nüber'), name: 'notes.md' },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(lastRequest().body.messages[0].content, [
      { type: 'text', text: 'Look:' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: Buffer.from(png).toString('base64') }, cache_control: { type: 'ephemeral', ttl: '1h' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.webp' } },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: Buffer.from(pdf).toString('base64') }, title: 'report.pdf' },
      { type: 'document', source: { type: 'text', media_type: 'text/plain', data: '# Notes\nüber' }, title: 'notes.md' },
    ]);
  });

  test('documents Anthropic cannot read natively become text documents; unreadable ones and video are a 400 before any call', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    const csv = new TextEncoder().encode('city,pop\nParis,2102650');
    const html = new TextEncoder().encode('<html><body><p>Hello <b>there</b></p></body></html>');
    await collect(
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'document', mediaType: 'text/csv', data: csv, name: 'cities.csv' },
              { type: 'document', mediaType: 'text/html', data: html },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(lastRequest().body.messages[0].content, [
      { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'city,pop\nParis,2102650' }, title: 'cities.csv' },
      { type: 'document', source: { type: 'text', media_type: 'text/plain', data: '<html><body><p>Hello <b>there</b></p></body></html>' } },
    ]);

    const before = fake.requests.length;
    const video = await failure(chat({ messages: [{ role: 'user', content: [{ type: 'video', mediaType: 'video/mp4', data: new Uint8Array([0]) }] }] }));
    assert.equal(video.error.kind, 'bad_request');
    assert.equal(video.error.status, 400);
    const doc = await failure(chat({ messages: [{ role: 'user', content: [{ type: 'document', mediaType: 'application/msword', data: new Uint8Array([0xd0, 0xcf]) }] }] }));
    assert.equal(doc.error.kind, 'bad_request');
    const docx = await failure(
      chat({
        messages: [{ role: 'user', content: [{ type: 'document', mediaType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', data: new Uint8Array([0x50, 0x4b, 3, 4]) }] }],
      }),
    );
    assert.equal(docx.error.kind, 'bad_request');
    assert.equal(fake.requests.length, before);
  });

  test('sampling, stop sequences, max_tokens, and providerOptions.anthropic passed through', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    await collect(
      chat({
        temperature: 0.3,
        topP: 0.9,
        topK: 40,
        stop: ['END', '###'],
        maxTokens: 256,
        providerOptions: { anthropic: { metadata: { user_id: 'u-1' }, cache_control: { type: 'ephemeral' }, betas: ['context-1m-2025-08-07'] } },
      }),
      deployment({ betas: ['files-api-2025-04-14'] }),
    );
    const req = lastRequest();
    assert.equal(req.body.temperature, 0.3);
    assert.equal(req.body.top_p, 0.9);
    assert.equal(req.body.top_k, 40);
    assert.deepEqual(req.body.stop_sequences, ['END', '###']);
    assert.equal(req.body.max_tokens, 256);
    assert.deepEqual(req.body.metadata, { user_id: 'u-1' });
    assert.deepEqual(req.body.cache_control, { type: 'ephemeral' });
    assert.equal(req.body.betas, undefined);
    assert.equal(req.headers['anthropic-beta'], 'files-api-2025-04-14,context-1m-2025-08-07');
  });

  test('stop_reason stop_sequence: finish stop, naming the sequence Anthropic reports', async () => {
    const sse = loadAnthropicFixture('text.sse').replace('"stop_reason":"end_turn","stop_sequence":null', '"stop_reason":"stop_sequence","stop_sequence":"###"');
    assert.ok(sse.includes('"stop_sequence":"###"'));
    fake.enqueue({ sse });
    const finish = (await collect(chat({ stop: ['END', '###'] }))).at(-1);
    assert.deepEqual([finish.type, finish.finishReason, finish.stopSequence], ['finish', 'stop', '###']);
    fake.enqueue({ fixture: 'text.sse' });
    assert.equal('stopSequence' in (await collect(chat({ stop: ['END'] }))).at(-1), false);
  });

  test('max_tokens defaults to deployment.options.maxTokens', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    await collect(chat(), deployment({ maxTokens: 1000 }));
    assert.equal(lastRequest().body.max_tokens, 1000);
  });
});

describe('extended thinking', () => {
  test('thinking streams as reasoning parts, the signature is kept, and the next turn sends the blocks back unchanged', async () => {
    fake.enqueue({ fixture: 'thinking.sse' });
    const first = chat({ messages: [user('GCD of 1071 and 462?')], reasoning: { enabled: true, effort: 'medium' } });
    const parts = await collect(first);
    assert.deepEqual(parts, [
      { type: 'start', model: 'claude-sonnet-4-5-20250929', responseId: 'msg_01Thinking', usage: { inputTokens: 40, outputTokens: 3, totalTokens: 43 } },
      { type: 'reasoning-start', id: 'reasoning-0' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: 'I need the GCD of 1071 and 462. ' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: '1071 = 2·462 + 147; 462 = 3·147 + 21; 147 = 7·21.' },
      { type: 'reasoning-end', id: 'reasoning-0', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+sig==' },
      { type: 'reasoning-start', id: 'reasoning-1', redactedData: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP' },
      { type: 'reasoning-end', id: 'reasoning-1' },
      { type: 'text-start', id: 'text-2' },
      { type: 'text-delta', id: 'text-2', delta: 'The GCD is 21.' },
      { type: 'text-end', id: 'text-2' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 40, outputTokens: 210, totalTokens: 250 } },
    ]);
    let body = lastRequest().body;
    assert.deepEqual(body.thinking, { type: 'enabled', budget_tokens: 8192 });
    assert.equal(body.max_tokens, 4096 + 8192);

    fake.enqueue({ fixture: 'text.sse' });
    await collect({ ...first, messages: [...first.messages, assistantFrom(parts), user('And of 12 and 18?')] });
    body = lastRequest().body;
    assert.deepEqual(body.messages[1], {
      role: 'assistant',
      content: [
        {
          type: 'thinking',
          thinking: 'I need the GCD of 1071 and 462. 1071 = 2·462 + 147; 462 = 3·147 + 21; 147 = 7·21.',
          signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+sig==',
        },
        { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP' },
        { type: 'text', text: 'The GCD is 21.' },
      ],
    });
  });

  test("effort 'max' (OpenAI's and Anthropic's) is the largest budget, as xhigh", async () => {
    for (const effort of ['xhigh', 'max']) {
      fake.enqueue({ fixture: 'thinking.sse' });
      await collect(chat({ messages: [user('a')], reasoning: { enabled: true, effort }, maxTokens: 500 }));
      assert.deepEqual(lastRequest().body.thinking, { type: 'enabled', budget_tokens: 32768 }, effort);
      assert.equal(lastRequest().body.max_tokens, 500 + 32768);
    }
  });

  test('budgetTokens wins over effort; unsigned reasoning from another provider is not sent back; exclude hides reasoning', async () => {
    fake.enqueue({ fixture: 'thinking.sse' });
    const parts = await collect(
      chat({
        messages: [user('a'), { role: 'assistant', content: [{ type: 'reasoning', text: 'from elsewhere' }, { type: 'text', text: 'b' }] }, user('c')],
        reasoning: { enabled: true, budgetTokens: 3000, exclude: true },
        maxTokens: 500,
      }),
    );
    const body = lastRequest().body;
    assert.deepEqual(body.thinking, { type: 'enabled', budget_tokens: 3000 });
    assert.equal(body.max_tokens, 3500);
    assert.deepEqual(body.messages[1], { role: 'assistant', content: [{ type: 'text', text: 'b' }] });
    assert.equal(parts.filter((p) => p.type.startsWith('reasoning')).length, 0);
    assert.ok(parts.some((p) => p.type === 'text-delta'));
  });

  test('reasoning disabled or effort none sends no thinking', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    await collect(chat({ reasoning: { enabled: true, effort: 'none' } }));
    assert.equal(lastRequest().body.thinking, undefined);
  });
});

describe('structured output (emulated with a forced tool)', () => {
  test('responseFormat json: a json_response tool is forced and its input comes back as text', async () => {
    fake.enqueue({ fixture: 'json-response.sse' });
    const schema = { type: 'object', properties: { city: { type: 'string' }, population: { type: 'integer' } }, required: ['city'] };
    const parts = await collect(chat({ responseFormat: { type: 'json', schema, name: 'city' } }));
    assert.deepEqual(parts.slice(1), [
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: '{"city": "Par' },
      { type: 'text-delta', id: 'text-0', delta: 'is", "population": 2102650}' },
      { type: 'text-end', id: 'text-0' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 80, outputTokens: 24, totalTokens: 104 } },
    ]);
    const body = lastRequest().body;
    assert.equal(body.tools.length, 1);
    assert.equal(body.tools[0].name, 'json_response');
    assert.deepEqual(body.tools[0].input_schema, schema);
    assert.deepEqual(body.tool_choice, { type: 'tool', name: 'json_response' });
  });

  test('a non-object schema is wrapped as {value} and unwrapped at the end', async () => {
    fake.enqueue({
      sse: [
        'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_w","type":"message","role":"assistant","model":"claude","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}',
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_w","name":"json_response","input":{}}}',
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"value\\": [1, "}}',
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"2, 3]}"}}',
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}',
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}',
        'event: message_stop\ndata: {"type":"message_stop"}',
      ].join('\n\n'),
    });
    const parts = await collect(chat({ responseFormat: { type: 'json', schema: { type: 'array', items: { type: 'integer' } } } }));
    assert.deepEqual(parts.filter((p) => p.type.startsWith('text')), [
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: '[1,2,3]' },
      { type: 'text-end', id: 'text-0' },
    ]);
    assert.deepEqual(lastRequest().body.tools[0].input_schema, { type: 'object', properties: { value: { type: 'array', items: { type: 'integer' } } }, required: ['value'] });
  });
});

describe('errors', () => {
  test('429 with retry-after → rate_limit, retryable, retryAfter; no parts', async () => {
    fake.enqueue({ status: 429, error: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit' }, headers: { 'retry-after': '7' } });
    const { parts, error } = await failure();
    assert.deepEqual(parts, []);
    assert.equal(error.kind, 'rate_limit');
    assert.equal(error.status, 429);
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfter, 7);
    assert.equal(error.provider, 'anthropic');
  });

  test('500 api_error → upstream_5xx retryable; 529 overloaded → unavailable retryable', async () => {
    fake.enqueue({ status: 500, error: { type: 'api_error', message: 'Internal server error' } });
    let { error } = await failure();
    assert.equal(error.kind, 'upstream_5xx');
    assert.equal(error.retryable, true);
    fake.enqueue({ status: 529, error: { type: 'overloaded_error', message: 'Overloaded' } });
    ({ error } = await failure());
    assert.equal(error.kind, 'unavailable');
    assert.equal(error.status, 503);
    assert.equal(error.retryable, true);
  });

  test('a redirect names where it points (not followed); a 4xx without an Anthropic error type is the upstream\'s fault, 502', async () => {
    fake.enqueue({ status: 308, headers: { location: 'https://api.anthropic.com/v1/messages' } });
    let { error } = await failure();
    assert.deepEqual([error.kind, error.status, error.code, error.retryable], ['upstream_invalid', 502, 'upstream_redirect', false]);
    assert.match(error.message, /redirected \(308\) to https:\/\/api\.anthropic\.com\/v1\/messages; redirects are not followed/);
    fake.enqueue({ status: 405, error: { message: 'Method Not Allowed' } });
    ({ error } = await failure());
    assert.deepEqual([error.kind, error.status, error.code], ['upstream_invalid', 502, 'upstream_unexpected_status']);
    assert.match(error.message, /Anthropic answered 405: Method Not Allowed/);
  });

  test('400 "prompt is too long" → context_window; other 400 → bad_request; 401 → auth as 502', async () => {
    fake.enqueue({ status: 400, error: { type: 'invalid_request_error', message: 'prompt is too long: 210012 tokens > 200000 maximum' } });
    let { error } = await failure();
    assert.equal(error.kind, 'context_window');
    assert.equal(error.retryable, false);
    fake.enqueue({ status: 400, error: { type: 'invalid_request_error', message: 'temperature: range: 0..1' } });
    ({ error } = await failure());
    assert.equal(error.kind, 'bad_request');
    assert.match(error.message, /temperature: range/);
    const { error: auth } = await failure(chat(), deployment({}, { apiKey: 'wrong' }));
    assert.equal(auth.kind, 'auth');
    assert.equal(auth.status, 502);
    // Marked retryable: the router moves such a call to an untried deployment, never back.
    assert.equal(auth.retryable, true);
  });

  test('through the core: a failure before the first token rejects primeStream (so the router can fall back)', async () => {
    fake.enqueue({ status: 429, error: { type: 'rate_limit_error', message: 'slow down' }, headers: { 'retry-after': '3' } });
    await assert.rejects(primeStream(provider.stream(chat(), context())), (err) => err.kind === 'rate_limit' && err.retryAfter === 3);
  });

  test('an in-stream error event after content: content parts, then the typed error', async () => {
    fake.enqueue({ fixture: 'error-overloaded.sse' });
    const { parts, error } = await failure();
    assert.deepEqual(parts, [
      { type: 'start', model: 'claude-sonnet-4-5-20250929', responseId: 'msg_01Overload', usage: { inputTokens: 25, outputTokens: 1, totalTokens: 26 } },
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: 'Partial' },
    ]);
    assert.equal(error.kind, 'unavailable');
    assert.equal(error.retryable, true);
  });

  test('in-stream rate_limit_error and invalid_request_error keep their kinds', async () => {
    for (const [type, kind] of [
      ['rate_limit_error', 'rate_limit'],
      ['invalid_request_error', 'bad_request'],
      ['api_error', 'upstream_5xx'],
    ]) {
      fake.enqueue({ sse: `event: error\ndata: {"type":"error","error":{"type":"${type}","message":"x"}}\n\n` });
      const { error } = await failure();
      assert.equal(error.kind, kind, type);
    }
  });

  test('a connection reset after the first token: the content parts, then a thrown upstream error', async () => {
    fake.enqueue({ fixture: 'text.sse', fault: 'reset-after', faultAfter: 4 });
    const { parts, error } = await failure();
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 3));
    assert.equal(error.kind, 'upstream_5xx');
  });

  test('a stream that ends without message_stop is upstream_invalid, never a silent finish', async () => {
    fake.enqueue({ fixture: 'truncated.sse' });
    const { parts, error } = await failure();
    assert.ok(!parts.some((p) => p.type === 'finish'));
    assert.deepEqual(parts.at(-1), { type: 'text-end', id: 'text-0' });
    assert.equal(error.kind, 'upstream_invalid');
  });

  test('a stall before the headers → timeout (firstByteTimeoutMs)', async () => {
    fake.enqueue({ fault: 'stall-before-headers' });
    const { parts, error } = await failure(chat(), deployment({ firstByteTimeoutMs: 150 }));
    assert.deepEqual(parts, []);
    assert.equal(error.kind, 'timeout');
    assert.equal(error.code, 'upstream_first_byte_timeout');
    assert.equal(error.retryable, true);
  });

  test('a stall after the first event → timeout (idleTimeoutMs) after the parts already received', async () => {
    fake.enqueue({ fixture: 'text.sse', fault: 'stall-after', faultAfter: 4 });
    const { parts, error } = await failure(chat(), deployment({ idleTimeoutMs: 150 }));
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 3));
    assert.equal(error.kind, 'timeout');
    assert.equal(error.code, 'upstream_idle_timeout');
  });

  test('an already aborted signal never calls the upstream', async () => {
    const before = fake.requests.length;
    const controller = new AbortController();
    controller.abort();
    const { error } = await failure(chat(), deployment(), controller.signal);
    assert.equal(error.kind, 'cancelled');
    assert.equal(fake.requests.length, before);
  });

  test('an unreachable upstream → unavailable (retryable)', async () => {
    const { error } = await failure(chat(), deployment({}, { baseUrl: 'http://127.0.0.1:1' }));
    assert.equal(error.kind, 'unavailable');
    assert.equal(error.retryable, true);
  });
});

/** A debug logger whose lines are kept, to read what the provider said about a request. */
function recordingLogger() {
  const lines = [];
  return { lines, logger: pino({ level: 'debug' }, { write: (line) => lines.push(JSON.parse(line)) }) };
}

describe('requests Anthropic would refuse are mended or refused before the call', () => {
  test('reasoning with an empty signature (what the Messages dialect gives non-Anthropic reasoning) is unsigned: not sent, and thinking is left off a tool turn without it', async () => {
    fake.enqueue({ fixture: 'thinking.sse' });
    await collect(
      chat({
        messages: [user('a'), { role: 'assistant', content: [{ type: 'reasoning', text: 'from elsewhere', signature: '' }, { type: 'text', text: 'b' }] }, user('c')],
        reasoning: { enabled: true, budgetTokens: 2000 },
      }),
    );
    let body = lastRequest().body;
    assert.deepEqual(body.messages[1], { role: 'assistant', content: [{ type: 'text', text: 'b' }] });
    assert.deepEqual(body.thinking, { type: 'enabled', budget_tokens: 2000 });

    fake.enqueue({ fixture: 'text.sse' });
    await collect(
      chat({
        messages: [
          user('q'),
          { role: 'assistant', content: [{ type: 'reasoning', text: 'thought elsewhere', signature: '' }, { type: 'tool-call', id: 't1', name: 'f', arguments: '{}' }] },
          { role: 'tool', content: [{ type: 'tool-result', toolCallId: 't1', content: [{ type: 'text', text: 'r' }] }] },
        ],
        tools: [{ name: 'f', parameters: {} }],
        reasoning: { enabled: true, budgetTokens: 2000 },
        maxTokens: 500,
      }),
    );
    body = lastRequest().body;
    assert.deepEqual(body.messages[1], { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] });
    assert.equal(body.thinking, undefined);
    assert.equal(body.max_tokens, 500);
  });

  test('whitespace-only stop sequences are left out (Anthropic: "each stop sequence must contain non-whitespace"); the rest are sent', async () => {
    fake.enqueue({ fixture: 'text.sse' });
    await collect(chat({ stop: ['\n', 'END', ' \t', '', '\n\nHuman:'] }));
    assert.deepEqual(lastRequest().body.stop_sequences, ['END', '\n\nHuman:']);
    fake.enqueue({ fixture: 'text.sse' });
    await collect(chat({ stop: ['\n'] }));
    assert.equal('stop_sequences' in lastRequest().body, false);
  });

  test('a forced tool choice with reasoning: the choice is kept and thinking is left off (Anthropic refuses both), logged as such', async () => {
    const tools = [{ name: 'f', parameters: {} }];
    for (const [choice, expected] of [
      [{ type: 'required' }, { type: 'any' }],
      [{ type: 'tool', name: 'f' }, { type: 'tool', name: 'f' }],
    ]) {
      const { lines, logger: recording } = recordingLogger();
      fake.enqueue({ fixture: 'text.sse' });
      for await (const _ of provider.stream(chat({ tools, toolChoice: choice, reasoning: { enabled: true, budgetTokens: 2000 }, maxTokens: 500 }), { ...context(), logger: recording }));
      const body = lastRequest().body;
      assert.deepEqual(body.tool_choice, expected);
      assert.equal(body.thinking, undefined);
      assert.equal(body.max_tokens, 500);
      assert.ok(lines.some((l) => /thinking left off/.test(l.msg) && /forces a tool/.test(l.msg)), JSON.stringify(lines));
    }
    // auto does not force: thinking stays.
    fake.enqueue({ fixture: 'text.sse' });
    await collect(chat({ tools, toolChoice: { type: 'auto' }, reasoning: { enabled: true, budgetTokens: 2000 }, maxTokens: 500 }));
    assert.deepEqual(lastRequest().body.thinking, { type: 'enabled', budget_tokens: 2000 });
    assert.equal(lastRequest().body.max_tokens, 2500);
    // Required beside JSON output: forced (any), so no thinking either.
    fake.enqueue({ fixture: 'text.sse' });
    await collect(chat({ tools, toolChoice: { type: 'required' }, responseFormat: { type: 'json' }, reasoning: { enabled: true, budgetTokens: 2000 } }));
    assert.deepEqual(lastRequest().body.tool_choice, { type: 'any' });
    assert.equal(lastRequest().body.thinking, undefined);
  });

  test('a conversation that is empty or does not start with a user turn is a 400 naming messages, before any call, and not retryable', async () => {
    await assertConversationStartRefused({ chat, failure, upstreamCalls: () => fake.requests.length });
  });
});

test('capabilities are honest', () => {
  assert.deepEqual(provider.capabilities(deployment()), {
    modalities: ['text', 'image', 'document'],
    tools: true,
    structuredOutput: 'native',
    reasoning: true,
    multipleChoices: false,
    logprobs: false,
    sampling: ['temperature', 'topP', 'topK', 'stop'],
  });
});
