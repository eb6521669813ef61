// The spine end to end: the official `openai` client → Switchboard's OpenAI dialect → the
// OpenAI-compatible provider → a loopback upstream speaking OpenAI's wire format, with faults.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { startServer, postJson, readSse } from './helpers/server.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';
import { validateOpenAI } from './helpers/openai-schema.mjs';

let upstream;
let s;
let client;

before(async () => {
  upstream = await startFakeOpenAI();
  s = await startServer({
    env: { UPSTREAM_KEY: 'sk-upstream-secret' },
    config: {
      defaultModel: 'gpt',
      models: [
        {
          id: 'gpt',
          provider: 'openai',
          model: 'gpt-upstream',
          baseUrl: upstream.url,
          apiKeyEnv: 'UPSTREAM_KEY',
          // A buffered client's call is buffered upstream too: its wait is bufferedTimeoutMs.
          options: { firstByteTimeoutMs: 300, idleTimeoutMs: 300, bufferedTimeoutMs: 300 },
          // Each fault must reach the client as it is: no retries, and no breaker opening after them.
          routing: { retries: 0, breaker: { failureThreshold: 0 } },
          pricing: { input: 2, output: 4 },
        },
      ],
    },
  });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
});
after(async () => {
  await s?.close();
  await upstream?.close();
});

const ask = (content, extra = {}) => ({ model: 'gpt', messages: [{ role: 'user', content }], ...extra });

test('buffered: the upstream model name, the key from the env var, and usage with cost', async () => {
  upstream.enqueue({ type: 'text', text: 'Paris is the capital.', chunks: 4, usage: { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 } });
  const completion = await client.chat.completions.create(ask('Capital of France?', { temperature: 0.2, max_tokens: 20 }));
  assert.equal(completion.choices[0].message.content, 'Paris is the capital.');
  assert.equal(completion.usage.prompt_tokens, 11);
  assert.equal(completion.usage.cost, (11 * 2 + 5 * 4) / 1e6);
  const sent = upstream.requests.at(-1);
  assert.equal(sent.body.model, 'gpt-upstream');
  assert.equal(sent.headers.authorization, 'Bearer sk-upstream-secret');
  assert.equal(sent.body.temperature, 0.2);
  assert.equal(sent.body.max_tokens, 20);
});

test('cached and reasoning tokens the upstream reports reach the client, the request log and GET /v1/usage', async () => {
  const before = await (await fetch(`${s.url}/v1/usage?model=gpt`)).json();
  const details = { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52, prompt_tokens_details: { cached_tokens: 32 }, completion_tokens_details: { reasoning_tokens: 7 } };
  upstream.enqueue({ type: 'text', text: 'Thought, then answered.', chunks: 2, usage: details });
  const completion = await client.chat.completions.create(ask('Think first.'));
  assert.equal(completion.usage.prompt_tokens_details.cached_tokens, 32);
  assert.equal(completion.usage.completion_tokens_details.reasoning_tokens, 7);
  const after = await (await fetch(`${s.url}/v1/usage?model=gpt`)).json();
  assert.equal(after.totals.cache_read_tokens - before.totals.cache_read_tokens, completion.usage.prompt_tokens_details.cached_tokens);
  assert.equal(after.totals.reasoning_tokens - before.totals.reasoning_tokens, completion.usage.completion_tokens_details.reasoning_tokens);
  assert.equal(after.totals.cache_write_tokens, before.totals.cache_write_tokens, 'OpenAI reports no cache writes');
  assert.deepEqual(after.totals.server_tool_use, {});
});

test('a buffered client gets a buffered upstream call; a streaming client a streamed one', async () => {
  await client.chat.completions.create(ask('one'));
  assert.equal(upstream.requests.at(-1).body.stream, false);
  const stream = await client.chat.completions.create(ask('two', { stream: true }));
  for await (const _ of stream);
  assert.equal(upstream.requests.at(-1).body.stream, true);
  assert.deepEqual(upstream.requests.at(-1).body.stream_options, { include_usage: true });
});

