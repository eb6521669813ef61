#!/usr/bin/env node
// A minimal, fast OpenAI-compatible upstream for benchmarks: a fixed answer, buffered or as an
// SSE stream of CHUNKS chunks (then a usage chunk and [DONE]). Prints its port on stdout.
import http from 'node:http';

const CHUNKS = Number(process.env.CHUNKS ?? 20);
const created = Math.floor(Date.now() / 1000);
const words = Array.from({ length: CHUNKS }, (_, i) => `w${i} `);
const buffered = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created,
  model: 'bench-upstream',
  choices: [{ index: 0, message: { role: 'assistant', content: words.join(''), refusal: null }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 10, completion_tokens: CHUNKS, total_tokens: 10 + CHUNKS },
});
const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created, model: 'bench-upstream', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
const streamBody =
  chunk({ role: 'assistant', content: '' }) +
  words.map((w) => chunk({ content: w })).join('') +
  chunk({}, 'stop') +
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created, model: 'bench-upstream', choices: [], usage: { prompt_tokens: 10, completion_tokens: CHUNKS, total_tokens: 10 + CHUNKS } })}\n\n` +
  'data: [DONE]\n\n';

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    const stream = body.includes('"stream":true');
    if (stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(streamBody);
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(buffered) });
      res.end(buffered);
    }
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
