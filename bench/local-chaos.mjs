#!/usr/bin/env node
// Does the local provider keep its promises (docs/providers.md, docs/openai.md) under a crowd?
// One gateway serves the test model (or MODEL=path.gguf) on `parallel` sequences with a short
// queue. A set of deterministic requests (temperature 0, or a seed) on chat completions,
// Messages, organisation chat and Eden — plain text, seeded sampling, n = 2, stop sequences, a
// small max_tokens, JSON schema, forced tool calls, token logprobs; conversations that extend each
// other, so sequences reuse cached prefixes — is first asked alone, buffered and streamed: those
// are the references.
// Checked on the references alone:
// - a streamed answer is the buffered one (text, finish, tool calls, usage, logprobs; Eden's raw
//   text stream: its text);
// - the same conversation gives the same text, usage and (mapped) finish on every dialect;
// - a stop sequence ends the text before its first occurrence in the unstopped answer; a small
//   max_tokens gives exactly that many tokens, a prefix of the longer answer, finish "length";
// - JSON-schema answers and forced tool arguments parse and validate against their schemas;
//   logprobs' tokens spell the text, and at temperature 0 the chosen token is the top alternative.
// Then REQUESTS of them run CONCURRENCY at a time, streamed or not, some hung up, and every
// BURST_EVERY-th brings BURST more at once (so refusals come in a row). Checked:
// - every answer equals its reference: an answer depends on its request alone, not on what ran
//   beside it or before it on the same sequence (a leaked KV cache, sampler or grammar state, or
//   a misaligned cached prefix shows here) — or, for greedy text, leaves it only at a near-tie
//   for the runner-up (see leavesAtTie: the test model's random weights make such ties common);
//   seeded samples, which have no such test, are checked for prompt tokens, choices and
//   max_tokens, and counted (see judgeAnswer);
// - a request turned away for a full queue gets 503, Retry-After and the dialect's error shape
//   (that client then waits half to all of the Retry-After before its next request);
// - once every client has its answer or has hung up, no sequence stays busy and none is queued;
// - each request's log row has its answer's usage, and the log's totals equal the metrics';
// - every reference, asked alone again after the crowd, is unchanged.
// Exits 1 on any broken promise, each printed.
//
// Usage: node bench/local-chaos.mjs   (DIVERGENCE=1 prints where each differing answer left its reference)
//   (env: REQUESTS=240 CONCURRENCY=10 BURST=8 BURST_EVERY=30 PARALLEL=4 QUEUE=4 SEED=1 HANGUPS=0.15 MODEL=…)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import Ajv from 'ajv';
import { logAgainstMetrics, metricSum, requestLog } from './lib/accounting.mjs';
import { crowd, hangUpSignal, root, runCheck, seededRandom, sseEvents, startGateway } from './lib/gateways.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 240);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 10);
const PARALLEL = Number(process.env.PARALLEL ?? 4);
const QUEUE = Number(process.env.QUEUE ?? 4);
const HANGUPS = Number(process.env.HANGUPS ?? 0.15);
const BURST = Number(process.env.BURST ?? 8);
const BURST_EVERY = Number(process.env.BURST_EVERY ?? 30);
const MODEL = process.env.MODEL ?? path.join(root, '.cache/test-model/tiny-qwen2.gguf');
const { random, pick, between } = seededRandom(Number(process.env.SEED ?? 1));
const ADMIN = 'admin-key-for-the-local-chaos-check';
const problems = [];

const SYSTEM = 'You are a terse assistant. Answer in one short line.';
const TOPICS = ['cats', 'the sea at night', 'prime numbers', 'a red kite', 'winter in Oslo', 'black coffee'];
const ANSWER_SCHEMA = {
  type: 'object',
  properties: { answer: { type: 'string', maxLength: 40 }, confidence: { type: 'integer', minimum: 0, maximum: 10 } },
  required: ['answer', 'confidence'],
  additionalProperties: false,
};
const WEATHER_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 24 }, days: { type: 'integer', minimum: 1, maximum: 7 }, unit: { enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'days', 'unit'],
  additionalProperties: false,
};
const ajv = new Ajv({ strict: false });
const validAnswer = ajv.compile(ANSWER_SCHEMA);
const validWeather = ajv.compile(WEATHER_SCHEMA);

