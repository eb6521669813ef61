// Upstreams that answer in their own wire format but with the wrong content: recorded streams of
// OpenAI, Anthropic and Bedrock with one event mutated at random (a field of another type,
// removed, an event dropped, repeated or moved). The gateway may answer with the text, with a
// 502, or end the stream with an error event — but never with an internal error (500, or
// code `internal` in-stream), never cut a stream without its end, and never log an error.
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
const CASES = Number(process.env.SWITCHBOARD_FUZZ_UPSTREAM_CASES ?? 60);
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
    if (inside.length === 0) events[at] = typedFrames ? { [Object.keys(events[at])[0]]: pick(VALUES) } : pick(VALUES);
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

async function ask(provider, stream) {
  let res;
  try {
    res = await fetch(`${rig.url}/v1/chat/completions`, {
      // Far above any answer here: past it the gateway has hung on this stream.
      signal: AbortSignal.timeout(15_000),
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODELS[provider], stream, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: TOOLS }),
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
    const body = JSON.parse(text);
    if (res.status === 500 || body.error?.code === 'internal') return { error: `status ${res.status}: ${text.slice(0, 300)}` };
    return { status: res.status };
  }
  if (!stream) {
    const body = JSON.parse(text);
    return body.object === 'chat.completion' ? { status: 200 } : { error: `a 200 that is no chat.completion: ${text.slice(0, 300)}` };
  }
  const events = text.split('\n\n').filter(Boolean);
  if (events.at(-1) !== 'data: [DONE]') return { error: `the stream did not end with [DONE]: …${text.slice(-200)}` };
  const failure = events.map((e) => JSON.parse(e.slice('data: '.length).replace(/^\[DONE\]$/, 'null'))).find((chunk) => chunk?.error);
  if (failure && (failure.error.code === 'internal' || failure.error.type === 'server_error')) return { error: `an internal error in-stream: ${JSON.stringify(failure)}` };
  return { status: 200, failed: Boolean(failure) };
}

const errorLines = () => rig.server.logLines.filter((line) => JSON.parse(line).level >= 50);

for (const [index, [name, provider]] of Object.entries(providers).entries()) {
  test(`${name}: ${CASES} recorded streams with one event mutated get an answer, a 502 or an in-stream error — never an internal error`, async () => {
    const random = seeded(SEED + 2000 + index);
    const failures = [];
    const outcomes = { answered: 0, refused: 0, failedInStream: 0 };
    const logged = errorLines().length;
    for (let i = 0; i < CASES; i++) {
      const recording = provider.recordings[i % provider.recordings.length];
      const events = mutate(recording, random, provider);
      const stream = i % 2 === 0;
      rig[name].enqueue(provider.scenario(events));
      const r = await ask(name, stream);
      if (r.error) failures.push(`case ${i} (seed ${SEED + 2000 + index}, ${stream ? 'stream' : 'buffered'}): ${r.error}\n    events: ${JSON.stringify(events).slice(0, process.env.SWITCHBOARD_FUZZ_VERBOSE ? Infinity : 1500)}`);
      else if (r.status !== 200) outcomes.refused++;
      else if (r.failed) outcomes.failedInStream++;
      else outcomes.answered++;
    }
    const serverErrors = errorLines().slice(logged).map((line) => {
      const { msg, err } = JSON.parse(line);
      return `${msg}: ${err?.stack?.split('\n').slice(0, 4).join(' | ') ?? err?.message ?? ''}`;
    });
    assert.deepEqual(failures, [], `${failures.join('\n')}\nserver errors:\n${serverErrors.join('\n')}`);
    assert.deepEqual(serverErrors, [], 'the server logged an error');
    // Both kinds of outcome occur: mutations that matter are caught, harmless ones still answer.
    assert.ok(outcomes.answered > 0 && outcomes.refused + outcomes.failedInStream > 0, JSON.stringify(outcomes));
    // The provider still answers a clean recording afterwards.
    rig[name].enqueue(provider.scenario(structuredClone(provider.recordings[0])));
    assert.deepEqual(await ask(name, true), { status: 200, failed: false });
  });
}
