// A loopback stand-in for the Bedrock runtime HTTP API, for the real AWS SDK client.
//
// It speaks what the SDK speaks: HTTP/2 without TLS (the SDK's default NodeHttp2Handler connects
// with prior knowledge to an http:// endpoint) and, on the same port, HTTP/1.1 (what Switchboard
// uses through an egress proxy); each request records its `httpVersion`.
// `POST /model/{modelId}/converse-stream` answered
// with the AWS binary event-stream framing (built with @smithy/eventstream-codec), and
// `POST /model/{modelId}/converse` answered with the buffered JSON, `POST /model/{modelId}/count-tokens`
// with `{inputTokens}`. Every request is checked for a
// SigV4 signature (the signature is recomputed with @smithy/signature-v4 when the secret is known)
// or a Bedrock API key (Bearer), and recorded.
//
// Scenarios are data: an event list (inline, or a fixture file under test/fixtures/bedrock/),
// an HTTP error, or a fault. The event list is written as real Bedrock writes it, so `metadata`
// comes after `messageStop`. Frames go out one write each; `splitFrames: true` cuts each in two,
// `chunkSizes: [n…]` writes the whole body in pieces of those byte sizes (cycled).

import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bedrock');
const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** Error responses as Bedrock sends them: status, x-amzn-errortype, JSON body with `message`. */
const AWS_ERRORS = {
  ThrottlingException: { status: 429, message: 'Too many requests, please wait before trying again.' },
  InternalServerException: { status: 500, message: 'The server encountered an internal error while processing the request.' },
  ServiceUnavailableException: { status: 503, message: 'Bedrock is unable to process your request.' },
  ValidationException: { status: 400, message: 'Malformed input request, please reformat your input and try again.' },
  AccessDeniedException: { status: 403, message: "You don't have access to the model with the specified model ID." },
  ResourceNotFoundException: { status: 404, message: 'Could not resolve the foundation model from the provided model identifier.' },
  ModelTimeoutException: { status: 408, message: 'Model has timed out in processing the request.' },
  UnrecognizedClientException: { status: 403, message: 'The security token included in the request is invalid.' },
  InvalidSignatureException: {
    status: 403,
    message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
  },
};

/** The fake's own token count for a CountTokens converse input: one per 3 characters of it. */
export function fakeTokenCount(converse) {
  return Math.ceil(JSON.stringify(converse).length / 3);
}

export function loadBedrockFixture(name) {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));
}

/** Frames one entry of an event list: `{eventType: payload}` or `{exception: {exceptionType: payload}}`. */
export function frameBedrockEvent(entry) {
  const [key, value] = Object.entries(entry)[0];
  if (key === 'exception') {
    const [type, payload] = Object.entries(value)[0];
    return codec.encode({
      headers: {
        ':exception-type': { type: 'string', value: type },
        ':content-type': { type: 'string', value: 'application/json' },
        ':message-type': { type: 'string', value: 'exception' },
      },
      body: fromUtf8(JSON.stringify(payload)),
    });
  }
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: key },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: fromUtf8(JSON.stringify(value)),
  });
}

/** The buffered Converse answer equivalent to an event list. */
function assembleConverse(events) {
  const blocks = [];
  let stopReason = 'end_turn';
  let usage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 };
  const metrics = { latencyMs: 1 };
  for (const entry of events) {
    const [type, e] = Object.entries(entry)[0];
    if (type === 'contentBlockStart' && e.start?.toolUse) blocks[e.contentBlockIndex] = { toolUse: { ...e.start.toolUse, input: '' } };
    if (type === 'contentBlockDelta') {
      const d = e.delta;
      const i = e.contentBlockIndex;
      if (d.text !== undefined) blocks[i] = { text: (blocks[i]?.text ?? '') + d.text };
      if (d.toolUse) blocks[i].toolUse.input += d.toolUse.input;
      if (d.reasoningContent) {
        const r = (blocks[i] ??= { reasoningContent: { reasoningText: { text: '' } } });
        if (d.reasoningContent.text !== undefined) r.reasoningContent.reasoningText.text += d.reasoningContent.text;
        if (d.reasoningContent.signature !== undefined) r.reasoningContent.reasoningText.signature = d.reasoningContent.signature;
        if (d.reasoningContent.redactedContent !== undefined) blocks[i] = { reasoningContent: { redactedContent: d.reasoningContent.redactedContent } };
      }
    }
    if (type === 'messageStop') stopReason = e.stopReason;
    if (type === 'metadata') usage = e.usage;
  }
  const content = blocks.filter(Boolean).map((b) => (b.toolUse ? { toolUse: { ...b.toolUse, input: JSON.parse(b.toolUse.input || '{}') } } : b));
  return { output: { message: { role: 'assistant', content } }, stopReason, usage, metrics };
}