// ---------------------------------------------------------------------------------------------
// Requests: a variant is one deterministic request on one route; `body(stream)` builds it.

/** An OpenAI conversation → the same one on Messages (system apart). */
function messagesBody(openai) {
  const system = openai.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n');
  const body = { model: 'tiny', max_tokens: openai.max_tokens, temperature: openai.temperature, messages: openai.messages.filter((m) => m.role !== 'system') };
  if (system) body.system = system;
  return body;
}

/** An OpenAI conversation (one system, one user turn) → organisation chat and Eden. */
const orgBody = (openai) => ({
  modelId: 'tiny',
  systemPrompt: openai.messages.find((m) => m.role === 'system')?.content,
  messages: openai.messages.filter((m) => m.role !== 'system'),
  temperature: openai.temperature,
  maxTokens: openai.max_tokens,
});
const edenBody = (openai) => ({
  providers: 'tiny',
  chatbot_global_action: openai.messages.find((m) => m.role === 'system')?.content,
  text: openai.messages.at(-1).content,
  temperature: openai.temperature,
  max_tokens: openai.max_tokens,
});

const openaiVariant = (name, body, extra = {}) => ({ name, route: 'openai', body: (stream) => ({ model: 'tiny', ...body, ...(stream ? { stream, stream_options: { include_usage: true } } : {}) }), ...extra });
const messagesVariant = (name, body, extra = {}) => ({ name, route: 'messages', body: (stream) => ({ ...body, stream }), ...extra });
// These two take the stream from the route, not the body.
const orgVariant = (name, body, extra = {}) => ({ name, route: 'org', body: () => body, ...extra });
const edenVariant = (name, body, extra = {}) => ({ name, route: 'eden', body: () => body, ...extra });

/** The first variants; the rest (follow-ups, stops) need these' references. */
function baseVariants() {
  const variants = [];
  for (const [i, topic] of TOPICS.entries()) {
    const conversation = { messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: `Tell me about ${topic}.` }], max_tokens: 24 + 4 * i, temperature: 0 };
    variants.push(openaiVariant(`text:${i}`, conversation, { conversation, oracle: conversation }));
    variants.push(messagesVariant(`messages:${i}`, messagesBody(conversation), { sameAs: `text:${i}`, oracle: conversation }));
    variants.push(orgVariant(`org:${i}`, orgBody(conversation), { sameAs: `text:${i}`, oracle: conversation }));
    variants.push(edenVariant(`eden:${i}`, edenBody(conversation), { sameAs: `text:${i}`, oracle: conversation }));
    variants.push(openaiVariant(`seeded:${i}`, { ...conversation, temperature: 0.9, top_k: 0, seed: 100 + i }, { sampled: true }));
  }
  variants.push(openaiVariant('n2', { messages: [{ role: 'user', content: 'Name a colour.' }], n: 2, temperature: 1, seed: 5, max_tokens: 12 }, { sampled: true }));
  variants.push(
    openaiVariant('json', {
      messages: [{ role: 'user', content: 'Answer as JSON: is the sea blue?' }],
      temperature: 0,
      max_tokens: 80,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: ANSWER_SCHEMA } },
    }),
  );
  const weatherTool = { type: 'function', function: { name: 'get_weather', description: 'The forecast for a city', parameters: WEATHER_SCHEMA } };
  variants.push(
    openaiVariant('tool', {
      messages: [{ role: 'user', content: 'What is the weather in Lyon this week?' }],
      temperature: 0,
      max_tokens: 80,
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    }),
  );
  variants.push(
    messagesVariant('messages-tool', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'What is the weather in Turku tomorrow?' }],
      temperature: 0,
      max_tokens: 80,
      tools: [{ name: 'get_weather', description: 'The forecast for a city', input_schema: WEATHER_SCHEMA }],
      tool_choice: { type: 'tool', name: 'get_weather' },
    }),
  );
  const counting = { messages: [{ role: 'user', content: 'Count to five.' }], temperature: 0, max_tokens: 12 };
  variants.push(openaiVariant('logprobs', { ...counting, logprobs: true, top_logprobs: 3 }, { oracle: counting }));
  return variants;
}

