// A provider for tool-loop tests. When the last message is a user turn, each line
// "call:<tool> <json>" of it becomes one tool call (no such line: a plain text answer); when the
// last message holds tool results, it answers in text quoting them. A first user turn starting
// "repeat:<tool>" calls that tool every round until told tool_choice none, "forever:<tool>[+<tool>…]"
// calls them every round regardless. "cut:<tool> <json>" is a call the token limit cut off
// (finish length). Records every request.

function textOf(message) {
  return message.content.filter((p) => p.type === 'text').map((p) => p.text).join('');
}

export function createToolLoopFactory() {
  const state = { requests: [] };
  state.factory = () => ({
    name: 'toolloop',
    capabilities: () => ({
      modalities: ['text'],
      tools: true,
      structuredOutput: 'none',
      reasoning: false,
      multipleChoices: false,
      logprobs: false,
      sampling: ['temperature', 'topP', 'stop'],
    }),
    async *stream(request) {
      state.requests.push(request);
      const n = state.requests.length;
      const last = request.messages.at(-1);
      yield { type: 'start', model: 'toolloop' };
      await new Promise((r) => setImmediate(r));
      const firstUser = textOf(request.messages.find((m) => m.role === 'user'));
      const repeat = /^(repeat|forever):([\w+-]+)/.exec(firstUser);
      if (repeat && (repeat[1] === 'forever' || request.toolChoice?.type !== 'none')) {
        // "forever:a+b" calls a and b every round.
        for (const [i, toolName] of repeat[2].split('+').entries()) {
          const id = `call_${n}_${i}`;
          yield { type: 'tool-input-start', id, toolName };
          yield { type: 'tool-input-delta', id, delta: '{"expression":"1+1"}' };
          yield { type: 'tool-input-end', id };
        }
        yield { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } };
        return;
      }
      if (last.role === 'tool') {
        const results = last.content.map((p) => `${p.name ?? p.toolCallId}${p.isError ? ' (error)' : ''}: ${p.content.map((c) => c.text).join('')}`);
        yield { type: 'text-start', id: 't' };
        yield { type: 'text-delta', id: 't', delta: `Results: ${results.join(' | ')}` };
        yield { type: 'text-end', id: 't' };
        yield { type: 'finish', finishReason: 'stop', usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15 } };
        return;
      }
      const calls = textOf(last)
        .split('\n')
        .map((line) => /^(?:call|cut):([\w-]+)\s*(.*)$/.exec(line.trim()))
        .filter(Boolean);
      if (calls.length === 0 || request.toolChoice?.type === 'none') {
        yield { type: 'text-start', id: 't' };
        yield { type: 'text-delta', id: 't', delta: `echo: ${textOf(last)}` };
        yield { type: 'text-end', id: 't' };
        yield { type: 'finish', finishReason: 'stop', usage: { inputTokens: 4, outputTokens: 3, totalTokens: 7 } };
        return;
      }
      for (const [i, [, name, args]] of calls.entries()) {
        const id = `call_${n}_${i}`;
        yield { type: 'tool-input-start', id, toolName: name };
        yield { type: 'tool-input-delta', id, delta: args || '{}' };
        yield { type: 'tool-input-end', id };
      }
      const cut = textOf(last).trim().startsWith('cut:');
      yield { type: 'finish', finishReason: cut ? 'length' : 'tool-calls', usage: { inputTokens: 8, outputTokens: 6, totalTokens: 14 } };
    },
  });
  return state;
}
