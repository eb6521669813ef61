#!/usr/bin/env node
// Does the tool loop keep its promises (docs/tools.md, docs/org-chat.md, docs/messages.md
// `mcp_servers`) under a crowd, with tools that misbehave and clients that hang up? A scripted
// model (a loopback OpenAI-compatible upstream) follows a random plan per request: 0–4 rounds of
// 1–3 tool calls, then text; some plans keep calling tools past `maxRounds`. Requests alternate
// between two routes:
// - the organisation chat with `autoExecute` (buffered and streamed): HTTP tools that answer JSON,
//   text or an image, fail with a 500, stall before the headers or in the body (past `timeoutMs`),
//   reset, answer more than `maxResultBytes`, run async (pending, then polled); the built-ins;
//   the tools of the MCP server below through `mcp.servers` (one connection the gateway keeps);
// - Messages with `mcp_servers` (buffered and streamed): a loopback MCP server (the SDK's, over
//   streamable HTTP) whose tools answer, answer text, answer slowly, return an error, throw, or
//   stall past `messages.mcpServers.timeoutMs`; `allowed_tools` or an `mcp_toolset` (either shape,
//   at random) leaves some out; a call to the request's own client tool comes back to the client
//   and ends the turn.
// Each plan also calls tools not allowed, a tool no one knows, and gives arguments that are not
// JSON. REQUESTS requests, CONCURRENCY at a time, HANGUPS of them hung up at a random moment.
// Checked for each request:
// - the answer: every call with the status and result its tool earned (a refusal for what is not
//   allowed or not known, the tool's own answer, an error naming the failure), the final text, the
//   finish (`tool_use` after an async call), or `tool_rounds_exceeded` (an error event, or a 502
//   buffered) — never a silent cut;
// - the model was offered exactly the allowed tools, saw every call's result (by call id) in the
//   next round, and was called as often as the plan allows, no more;
// - tools ran only when allowed and known, once per call (HTTP tools with the request's
//   `x-request-id`); each image inline and behind its signed URL (a forged signature: 403);
// - usage is the sum over the model calls; the request log has a row per model call (`<id>`,
//   `<id>-r2`, …) with its tokens, and its totals equal the metrics';
// - async executions end `complete` (with the tool's result) or `failed`, and are 404 to another
//   organisation;
// - after a hang-up: no model or tool call starts once the gateway has cut any call of that request
//   (no timing tolerance), nothing starts or stays open more than HANGUP_MS after the hang-up; at
//   the end nothing is open at the model, the HTTP tools or the MCP server but the kept
//   connection's GET stream (another GET: a connection the gateway did not close; a tools/call: a
//   cancelled call whose request was left open).
// Exits 1 on any broken promise, each printed.
//
// Usage: node bench/tools-chaos.mjs
//   (env: REQUESTS=150 CONCURRENCY=8 SEED=1 HANGUPS=0.2 HANGUP_MS=100 DIALECTS=org,messages)
import { isDeepStrictEqual } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { logAgainstMetrics, requestLog } from './lib/accounting.mjs';
import { closeServers, crowd, hangUpSignal, runCheck, seededRandom, sseEvents, startGateway } from './lib/gateways.mjs';
import { chunkMaker, startJsonServer, trackRequest, writePaced } from './lib/word-upstream.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 150);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8);
const HANGUPS = Number(process.env.HANGUPS ?? 0.2);
/** Each request's route, in turn: the organisation chat (autoExecute) and Messages with mcp_servers. */
const DIALECTS = (process.env.DIALECTS ?? 'org,messages').split(',');
const { random, pick, between } = seededRandom(Number(process.env.SEED ?? 1));
const ADMIN = 'admin-key-for-the-tools-chaos-check';
const MAX_ROUNDS = 3;
const TIMEOUT_MS = 500;
const MAX_RESULT_BYTES = 4096;
/** How soon after a hang-up the gateway must have stopped starting and closed its work. */
const HANGUP_MS = Number(process.env.HANGUP_MS ?? 100);
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const problems = [];

// name → [route on the tool server or built-in, async, what the client should see]
const TOOLS = {
  t_ok: { route: 'ok', expect: 'complete' },
  t_text: { route: 'text', expect: 'complete' },
  t_image: { route: 'image', expect: 'complete' },
  t_slow: { route: 'slow', expect: 'complete' },
  t_fail: { route: 'fail', expect: /failed with HTTP 500/ },
  t_stall: { route: 'stall', expect: new RegExp(`timed out after ${TIMEOUT_MS} ms`) },
  t_stall_body: { route: 'stall-body', expect: /failed: .*abort/i },
  t_reset: { route: 'reset', expect: /could not be reached/ },
  t_big: { route: 'big', expect: new RegExp(`larger than ${MAX_RESULT_BYTES} bytes`) },
  a_ok: { route: 'slow', async: true, expect: 'complete' },
  a_fail: { route: 'fail', async: true, expect: 'failed' },
  calculator: { builtin: true, expect: 'complete' },
  echo: { builtin: true, expect: 'complete' },
  // The MCP server's tools, through `mcp.servers` in the config (one connection, kept).
  m_ok: { mcp: true, expect: 'complete' },
  m_text: { mcp: true, expect: 'complete' },
  m_fail: { mcp: true, expect: /the tool broke/ },
  m_throw: { mcp: true, expect: /thrown by the tool/ },
  m_stall: { mcp: true, expect: /timed out/i },
};
const SERVER_TOOLS = Object.keys(TOOLS);
const UNKNOWN = 'launch_rockets';
// Messages with `mcp_servers`: the tools of a loopback MCP server (streamable HTTP), and a tool of
// the request's own, whose calls come back to the client (docs/messages.md).
const MCP_TOOLS = {
  m_ok: { expect: 'complete' },
  m_text: { expect: 'complete' },
  m_slow: { expect: 'complete' },
  m_fail: { expect: /the tool broke/ },
  m_throw: { expect: /thrown by the tool/ },
  m_stall: { expect: /timed out/i },
};
const CLIENT_TOOL = 'client_lookup';
const toolsOf = (plan) => (plan.dialect === 'org' ? TOOLS : MCP_TOOLS);