test('streaming: the first bytes reach the client while the upstream is still generating', async () => {
  let release;
  const held = new Promise((r) => (release = r));
  upstream.enqueue({
    type: 'handler',
    async handle(req, res) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta, finish = null) =>
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-upstream', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
      res.write(chunk({ role: 'assistant', content: 'first' }));
      await held;
      res.write(chunk({ content: ' second' }));
      res.write(chunk({}, 'stop'));
      res.end('data: [DONE]\n\n');
    },
  });
  const stream = await client.chat.completions.create(ask('go', { stream: true }));
  const seen = [];
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta?.content;
    if (delta) {
      seen.push(delta);
      // Only now may the upstream continue: the first delta arrived unbuffered.
      if (delta === 'first') release();
    }
  }
  assert.deepEqual(seen, ['first', ' second']);
});

/** POSTs over a raw socket and returns the response's chunked-encoding chunks: one per write. */
function postForChunks(url, path, body) {
  const { hostname, port } = new URL(url);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const received = [];
    socket.on('error', reject);
    // The response ends with the zero-size chunk (the connection itself is kept alive).
    socket.on('data', (d) => {
      received.push(d);
      const data = Buffer.concat(received);
      if (!data.subarray(-5).equals(Buffer.from('0\r\n\r\n'))) return;
      socket.destroy();
      const headerEnd = data.indexOf('\r\n\r\n');
      assert.match(data.subarray(0, headerEnd).toString(), /transfer-encoding: chunked/i);
      const chunks = [];
      for (let pos = headerEnd + 4; ; ) {
        const lineEnd = data.indexOf('\r\n', pos);
        const size = parseInt(data.subarray(pos, lineEnd).toString(), 16);
        if (!size) break;
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size).toString());
        pos = lineEnd + 2 + size + 2;
      }
      resolve(chunks);
    });
    socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
  });
}

test('streaming: when the whole answer arrives in one read, the first token still leaves on its own, the rest together', async () => {
  // The fake upstream writes every event of this answer in a single write.
  upstream.enqueue({ type: 'text', text: 'One two three four five six.', chunks: 6 });
  const chunks = await postForChunks(s.url, '/v1/chat/completions', ask('count', { stream: true }));
  const events = (chunk) => chunk.split('\n\n').filter(Boolean).map((e) => e.slice('data: '.length));
  const content = (data) => (data === '[DONE]' ? '' : JSON.parse(data).choices[0]?.delta?.content ?? '');
  const firstWrite = events(chunks[0]);
  assert.equal(firstWrite.map(content).join(''), 'One ', 'the first write ends with the first token');
  assert.equal(content(firstWrite.at(-1)), 'One ');
  assert.ok(chunks.length >= 2 && chunks.slice(1).some((chunk) => events(chunk).length > 1), 'later events still share writes');
  assert.equal(chunks.flatMap(events).map(content).join(''), 'One two three four five six.');
  assert.ok(chunks.at(-1).endsWith('data: [DONE]\n\n'));
});

test('tool-call deltas and usage pass through the stream', async () => {
  upstream.enqueue({
    type: 'tool-calls',
    calls: [
      { id: 'call_1', name: 'lookup', arguments: '{"q":"weather in Oslo"}', split: 5 },
      { id: 'call_2', name: 'clock', arguments: '{"tz":"CET"}', split: 3 },
    ],
    interleave: true,
    usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 },
  });
  const stream = client.chat.completions.stream(
    ask('two tools', {
      tools: [
        { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } },
        { type: 'function', function: { name: 'clock', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
      ],
    }),
  );
  let usage;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  const final = await stream.finalChatCompletion();
  assert.deepEqual(
    final.choices[0].message.tool_calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
    [
      ['call_1', 'lookup', { q: 'weather in Oslo' }],
      ['call_2', 'clock', { tz: 'CET' }],
    ],
  );
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(usage.total_tokens, 42);
});

