// A provider that replays canonical stream parts chosen by the test, so dialect rendering can
// be asserted event by event. The script is picked by the last user message: "script:<name>".
// Every request it receives is recorded on `scripted.requests`.

export const scripts = {
  text: [
    { type: 'start', model: 'scripted' },
    { type: 'text-start', id: 't0' },
    { type: 'text-delta', id: 't0', delta: 'Hello' },
    { type: 'text-delta', id: 't0', delta: ' world' },
    { type: 'text-end', id: 't0' },
    { type: 'finish', finishReason: 'stop', usage: { inputTokens: 7, outputTokens: 2, totalTokens: 9 }, meanTokenProbability: 0.5 },
  ],
  tools: [
    { type: 'start' },
    { type: 'tool-input-start', id: 'call_a', toolName: 'get_weather' },
    { type: 'tool-input-delta', id: 'call_a', delta: '{"loc' },
    { type: 'tool-input-delta', id: 'call_a', delta: 'ation":"Bos' },
    { type: 'tool-input-start', id: 'call_b', toolName: 'get_time' },
    { type: 'tool-input-delta', id: 'call_b', delta: '{}' },
    { type: 'tool-input-delta', id: 'call_a', delta: 'ton"}' },
    { type: 'tool-input-end', id: 'call_a' },
    { type: 'tool-input-end', id: 'call_b' },
    { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 20, outputTokens: 12, totalTokens: 32 } },
  ],
  // A call whose arguments were cut off: not a JSON object.
  'bad-args': [
    { type: 'start' },
    { type: 'tool-input-start', id: 'call_x', toolName: 'get_weather' },
    { type: 'tool-input-delta', id: 'call_x', delta: '{"location": "Par' },
    { type: 'tool-input-end', id: 'call_x' },
    { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 5, outputTokens: 6, totalTokens: 11 } },
  ],
  reasoning: [
    { type: 'start' },
    { type: 'reasoning-start', id: 'r0' },
    { type: 'reasoning-delta', id: 'r0', delta: 'Let me think.' },
    { type: 'reasoning-end', id: 'r0', signature: 'sig-1' },
    { type: 'text-start', id: 't0' },
    { type: 'text-delta', id: 't0', delta: 'Answer.' },
    { type: 'text-end', id: 't0' },
    { type: 'finish', finishReason: 'stop', usage: { inputTokens: 5, outputTokens: 6, totalTokens: 11, reasoningTokens: 4 } },
  ],
  refuse: [
    { type: 'start' },
    { type: 'text-start', id: 't0' },
    { type: 'text-delta', id: 't0', delta: 'I would rather not' },
    { type: 'text-end', id: 't0' },
    { type: 'finish', finishReason: 'content-filter', stopDetails: { type: 'refusal', category: null, explanation: null }, usage: { inputTokens: 4, outputTokens: 5, totalTokens: 9 } },
  ],
  'fail-before': [{ type: 'start' }, { throw: { kind: 'rate_limit', message: 'slow down', retryAfter: 7 } }],
  'fail-after': [
    { type: 'start' },
    { type: 'text-start', id: 't0' },
    { type: 'text-delta', id: 't0', delta: 'partial' },
    { throw: { kind: 'upstream_5xx', message: 'upstream connection reset' } },
  ],
  json: [
    { type: 'start' },
    { type: 'text-start', id: 't0' },
    { type: 'text-delta', id: 't0', delta: '{"ok":' },
    { type: 'text-delta', id: 't0', delta: 'true}' },
    { type: 'text-end', id: 't0' },
    { type: 'finish', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 } },
  ],
  'bad-json': [
    { type: 'start' },
    { type: 'text-start', id: 't0' },
    { type: 'text-delta', id: 't0', delta: '{"ok": "yes"}' },
    { type: 'text-end', id: 't0' },
    { type: 'finish', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 } },
  ],
};

