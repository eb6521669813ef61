// Malformed and edge-valued requests against the real local model: the sampling fields, grammar
// and tool options reach node-llama-cpp's native code here, where a value the validation lets
// through could crash the process rather than fail a request. Every answer must be a success or
// a 4xx in OpenAI's shape, nothing may be logged as an internal error, and the model must still
// answer afterwards. Seeded like test/fuzz-requests.test.mjs (SWITCHBOARD_FUZZ_SEED,
// SWITCHBOARD_FUZZ_LOCAL_CASES).
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { ensureTestModel } from './helpers/model.mjs';
import { Ajv } from 'ajv';
import { parentOf, paths, seeded } from './helpers/fuzz.mjs';

const SEED = Number(process.env.SWITCHBOARD_FUZZ_SEED ?? 20261123);
const CASES = Number(process.env.SWITCHBOARD_FUZZ_LOCAL_CASES ?? 60);
const SCHEMA_CASES = Math.ceil(CASES / 3);
// A small context bounds the longest answer a mutant can ask for.
const CONTEXT = 256;

let s;
before(async () => {
  const model = ensureTestModel();
  s = await startServer({
    config: {
      local: { threads: 1, parallel: 4, queueLimit: 16, contextSize: CONTEXT },
      defaultModel: 'tiny',
      models: [{ id: 'tiny', provider: 'local', model, contextLength: CONTEXT }],
    },
  });
});
after(() => s?.close());

const bases = [
  {
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 3,
    temperature: 0.7,
    top_p: 0.9,
    top_k: 20,
    min_p: 0.05,
    seed: 3,
    presence_penalty: 0.5,
    frequency_penalty: 0.5,
    repetition_penalty: 1.1,
    stop: ['zz'],
    n: 2,
    logprobs: true,
    top_logprobs: 2,
    logit_bias: { 100: -5, 200: 3 },
  },
  {
    model: 'tiny',
    messages: [{ role: 'user', content: 'weather?' }],
    max_tokens: 24,
    temperature: 0,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Oslo', 'Rome'] } }, required: ['city'] } } }],
    tool_choice: 'required',
    stream: true,
  },
  {
    model: 'tiny',
    messages: [{ role: 'system', content: 'JSON only.' }, { role: 'user', content: 'a number' }],
    max_tokens: 48,
    temperature: 0.3,
    response_format: { type: 'json_schema', json_schema: { name: 'c', strict: true, schema: { type: 'object', properties: { color: { enum: ['red', 'blue'] } }, required: ['color'], additionalProperties: false } } },
    reasoning: { effort: 'low', exclude: true },
  },
];

/** Edge values for numbers above all: the fields that reach the sampler. */
const VALUES = [null, true, 0, -1, -0.0001, 1e-300, 0.5, 1, 2, 3.5, 100, 1e9, 1e300, -1e300, 2 ** 31, 2 ** 53 + 2, '', '1', [], {}, { x: 1 }, ['a']];

function mutant(base, random) {
  const body = structuredClone(base);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const times = random() < 0.6 ? 1 : 2;
  for (let i = 0; i < times; i++) {
    const all = paths(body).filter((p) => p.length > 0 && p[0] !== 'model');
    if (all.length === 0) break;
    const path = pick(all);
    const parent = parentOf(body, path);
    const key = path.at(-1);
    const op = random();
    if (op < 0.7) parent[key] = structuredClone(pick(VALUES));
    else if (op < 0.85) Array.isArray(parent) ? parent.splice(key, 1) : delete parent[key];
    else parent[key] = typeof parent[key] === 'number' ? pick([-parent[key], parent[key] * 1000, parent[key] / 1000]) : structuredClone(pick(VALUES));
  }
  return JSON.stringify(body);
}

async function send(body) {
  let res;
  try {
    res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  } catch (err) {
    return { error: `the connection failed: ${err.cause?.code ?? err.message}` };
  }
  const text = await res.text();
  if (res.status >= 500) {
    // A grammar the model could not finish within max_tokens is the model's failure, said as such.
    if (res.status === 502 && /structured_output_invalid/.test(text)) return { status: 502 };
    return { error: `status ${res.status}: ${text.slice(0, 300)}` };
  }
  if (res.status >= 400) {
    const b = JSON.parse(text);
    if (!(typeof b.error?.message === 'string' && typeof b.error.type === 'string' && 'param' in b.error)) return { error: `not OpenAI's shape: ${text.slice(0, 300)}` };
    return { status: res.status };
  }
  if (/"type":\s*"(server_error|internal_error)"/.test(text)) return { error: `a success carrying an internal error: ${text.slice(0, 300)}` };
  return { status: res.status };
}

const errorLines = () => s.logLines.filter((line) => JSON.parse(line).level >= 50);

