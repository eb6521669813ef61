// Upstreams that answer in their own wire format but with the wrong content: recorded streams of
// OpenAI, Anthropic and Bedrock with one event mutated at random (a field of another type,
// removed, an event dropped, repeated or moved), rendered in turn to chat-completions, Messages
// and organisation-chat clients, streamed and buffered. The gateway may answer, answer with a
// 502, or end the stream with an error event — but never with an internal error (500, or one
// in-stream), never leave a stream without its end, and never log an error.
// Seeded like test/fuzz-requests.test.mjs (SWITCHBOARD_FUZZ_SEED, SWITCHBOARD_FUZZ_UPSTREAM_CASES).
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODELS, startMatrix } from './helpers/matrix.mjs';
import { parentOf, paths, seeded } from './helpers/fuzz.mjs';

const SEED = Number(process.env.SWITCHBOARD_FUZZ_SEED ?? 20261123);
const CASES = Number(process.env.SWITCHBOARD_FUZZ_UPSTREAM_CASES ?? 120);
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

let rig;
before(async () => {
  rig = await startMatrix();
});
after(() => rig?.close());

const json = (file) => JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8'));

/** Anthropic's SSE text ↔ [{event, data}]. */
function sseEvents(file) {
  return fs
    .readFileSync(path.join(FIXTURES, 'anthropic', file), 'utf8')
    .split(/\n\n+/)
    .filter((block) => block.includes('data:'))
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)?.[1], data: JSON.parse(/^data: (.*)$/m.exec(block)[1]) }));
}
const toSse = (events) => events.map((e) => `${e.event ? `event: ${e.event}\n` : ''}data: ${JSON.stringify(e.data)}\n\n`).join('');

/** Each provider: its recorded streams (as lists of JSON events) and how its fake is given one. */
const providers = {
  openai: {
    recordings: ['text.json', 'tool-call.json', 'two-tool-calls.json', 'reasoning.json'].map((f) => json(`openai/${f}`)),
    scenario: (events) => ({ type: 'chunks', chunks: events }),
  },
  anthropic: {
    recordings: ['text.sse', 'tool-call.sse', 'two-tool-calls.sse', 'thinking.sse'].map((f) => sseEvents(f).map((e) => e.data)),
    // The event name follows the (possibly mutated) data's type, as Anthropic writes it.
    scenario: (events) => ({ sse: toSse(events.map((data) => ({ event: typeof data?.type === 'string' ? data.type : 'message', data }))) }),
  },
  bedrock: {
    recordings: ['text.json', 'tool-call.json', 'two-tool-calls.json', 'reasoning.json'].map((f) => json(`bedrock/${f}`)),
    scenario: (events) => ({ events }),
    // Each binary frame names its event type in a header: a mutation changes what is inside it.
    typedFrames: true,
  },
};

const VALUES = [null, true, 0, -1, 1.5, 1e300, '', 'x', '{"a":', [], [null], {}, { x: 1 }, ['a', 1]];

function mutate(recording, random, { typedFrames = false } = {}) {
  const events = structuredClone(recording);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const at = Math.floor(random() * events.length);
  const op = random();
  if (op < 0.12) events.splice(at, 1);
  else if (op < 0.2) events.splice(at, 0, structuredClone(events[at]));
  else if (op < 0.26) events.splice(Math.floor(random() * events.length), 0, ...events.splice(at, 1));
  else {
    const inside = paths(events[at]).filter((p) => p.length > (typedFrames ? 1 : 0));
    if (inside.length === 0) events[at] = structuredClone(typedFrames ? { [Object.keys(events[at])[0]]: pick(VALUES) } : pick(VALUES));
    else {
      const where = pick(inside);
      const parent = parentOf(events[at], where);
      const key = where.at(-1);
      if (random() < 0.8) parent[key] = structuredClone(pick(VALUES));
      else Array.isArray(parent) ? parent.splice(key, 1) : delete parent[key];
    }
  }
  return events;
}

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
];

