// A fake OpenAI-compatible upstream: a loopback node:http server that speaks the real Chat
// Completions wire format (SSE chunks exactly as api.openai.com sends them, the usage chunk
// after the finish chunk, `data: [DONE]`), scriptable per request, recording every request.
//
//   import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';
//   const fake = await startFakeOpenAI();          // 127.0.0.1, random port
//   fake.url                                       // 'http://127.0.0.1:PORT/v1' (a baseUrl)
//   fake.enqueue({ type: 'text', text: 'Hi there', chunks: 2 });   // the next request (FIFO)
//   fake.setDefault({ type: 'text', text: 'Hello' });              // when the queue is empty
//   fake.requests[0].body.messages                 // what was sent
//   await fake.close();
//
// Options: startFakeOpenAI({ port = 0, record = true }); `record: false` keeps nothing per
// request. The default scenario is cheap: one short answer in 3 chunks,
// written in a single socket write.
//
// Routes: POST /v1/chat/completions (scenarios), GET /v1/models; anything else 404.
//
// Recorded request (fake.requests[i]):
//   { method, path, headers, body (parsed JSON, or the raw string if not JSON), rawBody,
//     time (performance.now() at arrival), remotePort (same port = same kept-alive connection),
//     closed: Promise<{ completed }> — resolves when the exchange ends; completed is false
//     when the client closed the connection before the response was finished (abort) }
// (`closed` is set on recorded requests and on those handed to nextRequest() waiters.)
// fake.nextRequest() resolves with the next request to arrive. fake.reset() empties the queue
// and the records and restores the built-in default.
//
// A scenario is a plain object, or a function (record) => scenario to decide per request.
// Answers (streamed when the request has stream: true, else one buffered chat.completion):
//   { type: 'text', text = 'Hello from the fake upstream.', chunks = 3 }  text split in N deltas
//       deltas: ['He', 'llo']              explicit deltas instead of text/chunks
//       choices: [['A', 'b'], ['C']]       deltas per choice for n > 1 (default: same for all n)
//       reasoning: ['Let me', ' think']    reasoning deltas first, in `reasoning_content`
//       reasoningField: 'reasoning'        …or in OpenRouter's `reasoning`
//       logprobs: [-0.1, -0.5]             logprob per content delta (sent when the request asks
//                                          for logprobs or this is given; default -0.1 each;
//                                          top_logprobs: the delta, then `altK` at logprob - K)
//   { type: 'tool-calls', calls: [{ id, name, arguments, split = 4 }], text?, interleave? }
//       arguments (a JSON string) split over `split` deltas; id and name only in the first
//       delta of each index; interleave: true sends the calls' deltas round-robin
//   { type: 'chunks', chunks: [chunkObject…], done = true }   raw chunks, sent as they are
//   Common fields: model, id, finishReason, usage (an OpenAI usage object, or false for none;
//   sent only when the request has stream_options.include_usage, as OpenAI does), delayMs
//   (between chunks), firstByteDelayMs (before the headers), buffered: true (answer with JSON
//   even to a streaming request, like a server that ignores `stream`).
// Faults:
//   { type: 'error', status = 500, headers?, body? }   an HTTP error; body defaults to OpenAI's
//       error object for the status; e.g. { type: 'error', status: 429, headers: { 'retry-after': '7' } }
//   { type: 'reset', afterChunks = 1, …text fields }   destroys the socket after K chunks
//   { type: 'stall', phase: 'headers' | 'body' }        never answers / stops after 1 chunk
//   { type: 'garbage', body = '<html>…', contentType = 'text/html', status = 200 }
//   { type: 'invalid-sse-json', afterChunks = 1 }       K chunks, then `data: {not json`
//   { type: 'stream-error', error = {…}, afterChunks = 1 }   K chunks, then `data: {"error":…}`
//   { type: 'cut', afterChunks = 1 }                    K chunks, then a clean end: no finish, no [DONE]
//   { type: 'handler', handle(req, res, record) }       anything else, by hand

import http from 'node:http';
import { performance } from 'node:perf_hooks';

const DEFAULT_SCENARIO = Object.freeze({ type: 'text', text: 'Hello from the fake upstream.', chunks: 3 });

const ERROR_BODIES = {
  400: { message: 'Invalid request', type: 'invalid_request_error', code: null },
  401: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' },
  403: { message: 'You are not allowed to access this model.', type: 'invalid_request_error', code: 'forbidden' },
  404: { message: 'The model does not exist or you do not have access to it.', type: 'invalid_request_error', code: 'model_not_found' },
  429: { message: 'Rate limit reached for requests.', type: 'requests', code: 'rate_limit_exceeded' },
  500: { message: 'The server had an error while processing your request.', type: 'server_error', code: null },
  503: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', code: null },
};

let responseCounter = 0;

