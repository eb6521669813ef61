// Malformed requests, generated: every chat route gets valid bodies mutated at random (a field
// given another type, removed, wrapped, an unknown field added) and bodies that are not JSON at
// all. Each answer must be a success or a 4xx in that route's own error shape — never a 5xx, a
// dropped connection or an error logged by the server — and the server must keep serving.
// Deterministic: SWITCHBOARD_FUZZ_SEED (default below) and SWITCHBOARD_FUZZ_CASES pick the cases;
// a failure prints the seed, the case and its body, so it can be replayed.
// Build first: npx tsc -p tsconfig.json
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { GatewayError } from '../dist/core/errors.js';
import { MAX_JSON_DEPTH, MAX_JSON_KEYS } from '../dist/server/json-body.js';
import { startServer } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';
import { isObject, parentOf, paths, seeded } from './helpers/fuzz.mjs';

const SEED = Number(process.env.SWITCHBOARD_FUZZ_SEED ?? 20261123);
const CASES = Number(process.env.SWITCHBOARD_FUZZ_CASES ?? 150);

const ADMIN = 'admin-key-for-fuzzing';
let s;
before(async () => {
  const scripted = createScriptedFactory({ GatewayError });
  s = await startServer({
    providers: { scripted: scripted.factory },
    config: {
      defaultModel: 'sc',
      models: [
        { id: 'sc', provider: 'scripted', model: 's', modalities: ['text', 'image'] },
        // Fallbacks need a second model.
        { id: 'sc2', provider: 'scripted', model: 's2' },
      ],
    },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
});
after(() => s?.close());

const str = (v) => typeof v === 'string';

/** Each dialect's error body, as its SDK or client reads it. */
const shapes = {
  openai: (b) => isObject(b?.error) && str(b.error.message) && str(b.error.type) && 'param' in b.error && 'code' in b.error,
  messages: (b) => b?.type === 'error' && isObject(b.error) && str(b.error.type) && str(b.error.message),
  org: (b) => isObject(b?.error) && str(b.error.type) && str(b.error.message) && str(b.requestId),
  eden: (b) => isObject(b?.error) && str(b.error.type) && (str(b.error.message) || isObject(b.error.message)),
};

const routes = [
  {
    path: '/v1/chat/completions',
    shape: 'openai',
    base: {
      model: 'sc',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":"x"}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'done' },
      ],
      max_tokens: 5,
      temperature: 0.5,
      top_p: 0.9,
      stop: ['zz'],
      n: 1,
      seed: 1,
      tools: [{ type: 'function', function: { name: 'f', description: 'F', parameters: { type: 'object', properties: { a: { type: 'string' } } } } }],
      tool_choice: 'auto',
      response_format: { type: 'text' },
      stream_options: { include_usage: true },
      stream: true,
      reasoning: { effort: 'low' },
      logprobs: true,
      top_logprobs: 2,
    },
  },
  {
    path: '/api/v3/inference/chat/completions',
    shape: 'openai',
    base: { model: 'default', messages: [{ role: 'user', content: 'script:json', name: 'ann' }], max_tokens: 5, prompt_truncate_len: 100, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } } },
  },
  {
    path: '/v1/messages',
    shape: 'messages',
    base: {
      model: 'sc',
      max_tokens: 2048,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'hm', signature: 'sig' }, { type: 'tool_use', id: 'toolu_1', name: 'f', input: { a: 1 } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'ok' }] },
      ],
      tools: [{ name: 'f', description: 'F', input_schema: { type: 'object', properties: { a: { type: 'number' } } } }],
      tool_choice: { type: 'auto' },
      thinking: { type: 'enabled', budget_tokens: 1024 },
      stop_sequences: ['zz'],
      metadata: { user_id: 'u1' },
      stream: true,
    },
  },
  {
    // Fallbacks on a refusal, with a history that carries a fallback and a compaction block.
    path: '/v1/messages',
    shape: 'messages',
    base: {
      model: 'sc',
      max_tokens: 64,
      messages: [
        { role: 'assistant', content: [{ type: 'compaction', content: 'Earlier: greetings.', encrypted_content: null }] },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'text', text: 'no' }, { type: 'fallback', from: { model: 'sc' }, to: { model: 'sc2' }, trigger: { type: 'refusal', category: null } }, { type: 'text', text: 'yes' }] },
        { role: 'user', content: 'script:refuse' },
      ],
      fallbacks: [{ model: 'sc2', max_tokens: 9, thinking: null, output_config: { effort: 'low' }, speed: null }],
      stream: true,
    },
  },
  {
    path: '/v1/messages',
    shape: 'messages',
    base: { model: 'sc', max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: 'hi' }], compaction: { type: 'summarize', instructions: 'Short.' } },
  },
  {
    path: '/v1/messages/count_tokens',
    shape: 'messages',
    base: { model: 'sc', system: 'Be brief.', messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 'f', input_schema: { type: 'object' } }] },
  },
  {
    path: '/v1/messages/async',
    shape: 'messages',
    base: { model: 'sc', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], temperature: 0.2 },
  },
  {
    path: '/api/v3/organizations/acme/ai/chat',
    shape: 'org',
    base: {
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      modelId: 'sc',
      temperature: 0.5,
      maxTokens: 5,
      topP: 0.9,
      systemPrompt: 'You help.',
      stopSequences: ['zz'],
      toolConfig: { tools: [{ toolSpec: { name: 'f', description: 'F', inputSchema: { json: { type: 'object', properties: {} } } } }] },
    },
  },
  {
    path: '/api/v3/organizations/acme/ai/chat/stream',
    shape: 'org',
    base: { messages: [{ role: 'user', content: 'hi' }], modelId: 'sc', maxTokens: 5, responseFormat: { type: 'json', jsonSchema: { type: 'object' } } },
  },
  {
    path: '/v2/text/chat',
    shape: 'eden',
    base: {
      providers: 'sc',
      text: 'hi',
      chatbot_global_action: 'Be brief.',
      previous_history: [{ role: 'user', message: 'a' }, { role: 'assistant', message: 'b' }],
      temperature: 0.5,
      max_tokens: 5,
      fallback_providers: [],
    },
  },
  {
    path: '/v2/text/chat/stream',
    shape: 'eden',
    base: { providers: ['sc'], text: 'hi', max_tokens: 5 },
  },
];

