// The Bedrock provider — the real AWS SDK client, SigV4-signed — against a loopback endpoint
// speaking Bedrock runtime's protocol (HTTP/2, or HTTP/1.1 through an egress proxy; AWS binary
// event-stream framing, x-amzn-errortype errors). Recorded event sequences live in test/fixtures/bedrock/*.json; the fake frames them.
// Canonical parts are asserted event by event; `metadata` (usage) always arrives after
// `messageStop`, as it does from real Bedrock.
// Build first: npx tsc -p tsconfig.json

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { loadBedrockFixture, startFakeBedrock } from './helpers/fake-bedrock-upstream.mjs';
import { startConnectProxy } from './helpers/connect-proxy.mjs';
import { createBedrockProvider } from '../dist/providers/bedrock/index.js';
import { bedrockEndpoint } from '../dist/providers/bedrock/client.js';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { GatewayError } from '../dist/core/errors.js';
import { primeStream } from '../dist/core/stream.js';
import { assertConversationStartRefused } from './helpers/provider-checks.mjs';

const ACCESS_KEY_ID = 'AKIDSWITCHBOARDTEST';
const SECRET = 'switchboard/fake+secret/key';
process.env.SB_TEST_BEDROCK_SECRET = SECRET;
process.env.SB_TEST_BEDROCK_WRONG_SECRET = 'not-the-secret';

const logger = pino({ level: 'silent' });
let fake;
let provider;

before(async () => {
  fake = await startFakeBedrock({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET, apiKey: 'bedrock-api-key-test' });
  provider = createBedrockProvider({ logger, config: {}, dataDir: '.' });
});
after(async () => {
  await provider.close();
  await fake.close();
});

const CLAUDE = 'anthropic.claude-3-7-sonnet-20250219-v1:0';

function deployment(options = {}, overrides = {}) {
  return {
    name: 'test-bedrock',
    provider: 'bedrock',
    model: CLAUDE,
    baseUrl: fake.url,
    region: 'eu-west-3',
    weight: 1,
    maxConcurrent: 0,
    options: { accessKeyId: ACCESS_KEY_ID, secretAccessKeyEnv: 'SB_TEST_BEDROCK_SECRET', ...options },
    ...overrides,
  };
}

function context(dep = deployment(), signal = new AbortController().signal) {
  return { model: { id: 'claude-bedrock' }, deployment: dep, signal, requestId: 'req-123', logger };
}

const user = (text) => ({ role: 'user', content: [{ type: 'text', text }] });
const chat = (extra = {}) => ({ model: 'claude-bedrock', messages: [user('Hi')], ...extra });
const b64 = (bytes) => Buffer.from(bytes).toString('base64');

async function collect(request = chat(), dep = deployment(), signal) {
  const parts = [];
  for await (const part of provider.stream(request, context(dep, signal))) parts.push(part);
  return parts;
}

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
  { type: 'start', model: CLAUDE, responseId: 'fake-request-id' },
  { type: 'text-start', id: 'text-0' },
  { type: 'text-delta', id: 'text-0', delta: 'Hello' },
  { type: 'text-delta', id: 'text-0', delta: ', world' },
  { type: 'text-delta', id: 'text-0', delta: '!' },
  { type: 'text-end', id: 'text-0' },
  { type: 'finish', finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 4, totalTokens: 16 } },
];

/** The upstream stalls after the first text delta; the parts up to it arrive, then an abort closes the upstream response. */
async function abortAfterFirstDelta() {
  fake.enqueue({ fixture: 'text.json', fault: 'stall-after', faultAfter: 2 });
  const controller = new AbortController();
  const iterator = provider.stream(chat(), context(deployment(), controller.signal))[Symbol.asyncIterator]();
  const seen = [];
  while (seen.at(-1)?.type !== 'text-delta') {
    const next = await iterator.next();
    assert.ok(!next.done, `the stream ended before a text delta: ${JSON.stringify(seen)}`);
    seen.push(next.value);
  }
  assert.deepEqual(seen, TEXT_PARTS.slice(0, 3));
  const upstream = lastRequest();
  controller.abort();
  await assert.rejects(iterator.next(), (err) => err instanceof GatewayError && err.kind === 'cancelled');
  await upstream.closed;
}