/** Splits `text` into exactly `n` near-equal pieces (fewer only when it is shorter than `n`). */
export function splitText(text, n) {
  const count = Math.max(1, Math.min(n, text.length));
  const out = [];
  for (let i = 0; i < count; i++) out.push(text.slice(Math.floor((i * text.length) / count), Math.floor(((i + 1) * text.length) / count)));
  return out;
}

function sse(value) {
  return `data: ${typeof value === 'string' ? value : JSON.stringify(value)}\n\n`;
}

/** The complete answer a scenario describes, as the chunk objects OpenAI would stream. */
function answerChunks(scenario, request) {
  const n = request.n ?? 1;
  const includeUsage = request.stream_options?.include_usage === true;
  const head = {
    id: scenario.id ?? `chatcmpl-fake${++responseCounter}`,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: scenario.model ?? request.model ?? 'fake-model',
    system_fingerprint: 'fp_fake',
  };
  const chunk = (index, delta, extra = {}) => ({
    ...head,
    choices: [{ index, delta, logprobs: extra.logprobs ?? null, finish_reason: extra.finish ?? null }],
    ...(includeUsage ? { usage: null } : {}),
  });
  const perChoice = [];
  let completionTokens = 0;
  for (let index = 0; index < n; index++) {
    const list = [];
    if (scenario.type === 'tool-calls') {
      list.push(chunk(index, { role: 'assistant', content: scenario.text ? '' : null }));
      if (scenario.text) list.push(chunk(index, { content: scenario.text }));
      const calls = scenario.calls.map((call, callIndex) => {
        const pieces = splitText(call.arguments, call.split ?? 4);
        completionTokens += pieces.length;
        return [
          { index: callIndex, id: call.id ?? `call_fake${callIndex}`, type: 'function', function: { name: call.name, arguments: '' } },
          ...pieces.map((arguments_) => ({ index: callIndex, function: { arguments: arguments_ } })),
        ];
      });
      const ordered = scenario.interleave ? roundRobin(calls) : calls.flat();
      for (const toolCall of ordered) list.push(chunk(index, { tool_calls: [toolCall] }));
      list.push(chunk(index, {}, { finish: scenario.finishReason ?? 'tool_calls' }));
    } else {
      const deltas = scenario.choices?.[index] ?? scenario.deltas ?? splitText(scenario.text ?? DEFAULT_SCENARIO.text, scenario.chunks ?? 3);
      list.push(chunk(index, { role: 'assistant', content: '' }));
      for (const piece of scenario.reasoning ?? []) list.push(chunk(index, { [scenario.reasoningField ?? 'reasoning_content']: piece }));
      const withLogprobs = request.logprobs === true || Array.isArray(scenario.logprobs);
      deltas.forEach((piece, i) => {
        const logprob = scenario.logprobs?.[i] ?? -0.1;
        // top_logprobs as asked: the piece itself, then made-up less likely ones.
        const top = Array.from({ length: request.top_logprobs ?? 0 }, (_, k) => (k === 0 ? piece : `alt${k}`)).map((token, k) => ({ token, logprob: logprob - k, bytes: [...Buffer.from(token)] }));
        const logprobs = withLogprobs ? { content: [{ token: piece, logprob, bytes: [...Buffer.from(piece)], top_logprobs: top }], refusal: null } : undefined;
        list.push(chunk(index, { content: piece }, { logprobs }));
      });
      completionTokens += deltas.length + (scenario.reasoning?.length ?? 0);
      list.push(chunk(index, {}, { finish: scenario.finishReason ?? 'stop' }));
    }
    perChoice.push(list);
  }
  const chunks = roundRobin(perChoice);
  const usage = scenario.usage ?? { prompt_tokens: 12, completion_tokens: completionTokens, total_tokens: 12 + completionTokens };
  if (includeUsage && usage !== false) chunks.push({ ...head, choices: [], usage });
  return { chunks, usage, head };
}

function roundRobin(lists) {
  const out = [];
  for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) out.push(l[i]);
  return out;
}

/** The same answer as one buffered `chat.completion`, folded from its chunks. */
function completionFromChunks({ chunks, usage, head }) {
  const choices = [];
  for (const c of chunks) {
    for (const { index, delta, logprobs, finish_reason } of c.choices) {
      const choice = (choices[index] ??= { index, message: { role: 'assistant', content: null }, logprobs: null, finish_reason: null });
      const m = choice.message;
      if (delta.content) m.content = (m.content ?? '') + delta.content;
      for (const field of ['reasoning_content', 'reasoning']) if (delta[field]) m[field] = (m[field] ?? '') + delta[field];
      for (const t of delta.tool_calls ?? []) {
        m.tool_calls ??= [];
        const call = (m.tool_calls[t.index] ??= { id: t.id, type: 'function', function: { name: t.function.name, arguments: '' } });
        call.function.arguments += t.function.arguments ?? '';
      }
      if (logprobs) (choice.logprobs ??= { content: [] }).content.push(...logprobs.content);
      if (finish_reason) choice.finish_reason = finish_reason;
    }
  }
  return { id: head.id, object: 'chat.completion', created: head.created, model: head.model, choices, usage: usage === false ? undefined : usage };
}