/** Values of every JSON type, and the edges validators forget. */
const VALUES = [null, true, false, 0, -1, 1.5, 1e300, -1e300, 2 ** 53 + 2, '', 'x', ' ', '\u0000', '😀', 'a'.repeat(20_000), [], [null], [[]], {}, { x: 1 }, { role: 'user' }, [{}], ['a', 1, null]];

/** One random change to `body`, in place. Values from VALUES are copied: a shared one mutated later would change VALUES itself (and could end up inside itself). */
function mutateOnce(body, random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const all = paths(body).filter((p) => p.length > 0);
  if (all.length === 0) {
    body.unexpected = structuredClone(pick(VALUES));
    return;
  }
  const path = pick(all);
  const parent = parentOf(body, path);
  const key = path.at(-1);
  const op = random();
  if (op < 0.45) parent[key] = structuredClone(pick(VALUES));
  else if (op < 0.65) Array.isArray(parent) ? parent.splice(key, 1) : delete parent[key];
  else if (op < 0.75) parent[key] = [parent[key]];
  else if (op < 0.8) parent[key] = { value: parent[key] };
  else if (op < 0.88) {
    const objects = paths(body).map((p) => (p.length ? parentOf(body, p)[p.at(-1)] : body)).filter(isObject);
    pick(objects)[pick(['unexpected', '__proto__', 'constructor', 'type', 'role', 'content'])] = structuredClone(pick(VALUES));
  } else if (op < 0.94 && Array.isArray(parent)) parent.push(structuredClone(parent[key]));
  else parent[key] = typeof parent[key] === 'number' ? pick([-parent[key], parent[key] * 1000, 0.5, 1e9]) : structuredClone(pick(VALUES));
}

function mutant(base, random) {
  const body = structuredClone(base);
  const times = random() < 0.7 ? 1 : random() < 0.8 ? 2 : 4;
  for (let i = 0; i < times; i++) mutateOnce(body, random);
  return JSON.stringify(body);
}

