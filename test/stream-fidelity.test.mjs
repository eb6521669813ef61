// Text and tool arguments arrive whole and unchanged on every dialect, whatever the upstream's byte
// boundaries. Each provider's fake sends an answer (text with multi-byte characters, escapes and
// line separators; a tool call whose arguments hold the same) cut into random deltas, and its body
// cut into random byte pieces — inside a UTF-8 character, an SSE line, a `data:` prefix, a
// Bedrock frame's header — and, for OpenAI, with CRLF line ends in some cases. Every dialect,
// buffered and streamed, must give back exactly the text the fake was given, and arguments that
// parse to the same object. Deterministic for SWITCHBOARD_FUZZ_SEED.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';
import { startFakeAnthropic } from './helpers/fake-anthropic-upstream.mjs';
import { startFakeBedrock } from './helpers/fake-bedrock-upstream.mjs';
import { startServer, postJson, readSse } from './helpers/server.mjs';
import { seeded } from './helpers/fuzz.mjs';

const SEED = Number(process.env.SWITCHBOARD_FUZZ_SEED ?? 20261124);
const CASES = 4;
const AWS = { accessKeyId: 'AKIDFIDELITY', secretAccessKey: 'fidelity/fake+secret' };
process.env.SB_FIDELITY_BEDROCK_SECRET = AWS.secretAccessKey;

let fakes;
let server;
before(async () => {
  const [openai, anthropic, bedrock] = await Promise.all([startFakeOpenAI(), startFakeAnthropic({ apiKey: 'sk-ant-fidelity' }), startFakeBedrock(AWS)]);
  fakes = { openai, anthropic, bedrock };
  server = await startServer({
    env: { FIDELITY_ANTHROPIC_KEY: 'sk-ant-fidelity' },
    config: {
      router: { retries: 0 },
      models: [
        { id: 'f-openai', provider: 'openai', model: 'gpt-4o-mini', baseUrl: openai.url },
        { id: 'f-anthropic', provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: anthropic.url, apiKeyEnv: 'FIDELITY_ANTHROPIC_KEY' },
        {
          id: 'f-bedrock',
          provider: 'bedrock',
          model: 'anthropic.claude-3-7-sonnet-20250219-v1:0',
          baseUrl: bedrock.url,
          region: 'eu-west-3',
          options: { accessKeyId: AWS.accessKeyId, secretAccessKeyEnv: 'SB_FIDELITY_BEDROCK_SECRET' },
        },
      ],
    },
  });
});
after(async () => {
  await server?.close();
  await Promise.all(Object.values(fakes ?? {}).map((f) => f.close()));
});

// Two- to four-byte UTF-8, a combining accent, a ZWJ sequence, JSON escapes, line separators.
const PIECES = ['Grüße', ' 🦊', ' 中文', ' é', ' 👨‍👩‍👧', ' "quoted"', ' back\\slash', ' line\nbreak', ' tab\t', ' \u2028sep\u2029', ' <b>&amp;</b>', ' 1/2', ' ok.'];

/** Text built from `PIECES` and cut into `n` deltas at random code-point boundaries. */
function randomText(random) {
  const text = Array.from({ length: 4 + Math.floor(random() * 6) }, () => PIECES[Math.floor(random() * PIECES.length)]).join('');
  return { text, deltas: cut([...text], 2 + Math.floor(random() * 5), random).map((cps) => cps.join('')) };
}

/** `list` cut into `n` non-empty runs at random places (fewer when it is shorter). */
function cut(list, n, random) {
  const points = new Set();
  while (points.size < Math.min(n, list.length) - 1) points.add(1 + Math.floor(random() * (list.length - 1)));
  const sorted = [0, ...[...points].sort((a, b) => a - b), list.length];
  return sorted.slice(1).map((end, i) => list.slice(sorted[i], end));
}

/** Arguments whose JSON text is cut anywhere (inside escapes too), as upstreams cut it. */
function randomArguments(random) {
  const args = { city: randomText(random).text, note: 'a "b" \\ c 🦊', n: Math.floor(random() * 100) };
  const json = JSON.stringify(args);
  return { args, fragments: cut([...json], 2 + Math.floor(random() * 6), random).map((cps) => cps.join('')) };
}

const sizes = (random) => Array.from({ length: 7 }, () => 1 + Math.floor(random() * 9));