/** Every request's plan, by number: what the model does each round, and what happened. */
const plans = new Map();

function makePlan(n) {
  const dialect = DIALECTS[n % DIALECTS.length];
  const names = dialect === 'org' ? SERVER_TOOLS : [...Object.keys(MCP_TOOLS), CLIENT_TOOL];
  const rounds = Array.from({ length: pick([0, 1, 1, 2, 2, 3, 4]) }, (_, r) =>
    Array.from({ length: between(1, 3) }, (_, i) => {
      const name = random() < 0.08 ? UNKNOWN : pick(names);
      return { id: `call_${n}_${r + 1}_${i}`, name, badArguments: random() < 0.07 };
    }),
  );
  const used = new Set(rounds.flat().map((c) => c.name));
  // Most of what the plan calls is allowed; some is not; a few organisation lists name the
  // unknown tool (Messages' allowed_tools must name tools the MCP server has).
  const allowable = dialect === 'org' ? () => true : (name) => name in MCP_TOOLS;
  const allowedTools = [...used].filter((name) => allowable(name) && random() < 0.8);
  if (allowedTools.length === 0) allowedTools.push(dialect === 'org' ? pick(SERVER_TOOLS) : 'm_ok');
  return {
    n,
    dialect,
    rounds,
    allowedTools,
    stubborn: random() < 0.5,
    // Messages: the connector's older shape (tool_configuration) or its newer one (an mcp_toolset).
    toolset: random() < 0.5,
    stream: random() < 0.5,
    // The first requests of each route (a cold gateway) are never hung up: the timing would measure the warm-up.
    hangUpAfterMs: n >= 2 * CONCURRENCY && random() < HANGUPS ? between(0, 250) : undefined,
    modelCalls: [],
    toolCalls: [],
    offered: [],
    seen: new Map(),
  };
}

function argumentsOf(plan, call) {
  if (call.badArguments) return `{"plan": ${plan.n}, "call": `;
  if (call.name === 'calculator') return JSON.stringify({ expression: `${plan.n} + 1` });
  if (call.name === 'echo') return JSON.stringify({ text: call.id });
  return JSON.stringify({ plan: plan.n, call: call.id });
}

const roundText = (plan, round) => `[${plan.n}.${round}] `;
const finalText = (plan) => `final ${plan.n}`;
const usageOf = (round) => ({ prompt_tokens: 10 + round, completion_tokens: 2 + round, total_tokens: 12 + 2 * round });

const openModelCalls = [];

/** The scripted model: round r of plan n is 1 + the assistant turns in the request. */
function answerModel(req, res, body) {
  const user = body.messages.find((m) => m.role === 'user');
  const text = typeof user.content === 'string' ? user.content : user.content.map((p) => p.text ?? '').join('');
  const plan = plans.get(Number(/plan:(\d+)/.exec(text)?.[1]));
  if (!plan) return void res.writeHead(400).end('{"error":{"message":"no plan"}}');
  const round = 1 + body.messages.filter((m) => m.role === 'assistant').length;
  const entry = trackRequest(plan.modelCalls, req, res, { round, toolChoice: body.tool_choice });
  openModelCalls.push(entry);
  plan.offered.push((body.tools ?? []).map((t) => t.function.name).sort());
  // What the model reads of the last round's results, by call id.
  for (const m of body.messages) if (m.role === 'tool') plan.seen.set(m.tool_call_id, typeof m.content === 'string' ? m.content : JSON.stringify(m.content));
  const calls = body.tool_choice === 'none' && !plan.stubborn ? [] : (plan.rounds[round - 1] ?? []);
  const content = calls.length ? roundText(plan, round) : finalText(plan);
  const usage = usageOf(round);
  const finish = calls.length ? 'tool_calls' : 'stop';
  if (!body.stream) {
    const message = { role: 'assistant', content, refusal: null };
    if (calls.length) message.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: argumentsOf(plan, c) } }));
    const answer = { id: 'chatcmpl-t', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage };
    const timer = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)), between(1, 20));
    return void res.once('close', () => clearTimeout(timer));
  }
  const chunk = chunkMaker(body.model, usage);
  const pieces = [chunk({ role: 'assistant', content: '' }), chunk({ content })];
  calls.forEach((c, index) => {
    const args = argumentsOf(plan, c);
    const cut = Math.floor(args.length / 2);
    pieces.push(chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }));
    pieces.push(chunk({ tool_calls: [{ index, function: { arguments: args.slice(0, cut) } }] }));
    pieces.push(chunk({ tool_calls: [{ index, function: { arguments: args.slice(cut) } }] }));
  });
  pieces.push(chunk({}, finish), chunk(null, null, true), 'data: [DONE]\n\n');
  writePaced(res, pieces, () => between(0, 4));
}