describe('streamed answers → canonical parts', () => {
  test('plain text through ConverseStream; the request is SigV4-signed with the configured key', async () => {
    fake.enqueue({ fixture: 'text.json' });
    assert.deepEqual(await collect(), TEXT_PARTS);
    const req = lastRequest();
    assert.equal(req.method, 'POST');
    assert.equal(req.operation, 'converse-stream');
    assert.equal(req.modelId, CLAUDE);
    assert.ok(req.authorization.startsWith(`AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/`), req.authorization);
    assert.equal(req.auth.region, 'eu-west-3');
    assert.equal(req.auth.service, 'bedrock');
    assert.match(req.headers['x-amz-date'], /^\d{8}T\d{6}Z$/);
    assert.equal(req.signatureValid, true, 'the signature recomputed with the secret matches');
    assert.deepEqual(req.body, { messages: [{ role: 'user', content: [{ text: 'Hi' }] }] });
  });

  test('frames split across writes give the same parts', async () => {
    fake.enqueue({ fixture: 'text.json', splitFrames: true });
    assert.deepEqual(await collect(), TEXT_PARTS);
  });

  test('finish waits for metadata: it carries the usage that arrives after messageStop', async () => {
    // Everything up to messageStop, then silence: no finish may be emitted without the usage.
    fake.enqueue({ fixture: 'text.json', fault: 'stall-after', faultAfter: 6 });
    const { parts, error } = await failure(chat(), deployment({ idleTimeoutMs: 300 }));
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 6));
    assert.equal(error.kind, 'timeout');

    fake.enqueue({ fixture: 'cache-usage.json' });
    const cached = await collect();
    assert.deepEqual(cached.at(-1), {
      type: 'finish',
      finishReason: 'length',
      usage: { inputTokens: 12 + 2048 + 1500, outputTokens: 3, totalTokens: 12 + 2048 + 1500 + 3, cacheReadTokens: 2048, cacheWriteTokens: 1500 },
    });
    // With the writes by TTL (cacheDetails, 1h before 5m), the 1-hour ones are kept apart.
    const events = loadBedrockFixture('cache-usage.json');
    const metadata = events.find((e) => e.metadata);
    metadata.metadata.usage.cacheDetails = [{ ttl: '1h', inputTokens: 1200 }, { ttl: '5m', inputTokens: 300 }];
    fake.enqueue({ events });
    assert.equal((await collect()).at(-1).usage.cacheWrite1hTokens, 1200);
  });

  test('parts are yielded as events arrive, and aborting the signal cuts the upstream stream', abortAfterFirstDelta);

  test('a tool call: contentBlockStart → tool-input-start, input fragments → tool-input-delta', async () => {
    fake.enqueue({ fixture: 'tool-call.json' });
    const parts = await collect(chat({ tools: [{ name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } }] }));
    const id = 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q';
    assert.deepEqual(parts, [
      { type: 'start', model: CLAUDE, responseId: 'fake-request-id' },
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: 'Let me check the weather.' },
      { type: 'text-end', id: 'text-0' },
      { type: 'tool-input-start', id, toolName: 'get_weather' },
      { type: 'tool-input-delta', id, delta: '{"location":' },
      { type: 'tool-input-delta', id, delta: ' "San Fra' },
      { type: 'tool-input-delta', id, delta: 'ncisco, C' },
      { type: 'tool-input-delta', id, delta: 'A", "unit' },
      { type: 'tool-input-delta', id, delta: '": "fah' },
      { type: 'tool-input-delta', id, delta: 'renheit"}' },
      { type: 'tool-input-end', id },
      { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 472, outputTokens: 89, totalTokens: 561 } },
    ]);
    assert.deepEqual(lastRequest().body.toolConfig, {
      tools: [{ toolSpec: { name: 'get_weather', description: 'Weather', inputSchema: { json: { type: 'object', properties: { location: { type: 'string' } } } } } }],
    });
  });

  test('two parallel tool calls', async () => {
    fake.enqueue({ fixture: 'two-tool-calls.json' });
    const parts = await collect();
    assert.deepEqual(parts.slice(1), [
      { type: 'tool-input-start', id: 'tooluse_Paris', toolName: 'get_weather' },
      { type: 'tool-input-delta', id: 'tooluse_Paris', delta: '{"location": ' },
      { type: 'tool-input-delta', id: 'tooluse_Paris', delta: '"Paris"}' },
      { type: 'tool-input-end', id: 'tooluse_Paris' },
      { type: 'tool-input-start', id: 'tooluse_Tokyo', toolName: 'get_time' },
      { type: 'tool-input-delta', id: 'tooluse_Tokyo', delta: '{"tz": "Asia/' },
      { type: 'tool-input-delta', id: 'tooluse_Tokyo', delta: 'Tokyo"}' },
      { type: 'tool-input-end', id: 'tooluse_Tokyo' },
      { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 510, outputTokens: 120, totalTokens: 630 } },
    ]);
  });

  test('stop reasons: guardrail_intervened / content_filtered → content-filter, stop_sequence → stop', async () => {
    for (const [stopReason, finishReason] of [
      ['guardrail_intervened', 'content-filter'],
      ['content_filtered', 'content-filter'],
      ['stop_sequence', 'stop'],
      ['max_tokens', 'length'],
    ]) {
      fake.enqueue({
        events: [
          { messageStart: { role: 'assistant' } },
          { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'x' } } },
          { contentBlockStop: { contentBlockIndex: 0 } },
          { messageStop: { stopReason } },
          { metadata: { usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 } } },
        ],
      });
      const parts = await collect();
      assert.equal(parts.at(-1).finishReason, finishReason, stopReason);
    }
  });

  test("which stop sequence fired: Claude is asked for it and its answer is kept; else the only one sent, else null", async () => {
    const stopped = (fields) => ({
      events: [
        { messageStart: { role: 'assistant' } },
        { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'x' } } },
        { contentBlockStop: { contentBlockIndex: 0 } },
        { messageStop: { stopReason: 'stop_sequence', ...(fields ? { additionalModelResponseFields: fields } : {}) } },
        { metadata: { usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 } } },
      ],
    });
    fake.enqueue(stopped({ delta: { stop_sequence: '###' } }));
    let finish = (await collect(chat({ stop: ['END', '###'] }))).at(-1);
    assert.deepEqual(lastRequest().body.additionalModelResponseFieldPaths, ['/delta/stop_sequence']);
    assert.deepEqual([finish.finishReason, finish.stopSequence], ['stop', '###']);
    fake.enqueue(stopped());
    finish = (await collect(chat({ stop: ['END'] }))).at(-1);
    assert.equal(finish.stopSequence, 'END');
    fake.enqueue(stopped());
    finish = (await collect(chat({ stop: ['END', '###'] }))).at(-1);
    assert.equal(finish.stopSequence, null);
    // No stop sequences: nothing asked for, nothing reported.
    fake.enqueue({ fixture: 'text.json' });
    finish = (await collect(chat())).at(-1);
    assert.equal(lastRequest().body.additionalModelResponseFieldPaths, undefined);
    assert.equal('stopSequence' in finish, false);
  });
});