/** Writes `body` in pieces of `pieceSizes` bytes (cycled), a turn of the event loop apart. */
async function writeInPieces(res, body, pieceSizes) {
  const bytes = Buffer.from(body, 'utf8');
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = pieceSizes[i % pieceSizes.length];
    res.write(bytes.subarray(at, at + size));
    at += size;
    await new Promise((r) => setImmediate(r));
  }
  res.end();
}

/** What each provider's fake answers: `answer` is {deltas} for text or {fragments} for a tool call. */
const upstreams = {
  openai(answer, random) {
    const crlf = random() < 0.5;
    return {
      type: 'handler',
      async handle(req, res, record) {
        const head = { id: 'chatcmpl-fidelity', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
        const chunk = (delta, finish = null) => ({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
        const chunks = [chunk({ role: 'assistant', content: answer.deltas ? '' : null })];
        if (answer.deltas) for (const d of answer.deltas) chunks.push(chunk({ content: d }));
        else {
          answer.fragments.forEach((fragment, i) =>
            chunks.push(chunk({ tool_calls: [{ index: 0, ...(i === 0 ? { id: 'call_fidelity', type: 'function', function: { name: 'lookup', arguments: fragment } } : { function: { arguments: fragment } }) }] })),
          );
        }
        chunks.push(chunk({}, answer.deltas ? 'stop' : 'tool_calls'));
        if (record.body.stream_options?.include_usage) chunks.push({ ...head, choices: [], usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 } });
        const end = crlf ? '\r\n\r\n' : '\n\n';
        const body = chunks.map((c) => `data: ${JSON.stringify(c)}${end}`).join('') + `data: [DONE]${end}`;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        await writeInPieces(res, body, sizes(random));
      },
    };
  },
  anthropic(answer, random) {
    const event = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const block = answer.deltas ? { type: 'text', text: '' } : { type: 'tool_use', id: 'toolu_fidelity', name: 'lookup', input: {} };
    const deltas = answer.deltas
      ? answer.deltas.map((text) => ({ type: 'text_delta', text }))
      : answer.fragments.map((partial_json) => ({ type: 'input_json_delta', partial_json }));
    const sse =
      event('message_start', { message: { id: 'msg_fidelity', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, output_tokens: 1 } } }) +
      event('content_block_start', { index: 0, content_block: block }) +
      deltas.map((delta) => event('content_block_delta', { index: 0, delta })).join('') +
      event('content_block_stop', { index: 0 }) +
      event('message_delta', { delta: { stop_reason: answer.deltas ? 'end_turn' : 'tool_use', stop_sequence: null }, usage: { output_tokens: 7 } }) +
      event('message_stop', {});
    return { sse, chunkSize: 1 + Math.floor(random() * 9) };
  },
  bedrock(answer, random) {
    const events = [{ messageStart: { role: 'assistant' } }];
    if (answer.deltas) for (const text of answer.deltas) events.push({ contentBlockDelta: { contentBlockIndex: 0, delta: { text } } });
    else {
      events.push({ contentBlockStart: { contentBlockIndex: 0, start: { toolUse: { toolUseId: 'tooluse_fidelity', name: 'lookup' } } } });
      for (const input of answer.fragments) events.push({ contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input } } } });
    }
    events.push({ contentBlockStop: { contentBlockIndex: 0 } });
    events.push({ messageStop: { stopReason: answer.deltas ? 'end_turn' : 'tool_use' } });
    events.push({ metadata: { usage: { inputTokens: 9, outputTokens: 7, totalTokens: 16 }, metrics: { latencyMs: 1 } } });
    return { events, chunkSizes: sizes(random) };
  },
};

const TOOL = { name: 'lookup', description: 'Looks up a city', parameters: { type: 'object', properties: { city: { type: 'string' }, note: { type: 'string' }, n: { type: 'integer' } } } };
const userTurn = [{ role: 'user', content: 'go' }];
const anthropicHeaders = { 'anthropic-version': '2023-06-01' };