function parseAuthorization(value) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(value ?? '');
  if (!m) return undefined;
  return { accessKeyId: m[1], date: m[2], region: m[3], service: m[4], signedHeaders: m[5].split(';'), signature: m[6] };
}

function amzDateToDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : undefined;
}

/** Recomputes the SigV4 signature of a received request; true when it matches. */
async function verifySignature(req, rawBody, auth, secretAccessKey) {
  const signingDate = amzDateToDate(req.headers['x-amz-date']);
  if (!signingDate) return false;
  const headers = {};
  for (const name of auth.signedHeaders) {
    headers[name] = name === 'host' ? (req.headers.host ?? req.headers[':authority']) : req.headers[name];
  }
  const url = new URL(req.headers[':path'] ?? req.url, 'http://placeholder');
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signer = new SignatureV4({
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey, sessionToken: req.headers['x-amz-security-token'] },
    region: auth.region,
    service: auth.service,
    sha256: Sha256,
  });
  const [hostname, port] = String(headers.host ?? '').split(':');
  const signed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname, port: port ? Number(port) : undefined, path: url.pathname, query, headers, body: rawBody },
    { signingDate },
  );
  return signed.headers.authorization === req.headers.authorization;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/** A duplex over `socket` that first yields `head`, the bytes already read from it. */
function replaying(socket, head) {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, encoding, done) {
      socket.write(chunk, encoding, done);
    },
    final(done) {
      socket.end(done);
    },
    destroy(err, done) {
      socket.destroy();
      done(err);
    },
  });
  duplex.push(head);
  socket.on('data', (chunk) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  return duplex;
}

/** Ends a response that has begun with an error the client sees: an HTTP/2 stream reset, or a cut connection. */
function resetResponse(res) {
  if (res.stream) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  else res.socket?.destroy();
}

/**
 * Starts the fake. Options: `accessKeyId` and `secretAccessKey` (the signature is recomputed
 * when given), `apiKey` (a Bearer token also accepted).
 */