const openToolCalls = [];
/** What each tool call's server answered (JSON), by call id. */
const toolAnswers = new Map();

function answerTool(req, res, input) {
  const route = req.url.slice(3);
  const plan = plans.get(input?.plan);
  const entry = trackRequest(plan?.toolCalls ?? [], req, res, { call: input?.call, route });
  openToolCalls.push(entry);
  const later = (ms, fn) => {
    const timer = setTimeout(fn, ms);
    res.once('close', () => clearTimeout(timer));
  };
  const json = () => {
    const answer = { plan: input.plan, call: input.call, nonce: Math.random().toString(36).slice(2) };
    toolAnswers.set(input.call, answer);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  };
  switch (route) {
    case 'ok':
      return later(between(0, 30), json);
    case 'slow':
      return later(between(50, 200), json);
    case 'text':
      return later(between(0, 30), () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`text ${input.call}`));
    case 'image':
      return later(between(0, 30), () => res.writeHead(200, { 'content-type': 'image/png' }).end(PNG));
    case 'fail':
      return later(between(0, 30), () => res.writeHead(500, { 'content-type': 'text/plain' }).end('the tool broke'));
    case 'stall':
      return; // no headers until the gateway's timeoutMs
    case 'stall-body':
      return void res.writeHead(200, { 'content-type': 'application/json' }).write('{"partial":');
    case 'reset':
      return later(between(0, 30), () => req.socket.destroy());
    case 'big':
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(MAX_RESULT_BYTES + 1000));
    default:
      res.writeHead(404).end();
  }
}

/** Requests the MCP server has had (initialize, list, calls, GET streams): all closed at the end. */
const mcpRequests = [];