function sendJson(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function startSse(res) {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes the events, then ends the response the way `ending` says. */
async function stream(res, events, ending, delayMs = 0) {
  startSse(res);
  if (delayMs > 0) {
    for (const event of events) {
      if (res.destroyed) return;
      res.write(event);
      await wait(delayMs);
    }
  } else if (events.length) {
    await new Promise((resolve) => res.write(events.join(''), resolve));
  }
  if (res.destroyed) return;
  if (ending === 'end') res.end();
  else if (ending === 'reset') res.socket?.destroy();
  // 'stall': leave the response open; close() tears it down.
}

async function play(scenario, req, res, record) {
  const body = record.body && typeof record.body === 'object' ? record.body : {};
  if (scenario.firstByteDelayMs) await wait(scenario.firstByteDelayMs);
  switch (scenario.type) {
    case 'text':
    case 'tool-calls': {
      const answer = answerChunks(scenario, body);
      if (body.stream !== true || scenario.buffered) return sendJson(res, 200, completionFromChunks(answer));
      const events = answer.chunks.map(sse);
      events.push(sse('[DONE]'));
      return stream(res, events, 'end', scenario.delayMs);
    }
    case 'chunks': {
      const events = scenario.chunks.map(sse);
      if (scenario.done !== false) events.push(sse('[DONE]'));
      return stream(res, events, 'end', scenario.delayMs);
    }
    case 'error': {
      const status = scenario.status ?? 500;
      const error = { param: null, ...(ERROR_BODIES[status] ?? { message: `HTTP ${status}`, type: 'server_error', code: null }) };
      return sendJson(res, status, scenario.body ?? { error }, scenario.headers);
    }
    case 'reset':
    case 'invalid-sse-json':
    case 'stream-error':
    case 'cut': {
      const k = scenario.afterChunks ?? 1;
      const events = answerChunks({ type: 'text', ...scenario }, body).chunks.slice(0, k).map(sse);
      if (scenario.type === 'invalid-sse-json') events.push('data: {not json\n\n');
      if (scenario.type === 'stream-error') {
        events.push(sse({ error: scenario.error ?? { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }));
      }
      return stream(res, events, scenario.type === 'reset' ? 'reset' : 'end', scenario.delayMs);
    }
    case 'stall':
      if (scenario.phase === 'body') return stream(res, answerChunks({ type: 'text' }, body).chunks.slice(0, 1).map(sse), 'stall');
      return; // no headers, ever
    case 'garbage': {
      const text = scenario.body ?? '<html><body><h1>502 Bad Gateway</h1></body></html>\n';
      res.writeHead(scenario.status ?? 200, { 'content-type': scenario.contentType ?? 'text/html' });
      return res.end(text);
    }
    case 'handler':
      return scenario.handle(req, res, record);
    default:
      throw new Error(`fake-openai-upstream: unknown scenario type '${scenario.type}'`);
  }
}

export async function startFakeOpenAI({ port = 0, record: keepRecords = true } = {}) {
  const queue = [];
  const requests = [];
  const waiters = [];
  let fallback = DEFAULT_SCENARIO;

  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(parts).toString('utf8');
      let body = rawBody;
      try {
        body = rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        // kept as the raw string
      }
      const record = { method: req.method, path: req.url, headers: req.headers, body, rawBody, time: performance.now(), remotePort: req.socket.remotePort };
      if (keepRecords || waiters.length) {
        record.closed = new Promise((resolve) => res.once('close', () => resolve({ completed: res.writableFinished })));
        if (keepRecords) requests.push(record);
        for (const w of waiters.splice(0)) w(record);
      }
      if (req.method === 'GET' && req.url === '/v1/models') {
        return sendJson(res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model', created: 0, owned_by: 'fake' }] });
      }
      if (req.method !== 'POST' || req.url?.split('?')[0] !== '/v1/chat/completions') {
        return sendJson(res, 404, { error: { message: `Unknown route ${req.method} ${req.url}`, type: 'invalid_request_error', param: null, code: null } });
      }
      let scenario = queue.length ? queue.shift() : fallback;
      if (typeof scenario === 'function') scenario = scenario(record);
      play(scenario, req, res, record).catch((err) => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: String(err?.message ?? err), type: 'fake_error' } });
        else res.destroy();
      });
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address();

  return {
    url: `http://127.0.0.1:${address.port}/v1`,
    port: address.port,
    requests,
    enqueue(...scenarios) {
      queue.push(...scenarios);
    },
    setDefault(scenario) {
      fallback = scenario ?? DEFAULT_SCENARIO;
    },
    nextRequest() {
      return new Promise((resolve) => waiters.push(resolve));
    },
    reset() {
      queue.length = 0;
      requests.length = 0;
      fallback = DEFAULT_SCENARIO;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