// Async-run scripts (messages dialect): `slow` streams many deltas with real awaited ticks and
// stops when the call's abort signal fires; `gated` waits after its first delta (and
// `gated-quiet` before its first part) until the test calls scripted.release(<the last user
// message's text>), so a run can be held in `running` for as long as a test needs.
const SLOW_DELTAS = 2000;
scripts.slow = [
  { type: 'start' },
  { type: 'text-start', id: 't0' },
  ...Array.from({ length: SLOW_DELTAS }, (_, i) => ({ type: 'text-delta', id: 't0', delta: `w${i} `, delayMs: 5 })),
  { type: 'text-end', id: 't0' },
  { type: 'finish', finishReason: 'length', usage: { inputTokens: 3, outputTokens: SLOW_DELTAS, totalTokens: SLOW_DELTAS + 3 } },
];
scripts.gated = [
  { type: 'start' },
  { type: 'text-start', id: 't0' },
  { type: 'text-delta', id: 't0', delta: 'before ' },
  { wait: 'message' },
  { type: 'text-delta', id: 't0', delta: 'after' },
  { type: 'text-end', id: 't0' },
  { type: 'finish', finishReason: 'stop', usage: { inputTokens: 4, outputTokens: 2, totalTokens: 6 } },
];
scripts['gated-quiet'] = [{ wait: 'message' }, ...scripts.text];

export function lastUserText(request) {
  const user = [...request.messages].reverse().find((m) => m.role === 'user');
  return user?.content.filter((p) => p.type === 'text').map((p) => p.text).join('') ?? '';
}

export function createScriptedFactory({ GatewayError }) {
  const scripted = { requests: [], calls: [], gates: new Map() };
  /** Resolves the `{ wait: name }` steps of every current and future call. */
  scripted.release = (name) => gateOf(scripted, name).open();
  scripted.factory = () => ({
    name: 'scripted',
    capabilities: () => ({
      modalities: ['text', 'image', 'video', 'document'],
      tools: true,
      structuredOutput: 'none',
      reasoning: true,
      multipleChoices: false,
      logprobs: true,
      sampling: ['temperature', 'topP', 'topK', 'minP', 'seed', 'stop', 'presencePenalty', 'frequencyPenalty', 'repetitionPenalty'],
    }),
    async countPromptTokens(request) {
      // One token per word (of texts and tool results): easy to reason about in truncation tests.
      const words = (text) => text.split(/\s+/).filter(Boolean).length;
      const partWords = (p) => (p.type === 'text' ? words(p.text) : p.type === 'tool-result' ? p.content.reduce((k, c) => k + (c.type === 'text' ? words(c.text) : 0), 0) : 0);
      return request.messages.reduce((n, m) => n + m.content.reduce((k, p) => k + partWords(p), 0), 0);
    },
    async *stream(request, context) {
      scripted.requests.push(request);
      // What each call did: parts yielded, whether it saw its abort signal, whether it ended
      // (`done` resolves when it has).
      let markDone;
      const call = { script: undefined, yielded: 0, aborted: false, ended: false, done: new Promise((r) => (markDone = r)) };
      scripted.calls.push(call);
      const match = /script:([\w-]+)/.exec(lastUserText(request));
      call.script = match ? match[1] : 'text';
      const script = scripts[match ? match[1] : 'text'];
      const abortedPromise = aborted(context?.signal);
      try {
      for (const step of script) {
        await new Promise((r) => setImmediate(r));
        if (step.wait) {
          const name = step.wait === 'message' ? lastUserText(request) : step.wait;
          await Promise.race([gateOf(scripted, name).promise, abortedPromise]);
        }
        if (step.delayMs) await Promise.race([new Promise((r) => setTimeout(r, step.delayMs)), abortedPromise]);
        if (context?.signal?.aborted) {
          call.aborted = true;
          return;
        }
        if (step.wait) continue;
        call.yielded++;
        const { delayMs, ...part } = step;
        if (delayMs !== undefined) {
          yield part;
          continue;
        }
        if (step.throw) throw new GatewayError(step.throw.kind, step.throw.message, { retryAfter: step.throw.retryAfter });
        yield structuredClone(step);
      }
      } finally {
        call.ended = true;
        markDone();
      }
    },
  });
  return scripted;
}

function gateOf(scripted, name) {
  let gate = scripted.gates.get(name);
  if (!gate) {
    let open;
    gate = { promise: new Promise((r) => (open = r)) };
    gate.open = open;
    scripted.gates.set(name, gate);
  }
  return gate;
}

function aborted(signal) {
  if (!signal) return new Promise(() => {});
  if (signal.aborted) return Promise.resolve();
  return new Promise((r) => signal.addEventListener('abort', r, { once: true }));
}