/** One stateless MCP server per HTTP request, as the SDK's examples serve streamable HTTP. */
function chaosMcpServer() {
  const server = new McpServer({ name: 'chaos', version: '1.0.0' });
  const input = { plan: z.number(), call: z.string() };
  const wait = (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  const answer = ({ plan, call }) => {
    const value = { plan, call, nonce: Math.random().toString(36).slice(2) };
    toolAnswers.set(call, value);
    return { content: [{ type: 'text', text: JSON.stringify(value) }] };
  };
  const tool = (name, handler) => server.registerTool(name, { description: `The ${name} tool`, inputSchema: input }, handler);
  tool('m_ok', async (args, extra) => (await wait(between(0, 30), extra.signal), answer(args)));
  tool('m_slow', async (args, extra) => (await wait(between(50, 200), extra.signal), answer(args)));
  tool('m_text', async ({ call }) => ({ content: [{ type: 'text', text: `text ${call}` }] }));
  tool('m_fail', async () => ({ content: [{ type: 'text', text: 'the tool broke' }], isError: true }));
  tool('m_throw', async () => {
    throw new Error('thrown by the tool');
  });
  // Answers only when the call is cancelled (the gateway's timeoutMs, or its client gone).
  tool('m_stall', async (_args, extra) => (await wait(60_000, extra.signal), { content: [] }));
  return server;
}

function startMcpServer() {
  const server = http.createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const body = text ? JSON.parse(text) : undefined;
    const entry = trackRequest(mcpRequests, req, res, { method: body?.method ?? req.method });
    if (body?.method === 'tools/call') {
      Object.assign(entry, { call: body.params.arguments?.call, route: body.params.name });
      plans.get(body.params.arguments?.plan)?.toolCalls.push(entry);
    }
    const mcp = chaosMcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.once('close', () => {
      transport.close();
      mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}/mcp` })));
}

/** The plan's calls as the loop should run them: the rounds that happen, and how it ends. */
function expectedRun(plan) {
  const allowed = new Set(plan.allowedTools);
  const runs = (c) => allowed.has(c.name) && c.name in toolsOf(plan) && !c.badArguments;
  // A call to the client's own tool (Messages) comes back to it and ends the turn.
  const clientCall = (c) => plan.dialect === 'messages' && c.name === CLIENT_TOOL;
  const rounds = [];
  for (let r = 0; r < plan.rounds.length; r++) {
    if (r + 1 === MAX_ROUNDS) {
      // The last model call is asked for text (tool_choice none); a model that still calls tools
      // fails the request, unless the client has calls among them: the turn then ends with
      // them, and the gateway's calls beside them run.
      if (!plan.stubborn) return { rounds, modelCalls: MAX_ROUNDS, end: 'stop' };
      if (plan.rounds[r].some(clientCall)) return { rounds: [...rounds, plan.rounds[r]], modelCalls: MAX_ROUNDS, end: 'tool_use' };
      return { rounds, modelCalls: MAX_ROUNDS, end: 'tool_rounds_exceeded' };
    }
    rounds.push(plan.rounds[r]);
    if (plan.rounds[r].some((c) => (runs(c) && toolsOf(plan)[c.name].async) || clientCall(c))) return { rounds, modelCalls: r + 1, end: 'tool_use' };
  }
  return { rounds, modelCalls: plan.rounds.length + 1, end: 'stop' };
}

/** What the client should see of one call: a status and a check of its result. */
function judgeCall(plan, call, use, found) {
  const what = `plan ${plan.n} ${call.id} (${call.name}${call.badArguments ? ', bad arguments' : ''})`;
  if (!use) return void found.push(`${what}: not in toolUse`);
  if (use.name !== call.name) found.push(`${what}: toolUse names ${use.name}`);
  const tool = TOOLS[call.name];
  const error = (pattern) => {
    if (use.status !== 'failed' || !pattern.test(String(use.result?.error))) found.push(`${what}: expected failed ${pattern}, got ${use.status} ${JSON.stringify(use.result)}`);
  };
  if (!plan.allowedTools.includes(call.name)) return error(/not in allowedTools/);
  if (!tool) return error(/not known to the server/);
  if (call.badArguments) return error(/not a JSON object/);
  if (tool.async) {
    if (use.status !== 'pending' || !/^exec_/.test(use.executionId ?? '')) found.push(`${what}: expected pending with an executionId, got ${JSON.stringify(use)}`);
    return;
  }
  if (tool.expect instanceof RegExp) return error(tool.expect);
  if (use.status !== 'complete') return void found.push(`${what}: ${use.status} ${JSON.stringify(use.result)}`);
  const route = tool.route;
  if (tool.mcp) {
    const text = call.name === 'm_text' ? `text ${call.id}` : JSON.stringify(toolAnswers.get(call.id));
    if (!isDeepStrictEqual(use.result, { text })) found.push(`${what}: result ${JSON.stringify(use.result)}, the tool answered ${text}`);
    return;
  }
  const expected =
    call.name === 'calculator' ? { expression: `${plan.n} + 1`, value: plan.n + 1 } : call.name === 'echo' ? undefined : route === 'text' ? { text: `text ${call.id}` } : route === 'image' ? undefined : toolAnswers.get(call.id);
  if (expected && !isDeepStrictEqual(use.result, expected)) found.push(`${what}: result ${JSON.stringify(use.result)}, the tool answered ${JSON.stringify(expected)}`);
  if (call.name === 'echo' && !JSON.stringify(use.result).includes(call.id)) found.push(`${what}: echo result ${JSON.stringify(use.result)}`);
  if (route === 'image' && (use.images?.length !== 1 || use.s3Urls?.length !== 1)) found.push(`${what}: image result without one image and one URL: ${JSON.stringify(use).slice(0, 200)}`);
  else if (route === 'image') artifacts.push({ what, image: use.images[0], url: use.s3Urls[0] });
}

/** The same for Messages: an mcp_tool_use block and its mcp_tool_result (`text`, `status` from is_error). */
function judgeMcpCall(plan, call, use, found) {
  const what = `plan ${plan.n} ${call.id} (${call.name}${call.badArguments ? ', bad arguments' : ''})`;
  if (!use) return void found.push(`${what}: no mcp_tool_use block`);
  if (use.name !== call.name) found.push(`${what}: the block names ${use.name}`);
  if (call.name === CLIENT_TOOL) {
    // The client's own tool: handed back as a tool_use block, never run.
    if (use.type !== 'tool_use' || use.status !== undefined) found.push(`${what}: expected a tool_use block for the client, got ${use.type} ${use.status ?? ''}`);
    return;
  }
  if (use.status === undefined) return void found.push(`${what}: no mcp_tool_result block`);
  const error = (pattern) => {
    if (use.status !== 'failed' || !pattern.test(use.text)) found.push(`${what}: expected is_error ${pattern}, got ${use.status} ${JSON.stringify(use.text).slice(0, 200)}`);
  };
  const tool = MCP_TOOLS[call.name];
  if (!tool || !plan.allowedTools.includes(call.name)) return error(/not in allowedTools/);
  if (use.serverName !== 'chaos') found.push(`${what}: server_name ${use.serverName}`);
  if (call.badArguments) return error(/not a JSON object/);
  if (tool.expect instanceof RegExp) return error(tool.expect);
  const expected = call.name === 'm_text' ? `text ${call.id}` : JSON.stringify(toolAnswers.get(call.id));
  if (use.status !== 'complete' || use.text !== expected) found.push(`${what}: ${use.status} ${JSON.stringify(use.text)}, the tool answered ${expected}`);
}

/** The images the tools made, as the client was given them: fetched after the run. */
const artifacts = [];

/** Each image inline is the tool's PNG, and its signed URL serves those bytes; a URL with another signature is 403. */
async function artifactProblems() {
  const found = [];
  for (const { what, image, url } of artifacts) {
    if (image !== `data:image/png;base64,${PNG.toString('base64')}`) found.push(`${what}: the inline image is not the tool's PNG`);
    const res = await fetch(url);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || !bytes.equals(PNG)) found.push(`${what}: its URL answered ${res.status} with ${bytes.length} bytes`);
    const forged = new URL(url);
    forged.searchParams.set('signature', '0'.repeat(64));
    const refused = await fetch(forged);
    await refused.arrayBuffer();
    if (refused.status !== 403) found.push(`${what}: a forged signature answered ${refused.status}`);
  }
  return found;
}