/** Bodies that are not a JSON object, sent as application/json (and one as text/plain). */
const RAW = ['', '{', '}', 'null', '[]', '"x"', '123', '{"model":', '{"a":1}{', '\uFEFF{}', `${'['.repeat(5000)}${']'.repeat(5000)}`, '{"__proto__":{"x":1}}', '{"messages":[{"role":"user","content":"hi"}]'];

async function send(route, body, contentType = 'application/json', options = {}) {
  let res;
  try {
    // The Anthropic SDK's header, on the routes it calls.
    const sdk = [route.shape].flat().includes('messages') ? { 'anthropic-version': '2023-06-01' } : {};
    const headers = { 'content-type': contentType, ...sdk, ...(route.headers ?? {}), ...(options.headers ?? {}) };
    res = await fetch(`${s.url}${options.path ?? route.path}`, { method: options.method ?? route.method ?? 'POST', headers, body });
  } catch (err) {
    return { error: `the connection failed: ${err.cause?.code ?? err.message}` };
  }
  const text = await res.text();
  // The scripted model follows no grammar: an answer that misses a (mutated) JSON schema is the
  // model's failure, reported as such, not the gateway's.
  if (res.status === 502 && JSON.parse(text).error?.code === 'structured_output_invalid') return { status: 502 };
  if (res.status >= 500) return { error: `status ${res.status}: ${text.slice(0, 300)}` };
  if (res.status >= 400) {
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { error: `status ${res.status} with a body that is not JSON: ${text.slice(0, 200)}` };
    }
    if (![route.shape].flat().some((shape) => shapes[shape](parsed))) return { error: `status ${res.status} not in ${route.shape}'s error shape: ${text.slice(0, 300)}` };
    return { status: res.status, text };
  }
  // A success; a stream must not end in an internal error either.
  if (/"type":\s*"(server_error|internal_error|api_error)"/.test(text)) return { error: `status ${res.status} carrying an internal error: ${text.slice(0, 300)}` };
  return { status: res.status };
}

const errorLines = () => s.logLines.filter((line) => JSON.parse(line).level >= 50);

for (const [index, route] of routes.entries()) {
  test(`${route.path}: ${CASES} mutated bodies and ${RAW.length + 1} non-JSON bodies each get a success or a 4xx in ${route.shape}'s shape`, async () => {
    const base = await send(route, JSON.stringify(route.base));
    assert.ok(!base.error && base.status < 300, `the unmutated body must succeed: ${base.error ?? `${base.status} ${base.text}`}`);
    const random = seeded(SEED + index);
    const failures = [];
    const statuses = new Map();
    const logged = errorLines().length;
    const bodies = [...Array.from({ length: CASES }, () => mutant(route.base, random)), ...RAW];
    // Four at a time: concurrent bad requests must not disturb each other either.
    for (let i = 0; i < bodies.length; i += 4) {
      const batch = bodies.slice(i, i + 4);
      const results = await Promise.all(batch.map((body) => send(route, body)));
      results.forEach((r, j) => {
        if (r.error) failures.push(`case ${i + j} (seed ${SEED + index}): ${r.error}\n    body: ${batch[j].slice(0, 1500)}`);
        else statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      });
    }
    const plain = await send(route, JSON.stringify(route.base), 'text/plain');
    if (plain.error) failures.push(`text/plain: ${plain.error}`);
    const serverErrors = errorLines().slice(logged).map((line) => {
      const { msg, err } = JSON.parse(line);
      return `${msg}: ${err?.stack?.split('\n').slice(0, 4).join(' | ') ?? err?.message ?? ''}`;
    });
    assert.deepEqual(failures, [], `${failures.join('\n')}\nserver errors:\n${serverErrors.join('\n')}`);
    assert.deepEqual(serverErrors, [], 'the server logged an error');
    // Mutants must mostly be refused: a fuzzer whose bodies all pass tests nothing.
    const refused = [...statuses].filter(([status]) => status >= 400).reduce((n, [, c]) => n + c, 0);
    assert.ok(refused >= bodies.length / 3, `only ${refused} of ${bodies.length} refused: ${JSON.stringify([...statuses])}`);
    // And it still serves.
    const again = await send(route, JSON.stringify(route.base));
    assert.ok(!again.error && again.status < 300, String(again.error ?? again.status));
  });
}

