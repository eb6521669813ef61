// Seed 002 (Eden AI chat) over HTTP: several providers at once, fallback_providers, every body
// field, the reshaping flags, errors, and the raw-text stream route. The "providers" are three
// fake OpenAI upstreams configured as models alpha, beta and gamma (provider `openai`).
// Build first: npx tsc -p tsconfig.json

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { postJson, startServer } from './helpers/server.mjs';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';

let server;
const fakes = {};
const PRICING = { input: 2, output: 10 };
const ADMIN = 'eden-admin-key';

before(async () => {
  for (const name of ['alpha', 'beta', 'gamma']) fakes[name] = await startFakeOpenAI();
  const model = (id) => ({ id, provider: 'openai', model: `${id}-upstream`, baseUrl: fakes[id].url, pricing: PRICING });
  server = await startServer({
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
    config: {
      // No retries inside a model: each upstream failure shows up at the Eden level at once.
      router: { retries: 0 },
      models: [model('alpha'), model('beta'), model('gamma')],
    },
  });
});
after(async () => {
  await server.close();
  for (const fake of Object.values(fakes)) await fake.close();
});
beforeEach(() => {
  for (const fake of Object.values(fakes)) fake.reset();
});

/** Resolves once `n` parties have arrived. */
function barrier(n) {
  let arrived = 0;
  let open;
  const opened = new Promise((resolve) => (open = resolve));
  return { arrive: () => ++arrived === n && open(), opened };
}

/** A scenario that waits at the barrier, then plays `scenarioFor(allArrived)`. */
function afterBarrier(all, scenarioFor) {
  return {
    type: 'handler',
    async handle(req, res, record) {
      all.arrive();
      let timer;
      const together = await Promise.race([all.opened.then(() => true), new Promise((resolve) => (timer = setTimeout(resolve, 5000, false)))]);
      clearTimeout(timer);
      const scenario = scenarioFor(together);
      if (scenario.type === 'error') {
        res.writeHead(500, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { message: 'The server had an error', type: 'server_error', param: null, code: null } }));
      }
      const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: record.body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(chunk({ role: 'assistant', content: scenario.text }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
    },
  };
}

const chat = (body) => postJson(`${server.url}/v2/text/chat`, body);
const sentTo = (name) => fakes[name].requests.at(-1)?.body;