/** The model's view of a result: the tool's answer for a success, the failure for the rest. */
function judgeSeen(plan, call, found) {
  const seen = plan.seen.get(call.id);
  const what = `plan ${plan.n} ${call.id} (${call.name})`;
  if (seen === undefined) return void found.push(`${what}: the model never saw its result`);
  const tool = toolsOf(plan)[call.name];
  const runs = tool && plan.allowedTools.includes(call.name) && !call.badArguments;
  if (runs && (tool.route === 'ok' || call.name === 'm_ok') && !seen.includes(toolAnswers.get(call.id)?.nonce ?? '?')) found.push(`${what}: the model saw ${seen.slice(0, 120)}, not the tool's answer`);
  if (runs && tool.expect instanceof RegExp && !tool.expect.test(seen)) found.push(`${what}: the model saw ${seen.slice(0, 120)}, not the failure`);
  if (!runs && !/not in allowedTools|not known to the server|not a JSON object/.test(seen)) found.push(`${what}: the model saw ${seen.slice(0, 120)}, not the refusal`);
}

/** A plan in a line, for a failure's report. */
function describePlan(plan) {
  const rounds = plan.rounds.map((round) => round.map((c) => `${c.name}${c.badArguments ? '(bad)' : ''}`).join('+')).join(' / ');
  return `[${rounds}] allowed [${plan.allowedTools}]${plan.stubborn ? ' stubborn' : ''}; model rounds seen ${plan.modelCalls.map((c) => c.round)}`;
}

function judgeAnswer(plan, result, found) {
  const expected = expectedRun(plan);
  const what = `plan ${plan.n} (${plan.dialect}${plan.stream ? ' stream' : ''})`;
  if (plan.modelCalls.length !== expected.modelCalls) found.push(`${what}: ${plan.modelCalls.length} model calls, the plan allows ${expected.modelCalls}`);
  const sum = { inputTokens: 0, outputTokens: 0 };
  for (const call of plan.modelCalls) {
    sum.inputTokens += usageOf(call.round).prompt_tokens;
    sum.outputTokens += usageOf(call.round).completion_tokens;
  }
  const offered = [...new Set([...plan.allowedTools.filter((t) => toolsOf(plan)[t]), ...(plan.dialect === 'messages' ? [CLIENT_TOOL] : [])])].sort();
  for (const names of plan.offered) if (!isDeepStrictEqual(names, offered)) found.push(`${what}: the model was offered ${names}, allowed and known: ${offered}`);
  if (expected.end === 'tool_rounds_exceeded') {
    const named = result.error?.code === 'tool_rounds_exceeded' || (plan.dialect === 'messages' && /still calling tools after/.test(result.error?.message));
    if (result.status !== (plan.stream ? 200 : 502) || !named) found.push(`${what}: expected tool_rounds_exceeded, got ${result.status} ${JSON.stringify(result.error ?? result.finishReason)}`);
    // Messages streams each mcp_tool_use block as the model makes it, the last round's too; a
    // result comes only for the calls that ran.
    const ran = plan.dialect === 'org' ? result.uses : result.uses.filter((u) => u.status !== undefined);
    if (plan.stream && ran.length !== expected.rounds.flat().length) found.push(`${what}: ${ran.length} tool results before the error, ${expected.rounds.flat().length} calls ran`);
  } else {
    if (result.status !== 200 || result.error) return void found.push(`${what}: ${result.status} ${JSON.stringify(result.error)}; plan ${describePlan(plan)}`);
    if (result.finishReason !== expected.end) found.push(`${what}: finishReason ${result.finishReason}, expected ${expected.end}`);
    const text = expected.rounds.map((_, r) => roundText(plan, r + 1)).join('') + (expected.end === 'stop' ? finalText(plan) : '');
    if (result.content !== text) found.push(`${what}: content ${JSON.stringify(result.content)}, expected ${JSON.stringify(text)}`);
    if (!isDeepStrictEqual(result.usage, { ...sum, totalTokens: sum.inputTokens + sum.outputTokens })) found.push(`${what}: usage ${JSON.stringify(result.usage)}, the model calls made ${JSON.stringify(sum)}`);
    const calls = expected.rounds.flat();
    if (result.uses.length !== calls.length) found.push(`${what}: ${result.uses.length} toolUse entries for ${calls.length} calls`);
    const judge = plan.dialect === 'org' ? judgeCall : judgeMcpCall;
    for (const call of calls) judge(plan, call, result.uses.find((u) => u.toolUseId === call.id), found);
  }
  // Each call whose round was followed by another model call was seen by the model.
  for (const [r, round] of expected.rounds.entries()) if (r + 1 < expected.modelCalls) for (const call of round) judgeSeen(plan, call, found);
}