test('logprobs and top_logprobs go upstream, and the tokens come back on the stream and in the buffered answer', async () => {
  upstream.enqueue({ type: 'text', deltas: ['Hel', 'lo'], logprobs: [-0.25, -1.5] });
  const stream = await client.chat.completions.create(ask('Hi', { stream: true, logprobs: true, top_logprobs: 2 }));
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const sent = upstream.requests.at(-1).body;
  assert.equal(sent.logprobs, true);
  assert.equal(sent.top_logprobs, 2);
  const content = chunks.filter((c) => c.choices[0]?.delta?.content);
  assert.deepEqual(
    content.map((c) => c.choices[0].logprobs),
    [
      { content: [{ token: 'Hel', logprob: -0.25, bytes: [72, 101, 108], top_logprobs: [{ token: 'Hel', logprob: -0.25, bytes: [72, 101, 108] }, { token: 'alt1', logprob: -1.25, bytes: [97, 108, 116, 49] }] }], refusal: null },
      { content: [{ token: 'lo', logprob: -1.5, bytes: [108, 111], top_logprobs: [{ token: 'lo', logprob: -1.5, bytes: [108, 111] }, { token: 'alt1', logprob: -2.5, bytes: [97, 108, 116, 49] }] }], refusal: null },
    ],
  );

  upstream.enqueue({ type: 'text', deltas: ['Hel', 'lo'], logprobs: [-0.25, -1.5] });
  const completion = await client.chat.completions.create(ask('Hi', { logprobs: true }));
  assert.equal(upstream.requests.at(-1).body.top_logprobs, undefined);
  assert.deepEqual(
    completion.choices[0].logprobs.content.map((t) => [t.token, t.logprob, t.top_logprobs.length]),
    [['Hel', -0.25, 0], ['lo', -1.5, 0]],
  );

  upstream.enqueue({ type: 'text', deltas: ['Hel', 'lo'] });
  const plain = await client.chat.completions.create(ask('Hi'));
  assert.equal(upstream.requests.at(-1).body.logprobs, undefined);
  assert.equal(plain.choices[0].logprobs, null);
});

/** An upstream that refuses, as OpenAI does: `refusal` instead of `content`, streamed or buffered. */
function refusalScenario(text) {
  return (record) => {
    if (record.body.stream) {
      const chunk = (delta, finish = null) => ({ id: 'chatcmpl-r', object: 'chat.completion.chunk', created: 1, model: 'gpt-upstream', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
      return { type: 'chunks', chunks: [chunk({ role: 'assistant', refusal: '' }), chunk({ refusal: text.slice(0, 9) }), chunk({ refusal: text.slice(9) }), chunk({}, 'stop')] };
    }
    const body = { id: 'chatcmpl-r', object: 'chat.completion', created: 1, model: 'gpt-upstream', choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: text }, logprobs: null, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 } };
    return { type: 'handler', handle: (req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)) };
  };
}

test("an upstream's refusal is `refusal` with no content, buffered and streamed; with a JSON schema it is no 502 and parse() returns it", async () => {
  const text = "I'm sorry, I can't help with that.";
  upstream.enqueue(refusalScenario(text));
  const buffered = await client.chat.completions.create(ask('Something bad'));
  assert.equal(buffered.choices[0].message.content, null);
  assert.equal(buffered.choices[0].message.refusal, text);
  const check = validateOpenAI('CreateChatCompletionResponse', buffered);
  assert.ok(check.ok, check.errors.join('\n'));

  upstream.enqueue(refusalScenario(text));
  const stream = await client.chat.completions.create(ask('Something bad', { stream: true }));
  const deltas = [];
  for await (const chunk of stream) if (chunk.choices[0]) deltas.push(chunk.choices[0].delta);
  assert.equal(deltas.map((d) => d.refusal ?? '').join(''), text);
  assert.ok(deltas.every((d) => !d.content), 'no content deltas');

  const format = { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false } } };
  upstream.enqueue(refusalScenario(text));
  const parsed = await client.chat.completions.parse(ask('Something bad', { response_format: format }));
  assert.equal(parsed.choices[0].message.refusal, text);
  assert.equal(parsed.choices[0].message.parsed, null);
  upstream.enqueue(refusalScenario(text));
  const streamed = await client.chat.completions.stream(ask('Something bad', { response_format: format })).finalChatCompletion();
  assert.equal(streamed.choices[0].message.refusal, text);
});