/** Each dialect and mode: `text(model)` → the text it gives back; `tool(model)` → the arguments object (where the mode carries tool calls). */
const dialects = {
  'openai buffered': {
    text: async (model) => (await post('/v1/chat/completions', { model, messages: userTurn })).choices[0].message.content,
    tool: async (model) => JSON.parse((await post('/v1/chat/completions', { model, messages: userTurn, tools: [{ type: 'function', function: TOOL }] })).choices[0].message.tool_calls[0].function.arguments),
  },
  'openai stream': {
    text: async (model) => openaiChunks(await stream('/v1/chat/completions', { model, messages: userTurn, stream: true })).map((c) => c.choices[0]?.delta?.content ?? '').join(''),
    tool: async (model) =>
      JSON.parse(
        openaiChunks(await stream('/v1/chat/completions', { model, messages: userTurn, stream: true, tools: [{ type: 'function', function: TOOL }] }))
          .map((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '')
          .join(''),
      ),
  },
  'messages buffered': {
    text: async (model) => (await post('/v1/messages', { model, max_tokens: 64, messages: userTurn }, anthropicHeaders)).content.map((b) => b.text).join(''),
    tool: async (model) => (await post('/v1/messages', { model, max_tokens: 64, messages: userTurn, tools: [messagesTool] }, anthropicHeaders)).content.find((b) => b.type === 'tool_use').input,
  },
  'messages stream': {
    text: async (model) => messagesDeltas(await stream('/v1/messages', { model, max_tokens: 64, messages: userTurn, stream: true }, anthropicHeaders)).map((d) => d.text ?? '').join(''),
    tool: async (model) =>
      JSON.parse(
        messagesDeltas(await stream('/v1/messages', { model, max_tokens: 64, messages: userTurn, stream: true, tools: [messagesTool] }, anthropicHeaders))
          .map((d) => d.partial_json ?? '')
          .join(''),
      ),
  },
  'org buffered': {
    text: async (model) => (await post('/api/v3/organizations/default/ai/chat', { modelId: model, messages: [{ role: 'user', content: [{ text: 'go' }] }] })).response.content,
    tool: async (model) => (await post('/api/v3/organizations/default/ai/chat', { modelId: model, messages: [{ role: 'user', content: [{ text: 'go' }] }], toolConfig: orgTools })).response.toolUse.input,
  },
  'org stream': {
    text: async (model) =>
      (await stream('/api/v3/organizations/default/ai/chat/stream', { modelId: model, messages: [{ role: 'user', content: [{ text: 'go' }] }] }))
        .filter((e) => e.event === 'content')
        .map((e) => JSON.parse(e.data).delta)
        .join(''),
    tool: async (model) =>
      JSON.parse((await stream('/api/v3/organizations/default/ai/chat/stream', { modelId: model, messages: [{ role: 'user', content: [{ text: 'go' }] }], toolConfig: orgTools })).find((e) => e.event === 'tool_use').data).toolUse.input,
  },
  'eden buffered': {
    text: async (model) => (await post('/v2/text/chat', { providers: model, text: 'go' }))[model].generated_text,
    tool: async (model) => JSON.parse((await post('/v2/text/chat', { providers: model, text: 'go', available_tools: [TOOL] }))[model].tool_calls[0].arguments),
  },
  'eden stream': {
    text: async (model) => {
      const res = await fetch(`${server.url}/v2/text/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ providers: model, text: 'go' }) });
      assert.equal(res.status, 200);
      return res.text();
    },
  },
};
const messagesTool = { name: TOOL.name, description: TOOL.description, input_schema: TOOL.parameters };
const orgTools = { tools: [{ toolSpec: { name: TOOL.name, description: TOOL.description, inputSchema: { json: TOOL.parameters } } }] };

async function post(path, body, headers = {}) {
  const res = await postJson(`${server.url}${path}`, body, headers);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

async function stream(path, body, headers = {}) {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const { events } = await readSse(res);
  const failed = events.find((e) => e.event === 'error' || e.data.includes('"error"'));
  assert.equal(failed, undefined, failed?.data);
  return events;
}

const openaiChunks = (events) => events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));
const messagesDeltas = (events) => events.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta);

for (const provider of Object.keys(upstreams)) {
  test(`${provider}: every dialect gives back the upstream's text and tool arguments exactly, whatever its byte boundaries`, async () => {
    const random = seeded(SEED + provider.length);
    for (let i = 0; i < CASES; i++) {
      for (const [name, dialect] of Object.entries(dialects)) {
        const text = randomText(random);
        fakes[provider].enqueue(upstreams[provider](text, random));
        assert.equal(await dialect.text(`f-${provider}`), text.text, `${name}, case ${i}: text`);
        if (!dialect.tool) continue;
        const call = randomArguments(random);
        fakes[provider].enqueue(upstreams[provider](call, random));
        assert.deepEqual(await dialect.tool(`f-${provider}`), call.args, `${name}, case ${i}: tool arguments`);
      }
    }
  });
}