/** Which tool calls reached the tool server, against those the plan's rounds should run. */
function judgeToolCalls(plan, found) {
  const expected = plan.hangUpAfterMs === undefined ? expectedRun(plan) : undefined;
  const ran = new Map();
  for (const entry of plan.toolCalls) ran.set(entry.call, (ran.get(entry.call) ?? 0) + 1);
  for (const [call, times] of ran) if (times > 1) found.push(`plan ${plan.n}: tool call ${call} ran ${times} times`);
  const allowed = new Set(plan.allowedTools);
  for (const entry of plan.toolCalls) {
    const call = plan.rounds.flat().find((c) => c.id === entry.call);
    if (!call || !allowed.has(call.name) || call.badArguments) found.push(`plan ${plan.n}: ${entry.call} reached the tool server though it must not run`);
    if (entry.method) continue; // the MCP client sends no x-request-id
    const base = entry.requestId?.replace(/-r\d+$/, '');
    if (plan.requestId && entry.requestId !== plan.requestId) found.push(`plan ${plan.n}: tool call ${entry.call} had x-request-id ${entry.requestId}, the request's is ${plan.requestId}`);
    if (!base) found.push(`plan ${plan.n}: tool call ${entry.call} had no x-request-id`);
  }
  if (!expected) return;
  const tools = toolsOf(plan);
  const shouldRun = expected.rounds.flat().filter((c) => allowed.has(c.name) && tools[c.name] && !tools[c.name].builtin && !c.badArguments);
  for (const call of shouldRun) if (!ran.has(call.id)) found.push(`plan ${plan.n}: ${call.id} (${call.name}) never reached the tool server`);
}

/** The longest time from a client's hang-up to its work's end (a call started or closed). */
const hangUpLags = [];

/** After a hang-up: nothing new starts, and what was open closes, within HANGUP_MS. */
function judgeHangUp(plan, found) {
  if (plan.hungUpAt === undefined) return;
  const sync = plan.toolCalls.filter((t) => !toolsOf(plan)[plan.rounds.flat().find((c) => c.id === t.call)?.name]?.async);
  const what = `plan ${plan.n} (${plan.dialect}${plan.stream ? ' stream' : ''})`;
  let lag = 0;
  // Once the gateway has cut one of the request's calls, it knows the client is gone: any call it
  // starts after that (an arrival stamped a little later may have been sent a little earlier) is a
  // fault however quick, with no timing tolerance.
  const cuts = [...plan.modelCalls, ...sync].filter((e) => !e.answered && e.closed > plan.hungUpAt).map((e) => e.closed);
  const knewAt = Math.min(...cuts);
  for (const entry of [...plan.modelCalls, ...sync]) {
    if (entry.arrived > knewAt + 5) found.push(`${what}: ${entry.round ? `model call (round ${entry.round})` : `tool call ${entry.call}`} started ${Math.round(entry.arrived - knewAt)} ms after the gateway cut another call of the request`);
    if (entry.closed !== undefined && entry.closed < plan.hungUpAt) continue;
    const label = entry.round ? `model call (round ${entry.round})` : `tool call ${entry.call} (${entry.route})`;
    if (entry.closed === undefined) {
      found.push(`${what}: ${label} never closed after the client hung up`);
      continue;
    }
    lag = Math.max(lag, entry.closed - plan.hungUpAt);
    if (entry.arrived > plan.hungUpAt + HANGUP_MS) found.push(`${what}: ${label} started ${Math.round(entry.arrived - plan.hungUpAt)} ms after the client hung up`);
    else if (entry.closed > plan.hungUpAt + HANGUP_MS) found.push(`${what}: ${label} closed ${Math.round(entry.closed - plan.hungUpAt)} ms after the client hung up`);
  }
  hangUpLags.push(lag);
}

/** An organisation chat answer, buffered or streamed: toolUse entries, text, finishReason, usage, or the error. */
function readOrgAnswer(plan, status, raw) {
  if (!plan.stream) {
    const body = JSON.parse(raw);
    if (status !== 200) return { status, error: body.error, uses: [] };
    const toolUse = body.response.toolUse;
    return { status, content: body.response.content, finishReason: body.finishReason, usage: body.usage, uses: toolUse === undefined ? [] : [toolUse].flat() };
  }
  const result = { status, content: '', uses: [] };
  for (const e of sseEvents(raw)) {
    const data = JSON.parse(e.data);
    if (e.event === 'content') result.content += data.delta;
    if (e.event === 'tool_use') result.uses.push(data.toolUse);
    if (e.event === 'done') Object.assign(result, { finishReason: data.finishReason, usage: data.usage, done: true });
    if (e.event === 'error') result.error = data.error;
  }
  if (!result.done && !result.error) problems.push(`plan ${plan.n}: an organisation stream that just stopped`);
  return result;
}

