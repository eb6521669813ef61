// The chaos checks' upstream: an OpenAI-compatible chat completions server whose answer is
// `max_tokens` words ("w0 w1 …"), streamed one every `interval(model)` ms, or buffered after as
// long in all. Slow and quick models differ only by that interval.
import http from 'node:http';

/** Chat-completion chunks of one answer as SSE events: `chunk(delta, finish?)`, and `chunk(null, null, true)` for the usage chunk. */
export function chunkMaker(model, usage) {
  return (delta, finishReason = null, last = false) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model, choices: last ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...(last ? { usage } : {}) })}\n\n`;
}

/** Writes `pieces` as an event stream, `gap()` ms apart, the last one ending it; stops when the client has gone. */
export function writePaced(res, pieces, gap) {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let timer;
  const next = () => {
    if (res.destroyed) return;
    const piece = pieces.shift();
    if (pieces.length === 0) return void res.end(piece);
    res.write(piece);
    timer = setTimeout(next, gap());
  };
  res.once('close', () => clearTimeout(timer));
  next();
}

/**
 * Answers one request. `interval(model)`: ms between words (0: as fast as it goes); `cap`: the most
 * words; `words`: the count when the request names no max tokens.
 */
export function answerWithWords(res, body, { interval, cap = 64, words = 8 }) {
  const count = Math.min(body.max_tokens ?? body.max_completion_tokens ?? words, cap);
  const every = interval(body.model);
  const usage = { prompt_tokens: 5, completion_tokens: count, total_tokens: 5 + count };
  let timer;
  res.once('close', () => clearTimeout(timer));
  if (!body.stream) {
    const answer = { id: 'chatcmpl-words', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'w '.repeat(count), refusal: null }, logprobs: null, finish_reason: 'length' }], usage };
    timer = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)), every * count);
    return;
  }
  const chunk = chunkMaker(body.model, usage);
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(chunk({ role: 'assistant', content: '' }));
  let sent = 0;
  const next = () => {
    if (res.destroyed) return;
    if (sent < count) {
      res.write(chunk({ content: `w${sent++} ` }));
      timer = every ? setTimeout(next, every) : setImmediate(next);
      return;
    }
    res.end(chunk({}, 'length') + chunk(null, null, true) + 'data: [DONE]\n\n');
  };
  next();
}

/**
 * Notes a request a loopback server got, in `list`: when it arrived, whether it was answered to the
 * end (`answered`) and when its connection closed (`closed`), with its `x-request-id` and `extra`.
 */
export function trackRequest(list, req, res, extra) {
  const entry = { arrived: performance.now(), closed: undefined, requestId: req.headers['x-request-id'], ...extra };
  list.push(entry);
  res.once('finish', () => (entry.answered = true));
  res.once('close', () => (entry.closed = performance.now()));
  return entry;
}

/** An HTTP server that reads each request's JSON body and hands it to `handle(req, res, body)`; resolves once it listens on a loopback port. */
export function startJsonServer(handle, port = 0) {
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (text += d));
    req.on('end', () => handle(req, res, text ? JSON.parse(text) : undefined));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, port: server.address().port })));
}