/** Variants built on a base reference: a follow-up turn (its prefix is cached), a stop, a short max_tokens. */
function derivedVariants(references) {
  const variants = [];
  for (const [i] of TOPICS.entries()) {
    const answer = references.get(`text:${i}`).buffered;
    const base = answer.choices[0];
    const { conversation } = variantsByName.get(`text:${i}`);
    const followUp = { ...conversation, messages: [...conversation.messages, { role: 'assistant', content: base.text }, { role: 'user', content: 'Why?' }] };
    variants.push(openaiVariant(`follow-up:${i}`, followUp, { oracle: followUp }));
    variants.push(messagesVariant(`messages-follow-up:${i}`, messagesBody(followUp), { sameAs: `follow-up:${i}`, oracle: followUp }));
    // A stop string from the middle of the answer: the text must end right before its first occurrence.
    const chars = [...base.text];
    if (chars.length >= 8) {
      const at = between(2, chars.length - 4);
      const stop = chars.slice(at, at + 3).join('');
      variants.push(openaiVariant(`stop:${i}`, { ...conversation, stop: [stop] }, { expectText: base.text.slice(0, base.text.indexOf(stop)), expectFinish: 'stop', oracle: conversation }));
    }
    if (answer.usage[1] > 3) {
      const max = between(1, answer.usage[1] - 1);
      variants.push(openaiVariant(`length:${i}`, { ...conversation, max_tokens: max }, { prefixOf: base.text, expectFinish: 'length', expectTokens: max, oracle: conversation }));
    }
  }
  return variants;
}

const variantsByName = new Map();

// ---------------------------------------------------------------------------------------------
// Answers, normalised: {status, choices: [{text, finish, calls: [[name, parsed args]], logprobs}], usage: [in, out], confidence, error}

const parseArgs = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return { unparsable: text };
  }
};

// Each route's reader of a 200: its buffered body (parsed) or its whole stream (raw text), as
// {choices, usage, confidence?, error?}; a stream reader says whether the stream reached its end.

const logprobsOf = (content) => content?.map((t) => [t.token, t.logprob, t.top_logprobs.map((a) => [a.token, a.logprob])]);

const openaiReader = {
  buffered(body) {
    const choices = [...body.choices]
      .sort((a, b) => a.index - b.index)
      .map((c) => ({
        text: c.message.content ?? '',
        finish: c.finish_reason,
        calls: (c.message.tool_calls ?? []).map((t) => [t.function.name, parseArgs(t.function.arguments)]),
        logprobs: logprobsOf(c.logprobs?.content),
      }));
    return { choices, usage: [body.usage.prompt_tokens, body.usage.completion_tokens], confidence: body.confidence_score };
  },
  streamed(raw) {
    const result = { choices: [], usage: undefined, confidence: undefined, ended: false };
    const args = [];
    for (const e of sseEvents(raw)) {
      if (e.data === '[DONE]') {
        result.ended = true;
        continue;
      }
      const chunk = JSON.parse(e.data);
      if (chunk.error) result.error = chunk.error;
      if (chunk.usage) result.usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens];
      if (chunk.confidence_score !== undefined) result.confidence = chunk.confidence_score;
      for (const c of chunk.choices ?? []) {
        const choice = (result.choices[c.index] ??= { text: '', finish: null, calls: [], logprobs: undefined });
        args[c.index] ??= [];
        if (c.delta?.content) choice.text += c.delta.content;
        for (const t of c.delta?.tool_calls ?? []) {
          if (t.function?.name) choice.calls[t.index] = [t.function.name, undefined];
          args[c.index][t.index] = (args[c.index][t.index] ?? '') + (t.function?.arguments ?? '');
        }
        if (c.logprobs?.content) (choice.logprobs ??= []).push(...logprobsOf(c.logprobs.content));
        if (c.finish_reason) choice.finish = c.finish_reason;
      }
    }
    result.choices.forEach((choice, i) => choice.calls.forEach((call, j) => (call[1] = parseArgs(args[i][j]))));
    return result;
  },
};