// A value nested thousands of levels deep, anywhere in a body (a tool's schema, a response
// format, a tool_use input, metadata): code that walks values recursively overflows the stack on
// it (a 5,000-level schema was a 500 from JSON.stringify before the body parser refused depth).
const nested = (levels) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
const PLACEHOLDER = '"__deep__"';

test('a value nested 5,000 levels deep at any place in any body is a 400 in the route\'s shape, never a 5xx', async () => {
  const random = seeded(SEED + 101);
  const failures = [];
  const logged = errorLines().length;
  for (const route of routes) {
    const all = paths(route.base).filter((p) => p.length > 0);
    for (let i = 0; i < 12; i++) {
      const body = structuredClone(route.base);
      const path = all[Math.floor(random() * all.length)];
      parentOf(body, path)[path.at(-1)] = '__deep__';
      const text = JSON.stringify(body).replace(PLACEHOLDER, nested(5000));
      const r = await send(route, text);
      if (r.error) failures.push(`${route.path} at ${path.join('.')}: ${r.error}`);
      else if (r.status !== 400 || !/more than \d+ levels deep/.test(r.text)) failures.push(`${route.path} at ${path.join('.')}: ${r.status} ${r.text?.slice(0, 200)}`);
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.deepEqual(errorLines().slice(logged), [], 'the server logged an error');
});

test('a body nested to the limit is read, one level past it is refused', async () => {
  // The limit counts levels of objects and arrays from the body itself (the body is level 1).
  const route = routes.find((r) => r.path === '/v1/messages/count_tokens');
  const at = (levels) => JSON.stringify({ ...route.base, tools: [{ name: 'f', input_schema: '__deep__' }] }).replace(PLACEHOLDER, nested(levels));
  // Body, tools, the tool, then the schema's own levels.
  const within = await send(route, at(MAX_JSON_DEPTH - 3));
  assert.ok(!within.error, within.error);
  assert.doesNotMatch(within.text ?? '', /levels deep/);
  const past = await send(route, at(MAX_JSON_DEPTH - 2));
  assert.equal(past.status, 400);
  assert.match(past.text, /more than 128 levels deep/);
});

test('an object of more keys than the limit is refused in the route\'s own shape; one at the limit is read', async () => {
  const keys = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
  for (const [path, field, shape] of [
    ['/v1/chat/completions', 'metadata', (body) => body.error.message],
    ['/v1/messages/count_tokens', 'metadata', (body) => body.error.message],
  ]) {
    const route = routes.find((r) => r.path === path);
    const past = await send(route, JSON.stringify({ ...route.base, [field]: keys(MAX_JSON_KEYS + 1) }));
    assert.equal(past.status, 400, path);
    assert.match(shape(JSON.parse(past.text)), /an object with more than 10000 keys/, path);
  }
  // An object of exactly the limit (a tool schema's properties) is read.
  const route = routes.find((r) => r.path === '/v1/messages/count_tokens');
  const within = await send(route, JSON.stringify({ ...route.base, tools: [{ name: 'f', input_schema: { type: 'object', properties: keys(MAX_JSON_KEYS) } }] }));
  assert.ok(!within.error, within.error);
  assert.doesNotMatch(within.text ?? '', /more than \d+ keys/);
});

test('compressed bodies (gzip, deflate, br) are read on every route; bad bytes, unknown encodings and bombs get a 4xx in the route\'s shape, with codes of our own', async () => {
  const codec = { gzip: zlib.gzipSync, deflate: zlib.deflateSync, br: zlib.brotliCompressSync };
  const codeOf = (r) => JSON.parse(r.text).error?.code ?? JSON.parse(r.text).error?.type;
  const logged = errorLines().length;
  for (const route of routes) {
    for (const [encoding, compress] of Object.entries(codec)) {
      const read = await send(route, compress(Buffer.from(JSON.stringify(route.base))), 'application/json', { headers: { 'content-encoding': encoding } });
      assert.ok(!read.error && read.status < 300, `${route.path} ${encoding}: ${read.error ?? `${read.status} ${read.text}`}`);
    }
    const garbled = await send(route, JSON.stringify(route.base), 'application/json', { headers: { 'content-encoding': 'gzip' } });
    assert.equal(garbled.status, 400, `${route.path}: ${garbled.error ?? garbled.text}`);
    assert.match(garbled.text, /not valid gzip/);
    for (const encoding of ['zstd', 'constructor', '__proto__']) {
      const unknown = await send(route, JSON.stringify(route.base), 'application/json', { headers: { 'content-encoding': encoding } });
      assert.equal(unknown.status, 415, `${route.path} ${encoding}: ${unknown.error ?? unknown.text}`);
      assert.match(unknown.text, new RegExp(`Content-Encoding '${encoding}' is not supported`));
    }
  }
  // A bodiless DELETE that names an encoding (as clients that compress every request do).
  const deleted = await fetch(`${s.url}/v1/messages/async/msg_nothing_here`, { method: 'DELETE', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'anthropic-version': '2023-06-01' } });
  assert.equal(deleted.status, 404, await deleted.clone().text());
  // 26 MB of spaces compress to ~25 KB: the limit counts what they expand to.
  const route = routes[0];
  const bomb = await send(route, zlib.gzipSync(Buffer.alloc(26 * 1024 * 1024, ' ')), 'application/json', { headers: { 'content-encoding': 'gzip' } });
  assert.equal(bomb.status, 413, bomb.error ?? bomb.text);
  assert.equal(codeOf(bomb), 'payload_too_large');
  // Fastify's own names never reach a client as the error code.
  const empty = await send(route, '', 'application/json');
  assert.equal(empty.status, 400);
  assert.equal(codeOf(empty), 'invalid_json');
  // Outside every dialect's paths the shape is OpenAI's, its type too.
  const undecodable = await fetch(`${s.url}/elsewhere/%ZZ`);
  assert.equal(undecodable.status, 400);
  assert.deepEqual((await undecodable.json()).error, { message: 'The URL path is not valid percent-encoding', type: 'invalid_request_error', param: null, code: 'invalid_url' });
  assert.deepEqual(errorLines().slice(logged), [], 'the server logged an error');
});

/** Path segments, query values and header values that parsers and lookups trip on. */
// ('..' is left out: clients resolve it before sending.)
const ODD = ['', ' ', '%00', '%ZZ', '%', '😀', 'a'.repeat(5000), 'null', '-1', '0', '1e309', 'constructor', '__proto__', '<script>', "'; DROP TABLE request_log; --", 'msg_' + 'x'.repeat(300), 'req-0', '{}', '[]'];
const asPath = (value) => encodeURIComponent(value).replace(/%25(ZZ|00|2e|$)/g, '%$1');

test('odd ids, query values and headers on every route get a 4xx (or an answer), never a 5xx', async () => {
  const base = routes[0];
  const probes = [];
  for (const odd of ODD) {
    const id = asPath(odd);
    const q = encodeURIComponent(odd);
    probes.push(
      { path: `/v1/messages/async/${id}`, method: 'GET', shape: 'messages' },
      { path: `/v1/messages/async/${id}/events`, method: 'GET', shape: 'messages' },
      { path: `/v1/messages/async/${id}/events?after=${q}`, method: 'GET', shape: 'messages' },
      { path: `/v1/messages/async/${id}`, method: 'DELETE', shape: 'messages' },
      { path: `/v1/sessions/${id}`, method: 'GET', shape: 'openai' },
      { path: `/v1/models/${id}`, method: 'GET', shape: ['openai', 'messages'] },
      { path: `/api/v3/organizations/${id}/ai/tools/executions/${id}`, method: 'GET', shape: 'org' },
      { path: `/api/v3/organizations/${id}/ai/chat`, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], modelId: 'sc' }), shape: 'org' },
      { path: `/api/v3/artifacts/${id}?expires=${q}&signature=${q}`, method: 'GET', shape: ['openai', 'org'] },
      { path: `/v1/usage?since=${q}&until=${q}`, method: 'GET', shape: 'openai' },
      { path: `/v1/models?limit=${q}`, method: 'GET', shape: ['openai', 'messages'] },
      { path: `/admin/keys/${id}`, method: 'GET', shape: 'openai', headers: { authorization: `Bearer ${ADMIN}` } },
      { path: `/admin/requests?limit=${q}&since=${q}&status=${q}`, method: 'GET', shape: 'openai', headers: { authorization: `Bearer ${ADMIN}` } },
      { path: '/v1/chat/completions', body: JSON.stringify(base.base), shape: 'openai', headers: { 'x-session-id': odd.replace(/[^\x20-\x7e]/g, '?') } },
      { path: '/v1/messages', body: JSON.stringify(routes[2].base), shape: 'messages', headers: { 'anthropic-beta': odd.replace(/[^\x20-\x7e]/g, '?') } },
      { path: '/v1/messages', body: JSON.stringify(routes[2].base), shape: 'messages', headers: { 'anthropic-version': odd.replace(/[^\x20-\x7e]/g, '?') } },
      { path: '/v1/chat/completions', body: JSON.stringify(base.base), shape: 'openai', headers: { authorization: `Bearer ${odd.replace(/[^\x20-\x7e]/g, '?')}` } },
      { path: '/v1/chat/completions', body: JSON.stringify(base.base), shape: 'openai', headers: { 'content-type': `application/json; charset=${odd.replace(/[^\x20-\x7e]/g, '?')}` } },
    );
  }
  probes.push(
    { path: '/v1/chat/completions', body: JSON.stringify(base.base), shape: 'openai', headers: { 'content-encoding': 'gzip' } },
    { path: '/v1/chat/completions', body: 'a=1&b=2', shape: 'openai', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    { path: '/v1/chat/completions', body: '--x\r\n\r\n--x--', shape: 'openai', headers: { 'content-type': 'multipart/form-data; boundary=x' } },
  );
  const failures = [];
  const logged = errorLines().length;
  for (let i = 0; i < probes.length; i += 4) {
    const batch = probes.slice(i, i + 4);
    const results = await Promise.all(
      batch.map((p) => send({ shape: p.shape }, p.method === 'GET' || p.method === 'DELETE' ? undefined : p.body, p.headers?.['content-type'] ?? 'application/json', p)),
    );
    results.forEach((r, j) => r.error && failures.push(`${batch[j].method ?? 'POST'} ${batch[j].path.slice(0, 200)} ${JSON.stringify(batch[j].headers ?? {}).slice(0, 200)}: ${r.error}`));
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.deepEqual(errorLines().slice(logged), [], 'the server logged an error');
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
});