describe('requests sent upstream', () => {
  test('a tool result round trip: toolUse in the assistant turn, toolResult blocks first in the user turn', async () => {
    fake.enqueue({ fixture: 'text.json' });
    const request = {
      model: 'claude-bedrock',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief.', cacheControl: { type: 'ephemeral' } }] },
        user('Weather in Paris and Tokyo?'),
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Checking.' },
            { type: 'tool-call', id: 'tooluse_1', name: 'get_weather', arguments: '{"location":"Paris"}' },
            { type: 'tool-call', id: 'tooluse_2', name: 'get_weather', arguments: '{"location":"Tokyo"}' },
          ],
        },
        { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'tooluse_1', content: [{ type: 'text', text: '18°C' }] }] },
        { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'tooluse_2', content: [{ type: 'text', text: 'no data' }], isError: true }] },
        user('Thanks'),
      ],
      tools: [{ name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } }],
      toolChoice: { type: 'required' },
      temperature: 0.2,
      topP: 0.8,
      stop: ['END'],
      maxTokens: 300,
    };
    await collect(request);
    const body = lastRequest().body;
    assert.deepEqual(body.system, [{ text: 'Be brief.' }, { cachePoint: { type: 'default' } }]);
    assert.deepEqual(body.messages, [
      { role: 'user', content: [{ text: 'Weather in Paris and Tokyo?' }] },
      {
        role: 'assistant',
        content: [
          { text: 'Checking.' },
          { toolUse: { toolUseId: 'tooluse_1', name: 'get_weather', input: { location: 'Paris' } } },
          { toolUse: { toolUseId: 'tooluse_2', name: 'get_weather', input: { location: 'Tokyo' } } },
        ],
      },
      {
        role: 'user',
        content: [
          { toolResult: { toolUseId: 'tooluse_1', content: [{ text: '18°C' }], status: 'success' } },
          { toolResult: { toolUseId: 'tooluse_2', content: [{ text: 'no data' }], status: 'error' } },
          { text: 'Thanks' },
        ],
      },
    ]);
    assert.deepEqual(body.toolConfig.toolChoice, { any: {} });
    assert.deepEqual(body.inferenceConfig, { maxTokens: 300, temperature: 0.2, topP: 0.8, stopSequences: ['END'] });
    assert.equal(body.additionalModelRequestFields, undefined);
  });

  test('tool choice: a named tool → {tool:{name}}; none → no tools, unless history holds tool blocks', async () => {
    const tools = [{ name: 'f', parameters: {} }];
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ tools, toolChoice: { type: 'tool', name: 'f' } }));
    assert.deepEqual(lastRequest().body.toolConfig, { tools: [{ toolSpec: { name: 'f', inputSchema: { json: { type: 'object', properties: {} } } } }], toolChoice: { tool: { name: 'f' } } });
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ tools, toolChoice: { type: 'none' } }));
    assert.equal(lastRequest().body.toolConfig, undefined);
    fake.enqueue({ fixture: 'text.json' });
    await collect(
      chat({
        tools,
        toolChoice: { type: 'none' },
        messages: [
          user('q'),
          { role: 'assistant', content: [{ type: 'tool-call', id: 't1', name: 'f', arguments: '{}' }] },
          { role: 'tool', content: [{ type: 'tool-result', toolCallId: 't1', content: [{ type: 'text', text: 'r' }] }] },
        ],
      }),
    );
    assert.deepEqual(lastRequest().body.toolConfig, { tools: [{ toolSpec: { name: 'f', inputSchema: { json: { type: 'object', properties: {} } } } }] });
  });

  test('images, video and documents as {format, source:{bytes}}; document names made Bedrock-safe; cache points', async () => {
    fake.enqueue({ fixture: 'text.json' });
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const mp4 = new Uint8Array([0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70]);
    const pdf = new TextEncoder().encode('%PDF-1.7');
    const docx = new Uint8Array([0x50, 0x4b, 3, 4]);
    await collect(
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Compare:' },
              { type: 'image', mediaType: 'image/png', data: png },
              { type: 'image', mediaType: 'image/jpeg', url: 's3://bucket/cat.jpg' },
              { type: 'video', mediaType: 'video/mp4', data: mp4 },
              { type: 'video', mediaType: 'video/3gpp', data: mp4 },
              { type: 'document', mediaType: 'application/pdf', data: pdf, name: 'Q3 report (final).pdf', cacheControl: { type: 'ephemeral' } },
              { type: 'document', mediaType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', data: docx, name: 'notes_v2.docx' },
              { type: 'document', mediaType: 'text/csv', data: new TextEncoder().encode('a,b\n1,2') },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(lastRequest().body.messages[0].content, [
      { text: 'Compare:' },
      { image: { format: 'png', source: { bytes: b64(png) } } },
      { image: { format: 'jpeg', source: { s3Location: { uri: 's3://bucket/cat.jpg' } } } },
      { video: { format: 'mp4', source: { bytes: b64(mp4) } } },
      { video: { format: 'three_gp', source: { bytes: b64(mp4) } } },
      { document: { format: 'pdf', name: 'Q3 report (final)', source: { bytes: b64(pdf) } } },
      { cachePoint: { type: 'default' } },
      { document: { format: 'docx', name: 'notes-v2', source: { bytes: b64(docx) } } },
      { document: { format: 'csv', name: 'document-3', source: { bytes: b64(new TextEncoder().encode('a,b\n1,2')) } } },
    ]);
  });

  test('cache breakpoints on a tool definition, a tool call and a tool result become cache points after them', async () => {
    fake.enqueue({ fixture: 'text.json' });
    const ttl = { type: 'ephemeral', ttl: '1h' };
    await collect(
      chat({
        messages: [
          user('Weather in Paris?'),
          { role: 'assistant', content: [{ type: 'tool-call', id: 'tu_1', name: 'get_weather', arguments: '{"location":"Paris"}', cacheControl: { type: 'ephemeral' } }] },
          { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'tu_1', content: [{ type: 'text', text: '18°C' }], cacheControl: ttl }] },
        ],
        tools: [
          { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } }, cacheControl: { type: 'ephemeral' } },
          { name: 'get_time', parameters: { type: 'object', properties: {} } },
        ],
      }),
    );
    const body = lastRequest().body;
    assert.deepEqual(body.messages[1].content, [{ toolUse: { toolUseId: 'tu_1', name: 'get_weather', input: { location: 'Paris' } } }, { cachePoint: { type: 'default' } }]);
    assert.deepEqual(body.messages[2].content, [{ toolResult: { toolUseId: 'tu_1', content: [{ text: '18°C' }], status: 'success' } }, { cachePoint: { type: 'default', ttl: '1h' } }]);
    assert.deepEqual(
      body.toolConfig.tools.map((t) => Object.keys(t)[0]),
      ['toolSpec', 'cachePoint', 'toolSpec'],
    );
  });

  test("the client's Anthropic beta flags go to Claude as anthropic_beta (merged with providerOptions'), and not to Nova", async () => {
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ anthropicBetas: ['context-1m-2025-08-07', 'interleaved-thinking-2025-05-14'], providerOptions: { bedrock: { anthropic_beta: ['context-1m-2025-08-07', 'token-efficient-tools-2025-02-19'] } } }));
    assert.deepEqual(lastRequest().body.additionalModelRequestFields.anthropic_beta, ['context-1m-2025-08-07', 'token-efficient-tools-2025-02-19', 'interleaved-thinking-2025-05-14']);
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ anthropicBetas: ['context-1m-2025-08-07'] }), deployment({}, { model: 'amazon.nova-pro-v1:0' }));
    assert.equal(lastRequest().body.additionalModelRequestFields, undefined);
  });

  test('media Bedrock cannot take are refused with a 400 before any call', async () => {
    const before = fake.requests.length;
    const bmp = await failure(chat({ messages: [{ role: 'user', content: [{ type: 'image', mediaType: 'image/bmp', data: new Uint8Array([0x42, 0x4d]) }] }] }));
    assert.equal(bmp.error.kind, 'bad_request');
    const url = await failure(chat({ messages: [{ role: 'user', content: [{ type: 'image', mediaType: 'image/png', url: 'https://example.com/a.png' }] }] }));
    assert.equal(url.error.kind, 'bad_request');
    assert.equal(fake.requests.length, before);
  });

  test('top_k: refused unless the deployment enables it; then sent in additionalModelRequestFields', async () => {
    assert.ok(!provider.capabilities(deployment()).sampling.includes('topK'));
    const { error } = await failure(chat({ topK: 20 }));
    assert.equal(error.kind, 'bad_request');
    assert.equal(error.param, 'top_k');

    assert.ok(provider.capabilities(deployment({ topK: true })).sampling.includes('topK'));
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ topK: 20 }), deployment({ topK: true }));
    assert.deepEqual(lastRequest().body.additionalModelRequestFields, { top_k: 20 });

    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ topK: 20 }), deployment({ topK: true }, { model: 'amazon.nova-pro-v1:0' }));
    assert.deepEqual(lastRequest().body.additionalModelRequestFields, { inferenceConfig: { topK: 20 } });
  });

  test('providerOptions.bedrock: Converse fields top-level, the rest in additionalModelRequestFields', async () => {
    fake.enqueue({ fixture: 'text.json' });
    await collect(
      chat({
        providerOptions: {
          bedrock: { guardrailConfig: { guardrailIdentifier: 'gr-1', guardrailVersion: '1' }, requestMetadata: { team: 'a' }, anthropic_beta: ['x'], additionalModelRequestFields: { y: 1 } },
        },
      }),
    );
    const body = lastRequest().body;
    assert.deepEqual(body.guardrailConfig, { guardrailIdentifier: 'gr-1', guardrailVersion: '1' });
    assert.deepEqual(body.requestMetadata, { team: 'a' });
    assert.deepEqual(body.additionalModelRequestFields, { anthropic_beta: ['x'], y: 1 });
  });

  test('a Bedrock API key is sent as Bearer instead of SigV4', async () => {
    fake.enqueue({ fixture: 'text.json' });
    const parts = await collect(chat(), deployment({ accessKeyId: undefined, secretAccessKeyEnv: undefined }, { apiKey: 'bedrock-api-key-test' }));
    assert.deepEqual(parts, TEXT_PARTS);
    assert.equal(lastRequest().authorization, 'Bearer bedrock-api-key-test');
  });
});