test('upstream 429 → 429 with Retry-After; 500 → 502; garbage → 502; all in OpenAI shape', async () => {
  upstream.enqueue({ type: 'error', status: 429, headers: { 'retry-after': '3' } });
  const limited = await postJson(`${s.url}/v1/chat/completions`, ask('x'));
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get('retry-after'), '3');
  assert.equal(limited.body.error.type, 'rate_limit_error');

  upstream.enqueue({ type: 'error', status: 429 });
  const unsaid = await postJson(`${s.url}/v1/chat/completions`, ask('x'));
  assert.equal(unsaid.status, 429);
  assert.equal(unsaid.headers.get('retry-after'), '1', 'a 429 always says when to retry');

  upstream.enqueue({ type: 'error', status: 500 });
  const failed = await postJson(`${s.url}/v1/chat/completions`, ask('x'));
  assert.equal(failed.status, 502);
  assert.equal(failed.body.error.type, 'upstream_error');

  upstream.enqueue({ type: 'garbage' });
  const garbage = await postJson(`${s.url}/v1/chat/completions`, ask('x'));
  assert.equal(garbage.status, 502);
  assert.equal(garbage.body.error.code.length > 0, true);
});

test('an upstream event the converter cannot read: 502 (or an in-stream error) for the client, the exception and its stack for the operator', async () => {
  const logs = () => s.logLines.map((line) => JSON.parse(line)).filter((l) => l.msg === 'unreadable upstream event');
  const chunk = (choices) => ({ id: 'chatcmpl-odd', object: 'chat.completion.chunk', created: 1, model: 'gpt-upstream', choices });
  const seen = logs().length;

  upstream.enqueue({ type: 'chunks', chunks: [chunk([null])] });
  const refused = await postJson(`${s.url}/v1/chat/completions`, ask('x', { stream: true }));
  assert.equal(refused.status, 502);
  assert.equal(refused.body.error.code, 'upstream_invalid_event');

  upstream.enqueue({ type: 'chunks', chunks: [chunk([{ index: 0, delta: { role: 'assistant', content: 'Hel' } }]), chunk([null])] });
  const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ask('x', { stream: true })) });
  const { events } = await readSse(res);
  assert.equal(JSON.parse(events.at(-2).data).error.code, 'upstream_invalid_event');

  const logged = logs().slice(seen);
  assert.equal(logged.length, 2, 'one warning per unreadable event, before and after the stream began');
  for (const line of logged) {
    assert.equal(line.level, 40);
    assert.equal(line.provider, 'openai');
    assert.match(line.reqId, /./);
    assert.match(line.err.stack, /\n\s+at /, 'the stack of the exception inside the converter');
  }
});

test('an upstream that never answers → 504', async () => {
  upstream.enqueue({ type: 'stall', phase: 'headers' });
  const res = await postJson(`${s.url}/v1/chat/completions`, ask('x'));
  assert.equal(res.status, 504);
  assert.equal(res.body.error.type, 'timeout_error');
});

test('a reset mid-stream ends the client stream with an error chunk and [DONE], never silently', async () => {
  upstream.enqueue({ type: 'reset', afterChunks: 2, text: 'abcdefgh', chunks: 4 });
  const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ask('x', { stream: true })) });
  assert.equal(res.status, 200);
  const { events } = await readSse(res);
  assert.equal(events.at(-1).data, '[DONE]');
  const error = JSON.parse(events.at(-2).data);
  assert.ok(error.error, 'an error chunk before [DONE]');
  assert.equal(error.error.type, 'upstream_error');
  assert.ok(events.some((e) => e.data.includes('"content"')), 'content came before the failure');
});