export async function startFakeBedrock(options = {}) {
  const requests = [];
  const queue = [];
  const countQueue = [];
  let defaultScenario = { fixture: 'text.json' };
  const sessions = new Set();
  const waiters = [];

  const h2 = http2.createServer();
  h2.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined);
  });
  const h1 = http.createServer();
  const h1Sockets = new Set();
  // One port for both: a connection that opens with the HTTP/2 preface goes to h2, any other to h1.
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (first) => {
      socket.pause();
      if (first.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) {
        // node:http2 reads a net.Socket's handle directly and would miss the bytes read here.
        h2.emit('connection', replaying(socket, first));
      } else {
        h1Sockets.add(socket);
        socket.once('close', () => h1Sockets.delete(socket));
        socket.unshift(first);
        h1.emit('connection', socket);
        socket.resume();
      }
    });
  });

  const onRequest = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((err) => {
        // A scenario this fake cannot play (an event it cannot frame): a 500, or a reset once
        // the answer has begun — never a response left open.
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err?.stack ?? err));
        } else {
          resetResponse(res);
        }
      });
    });
    req.on('error', () => undefined);
    res.on('error', () => undefined);
  };
  h2.on('request', onRequest);
  h1.on('request', onRequest);

  function sendAwsError(res, type, message) {
    const def = AWS_ERRORS[type] ?? { status: 400, message: type };
    const body = JSON.stringify({ message: message ?? def.message });
    res.writeHead(def.status, {
      'content-type': 'application/json',
      'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
      'x-amzn-requestid': 'fake-request-id',
    });
    res.end(body);
  }

  /** CountTokens: `{input: {converse: {...}}}` → `{inputTokens}` (fakeTokenCount), or the next count scenario's error. */
  function countTokens(res, body) {
    const scenario = countQueue.shift();
    if (scenario?.error) return sendAwsError(res, scenario.error, scenario.message);
    const converse = body?.input?.converse;
    if (!converse || !Array.isArray(converse.messages)) return sendAwsError(res, 'ValidationException', 'input.converse.messages is required');
    res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'fake-request-id' });
    res.end(JSON.stringify({ inputTokens: fakeTokenCount(converse) }));
  }

  async function handle(req, res, rawBody) {
    const reqPath = req.headers[':path'] ?? req.url;
    const m = /^\/model\/([^/]+)\/(converse-stream|converse|count-tokens)$/.exec(reqPath.split('?')[0]);
    const authorization = req.headers.authorization;
    const auth = parseAuthorization(authorization);
    let signatureValid;
    if (auth && options.secretAccessKey) signatureValid = await verifySignature(req, rawBody, auth, options.secretAccessKey);
    let body;
    try {
      body = JSON.parse(rawBody.toString('utf8'));
    } catch {
      body = undefined;
    }
    const record = {
      method: req.method,
      path: reqPath,
      modelId: m ? decodeURIComponent(m[1]) : undefined,
      operation: m?.[2],
      headers: { ...req.headers },
      authorization,
      auth,
      signatureValid,
      body,
      httpVersion: req.httpVersion,
      closed: new Promise((r) => res.on('close', r)),
    };
    requests.push(record);
    for (const w of waiters.splice(0)) w(record);

    // Authentication as AWS checks it: a SigV4 signature of a known key, or a known API key.
    if (authorization?.startsWith('Bearer ')) {
      if (!options.apiKey || authorization !== `Bearer ${options.apiKey}`) return sendAwsError(res, 'UnrecognizedClientException');
    } else if (!auth) {
      return sendAwsError(res, 'UnrecognizedClientException', 'Missing Authentication Token');
    } else {
      if (options.accessKeyId && auth.accessKeyId !== options.accessKeyId) return sendAwsError(res, 'UnrecognizedClientException');
      if (!req.headers['x-amz-date']) return sendAwsError(res, 'InvalidSignatureException', 'Missing x-amz-date');
      if (signatureValid === false) return sendAwsError(res, 'InvalidSignatureException');
    }
    if (!m || req.method !== 'POST') {
      res.writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'UnknownOperationException' });
      return res.end('{}');
    }

    if (m[2] === 'count-tokens') return countTokens(res, body);

    const scenario = queue.shift() ?? defaultScenario;
    if (scenario.fault === 'stall-before-headers') return; // never answers; closed by close()
    if (scenario.fault === 'reset-before-headers') return resetResponse(res);
    if (scenario.error) return sendAwsError(res, scenario.error, scenario.message);
    if (scenario.status) {
      res.writeHead(scenario.status, { 'content-type': 'application/json', ...(scenario.headers ?? {}) });
      return res.end(typeof scenario.body === 'string' ? scenario.body : JSON.stringify(scenario.body ?? {}));
    }
    const events = scenario.events ?? loadBedrockFixture(scenario.fixture);

    if (m[2] === 'converse') {
      const converse = JSON.stringify(assembleConverse(events));
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'fake-request-id' });
      return res.end(converse);
    }

    res.writeHead(200, {
      'content-type': 'application/vnd.amazon.eventstream',
      'x-amzn-requestid': 'fake-request-id',
    });
    if (scenario.chunkSizes) {
      // The whole body cut at arbitrary byte boundaries (frames and their UTF-8 split anywhere),
      // in pieces of these sizes, cycled.
      const body = Buffer.concat(events.map((event) => frameBedrockEvent(event)));
      for (let at = 0, i = 0; at < body.length; i++) {
        const size = scenario.chunkSizes[i % scenario.chunkSizes.length];
        res.write(body.subarray(at, at + size));
        at += size;
        await new Promise((r) => setImmediate(r));
      }
      return void res.end();
    }
    const faultAfter = scenario.faultAfter ?? 1;
    for (let i = 0; i < events.length; i++) {
      if ((scenario.fault === 'reset-after' || scenario.fault === 'stall-after') && i === faultAfter) break;
      const frame = frameBedrockEvent(events[i]);
      if (scenario.splitFrames) {
        // Split each frame over two writes so the client has to reassemble it.
        const cut = Math.floor(frame.length / 2);
        res.write(Buffer.from(frame.subarray(0, cut)));
        await new Promise((r) => setImmediate(r));
        res.write(Buffer.from(frame.subarray(cut)));
      } else {
        res.write(Buffer.from(frame));
      }
      await new Promise((r) => setImmediate(r));
    }
    if (scenario.fault === 'stall-after') return; // headers and some events, then silence
    if (scenario.fault === 'reset-after') {
      resetResponse(res);
      return;
    }
    res.end();
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    enqueue(scenario) {
      queue.push(scenario);
    },
    /** The next CountTokens answer: {error: 'ValidationException', message}. */
    enqueueCount(scenario) {
      countQueue.push(scenario);
    },
    setDefault(scenario) {
      defaultScenario = scenario;
    },
    /** Resolves with the next request to arrive (one that arrived before the call is not it). */
    nextRequest() {
      return new Promise((resolve) => waiters.push(resolve));
    },
    async close() {
      for (const s of sessions) s.destroy();
      for (const s of h1Sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