describe('reasoning', () => {
  test('Claude: reasoningContent streams as reasoning parts with the signature kept, and goes back unchanged', async () => {
    fake.enqueue({ fixture: 'reasoning.json' });
    const first = chat({ messages: [user('GCD of 1071 and 462?')], reasoning: { enabled: true, effort: 'low' } });
    const parts = await collect(first);
    assert.deepEqual(parts, [
      { type: 'start', model: CLAUDE, responseId: 'fake-request-id' },
      { type: 'reasoning-start', id: 'reasoning-0' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: 'I need the GCD of 1071 and 462. ' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: '1071 = 2·462 + 147; 462 = 3·147 + 21; 147 = 7·21.' },
      { type: 'reasoning-end', id: 'reasoning-0', signature: 'ErcBCkgIAhABGAIiQBedrockSig+/AbC==' },
      { type: 'reasoning-start', id: 'reasoning-1', redactedData: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' },
      { type: 'reasoning-end', id: 'reasoning-1' },
      { type: 'text-start', id: 'text-2' },
      { type: 'text-delta', id: 'text-2', delta: 'The GCD is 21.' },
      { type: 'text-end', id: 'text-2' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 40, outputTokens: 210, totalTokens: 250 } },
    ]);
    let body = lastRequest().body;
    assert.deepEqual(body.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 2048 } });
    assert.equal(body.inferenceConfig.maxTokens, 4096 + 2048);

    fake.enqueue({ fixture: 'text.json' });
    await collect({ ...first, messages: [...first.messages, assistantFrom(parts), user('And 12, 18?')] });
    body = lastRequest().body;
    assert.deepEqual(body.messages[1], {
      role: 'assistant',
      content: [
        {
          reasoningContent: {
            reasoningText: { text: 'I need the GCD of 1071 and 462. 1071 = 2·462 + 147; 462 = 3·147 + 21; 147 = 7·21.', signature: 'ErcBCkgIAhABGAIiQBedrockSig+/AbC==' },
          },
        },
        { reasoningContent: { redactedContent: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' } },
        { text: 'The GCD is 21.' },
      ],
    });
  });

  test('Nova: reasoningConfig with maxReasoningEffort; other families refuse reasoning', async () => {
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ reasoning: { enabled: true, effort: 'high' } }), deployment({}, { model: 'us.amazon.nova-2-lite-v1:0' }));
    assert.deepEqual(lastRequest().body.additionalModelRequestFields, { reasoningConfig: { type: 'enabled', maxReasoningEffort: 'high' } });
    assert.equal(lastRequest().body.inferenceConfig, undefined);
    // OpenAI's and Anthropic's 'max' is Nova's highest.
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ reasoning: { enabled: true, effort: 'max' } }), deployment({}, { model: 'us.amazon.nova-2-lite-v1:0' }));
    assert.deepEqual(lastRequest().body.additionalModelRequestFields, { reasoningConfig: { type: 'enabled', maxReasoningEffort: 'high' } });

    const other = deployment({}, { model: 'meta.llama3-70b-instruct-v1:0' });
    assert.equal(provider.capabilities(other).reasoning, false);
    const { error } = await failure(chat({ reasoning: { enabled: true } }), other);
    assert.equal(error.kind, 'bad_request');
    assert.equal(error.param, 'reasoning');
  });
});