for (const [index, base] of bases.entries()) {
  test(`local model, base ${index + 1}: ${CASES} mutated requests each get a success or a 4xx, and the model keeps answering`, async () => {
    const first = await send(JSON.stringify(base));
    assert.ok(!first.error && first.status === 200, `the unmutated request must succeed: ${first.error ?? first.status}`);
    const random = seeded(SEED + 1000 + index);
    const bodies = Array.from({ length: CASES }, () => mutant(base, random));
    const failures = [];
    const logged = errorLines().length;
    let answered = 0;
    for (let i = 0; i < bodies.length; i += 4) {
      const batch = bodies.slice(i, i + 4);
      const results = await Promise.all(batch.map(send));
      results.forEach((r, j) => {
        if (r.error) failures.push(`case ${i + j} (seed ${SEED + 1000 + index}): ${r.error}\n    body: ${batch[j].slice(0, 1200)}`);
        else if (r.status === 200) answered++;
      });
    }
    const serverErrors = errorLines().slice(logged).map((line) => {
      const { msg, err } = JSON.parse(line);
      return `${msg}: ${err?.stack?.split('\n').slice(0, 4).join(' | ') ?? err?.message ?? ''}`;
    });
    assert.deepEqual(failures, [], `${failures.join('\n')}\nserver errors:\n${serverErrors.join('\n')}`);
    assert.deepEqual(serverErrors, [], 'the server logged an error');
    // Mutated sampling values that are valid must reach the model, not all be refused.
    assert.ok(answered > 0, 'no mutant was answered');
    const last = await send(JSON.stringify(base));
    assert.ok(!last.error && last.status === 200, String(last.error ?? last.status));
  });
}

/**
 * A random JSON schema built only from what the local grammar enforces (after the rewrite in
 * src/providers/local/grammar-schema.ts): as zod, Pydantic and hand-written schemas put it
 * (anyOf for nullable, allOf, definitions, formats, small integer ranges). Strings are short so
 * that an answer fits in max_tokens.
 */
function randomSchema(random, definitions, depth = 0) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const short = () => ({ type: 'string', maxLength: 1 + Math.floor(random() * 8) });
  const leaves = [
    short,
    () => ({ ...short(), format: pick(['email', 'uuid', 'uri']) }),
    () => ({ type: 'string', format: pick(['date', 'time']) }),
    () => ({ type: 'boolean' }),
    () => ({ type: 'integer', minimum: -3, maximum: 3 + Math.floor(random() * 40) }),
    () => ({ type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 10, description: 'a rating' }),
    () => ({ enum: ['a', 'b', 3, null] }),
    () => ({ const: 'fixed' }),
    () => ({ type: ['string', 'null'], maxLength: 4 }),
    () => ({ type: 'null' }),
  ];
  if (depth >= 2) return pick(leaves)();
  const nested = () => randomSchema(random, definitions, depth + 1);
  const object = () => {
    const count = 1 + Math.floor(random() * 3);
    const properties = Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${depth}${i}`, nested()]));
    return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
  };
  const compounds = [
    object,
    () => ({ anyOf: [nested(), { type: 'null' }] }),
    // As Pydantic and zod write a base object extended: open parts, each with its own properties.
    () => {
      const { additionalProperties: _a, ...base } = object();
      const extension = { type: 'object', properties: { [`x${depth}`]: nested() }, required: [`x${depth}`] };
      return { allOf: [base, extension] };
    },
    () => ({ type: 'array', items: pick(leaves)(), maxItems: 3 }),
    () => {
      const name = `D${Object.keys(definitions).length}`;
      definitions[name] = pick(leaves)();
      return { $ref: `#/definitions/${name}` };
    },
  ];
  return random() < 0.5 ? pick(leaves)() : pick(compounds)();
}

test(`local model: ${SCHEMA_CASES} generated JSON schemas of enforceable constructs each get schema-valid output (or finish 'length')`, async () => {
  const random = seeded(SEED + 3000);
  const failures = [];
  let valid = 0;
  for (let i = 0; i < SCHEMA_CASES; i++) {
    const definitions = {};
    const properties = { a: randomSchema(random, definitions), b: randomSchema(random, definitions) };
    const schema = { type: 'object', properties, required: ['a', 'b'], additionalProperties: false, ...(Object.keys(definitions).length ? { definitions } : {}) };
    const body = { model: 'tiny', messages: [{ role: 'user', content: 'json' }], seed: i, max_tokens: 200, response_format: { type: 'json_schema', json_schema: { name: 's', schema } } };
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = await res.json();
    const choice = answer.choices?.[0];
    if (res.status !== 200) failures.push(`case ${i}: status ${res.status} ${JSON.stringify(answer.error)}\n    schema: ${JSON.stringify(schema)}`);
    else if (choice.finish_reason === 'stop') {
      // The server validated it already; checked here again against the schema as sent.
      const validate = new Ajv({ validateFormats: false }).compile(schema);
      if (!validate(JSON.parse(choice.message.content))) failures.push(`case ${i}: ${JSON.stringify(validate.errors)}\n    output: ${choice.message.content}\n    schema: ${JSON.stringify(schema)}`);
      else valid++;
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.ok(valid >= SCHEMA_CASES / 2, `most answers finish within max_tokens: ${valid} of ${SCHEMA_CASES}`);
});