describe('POST /v2/text/chat', () => {
  test('three providers run concurrently; the one that fails does not fail the others', async () => {
    // Each upstream answers only once all three requests have arrived (or after 5 s, saying so):
    // one call after the other could never see the other two.
    const all = barrier(3);
    fakes.alpha.enqueue(afterBarrier(all, (together) => ({ type: 'text', text: together ? 'from alpha' : 'alone' })));
    fakes.beta.enqueue(afterBarrier(all, () => ({ type: 'error', status: 500 })));
    fakes.gamma.enqueue(afterBarrier(all, (together) => ({ type: 'text', text: together ? 'from gamma' : 'alone' })));
    const res = await chat({ providers: 'alpha, beta,gamma', text: 'Hello' });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body), ['alpha', 'beta', 'gamma']);
    assert.equal(res.body.alpha.status, 'success');
    assert.equal(res.body.alpha.generated_text, 'from alpha');
    assert.equal(res.body.gamma.generated_text, 'from gamma');
    assert.equal(res.body.beta.status, 'fail');
    assert.equal(res.body.beta.error.type, 'provider_error');
    assert.match(res.body.beta.error.message, /500/);
    // Concurrent: every upstream got its request.
    for (const name of ['alpha', 'beta', 'gamma']) assert.equal(fakes[name].requests.length, 1, name);
    // Headers name every provider that served.
    assert.equal(res.headers.get('x-switchboard-model'), 'alpha, gamma');
  });

  test('each result carries usage, cost, the updated history and the provider used', async () => {
    fakes.alpha.enqueue({ type: 'text', text: 'Hi!', usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 } });
    const res = await chat({ providers: ['alpha'], text: 'Hello', previous_history: [{ role: 'user', message: 'a' }, { role: 'assistant', message: 'b' }] });
    const result = res.body.alpha;
    assert.deepEqual(result.usage, { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 });
    assert.equal(result.cost, (100 * PRICING.input + 20 * PRICING.output) / 1e6);
    assert.equal(result.provider, 'alpha');
    assert.deepEqual(
      result.message.map((m) => [m.role, m.message]),
      [['user', 'a'], ['assistant', 'b'], ['user', 'Hello'], ['assistant', 'Hi!']],
    );
    assert.equal(result.original_response, undefined, 'only when asked');
  });

  test('a 500 on the primary falls back to the second and third of fallback_providers', async () => {
    fakes.alpha.enqueue({ type: 'error', status: 500 });
    fakes.beta.enqueue({ type: 'error', status: 503 });
    fakes.gamma.enqueue({ type: 'text', text: 'third time lucky' });
    const res = await chat({ providers: 'alpha', fallback_providers: ['beta', 'gamma'], text: 'Hello' });
    assert.equal(res.status, 200);
    assert.equal(res.body.alpha.status, 'success');
    assert.equal(res.body.alpha.provider, 'gamma');
    assert.equal(res.body.alpha.generated_text, 'third time lucky');
    assert.deepEqual(['alpha', 'beta', 'gamma'].map((n) => fakes[n].requests.length), [1, 1, 1]);
    assert.equal(res.headers.get('x-switchboard-attempts'), '3', 'the failed fallback_providers count');
    assert.equal(res.headers.get('x-switchboard-model'), 'gamma');
  });

  test('each provider call has its request-log row: the request id, then <id>-2, <id>-3 in the order they start', async () => {
    fakes.alpha.enqueue({ type: 'error', status: 500 });
    fakes.beta.enqueue({ type: 'error', status: 503 });
    fakes.gamma.enqueue({ type: 'text', text: 'logged' });
    const res = await chat({ providers: 'alpha', fallback_providers: ['beta', 'gamma'], text: 'Hello' });
    assert.equal(res.status, 200);
    const id = res.headers.get('x-request-id');
    const log = await fetch(`${server.url}/admin/requests?limit=100`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json());
    const rows = log.data.filter((row) => row.id === id || row.id.startsWith(`${id}-`));
    assert.deepEqual(rows.map((row) => [row.id, row.model]).sort(), [[id, 'alpha'], [`${id}-2`, 'beta'], [`${id}-3`, 'gamma']]);
  });

  test('fallback stops at the first provider that answers', async () => {
    fakes.alpha.enqueue({ type: 'error', status: 500 });
    const res = await chat({ providers: 'alpha', fallback_providers: 'beta,gamma', text: 'Hello' });
    assert.equal(res.body.alpha.provider, 'beta');
    assert.equal(fakes.gamma.requests.length, 0);
  });

  test('when every provider fails the answer is an error naming each one', async () => {
    fakes.alpha.enqueue({ type: 'error', status: 500 });
    fakes.beta.enqueue({ type: 'error', status: 500 });
    const res = await chat({ providers: 'alpha,beta', text: 'Hello' });
    assert.equal(res.status, 502);
    assert.equal(res.body.error.type, 'provider_error');
    assert.deepEqual(Object.keys(res.body.error.message), ['alpha', 'beta']);
  });

  test('fallback_providers needs exactly one provider, and at most five', async () => {
    let res = await chat({ providers: 'alpha,beta', fallback_providers: ['gamma'], text: 'x' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.type, 'invalid_request_error');
    assert.ok(Array.isArray(res.body.error.message.fallback_providers));
    res = await chat({ providers: 'alpha', fallback_providers: ['beta', 'gamma', 'beta', 'gamma', 'beta', 'gamma'], text: 'x' });
    assert.equal(res.status, 400);
    assert.match(res.body.error.message.fallback_providers[0], /at most 5/);
    assert.equal(fakes.alpha.requests.length, 0);
  });

  test('validation errors name each field with its problems', async () => {
    const res = await chat({ providers: 'alpha', text: 'x', temperature: 3, max_tokens: 0, tool_choice: 'sometimes' });
    assert.equal(res.status, 400);
    assert.deepEqual(Object.keys(res.body.error.message).sort(), ['max_tokens', 'temperature', 'tool_choice']);
    const missing = await chat({ text: 'x' });
    assert.equal(missing.status, 400);
    assert.ok(missing.body.error.message.providers);
    const unknown = await chat({ providers: 'nobody', text: 'x' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message['providers[0]'][0], /Unknown provider 'nobody'/);
    const noText = await chat({ providers: 'alpha' });
    assert.equal(noText.status, 400);
    assert.ok(noText.body.error.message.text);
  });

  test('text, chatbot_global_action, previous_history, temperature and max_tokens reach the upstream (with defaults)', async () => {
    await chat({ providers: 'alpha', text: 'Now' });
    let body = sentTo('alpha');
    assert.equal(body.temperature, 0);
    assert.equal(body.max_tokens, 4096);
    assert.deepEqual(body.messages, [{ role: 'user', content: 'Now' }]);
    await chat({
      providers: 'alpha',
      text: 'Now',
      chatbot_global_action: 'Be brief.',
      previous_history: [{ role: 'user', message: 'Before' }, { role: 'assistant', message: 'Sure' }],
      temperature: 1.5,
      max_tokens: 77,
    });
    body = sentTo('alpha');
    assert.equal(body.temperature, 1.5);
    assert.equal(body.max_tokens, 77);
    assert.deepEqual(
      body.messages.map((m) => [m.role, m.content]),
      [['system', 'Be brief.'], ['user', 'Before'], ['assistant', 'Sure'], ['user', 'Now']],
    );
  });

  test('available_tools and tool_choice go upstream; tool calls come back in the result', async () => {
    fakes.alpha.enqueue({ type: 'tool-calls', calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
    const tool = { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } };
    const res = await chat({ providers: 'alpha', text: 'Weather?', available_tools: [tool], tool_choice: 'required' });
    const body = sentTo('alpha');
    assert.equal(body.tools[0].function.name, 'get_weather');
    assert.equal(body.tool_choice, 'required');
    const expected = [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }];
    assert.deepEqual(res.body.alpha.tool_calls, expected);
    assert.deepEqual(res.body.alpha.message.at(-1).tool_calls, expected);
    assert.deepEqual(res.body.alpha.message.at(-2).tools, [tool]);

    await chat({ providers: 'alpha', text: 'x', available_tools: [tool], tool_choice: 'none' });
    assert.equal(sentTo('alpha').tool_choice, 'none');
    const refused = await chat({ providers: 'alpha', text: 'x', tool_choice: 'required' });
    assert.equal(refused.status, 400);
    assert.ok(refused.body.error.message.tool_choice);
    const requests = fakes.alpha.requests.length;
    const twice = await chat({ providers: 'alpha', text: 'x', available_tools: [tool, { ...tool, description: 'Other' }] });
    assert.equal(twice.status, 400);
    assert.deepEqual(twice.body.error.message, { available_tools: ["Duplicate tool name 'get_weather'"] });
    assert.equal(fakes.alpha.requests.length, requests, 'nothing sent upstream');
  });

  test('tool_results continue after a tool call in previous_history', async () => {
    await chat({
      providers: 'alpha',
      previous_history: [
        { role: 'user', message: 'Weather?' },
        { role: 'assistant', message: '', tool_calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      ],
      tool_results: [{ id: 'call_1', result: { celsius: 21 } }],
      available_tools: [{ name: 'get_weather', parameters: { type: 'object' } }],
    });
    const messages = sentTo('alpha').messages;
    assert.equal(messages[1].tool_calls[0].id, 'call_1');
    assert.deepEqual(messages[2], { role: 'tool', tool_call_id: 'call_1', name: 'get_weather', content: '{"celsius":21}' });
    // A result that answers no call in the history is refused, naming the field (an upstream would refuse the turn).
    const orphan = await chat({ providers: 'alpha', previous_history: [{ role: 'user', message: 'Weather?' }], tool_results: [{ id: 'call_9', result: 'x' }] });
    assert.equal(orphan.status, 400);
    assert.match(orphan.body.error.message.tool_results[0], /call_9/);
    const inHistory = await chat({ providers: 'alpha', text: 'x', previous_history: [{ role: 'tool', message: 'r', tool_call_id: 'call_8' }] });
    assert.equal(inHistory.status, 400);
    assert.ok(inHistory.body.error.message.previous_history);
  });

  test('reasoning_effort is sent as the provider control, without the default temperature 0 (a given one is kept)', async () => {
    await chat({ providers: 'alpha', text: 'x', reasoning_effort: 'high' });
    assert.equal(sentTo('alpha').reasoning_effort, 'high');
    assert.equal('temperature' in sentTo('alpha'), false);
    await chat({ providers: 'alpha', text: 'x', reasoning_effort: 'low', temperature: 1 });
    assert.equal(sentTo('alpha').temperature, 1);
    const bad = await chat({ providers: 'alpha', text: 'x', reasoning_effort: 'extreme' });
    assert.equal(bad.status, 400);
    assert.ok(bad.body.error.message.reasoning_effort);
  });

  test('providers as provider name, provider/model, and settings {provider: model}', async () => {
    // `openai` alone → the first model served by provider openai (alpha).
    let res = await chat({ providers: 'openai', text: 'x' });
    assert.equal(res.body.openai.model, 'alpha');
    assert.equal(fakes.alpha.requests.length, 1);
    // provider/model, by model id or by upstream model name.
    res = await chat({ providers: 'openai/beta, openai/gamma-upstream', text: 'x' });
    assert.equal(res.body['openai/beta'].model, 'beta');
    assert.equal(res.body['openai/gamma-upstream'].model, 'gamma');
    // settings pick the model for a bare provider name (object or JSON text).
    res = await chat({ providers: 'openai', settings: { openai: 'gamma' }, text: 'x' });
    assert.equal(res.body.openai.model, 'gamma');
    res = await chat({ providers: 'openai', settings: '{"openai":"beta"}', text: 'x' });
    assert.equal(res.body.openai.model, 'beta');
    const bad = await chat({ providers: 'anthropic/beta', text: 'x' });
    assert.equal(bad.status, 400);
    // settings are `provider/model` too: a model no deployment of that provider serves is refused,
    // not served by another provider under this one's name.
    const elsewhere = await chat({ providers: 'anthropic', settings: { anthropic: 'beta' }, text: 'x' });
    assert.equal(elsewhere.status, 400);
    assert.match(elsewhere.body.error.message['providers[0]'][0], /anthropic\/beta/);
    const unknown = await chat({ providers: 'openai', settings: { openai: 'nope' }, text: 'x' });
    assert.equal(unknown.status, 400);
    // A name that is no provider (a model id) only labels the result.
    const labelled = await chat({ providers: 'alpha', settings: { alpha: 'beta' }, text: 'x' });
    assert.equal(labelled.body.alpha.model, 'beta');
  });

  test('response_as_dict: false gives a list; attributes_as_list gives one list per attribute', async () => {
    fakes.alpha.enqueue({ type: 'text', text: 'A' });
    fakes.beta.enqueue({ type: 'error', status: 500 });
    const res = await chat({ providers: 'alpha,beta', text: 'Q', response_as_dict: false, attributes_as_list: true, show_base_64: false });
    assert.ok(Array.isArray(res.body));
    assert.deepEqual(res.body.map((r) => [r.provider, r.status]), [['alpha', 'success'], ['beta', 'fail']]);
    assert.deepEqual(res.body[0].message.role, ['user', 'assistant']);
    assert.deepEqual(res.body[0].message.message, ['Q', 'A']);
    // Defaults: a dict, items as a list of objects.
    const plain = await chat({ providers: 'alpha', text: 'Q' });
    assert.ok(!Array.isArray(plain.body));
    assert.ok(Array.isArray(plain.body.alpha.message));
  });

  test('show_original_response adds original_response to each result', async () => {
    const res = await chat({ providers: 'alpha', text: 'Q', show_original_response: true });
    assert.equal(res.body.alpha.original_response.model, 'alpha-upstream');
    assert.equal(res.body.alpha.original_response.text, res.body.alpha.generated_text);
  });

  test('unknown fields are refused by name', async () => {
    const res = await chat({ providers: 'alpha', text: 'Q', tempreature: 1 });
    assert.equal(res.status, 400);
    assert.ok(res.body.error.message.tempreature);
  });
});

/** Reads a streamed text body; resolves with the text and the read error, if any. */
async function readText(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const chunks = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const piece = decoder.decode(value, { stream: true });
      chunks.push(piece);
      text += piece;
    }
    return { text, chunks, error: undefined };
  } catch (error) {
    return { text, chunks, error };
  }
}