/** The client routes a mutated stream is rendered through, taking turns. */
const clients = {
  openai: {
    path: '/v1/chat/completions',
    body: (model, stream) => ({ model, stream, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: TOOLS }),
    // A stream ends with [DONE], after an error chunk if it failed.
    check(text, stream) {
      if (!stream) return JSON.parse(text).object === 'chat.completion' ? undefined : 'a 200 that is no chat.completion';
      const events = text.split('\n\n').filter(Boolean);
      if (events.at(-1) !== 'data: [DONE]') return 'the stream did not end with [DONE]';
      const failure = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length))).find((chunk) => chunk.error);
      if (failure?.error.code === 'internal') return `an internal error in-stream: ${JSON.stringify(failure)}`;
      return failure ? 'failed' : undefined;
    },
  },
  messages: {
    path: '/v1/messages',
    body: (model, stream) => ({
      model,
      stream,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: TOOLS.map((t) => ({ name: t.function.name, input_schema: t.function.parameters })),
    }),
    // A stream ends with message_stop, or with an error event if it failed.
    check(text, stream) {
      if (!stream) return JSON.parse(text).type === 'message' ? undefined : 'a 200 that is no message';
      const last = text.split('\n\n').filter(Boolean).at(-1) ?? '';
      if (/^event: message_stop\n/.test(last)) return undefined;
      if (!/^event: error\n/.test(last)) return `the stream ended with neither message_stop nor error: ${last.slice(0, 200)}`;
      const { error } = JSON.parse(last.split('\ndata: ')[1]);
      return error.message === 'Internal error' ? `an internal error in-stream: ${last}` : 'failed';
    },
  },
  org: {
    path: '/api/v3/organizations/acme/ai/chat',
    streamPath: '/api/v3/organizations/acme/ai/chat/stream',
    body: (model) => ({
      modelId: model,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      toolConfig: { tools: TOOLS.map((t) => ({ toolSpec: { name: t.function.name, inputSchema: { json: t.function.parameters } } })) },
    }),
    // A stream ends with done, or with an error event if it failed.
    check(text, stream) {
      if (!stream) return JSON.parse(text).response ? undefined : 'a 200 without a response';
      const last = text.split('\n\n').filter(Boolean).at(-1) ?? '';
      if (/\nevent: done\n/.test(`\n${last}`)) return undefined;
      if (!/\nevent: error\n/.test(`\n${last}`)) return `the stream ended with neither done nor error: ${last.slice(0, 200)}`;
      return /"type":"internal_error"/.test(last) ? `an internal error in-stream: ${last}` : 'failed';
    },
  },
};

async function ask(provider, client, stream) {
  let res;
  try {
    res = await fetch(`${rig.url}${stream ? client.streamPath ?? client.path : client.path}`, {
      // Far above any answer here: past it the gateway has hung on this stream.
      signal: AbortSignal.timeout(15_000),
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(client.body(MODELS[provider], stream)),
    });
  } catch (err) {
    return { error: `no answer: ${err.cause?.code ?? err.name}` };
  }
  let text;
  try {
    text = await res.text();
  } catch (err) {
    return { error: `the body was cut or never ended: ${err.cause?.code ?? err.name}` };
  }
  if (res.status !== 200) {
    if (res.status === 500 || /"(code|message)":"(internal|Internal error)"/.test(text)) return { error: `status ${res.status}: ${text.slice(0, 300)}` };
    return { status: res.status };
  }
  const verdict = client.check(text, stream);
  if (verdict && verdict !== 'failed') return { error: `${verdict} …${text.slice(-300)}` };
  return { status: 200, failed: verdict === 'failed' };
}

const errorLines = () => rig.server.logLines.filter((line) => JSON.parse(line).level >= 50);

for (const [index, [name, provider]] of Object.entries(providers).entries()) {
  test(`${name}: ${CASES} recorded streams with one event mutated get an answer, a 502 or an in-stream error — never an internal error`, async () => {
    const random = seeded(SEED + 2000 + index);
    const failures = [];
    const outcomes = Object.fromEntries(Object.keys(clients).map((c) => [c, { answered: 0, refused: 0, failedInStream: 0 }]));
    const logged = errorLines().length;
    for (let i = 0; i < CASES; i++) {
      const recording = provider.recordings[i % provider.recordings.length];
      const events = mutate(recording, random, provider);
      const stream = i % 2 === 0;
      const clientName = Object.keys(clients)[Math.floor(i / 2) % 3];
      rig[name].enqueue(provider.scenario(events));
      const r = await ask(name, clients[clientName], stream);
      if (r.error) failures.push(`case ${i} (seed ${SEED + 2000 + index}, ${clientName} ${stream ? 'stream' : 'buffered'}): ${r.error}\n    events: ${JSON.stringify(events).slice(0, process.env.SWITCHBOARD_FUZZ_VERBOSE ? Infinity : 1500)}`);
      else if (r.status !== 200) outcomes[clientName].refused++;
      else if (r.failed) outcomes[clientName].failedInStream++;
      else outcomes[clientName].answered++;
    }
    const serverErrors = errorLines().slice(logged).map((line) => {
      const { msg, err } = JSON.parse(line);
      return `${msg}: ${err?.stack?.split('\n').slice(0, 4).join(' | ') ?? err?.message ?? ''}`;
    });
    assert.deepEqual(failures, [], `${failures.join('\n')}\nserver errors:\n${serverErrors.join('\n')}`);
    assert.deepEqual(serverErrors, [], 'the server logged an error');
    // Both kinds of outcome occur (counted over the routes: with 40 cases a route may, for some
    // seeds, draw only harmless mutations): mutations that matter are caught, harmless ones answer.
    const total = Object.values(outcomes).reduce((sum, o) => ({ answered: sum.answered + o.answered, caught: sum.caught + o.refused + o.failedInStream }), { answered: 0, caught: 0 });
    assert.ok(total.answered > 0 && total.caught > 0, JSON.stringify(outcomes));
    for (const o of Object.values(outcomes)) assert.ok(o.answered > 0, `every route answers some: ${JSON.stringify(outcomes)}`);
    // The provider still answers a clean recording afterwards.
    rig[name].enqueue(provider.scenario(structuredClone(provider.recordings[0])));
    for (const client of Object.values(clients)) assert.deepEqual(await ask(name, client, true), { status: 200, failed: false });
  });
}