describe('structured output (emulated with a forced tool)', () => {
  test('responseFormat json: a json_response tool is forced and its input comes back as text, finish stop', async () => {
    fake.enqueue({ fixture: 'json-response.json' });
    const schema = { type: 'object', properties: { city: { type: 'string' }, population: { type: 'integer' } } };
    const parts = await collect(chat({ responseFormat: { type: 'json', schema } }));
    assert.deepEqual(parts.slice(1), [
      { type: 'text-start', id: 'text-0' },
      { type: 'text-delta', id: 'text-0', delta: '{"city": "Par' },
      { type: 'text-delta', id: 'text-0', delta: 'is", "population": 2102650}' },
      { type: 'text-end', id: 'text-0' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 80, outputTokens: 24, totalTokens: 104 } },
    ]);
    const { toolConfig } = lastRequest().body;
    assert.equal(toolConfig.tools[0].toolSpec.name, 'json_response');
    assert.deepEqual(toolConfig.tools[0].toolSpec.inputSchema, { json: schema });
    assert.deepEqual(toolConfig.toolChoice, { tool: { name: 'json_response' } });
  });
});

describe('errors', () => {
  test('429 ThrottlingException → rate_limit, retryable; no parts', async () => {
    fake.enqueue({ error: 'ThrottlingException' });
    const { parts, error } = await failure();
    assert.deepEqual(parts, []);
    assert.equal(error.kind, 'rate_limit');
    assert.equal(error.status, 429);
    assert.equal(error.retryable, true);
    assert.equal(error.provider, 'bedrock');
  });

  test('500 InternalServerException → upstream_5xx; 503 ServiceUnavailableException → unavailable; both retryable', async () => {
    fake.enqueue({ error: 'InternalServerException' });
    let { error } = await failure();
    assert.equal(error.kind, 'upstream_5xx');
    assert.equal(error.retryable, true);
    fake.enqueue({ error: 'ServiceUnavailableException' });
    ({ error } = await failure());
    assert.equal(error.kind, 'unavailable');
    assert.equal(error.retryable, true);
  });

  test('ValidationException: too long → context_window, else bad_request; AccessDenied → auth (502); ResourceNotFound → not_found; ModelTimeout → timeout', async () => {
    const cases = [
      [{ error: 'ValidationException', message: 'Input is too long for requested model.' }, 'context_window', 400, false],
      [{ error: 'ValidationException', message: 'The model returned the following errors: temperature: range: 0..1' }, 'bad_request', 400, false],
      // Marked retryable: the router moves such a call to an untried deployment, never back.
      [{ error: 'AccessDeniedException' }, 'auth', 502, true],
      [{ error: 'ResourceNotFoundException' }, 'not_found', 502, true],
      [{ error: 'ModelTimeoutException' }, 'timeout', 504, true],
    ];
    for (const [scenario, kind, status, retryable] of cases) {
      fake.enqueue(scenario);
      const { error } = await failure();
      assert.equal(error.kind, kind, scenario.error);
      assert.equal(error.status, status, scenario.error);
      assert.equal(error.retryable, retryable, scenario.error);
    }
  });

  test('a wrong secret: the fake rejects the signature → auth (502)', async () => {
    const { error } = await failure(chat(), deployment({ secretAccessKeyEnv: 'SB_TEST_BEDROCK_WRONG_SECRET' }));
    assert.equal(lastRequest().signatureValid, false);
    assert.equal(error.kind, 'auth');
    assert.equal(error.status, 502);
  });

  test('through the core: a failure before the first token rejects primeStream', async () => {
    fake.enqueue({ error: 'ThrottlingException' });
    await assert.rejects(primeStream(provider.stream(chat(), context())), (err) => err.kind === 'rate_limit' && err.retryable === true);
  });

  test('in-stream exceptions after content: content parts, then the typed error', async () => {
    fake.enqueue({ fixture: 'throttled-mid-stream.json' });
    let { parts, error } = await failure();
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 2).concat([{ type: 'text-delta', id: 'text-0', delta: 'Partial' }]));
    assert.equal(error.kind, 'rate_limit');
    assert.equal(error.retryable, true);

    for (const [exception, kind] of [
      ['modelStreamErrorException', 'upstream_5xx'],
      ['internalServerException', 'upstream_5xx'],
      ['serviceUnavailableException', 'unavailable'],
      ['validationException', 'bad_request'],
      ['modelTimeoutException', 'timeout'], // not modelled in ConverseStreamOutput: arrives unmodelled
    ]) {
      fake.enqueue({ events: [{ messageStart: { role: 'assistant' } }, { exception: { [exception]: { message: 'boom', originalStatusCode: 500 } } }] });
      ({ parts, error } = await failure());
      assert.equal(error.kind, kind, exception);
    }
  });

  test('a connection reset mid-stream: the content parts, then a thrown upstream error', async () => {
    fake.enqueue({ fixture: 'text.json', fault: 'reset-after', faultAfter: 2 });
    const { parts, error } = await failure();
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 3));
    assert.equal(error.kind, 'upstream_5xx');
  });

  test('a stream that ends before messageStop is upstream_invalid, never a silent finish', async () => {
    fake.enqueue({ fixture: 'truncated.json' });
    const { parts, error } = await failure();
    assert.ok(!parts.some((p) => p.type === 'finish'));
    assert.equal(error.kind, 'upstream_invalid');
  });

  test('a stall before the headers → timeout', async () => {
    fake.enqueue({ fault: 'stall-before-headers' });
    const { parts, error } = await failure(chat(), deployment({ connectTimeoutMs: 50, firstByteTimeoutMs: 100 }));
    assert.deepEqual(parts, []);
    assert.equal(error.kind, 'timeout');
    assert.equal(error.code, 'upstream_first_byte_timeout');
    assert.equal(error.retryable, true);
  });

  test('a stall after the first event → timeout after the parts received', async () => {
    fake.enqueue({ fixture: 'text.json', fault: 'stall-after', faultAfter: 2 });
    const { parts, error } = await failure(chat(), deployment({ idleTimeoutMs: 300 }));
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 3));
    assert.equal(error.kind, 'timeout');
    assert.equal(error.code, 'upstream_idle_timeout');
  });

  test('credentials configured but the secret variable is empty → auth, before any call', async () => {
    const before = fake.requests.length;
    const { error } = await failure(chat(), deployment({ secretAccessKeyEnv: 'SB_TEST_BEDROCK_UNSET' }));
    assert.equal(error.kind, 'auth');
    assert.equal(error.code, 'upstream_credentials_missing');
    assert.equal(fake.requests.length, before);
  });
});