const stream = (body) => fetch(`${server.url}/v2/text/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('POST /v2/text/chat/stream', () => {
  test('streams the raw generated text chunk by chunk', async () => {
    fakes.alpha.enqueue({ type: 'text', deltas: ['One ', 'two ', 'three'], delayMs: 20 });
    const res = await stream({ providers: 'alpha', text: 'Count' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    assert.equal(res.headers.get('x-switchboard-model'), 'alpha');
    const { text, chunks, error } = await readText(res);
    assert.equal(error, undefined);
    assert.equal(text, 'One two three');
    assert.ok(chunks.length >= 2, `chunked: got ${chunks.length} chunk(s)`);
  });

  test('takes exactly one provider', async () => {
    const res = await stream({ providers: 'alpha,beta', text: 'x' });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.ok(body.error.message.providers);
  });

  test('falls back before the first byte', async () => {
    fakes.alpha.enqueue({ type: 'error', status: 500 });
    fakes.beta.enqueue({ type: 'text', text: 'backup' });
    const res = await stream({ providers: 'alpha', fallback_providers: ['beta'], text: 'x' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-switchboard-model'), 'beta');
    assert.equal(res.headers.get('x-switchboard-attempts'), '2');
    assert.equal((await readText(res)).text, 'backup');
  });

  test('a failure after the first byte ends with an error line, not a clean end', async () => {
    fakes.alpha.enqueue({ type: 'reset', afterChunks: 2, text: 'partial answer', chunks: 2 });
    const res = await stream({ providers: 'alpha', fallback_providers: ['beta'], text: 'x' });
    assert.equal(res.status, 200);
    const { text, error } = await readText(res);
    assert.ok(text.startsWith('partial'), text);
    const errorLine = JSON.parse(text.trim().split('\n').at(-1));
    assert.equal(errorLine.error.type, 'provider_error');
    assert.ok(error, 'the response must not end cleanly');
    assert.equal(fakes.beta.requests.length, 0, 'no fallback after the first byte');
  });

  test('every provider failing before the first byte is a JSON error', async () => {
    fakes.alpha.enqueue({ type: 'error', status: 429, headers: { 'retry-after': '3' } });
    const res = await stream({ providers: 'alpha', text: 'x' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '3');
    assert.equal((await res.json()).error.type, 'rate_limit_error');
  });
});