test('a stall after the first content token ends with an in-stream timeout error', async () => {
  upstream.enqueue({
    type: 'handler',
    handle(req, res) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'g', choices: [{ index: 0, delta: { role: 'assistant', content: 'tok' }, logprobs: null, finish_reason: null }] })}\n\n`);
      // …and then nothing more.
    },
  });
  const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ask('x', { stream: true })) });
  const { events } = await readSse(res);
  assert.equal(events.at(-1).data, '[DONE]');
  assert.equal(JSON.parse(events.at(-2).data).error.type, 'timeout_error');
});

test('a client that disconnects mid-stream cancels the upstream request', async () => {
  upstream.enqueue({ type: 'stall', phase: 'body' });
  const controller = new AbortController();
  const arrived = upstream.nextRequest();
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ask('x', { stream: true })),
    signal: controller.signal,
  });
  const record = await arrived;
  const reader = res.body.getReader();
  await reader.read();
  controller.abort();
  const { completed } = await record.closed;
  assert.equal(completed, false, 'the upstream connection was closed before its response finished');
});

test('a model whose API key variable is empty is named in a warning at start, once per deployment', async () => {
  const s = await startServer({
    env: { SB_SET_KEY: 'sk-set' },
    config: {
      models: [
        { id: 'keyless', provider: 'openai', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'SB_UNSET_KEY' },
        { id: 'keyed', provider: 'openai', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'SB_SET_KEY' },
        { id: 'open', provider: 'openai', model: 'm', baseUrl: 'http://127.0.0.1:9/v1' },
      ],
    },
  });
  try {
    const warnings = s.logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40 && entry.variable);
    assert.deepEqual(
      warnings.map((w) => [w.model, w.variable, w.msg]),
      [['keyless', 'SB_UNSET_KEY', "the API key variable SB_UNSET_KEY is empty: model 'keyless' calls its upstream without a key"]],
    );
  } finally {
    await s.close();
  }
});

test('a route missed by a base URL without /v1, or with it twice, names the route meant; an unserved one is a plain 404', async () => {
  const s = await startServer({ config: { models: [{ id: 'o', provider: 'openai', model: 'm', baseUrl: 'http://127.0.0.1:9/v1' }] } });
  try {
    for (const [path, meant] of [
      ['/chat/completions', '/v1/chat/completions'],
      ['/v1/v1/messages', '/v1/messages'],
      ['/v1/v1/chat/completions?stream=1', '/v1/chat/completions'],
      ['/v1/embeddings', undefined],
    ]) {
      const res = await postJson(`${s.url}${path}`, { model: 'o', messages: [] });
      assert.equal(res.status, 404, path);
      assert.equal(res.body.error.code, 'unknown_route');
      const asked = path.split('?')[0];
      assert.equal(res.body.error.message, `Unknown route POST ${asked}${meant ? `; did you mean POST ${meant}? (check the client's base URL)` : ''}`);
    }
  } finally {
    await s.close();
  }
});

test("max_tokens covers the reasoning budget on both sides: reasoning.max_tokens within it reaches the upstream's cap whole", async () => {
  upstream.enqueue({ type: 'text', text: 'ok' });
  await client.chat.completions.create(ask('Think', { max_tokens: 500, reasoning: { max_tokens: 200 } }));
  const sent = upstream.requests.at(-1).body;
  assert.equal(sent.max_tokens, 500);
  assert.equal(sent.reasoning_effort, 'low');
  // A budget that leaves nothing for the answer is refused, naming it.
  const over = await postJson(`${s.url}/v1/chat/completions`, ask('Think', { max_tokens: 100, reasoning: { max_tokens: 100 } }));
  assert.equal(over.status, 400);
  assert.equal(over.body.error.param, 'reasoning.max_tokens');
});

test('reasoning and reasoning_effort together: one effort (named in either), two different ones a 400', async () => {
  upstream.enqueue({ type: 'text', text: 'ok' });
  await client.chat.completions.create(ask('Think', { reasoning: { exclude: true }, reasoning_effort: 'high' }));
  assert.equal(upstream.requests.at(-1).body.reasoning_effort, 'high');
  const clash = await postJson(`${s.url}/v1/chat/completions`, ask('Think', { reasoning: { effort: 'low' }, reasoning_effort: 'high' }));
  assert.equal(clash.status, 400);
  assert.equal(clash.body.error.param, 'reasoning_effort');
});

test("OpenAI's own request details reach an OpenAI-compatible upstream: a function's strict, json_schema's description", async () => {
  upstream.enqueue({ type: 'text', text: '{"a":"x"}' });
  const tools = [{ type: 'function', function: { name: 'f', strict: true, parameters: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false } } }];
  const format = { type: 'json_schema', json_schema: { name: 'out', description: 'The answer as one field', schema: { type: 'object', properties: { a: { type: 'string' } } } } };
  await client.chat.completions.create(ask('Go', { tools, response_format: format }));
  const sent = upstream.requests.at(-1).body;
  assert.equal(sent.tools[0].function.strict, true);
  assert.equal(sent.response_format.json_schema.description, 'The answer as one field');
});