describe('through an egress proxy: HTTP/1.1 in a CONNECT tunnel, the same parts and the same faults', () => {
  const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];
  let proxy;
  let direct;
  let savedEnv;
  before(async () => {
    proxy = await startConnectProxy();
    savedEnv = Object.fromEntries(PROXY_VARS.map((name) => [name, process.env[name]]));
    for (const name of PROXY_VARS) delete process.env[name];
    process.env.HTTP_PROXY = proxy.url;
    process.env.HTTPS_PROXY = proxy.url;
    // A provider of its own: clients pick their transport when they are made.
    direct = provider;
    provider = createBedrockProvider({ logger, config: {}, dataDir: '.' });
  });
  after(async () => {
    await provider.close();
    provider = direct;
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await proxy.close();
  });

  test('the proxy is chosen for the endpoint the SDK will call: baseUrl, the SDK\'s endpoint variables, the region\'s', () => {
    assert.equal(bedrockEndpoint({ region: 'eu-west-3', endpoint: 'http://127.0.0.1:9' }, { AWS_ENDPOINT_URL: 'https://other' }), 'http://127.0.0.1:9');
    assert.equal(bedrockEndpoint({ region: 'eu-west-3' }, { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: 'https://vpce-1.example', AWS_ENDPOINT_URL: 'https://other' }), 'https://vpce-1.example');
    assert.equal(bedrockEndpoint({ region: 'eu-west-3' }, { AWS_ENDPOINT_URL: 'https://all-services.example' }), 'https://all-services.example');
    assert.equal(bedrockEndpoint({ region: 'eu-west-3' }, {}), 'https://bedrock-runtime.eu-west-3.amazonaws.com');
  });

  test('plain text and split frames: the same parts, over HTTP/1.1 through the tunnel, signed', async () => {
    fake.enqueue({ fixture: 'text.json' });
    assert.deepEqual(await collect(), TEXT_PARTS);
    assert.equal(lastRequest().httpVersion, '1.1');
    assert.equal(lastRequest().signatureValid, true);
    assert.deepEqual(proxy.tunnels, [new URL(fake.url).host]);
    fake.enqueue({ fixture: 'text.json', splitFrames: true });
    assert.deepEqual(await collect(), TEXT_PARTS);
    fake.enqueue({ fixture: 'text.json', chunkSizes: [1, 7, 64] });
    assert.deepEqual(await collect(), TEXT_PARTS);
  });

  test('aborting the signal cuts the upstream response', abortAfterFirstDelta);

  test('429, a reset mid-stream, stalls before the headers and after an event: the same typed errors', async () => {
    fake.enqueue({ error: 'ThrottlingException' });
    let { parts, error } = await failure();
    assert.deepEqual([parts, error.kind, error.status, error.retryable], [[], 'rate_limit', 429, true]);

    fake.enqueue({ fixture: 'text.json', fault: 'reset-after', faultAfter: 2 });
    ({ parts, error } = await failure());
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 3));
    assert.equal(error.kind, 'upstream_5xx');

    fake.enqueue({ fault: 'stall-before-headers' });
    ({ parts, error } = await failure(chat(), deployment({ connectTimeoutMs: 50, firstByteTimeoutMs: 100 })));
    assert.deepEqual([parts, error.kind, error.code], [[], 'timeout', 'upstream_first_byte_timeout']);

    fake.enqueue({ fixture: 'text.json', fault: 'stall-after', faultAfter: 2 });
    ({ parts, error } = await failure(chat(), deployment({ idleTimeoutMs: 300 })));
    assert.deepEqual(parts, TEXT_PARTS.slice(0, 3));
    assert.deepEqual([error.kind, error.code], ['timeout', 'upstream_idle_timeout']);
    assert.ok(fake.requests.slice(-4).every((r) => r.httpVersion === '1.1'));
  });
});