const adminRoutes = [
  {
    path: '/admin/keys',
    base: { organisation: 'fuzz', name: 'k', allowed_models: ['sc'], expires_at: '2030-01-01T00:00:00Z', limits: { rpm: 5, tpm: 1000, concurrent: 2, budget: { day: 1, month: 10 } } },
  },
  { path: '/admin/organisations/fuzz', method: 'PATCH', base: { limits: { rpm: 100, budget: { day: 5 } }, log_bodies: true } },
];

// Last: a key created here ends the open mode the chat routes above rely on.
for (const [index, route] of adminRoutes.entries()) {
  test(`${route.method ?? 'POST'} ${route.path}: ${CASES} mutated bodies get a success or a 4xx`, async () => {
    const admin = { ...route, shape: 'openai', headers: { authorization: `Bearer ${ADMIN}` } };
    const random = seeded(SEED + 100 + index);
    const failures = [];
    const logged = errorLines().length;
    let refused = 0;
    const bodies = [JSON.stringify(route.base), ...Array.from({ length: CASES }, () => mutant(route.base, random)), ...RAW];
    for (let i = 0; i < bodies.length; i += 4) {
      const batch = bodies.slice(i, i + 4);
      const results = await Promise.all(batch.map((body) => send(admin, body)));
      results.forEach((r, j) => {
        if (r.error) failures.push(`case ${i + j}: ${r.error}\n    body: ${batch[j].slice(0, 1500)}`);
        else if (r.status >= 400) refused++;
      });
    }
    assert.deepEqual(failures, [], failures.join('\n'));
    assert.deepEqual(errorLines().slice(logged), [], 'the server logged an error');
    assert.ok(refused >= bodies.length / 3, `only ${refused} of ${bodies.length} refused`);
  });
}