/** A Messages answer in the same terms: each mcp_tool_use with its mcp_tool_result's status and text. */
function readMessagesAnswer(plan, status, raw) {
  const result = { status, content: '', uses: [] };
  const block = (b) => {
    if (b.type === 'text') result.content += b.text ?? '';
    if (b.type === 'mcp_tool_use' || b.type === 'tool_use') result.uses.push({ toolUseId: b.id, name: b.name, serverName: b.server_name, type: b.type });
    if (b.type === 'mcp_tool_result') {
      const use = result.uses.find((u) => u.toolUseId === b.tool_use_id);
      if (use) Object.assign(use, { status: b.is_error ? 'failed' : 'complete', text: b.content.map((c) => c.text ?? '').join('') });
      else problems.push(`plan ${plan.n}: an mcp_tool_result for ${b.tool_use_id}, which no mcp_tool_use came before`);
    }
  };
  const usage = (u) => ({ inputTokens: u.input_tokens, outputTokens: u.output_tokens, totalTokens: u.input_tokens + u.output_tokens });
  const finish = (reason) => (reason === 'end_turn' ? 'stop' : reason);
  if (!plan.stream) {
    const body = JSON.parse(raw);
    if (status !== 200) return { status, error: body.error, uses: [] };
    for (const b of body.content) block(b);
    return Object.assign(result, { finishReason: finish(body.stop_reason), usage: usage(body.usage) });
  }
  let stopped = false;
  for (const e of sseEvents(raw)) {
    const data = JSON.parse(e.data);
    if (e.event === 'content_block_start') block(data.content_block);
    if (e.event === 'content_block_delta' && data.delta.type === 'text_delta') result.content += data.delta.text;
    if (e.event === 'message_delta') Object.assign(result, { finishReason: finish(data.delta.stop_reason), usage: usage(data.usage) });
    if (e.event === 'message_stop') stopped = true;
    if (e.event === 'error') result.error = data.error;
  }
  if (!stopped && !result.error) problems.push(`plan ${plan.n}: a Messages stream that just stopped`);
  return result;
}

function requestOf(plan, mcpUrl) {
  const user = [{ role: 'user', content: `plan:${plan.n}` }];
  if (plan.dialect === 'org') {
    return { path: `/api/v3/organizations/acme/ai/${plan.stream ? 'chat/stream' : 'chat'}`, body: { modelId: 'scripted', messages: user, autoExecute: true, allowedTools: plan.allowedTools } };
  }
  const clientTool = { name: CLIENT_TOOL, description: 'Looks something up on the client', input_schema: { type: 'object', properties: { plan: { type: 'number' }, call: { type: 'string' } } } };
  const mcpServer = { type: 'url', url: mcpUrl, name: 'chaos' };
  const tools = [clientTool];
  if (plan.toolset) tools.push({ type: 'mcp_toolset', mcp_server_name: 'chaos', default_config: { enabled: false }, configs: Object.fromEntries(plan.allowedTools.map((name) => [name, { enabled: true }])) });
  else mcpServer.tool_configuration = { allowed_tools: plan.allowedTools };
  return { path: '/v1/messages', body: { model: 'scripted', max_tokens: 200, messages: user, stream: plan.stream, mcp_servers: [mcpServer], tools } };
}

/** One request as the client sees it, or that it hung up. */
async function one(url, mcpUrl, n) {
  const plan = makePlan(n);
  plans.set(n, plan);
  const signal = hangUpSignal(plan);
  const { path: route, body } = requestOf(plan, mcpUrl);
  try {
    const res = await fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body), signal });
    plan.requestId = res.headers.get('x-request-id');
    const raw = await res.text();
    plan.answered = true;
    return (plan.dialect === 'org' ? readOrgAnswer : readMessagesAnswer)(plan, res.status, raw);
  } catch (err) {
    if (plan.hungUpAt !== undefined) return { hungUp: true };
    throw err;
  }
}

async function pollExecutions(url, results) {
  const found = [];
  for (const [n, result] of results) {
    const plan = plans.get(n);
    for (const use of result.uses ?? []) {
      if (use.status !== 'pending' || !use.executionId) continue;
      const tool = TOOLS[use.name];
      let body;
      for (const deadline = performance.now() + 5000; performance.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
        body = await fetch(`${url}/api/v3/organizations/acme/ai/tools/executions/${use.executionId}`).then((r) => r.json());
        if (body.status === 'complete' || body.status === 'failed') break;
      }
      const what = `plan ${plan.n} ${use.toolUseId} (${use.name}, execution ${use.executionId})`;
      if (body.status !== tool.expect) found.push(`${what}: ended ${body.status} ${JSON.stringify(body.error ?? body.result)}, expected ${tool.expect}`);
      if (tool.expect === 'complete' && !isDeepStrictEqual(body.result, toolAnswers.get(use.toolUseId))) found.push(`${what}: result ${JSON.stringify(body.result)}, the tool answered ${JSON.stringify(toolAnswers.get(use.toolUseId))}`);
      const other = await fetch(`${url}/api/v3/organizations/globex/ai/tools/executions/${use.executionId}`);
      if (other.status !== 404) found.push(`${what}: another organisation read it (${other.status})`);
    }
  }
  return found;
}