test('options.http1: HTTP/1.1 without a proxy, with the same parts and errors; HTTP/2 otherwise', async () => {
  fake.enqueue({ fixture: 'text.json' });
  assert.deepEqual(await collect(chat(), deployment({ http1: true })), TEXT_PARTS);
  assert.equal(lastRequest().httpVersion, '1.1');
  assert.equal(lastRequest().signatureValid, true);
  fake.enqueue({ fixture: 'text.json', fault: 'reset-after', faultAfter: 2 });
  const { parts, error } = await failure(chat(), deployment({ http1: true }));
  assert.deepEqual(parts, TEXT_PARTS.slice(0, 3));
  assert.equal(error.kind, 'upstream_5xx');
  fake.enqueue({ fixture: 'text.json' });
  assert.deepEqual(await collect(), TEXT_PARTS);
  assert.equal(lastRequest().httpVersion, '2.0');
});

test('a connection reset before the headers is a reset, not a timeout, over HTTP/1.1 and HTTP/2', async () => {
  // The SDK's HTTP/1.1 handler renames ECONNRESET to TimeoutError (for its retry strategy): it was a 504 "timed out: socket hang up".
  for (const options of [{ http1: true }, {}]) {
    fake.enqueue({ fault: 'reset-before-headers' });
    const { parts, error } = await failure(chat(), deployment(options));
    assert.deepEqual(parts, []);
    assert.equal(error.kind, 'upstream_5xx', `${JSON.stringify(options)}: ${error.kind} ${error.message}`);
    assert.equal(error.status, 502);
    // HTTP/2 reports the stream's reset (it was already a 502); HTTP/1.1 the closed socket.
    assert.match(error.message, options.http1 ? /^Bedrock closed the connection: socket hang up \(ECONNRESET\)/ : /NGHTTP2_INTERNAL_ERROR/);
  }
});

test('the fake also answers the buffered Converse operation (for clients that use it)', async () => {
  const client = new BedrockRuntimeClient({ region: 'eu-west-3', endpoint: fake.url, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET }, maxAttempts: 1 });
  try {
    fake.enqueue({ fixture: 'tool-call.json' });
    const out = await client.send(new ConverseCommand({ modelId: CLAUDE, messages: [{ role: 'user', content: [{ text: 'Hi' }] }] }));
    assert.equal(lastRequest().operation, 'converse');
    assert.equal(lastRequest().signatureValid, true);
    assert.equal(out.stopReason, 'tool_use');
    assert.deepEqual(out.output.message.content, [
      { text: 'Let me check the weather.' },
      { toolUse: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', name: 'get_weather', input: { location: 'San Francisco, CA', unit: 'fahrenheit' } } },
    ]);
    assert.deepEqual(out.usage, { inputTokens: 472, outputTokens: 89, totalTokens: 561 });
  } finally {
    client.destroy();
  }
});

/** A debug logger whose lines are kept, to read what the provider said about a request. */
function recordingLogger() {
  const lines = [];
  return { lines, logger: pino({ level: 'debug' }, { write: (line) => lines.push(JSON.parse(line)) }) };
}

const NOVA = 'us.amazon.nova-2-lite-v1:0';
const toolHistory = [
  user('Weather in Paris and Tokyo?'),
  {
    role: 'assistant',
    content: [
      { type: 'tool-call', id: 'tooluse_1', name: 'get_weather', arguments: '{"location":"Paris"}' },
      { type: 'tool-call', id: 'tooluse_2', name: 'get_weather', arguments: '{"location":"Tokyo"}' },
      { type: 'tool-call', id: 'tooluse_3', name: 'get_time', arguments: '{}' },
    ],
  },
  {
    role: 'tool',
    content: [
      { type: 'tool-result', toolCallId: 'tooluse_1', content: [{ type: 'text', text: '18°C' }] },
      { type: 'tool-result', toolCallId: 'tooluse_2', content: [{ type: 'text', text: '25°C' }] },
      { type: 'tool-result', toolCallId: 'tooluse_3', content: [{ type: 'text', text: '12:00' }] },
    ],
  },
];