const messagesReader = {
  buffered(body) {
    const text = body.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
    const calls = body.content.filter((b) => b.type === 'tool_use').map((b) => [b.name, b.input]);
    return { choices: [{ text, finish: body.stop_reason, calls, logprobs: undefined }], usage: [body.usage.input_tokens, body.usage.output_tokens] };
  },
  streamed(raw) {
    const choice = { text: '', finish: null, calls: [], logprobs: undefined };
    const result = { choices: [choice], usage: [undefined, undefined], ended: false };
    const blocks = [];
    for (const e of sseEvents(raw)) {
      const data = JSON.parse(e.data);
      if (e.event === 'message_start') result.usage[0] = data.message.usage.input_tokens;
      if (e.event === 'content_block_start') blocks[data.index] = { ...data.content_block, json: '' };
      if (e.event === 'content_block_delta' && data.delta.type === 'text_delta') choice.text += data.delta.text;
      if (e.event === 'content_block_delta' && data.delta.type === 'input_json_delta') blocks[data.index].json += data.delta.partial_json;
      if (e.event === 'message_delta') {
        choice.finish = data.delta.stop_reason;
        result.usage[1] = data.usage.output_tokens;
      }
      if (e.event === 'message_stop') result.ended = true;
      if (e.event === 'error') result.error = data.error;
    }
    for (const b of blocks) if (b?.type === 'tool_use') choice.calls.push([b.name, parseArgs(b.json || '{}')]);
    return result;
  },
};

const orgReader = {
  buffered: (body) => ({ choices: [{ text: body.response.content, finish: body.finishReason, calls: [], logprobs: undefined }], usage: [body.usage.inputTokens, body.usage.outputTokens] }),
  streamed(raw) {
    const choice = { text: '', finish: null, calls: [], logprobs: undefined };
    const result = { choices: [choice], usage: undefined, ended: false };
    for (const e of sseEvents(raw)) {
      const data = JSON.parse(e.data);
      if (e.event === 'content') choice.text += data.delta;
      if (e.event === 'done') {
        result.ended = true;
        choice.finish = data.finishReason;
        result.usage = [data.usage.inputTokens, data.usage.outputTokens];
      }
      if (e.event === 'error') result.error = data.error;
    }
    return result;
  },
};

/** Eden: a buffered result per provider; the stream route is the raw text alone (no finish, no usage, no end marker). */
const edenReader = {
  buffered({ tiny: result }) {
    if (result.status !== 'success') return { error: result.error };
    return { choices: [{ text: result.generated_text, finish: result.finish_reason, calls: [], logprobs: undefined }], usage: [result.usage.prompt_tokens, result.usage.completion_tokens] };
  },
  streamed(raw) {
    // A failure after the first byte is a last line {"error": …} and no clean end (fetch then throws).
    const lastLine = raw.slice(raw.lastIndexOf('\n') + 1);
    if (lastLine.startsWith('{"error":')) return { error: JSON.parse(lastLine).error };
    return { choices: [{ text: raw, finish: undefined, calls: [], logprobs: undefined }], usage: undefined };
  },
};

const ROUTES = {
  openai: { path: () => '/v1/chat/completions', reader: openaiReader, headers: {} },
  messages: { path: () => '/v1/messages', reader: messagesReader, headers: { 'anthropic-version': '2023-06-01' } },
  org: { path: (stream) => `/api/v3/organizations/default/ai/chat${stream ? '/stream' : ''}`, reader: orgReader, headers: {} },
  eden: { path: (stream) => `/v2/text/chat${stream ? '/stream' : ''}`, reader: edenReader, headers: {} },
};