/** The request log: a row per model call, with its tokens; totals against the metrics. */
async function accountingProblems(url) {
  const found = [];
  const rows = await requestLog(url, ADMIN);
  for (const plan of plans.values()) {
    const ids = plan.modelCalls.map((c) => c.requestId);
    for (const [i, call] of plan.modelCalls.entries()) {
      const row = rows.find((r) => r.id === ids[i]);
      if (!row) found.push(`plan ${plan.n}: no request-log row for its model call ${ids[i]}`);
      else if (call.closed !== undefined && row.status === 200 && (row.input_tokens !== usageOf(call.round).prompt_tokens || row.output_tokens !== usageOf(call.round).completion_tokens)) found.push(`plan ${plan.n}: row ${row.id} logged ${row.input_tokens}/${row.output_tokens} tokens`);
    }
  }
  const called = [...plans.values()].reduce((sum, plan) => sum + plan.modelCalls.length, 0);
  if (rows.length < called) found.push(`${rows.length} request-log rows for ${called} model calls`);
  found.push(...(await logAgainstMetrics(rows, [url])));
  return found;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-tools-'));
  const model = await startJsonServer(answerModel);
  const tools = await startJsonServer(answerTool);
  const mcp = await startMcpServer();
  const http = Object.entries(TOOLS)
    .filter(([, t]) => !t.builtin && !t.mcp)
    .map(([name, t]) => `    - { name: ${name}, url: 'http://127.0.0.1:${tools.port}/t/${t.route}', allowPrivateNetwork: true, timeoutMs: ${TIMEOUT_MS}, async: ${t.async === true} }\n`)
    .join('');
  const config = path.join(dir, 'switchboard.yaml');
  fs.writeFileSync(
    config,
    `server:\n  logLevel: error\nrouter:\n  retries: 0\nmessages:\n  mcpServers: { allowPrivateNetwork: true, timeoutMs: ${TIMEOUT_MS} }\n` +
      `mcp:\n  servers:\n    - { name: chaos, transport: http, url: '${mcp.url}', allowPrivateNetwork: true, timeoutMs: ${TIMEOUT_MS} }\n` +
      `tools:\n  maxRounds: ${MAX_ROUNDS}\n  maxResultBytes: ${MAX_RESULT_BYTES}\n  builtins: [calculator, echo]\n  http:\n${http}` +
      `defaultModel: scripted\nmodels:\n  - id: scripted\n    provider: openai\n    model: up\n    pricing: { input: 1, output: 2 }\n    baseUrl: 'http://127.0.0.1:${model.port}/v1'\n`,
  );
  const gateway = await startGateway(config, dir, { SWITCHBOARD_ADMIN_KEY: ADMIN });
  try {
    const t0 = performance.now();
    const results = await crowd(REQUESTS, CONCURRENCY, (n) => one(gateway.url, mcp.url, n));
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    for (const [n, result] of results) {
      const plan = plans.get(n);
      if (!result.hungUp) judgeAnswer(plan, result, problems);
    }
    problems.push(...(await pollExecutions(gateway.url, results.filter(([, r]) => !r.hungUp))));
    problems.push(...(await artifactProblems()));
    await new Promise((r) => setTimeout(r, TIMEOUT_MS + 100));
    for (const plan of plans.values()) {
      judgeToolCalls(plan, problems);
      judgeHangUp(plan, problems);
    }
    for (const entry of [...openModelCalls, ...openToolCalls]) if (entry.closed === undefined) problems.push(`${entry.round ? `model call ${entry.requestId}` : `tool call ${entry.call}`} still open after the run`);
    // The configured server's connection is kept, with its GET stream; nothing else stays open.
    const mcpOpen = mcpRequests.filter((e) => e.closed === undefined);
    if (mcpOpen.length > 1 || mcpOpen.some((e) => e.method !== 'GET')) problems.push(`${mcpOpen.length} MCP request(s) still open after the run: ${[...new Set(mcpOpen.map((e) => e.method))]}`);
    problems.push(...(await accountingProblems(gateway.url)));
    const ends = {};
    for (const [, r] of results) {
      // Messages' error shape has no code: its message names the rounds.
      const code = r.error && (r.error.code ?? (/still calling tools/.test(r.error.message) ? 'tool_rounds_exceeded' : r.error.type));
      const key = r.hungUp ? 'hung up' : (code ?? r.finishReason ?? 'broken');
      ends[key] = (ends[key] ?? 0) + 1;
    }
    const lags = hangUpLags.sort((a, b) => a - b);
    const lagText = lags.length ? `; work ended after a hang-up within ${Math.round(lags[Math.floor(lags.length / 2)])} ms (median), ${Math.round(lags.at(-1))} ms (max)` : '';
    console.log(`${REQUESTS} requests in ${seconds} s: ${JSON.stringify(ends)}; model calls ${openModelCalls.length}, HTTP tool calls ${openToolCalls.length}, MCP requests ${mcpRequests.length}, images fetched ${artifacts.length}${lagText}; ${problems.length} broken promise(s)`);
    for (const p of problems.slice(0, 40)) console.log(`  ${p}`);
  } finally {
    gateway.child.kill();
    closeServers(model, tools, mcp);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return problems.length;
}

runCheck(main);