describe('requests Converse would refuse are mended or refused before the call', () => {
  test('history with toolUse/toolResult but no tools offered: toolConfig lists the tools the history used (no choice); a call to one is a normal tool call', async () => {
    const historySpec = (name) => ({ toolSpec: { name, description: "A tool from this conversation's history.", inputSchema: { json: { type: 'object' } } } });
    for (const extra of [{}, { toolChoice: { type: 'none' } }, { tools: [] }]) {
      fake.enqueue({ fixture: 'tool-call.json' });
      const parts = await collect(chat({ messages: toolHistory, ...extra }));
      assert.deepEqual(lastRequest().body.toolConfig, { tools: [historySpec('get_weather'), historySpec('get_time')] }, JSON.stringify(extra));
      const id = 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q';
      assert.deepEqual(parts.find((p) => p.type === 'tool-input-start'), { type: 'tool-input-start', id, toolName: 'get_weather' });
      assert.equal(parts.at(-1).finishReason, 'tool-calls');
    }
    // No tool blocks in the history and no tools: still no toolConfig.
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat());
    assert.equal(lastRequest().body.toolConfig, undefined);
  });

  test('reasoning with an empty signature is unsigned: not sent, and Claude thinking is left off a tool turn without it', async () => {
    fake.enqueue({ fixture: 'text.json' });
    await collect(
      chat({
        messages: [user('a'), { role: 'assistant', content: [{ type: 'reasoning', text: 'from elsewhere', signature: '' }, { type: 'text', text: 'b' }] }, user('c')],
        reasoning: { enabled: true, budgetTokens: 2000 },
      }),
    );
    let body = lastRequest().body;
    assert.deepEqual(body.messages[1], { role: 'assistant', content: [{ text: 'b' }] });
    assert.deepEqual(body.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 2000 } });

    fake.enqueue({ fixture: 'text.json' });
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
    assert.deepEqual(body.messages[1], { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'f', input: {} } }] });
    assert.equal(body.additionalModelRequestFields, undefined);
    assert.equal(body.inferenceConfig.maxTokens, 500);
  });

  test('whitespace-only stop sequences are left out for Claude (kept for other families); the rest are sent', async () => {
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ stop: ['\n', 'END', ' \t', ''] }));
    assert.deepEqual(lastRequest().body.inferenceConfig, { stopSequences: ['END'] });
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ stop: ['\n'] }));
    assert.equal(lastRequest().body.inferenceConfig, undefined);
    assert.equal(lastRequest().body.additionalModelResponseFieldPaths, undefined);
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ stop: ['\n', 'END'] }), deployment({}, { model: NOVA }));
    assert.deepEqual(lastRequest().body.inferenceConfig, { stopSequences: ['\n', 'END'] });
  });

  test('Claude: a forced tool choice with reasoning keeps the choice and leaves thinking off, logged as such; Nova keeps its reasoning', async () => {
    const tools = [{ name: 'f', parameters: {} }];
    for (const [choice, expected] of [
      [{ type: 'required' }, { any: {} }],
      [{ type: 'tool', name: 'f' }, { tool: { name: 'f' } }],
    ]) {
      const { lines, logger: recording } = recordingLogger();
      fake.enqueue({ fixture: 'text.json' });
      for await (const _ of provider.stream(chat({ tools, toolChoice: choice, reasoning: { enabled: true, budgetTokens: 2000 }, maxTokens: 500 }), { ...context(), logger: recording }));
      const body = lastRequest().body;
      assert.deepEqual(body.toolConfig.toolChoice, expected);
      assert.equal(body.additionalModelRequestFields, undefined);
      assert.equal(body.inferenceConfig.maxTokens, 500);
      assert.ok(lines.some((l) => /thinking left off/.test(l.msg) && /forces a tool/.test(l.msg)), JSON.stringify(lines));
    }
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ tools, toolChoice: { type: 'auto' }, reasoning: { enabled: true, budgetTokens: 2000 }, maxTokens: 500 }));
    assert.deepEqual(lastRequest().body.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 2000 } });
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ tools, toolChoice: { type: 'required' }, reasoning: { enabled: true, effort: 'low' } }), deployment({}, { model: NOVA }));
    assert.deepEqual(lastRequest().body.toolConfig.toolChoice, { any: {} });
    assert.deepEqual(lastRequest().body.additionalModelRequestFields, { reasoningConfig: { type: 'enabled', maxReasoningEffort: 'low' } });
  });

  test('a conversation that is empty or does not start with a user turn is a 400 naming messages, before any call, and not retryable', async () => {
    await assertConversationStartRefused({ chat, failure, upstreamCalls: () => fake.requests.length });
  });

  test('Nova: a reasoning budget is added to maxTokens (Nova counts reasoning inside it); with an effort only, maxTokens is sent as is', async () => {
    fake.enqueue({ fixture: 'text.json' });
    // What the Messages dialect passes for max_tokens 3000 with budget_tokens 2000.
    await collect(chat({ maxTokens: 1000, reasoning: { enabled: true, budgetTokens: 2000 } }), deployment({}, { model: NOVA }));
    assert.equal(lastRequest().body.inferenceConfig.maxTokens, 3000);
    assert.deepEqual(lastRequest().body.additionalModelRequestFields, { reasoningConfig: { type: 'enabled', maxReasoningEffort: 'low' } });
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ maxTokens: 1000, reasoning: { enabled: true, effort: 'medium' } }), deployment({}, { model: NOVA }));
    assert.equal(lastRequest().body.inferenceConfig.maxTokens, 1000);
    // The deployment's maxTokens stands in for the request's.
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ reasoning: { enabled: true, budgetTokens: 5000 } }), deployment({ maxTokens: 800 }, { model: NOVA }));
    assert.equal(lastRequest().body.inferenceConfig.maxTokens, 5800);
    // No cap at all: none is invented.
    fake.enqueue({ fixture: 'text.json' });
    await collect(chat({ reasoning: { enabled: true, budgetTokens: 5000 } }), deployment({}, { model: NOVA }));
    assert.equal(lastRequest().body.inferenceConfig, undefined);
  });
});

test('capabilities are honest', () => {
  assert.deepEqual(provider.capabilities(deployment()), {
    modalities: ['text', 'image', 'video', 'document'],
    tools: true,
    structuredOutput: 'native',
    reasoning: true,
    multipleChoices: false,
    logprobs: false,
    sampling: ['temperature', 'topP', 'stop'],
  });
});