/** One request, its answer normalised: an error status's body error, else the route's reader's, a stream cut short an error. */
async function ask(url, variant, stream, signal) {
  const route = ROUTES[variant.route];
  const res = await fetch(`${url}${route.path(stream)}`, { method: 'POST', headers: { 'content-type': 'application/json', ...route.headers }, body: JSON.stringify(variant.body(stream)), signal });
  const raw = await res.text();
  const { ended, ...answer } = res.status !== 200 ? { error: JSON.parse(raw).error } : stream ? route.reader.streamed(raw) : route.reader.buffered(JSON.parse(raw));
  if (ended === false && !answer.error) answer.error = { message: `a stream that just stopped: ${raw.slice(-300)}` };
  return { status: res.status, ...answer, requestId: res.headers.get('x-request-id'), retryAfter: res.headers.get('retry-after') };
}

// ---------------------------------------------------------------------------------------------
// Judging

/**
 * Equal, but for non-integer numbers (probabilities), which may differ in the last digits: a
 * prompt token evaluated alone (its prefix cached) or in one batch with the rest goes through
 * different kernels, which round differently. The tokens chosen must be the same.
 */
function nearlyEqual(a, b) {
  if (typeof a === 'number' && typeof b === 'number' && !(Number.isInteger(a) && Number.isInteger(b))) return Math.abs(a - b) <= 1e-3 * Math.max(1, Math.abs(a));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => nearlyEqual(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a);
    return isDeepStrictEqual(keys, Object.keys(b)) && keys.every((k) => nearlyEqual(a[k], b[k]));
  }
  return isDeepStrictEqual(a, b);
}

/** What two answers to one request must share; `what` names the pair. */
function compare(what, got, want, found) {
  if (got.error || got.status !== 200) return void found.push(`${what}: ${got.status} ${JSON.stringify(got.error)}`);
  for (const field of ['choices', 'usage', 'confidence']) {
    if (!nearlyEqual(got[field], want[field])) found.push(`${what}: ${field} ${JSON.stringify(got[field])?.slice(0, 400)}, expected ${JSON.stringify(want[field])?.slice(0, 400)}`);
  }
}

