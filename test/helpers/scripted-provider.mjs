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

export function lastUserText(request) {
  const user = [...request.messages].reverse().find((m) => m.role === 'user');
  return user?.content.filter((p) => p.type === 'text').map((p) => p.text).join('') ?? '';
}

export function createScriptedFactory({ GatewayError }) {
  const scripted = { requests: [] };
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
      // One token per word: easy to reason about in truncation tests.
      return request.messages.reduce((n, m) => n + m.content.reduce((k, p) => k + (p.type === 'text' ? p.text.split(/\s+/).filter(Boolean).length : 0), 0), 0);
    },
    async *stream(request) {
      scripted.requests.push(request);
      const match = /script:([\w-]+)/.exec(lastUserText(request));
      const script = scripts[match ? match[1] : 'text'];
      for (const step of script) {
        await new Promise((r) => setImmediate(r));
        if (step.throw) throw new GatewayError(step.throw.kind, step.throw.message, { retryAfter: step.throw.retryAfter });
        yield structuredClone(step);
      }
    },
  });
  return scripted;
}
