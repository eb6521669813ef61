// A provider whose calls wait at a gate the test opens, so a test can hold N calls in flight and
// assert exactly how many were admitted. Usage is exact and known: input = words of the prompt
// (the same count it reports before the call), output = max tokens (default 2).

export function createGatedFactory({ open = true } = {}) {
  // countLimits: the `limit` each countPromptTokens call was given.
  const gated = { entered: 0, open, waiters: [], watchers: [], countLimits: [] };
  const notify = () => {
    for (const w of [...gated.watchers]) if (w.check()) (gated.watchers.splice(gated.watchers.indexOf(w), 1), w.resolve());
  };
  gated.release = () => {
    gated.open = true;
    for (const resolve of gated.waiters.splice(0)) resolve();
  };
  gated.close = () => {
    gated.open = false;
  };
  /** Resolves once `n` calls have reached the provider. */
  gated.waitForEntered = (n) =>
    new Promise((resolve) => {
      const watcher = { check: () => gated.entered >= n, resolve };
      if (watcher.check()) resolve();
      else gated.watchers.push(watcher);
    });
  const words = (request) =>
    request.messages.reduce((n, m) => n + m.content.reduce((k, p) => k + (p.type === 'text' ? p.text.split(/\s+/).filter(Boolean).length : 0), 0), 0);
  gated.factory = () => ({
    name: 'gated',
    capabilities: () => ({ modalities: ['text'], tools: true, structuredOutput: 'none', reasoning: false, multipleChoices: false, logprobs: false, sampling: ['temperature', 'topP', 'stop'] }),
    async countPromptTokens(request, _deployment, limit) {
      gated.countLimits.push(limit);
      return words(request);
    },
    async *stream(request) {
      gated.entered++;
      notify();
      if (!gated.open) await new Promise((resolve) => gated.waiters.push(resolve));
      const output = request.maxTokens ?? 2;
      yield { type: 'start' };
      yield { type: 'text-start', id: 't0' };
      yield { type: 'text-delta', id: 't0', delta: 'ok '.repeat(output).trim() };
      yield { type: 'text-end', id: 't0' };
      const input = words(request);
      yield { type: 'finish', finishReason: 'stop', usage: { inputTokens: input, outputTokens: output, totalTokens: input + output } };
    },
  });
  return gated;
}