/** Chat completions' finish reasons in each dialect's words. */
const FINISH = {
  messages: { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use' },
  org: { stop: 'stop', length: 'length', tool_calls: 'tool_use' },
  eden: { stop: 'stop', length: 'length', tool_calls: 'tool_calls' },
};

/** The promises one variant's references keep on their own (see the header). */
function judgeReference(variant, ref, references, found) {
  const { buffered, streamed } = ref;
  const name = variant.name;
  if (buffered.error || buffered.status !== 200) return void found.push(`${name} alone: ${buffered.status} ${JSON.stringify(buffered.error)}`);
  // A stream carries no confidence score at all on some routes, and Eden's raw text stream no
  // finish or usage either: compare what the stream has.
  const { confidence, ...rest } = streamed;
  const comparable = variant.route === 'eden' ? { ...buffered, choices: buffered.choices.map((c) => ({ ...c, finish: undefined })), usage: undefined } : buffered;
  compare(`${name}: streamed against buffered`, streamed.confidence === undefined ? { ...rest, confidence: comparable.confidence } : streamed, comparable, found);
  const first = buffered.choices[0];
  if (variant.sameAs) {
    const other = references.get(variant.sameAs).buffered;
    const otherChoice = other.choices[0];
    if (first.text !== otherChoice.text) found.push(`${name}: text ${JSON.stringify(first.text)}, the same conversation on chat completions gave ${JSON.stringify(otherChoice.text)}`);
    if (first.finish !== FINISH[variant.route][otherChoice.finish]) found.push(`${name}: finish ${first.finish}, chat completions' finish_reason ${otherChoice.finish}`);
    if (!isDeepStrictEqual(buffered.usage, other.usage)) found.push(`${name}: usage ${buffered.usage}, chat completions' ${other.usage}`);
  }
  if (variant.expectText !== undefined && first.text !== variant.expectText) found.push(`${name}: text ${JSON.stringify(first.text)}, expected the unstopped answer up to the stop: ${JSON.stringify(variant.expectText)}`);
  if (variant.expectFinish && first.finish !== variant.expectFinish) found.push(`${name}: finish ${first.finish}, expected ${variant.expectFinish}`);
  if (variant.expectTokens !== undefined && buffered.usage[1] !== variant.expectTokens) found.push(`${name}: ${buffered.usage[1]} completion tokens, max_tokens was ${variant.expectTokens}`);
  if (variant.prefixOf !== undefined && !variant.prefixOf.startsWith(first.text)) found.push(`${name}: ${JSON.stringify(first.text)} is not a prefix of the longer answer ${JSON.stringify(variant.prefixOf)}`);
  if (name === 'n2' && buffered.choices.length !== 2) found.push(`n2: ${buffered.choices.length} choices`);
  if (name === 'json' && first.finish === 'stop') {
    const parsed = parseArgs(first.text);
    if (!validAnswer(parsed)) found.push(`json: ${JSON.stringify(first.text)} does not validate: ${ajv.errorsText(validAnswer.errors)}`);
  }
  if (name === 'tool' || name === 'messages-tool') {
    const want = name === 'tool' ? 'tool_calls' : 'tool_use';
    if (first.finish !== want) found.push(`${name}: finish ${first.finish}, expected ${want}`);
    if (first.calls.length < 1 || first.calls.some(([n, args]) => n !== 'get_weather' || !validWeather(args))) found.push(`${name}: calls ${JSON.stringify(first.calls)} do not validate: ${ajv.errorsText(validWeather.errors)}`);
  }
  if (name === 'logprobs') {
    const tokens = first.logprobs ?? [];
    if (tokens.map(([t]) => t).join('') !== first.text) found.push(`logprobs: tokens ${JSON.stringify(tokens.map(([t]) => t))} do not spell ${JSON.stringify(first.text)}`);
    for (const [token, logprob, top] of tokens) {
      if (top.length !== 3 || top[0][0] !== token || top[0][1] !== logprob) found.push(`logprobs: at temperature 0 the chosen token ${JSON.stringify([token, logprob])} is not the top alternative ${JSON.stringify(top[0])}`);
    }
  }
}

/**
 * Greedy decoding on a random-weight model meets near-ties: two tokens whose log-probabilities
 * differ by 1e-5 (the test model's distributions are nearly flat). Which one wins may change with
 * the batch a token is decoded in, since kernels for one token and for several round differently.
 * An answer that leaves its reference is still right when it leaves it at such a tie, for the
 * runner-up: `oracle` is the reference's path with each token's top two (asked alone, logprobs
 * on), and `TIE` the largest gap taken for a tie. A leaked or misaligned state leaves the path
 * where the model had a clear favourite.
 */
const TIE = 1e-3;
function leavesAtTie(text, oracle) {
  let prefix = '';
  for (const [token, logprob, top] of oracle) {
    if (!text.startsWith(prefix + token)) {
      if (!text.startsWith(prefix)) return false;
      const [, runnerUp] = top;
      return runnerUp !== undefined && logprob - runnerUp[1] <= TIE && text.slice(prefix.length).startsWith(runnerUp[0]);
    }
    prefix += token;
  }
  return false;
}

/**
 * An answer against its reference (compare); says how it differs, if it may: a greedy one may
 * leave it at a near-tie ('tie'), a seeded sample anywhere ('sampled'). A seeded draw from the
 * test model's nearly flat distributions lands on another token as soon as the probabilities move
 * in their last digits, which a batch shared with other sequences does (seen here: a reference
 * asked alone again after the crowd left it at its second token, its cached prefix computed in a
 * shared batch). Such an answer must still have the reference's prompt tokens, its number of
 * choices, and end within max_tokens.
 */
function judgeAnswer(what, variant, got, want, found) {
  const text = got.choices?.[0]?.text;
  if (got.status === 200 && !got.error && text !== want.choices[0].text) {
    const oracle = variant.oracle && oracles.get(JSON.stringify(variant.oracle));
    const how = oracle && leavesAtTie(text, oracle) ? 'tie' : variant.sampled ? 'sampled' : undefined;
    if (process.env.DIVERGENCE) {
      const ref = [...want.choices[0].text];
      const mine = [...text];
      let i = 0;
      while (i < ref.length && ref[i] === mine[i]) i++;
      console.log(`${what}: ${how} after ${i} of ${ref.length} characters`);
    }
    if (how) {
      if (got.usage?.[0] !== want.usage?.[0]) found.push(`${what}: ${got.usage?.[0]} prompt tokens, expected ${want.usage?.[0]}`);
      if (got.choices.length !== want.choices.length) found.push(`${what}: ${got.choices.length} choices, expected ${want.choices.length}`);
      const body = variant.body(false);
      const max = body.max_tokens ?? body.maxTokens;
      if (got.usage && !(got.usage[1] <= max * got.choices.length)) found.push(`${what}: ${got.usage[1]} completion tokens, max_tokens ${max}`);
      return how;
    }
  }
  compare(what, got, want, found);
  return undefined;
}

function judgeCrowdAnswer(plan, result, references, found) {
  const what = `request ${plan.n} (${plan.variant.name}${plan.stream ? ', streamed' : ''})`;
  if (result.status === 503) {
    // Anthropic's shape has no code: its type says it.
    const code = plan.variant.route === 'messages' ? result.error?.type : result.error?.code;
    const want = plan.variant.route === 'messages' ? 'overloaded_error' : 'local_queue_full';
    if (code !== want) found.push(`${what}: 503 ${JSON.stringify(result.error)}, expected ${want}`);
    if (!(Number(result.retryAfter) > 0)) found.push(`${what}: 503 without a Retry-After (${result.retryAfter})`);
    return `turned away (${plan.variant.route})`;
  }
  const how = judgeAnswer(what, plan.variant, result, references.get(plan.variant.name)[plan.stream ? 'streamed' : 'buffered'], found);
  return how === 'tie' ? 'answered (left at a near-tie)' : how === 'sampled' ? 'answered (sampled otherwise)' : 'answered';
}

// ---------------------------------------------------------------------------------------------

async function localStats(url) {
  const text = await fetch(`${url}/metrics`).then((r) => r.text());
  return { active: metricSum(text, 'switchboard_provider_stat', 'stat="local_active_sequences"'), queued: metricSum(text, 'switchboard_local_queue_depth') };
}

/** The oracle paths (see leavesAtTie), by conversation. */
const oracles = new Map();

async function askOracles(url, variants) {
  for (const v of variants) {
    const key = v.oracle && JSON.stringify(v.oracle);
    if (!key || oracles.has(key)) continue;
    const answer = await ask(url, openaiVariant('oracle', { ...v.oracle, logprobs: true, top_logprobs: 2 }), false);
    if (answer.status !== 200) throw new Error(`an oracle request failed: ${answer.status} ${JSON.stringify(answer.error)}`);
    oracles.set(key, answer.choices[0].logprobs);
  }
}

async function references(url, variants, into) {
  for (const v of variants) into.set(v.name, { buffered: await ask(url, v, false), streamed: await ask(url, v, true) });
}

async function main() {
  if (!fs.existsSync(MODEL)) execFileSync(process.execPath, [path.join(root, 'scripts/make-test-model.mjs')], { stdio: 'inherit' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-local-'));
  const config = path.join(dir, 'switchboard.yaml');
  fs.writeFileSync(
    config,
    `server:\n  logLevel: error\nlocal:\n  threads: 1\n  parallel: ${PARALLEL}\n  queueLimit: ${QUEUE}\nrouter:\n  retries: 0\n` +
      `defaultModel: tiny\nmodels:\n  - { id: tiny, provider: local, model: '${MODEL}', contextLength: 1024, pricing: { input: 1, output: 2 } }\n`,
  );
  const gateway = await startGateway(config, dir, { SWITCHBOARD_ADMIN_KEY: ADMIN });
  try {
    const refs = new Map();
    const base = baseVariants();
    for (const v of base) variantsByName.set(v.name, v);
    await references(gateway.url, base, refs);
    const derived = derivedVariants(refs);
    for (const v of derived) variantsByName.set(v.name, v);
    await references(gateway.url, derived, refs);
    const variants = [...variantsByName.values()];
    await askOracles(gateway.url, variants);
    for (const v of variants) judgeReference(v, refs.get(v.name), refs, problems);
    const referenceProblems = problems.length;

    const t0 = performance.now();
    const plans = new Map();
    /** One client's request; a refused client waits half to all of its Retry-After before its next. */
    const one = async (key) => {
      const plan = { n: key, variant: pick(variants), stream: random() < 0.5, hangUpAfterMs: random() < HANGUPS ? between(0, 150) : undefined };
      plans.set(key, plan);
      try {
        const result = await ask(gateway.url, plan.variant, plan.stream, hangUpSignal(plan));
        plan.answered = true;
        if (result.status === 503) await new Promise((r) => setTimeout(r, (Number(result.retryAfter) || 1) * between(500, 1000)));
        return result;
      } catch (err) {
        if (plan.hungUpAt !== undefined) return { hungUp: true };
        throw err;
      }
    };
    // Every BURST_EVERY-th member brings BURST more clients at once: refusals in a row.
    const ended = await crowd(REQUESTS, CONCURRENCY, async (n) => {
      if (n % BURST_EVERY !== BURST_EVERY - 1) return [[n, await one(n)]];
      return Promise.all(Array.from({ length: BURST }, async (_, k) => [`${n}/${k}`, await one(`${n}/${k}`)]));
    });
    const results = ended.flatMap(([, list]) => list);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    const ends = {};
    const logged = [];
    let seededAnswers = 0;
    for (const [n, result] of results) {
      const plan = plans.get(n);
      const end = result.hungUp ? 'hung up' : judgeCrowdAnswer(plan, result, refs, problems);
      ends[end] = (ends[end] ?? 0) + 1;
      if (end.startsWith('answered') && plan.variant.sampled) seededAnswers++;
      if (end.startsWith('answered') && result.requestId && result.usage) logged.push(result);
    }

    // Every client has its answer or has gone: nothing may stay busy (a short grace for the last
    // hung-up request's cancellation to reach its sequence).
    let stats = await localStats(gateway.url);
    for (const deadline = performance.now() + 2000; (stats.active || stats.queued) && performance.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 20));
      stats = await localStats(gateway.url);
    }
    if (stats.active || stats.queued) problems.push(`after the crowd: ${stats.active} sequence(s) still busy and ${stats.queued} request(s) queued 2 s after the last client`);

    const after = new Map();
    await references(gateway.url, variants, after);
    const afterwards = {};
    for (const v of variants) {
      for (const mode of ['buffered', 'streamed']) {
        const how = judgeAnswer(`${v.name} alone after the crowd (${mode})`, v, after.get(v.name)[mode], refs.get(v.name)[mode], problems) ?? 'same';
        afterwards[how] = (afterwards[how] ?? 0) + 1;
      }
    }

    const rows = await requestLog(gateway.url, ADMIN);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const result of logged) {
      const row = byId.get(result.requestId);
      if (!row) problems.push(`no request-log row for ${result.requestId}`);
      else if (row.input_tokens !== result.usage[0] || row.output_tokens !== result.usage[1]) problems.push(`request ${result.requestId}: logged ${row.input_tokens}/${row.output_tokens} tokens, answered ${result.usage}`);
    }
    problems.push(...(await logAgainstMetrics(rows, [gateway.url])));

    console.log(
      `${variants.length} requests asked alone (${referenceProblems} broken on their own); ${results.length} in a crowd of ${CONCURRENCY} on ${PARALLEL} sequences + a queue of ${QUEUE} in ${seconds} s: ` +
        `${JSON.stringify(ends)} (${seededAnswers} answers to seeded requests); asked alone again: ${JSON.stringify(afterwards)}; ${problems.length} broken promise(s)`,
    );
    for (const p of problems.slice(0, 40)) console.log(`  ${p}`);
  } finally {
    gateway.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return problems.length;
}

runCheck(main);
