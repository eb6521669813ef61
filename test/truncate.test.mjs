// prompt_truncate_len (src/core/truncate.ts): the fewest oldest turns dropped so the prompt fits,
// a tool result never without its call, the last message and system messages always kept —
// found in a logarithmic number of counts, since a local model counts on the event loop.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { truncatePrompt } from '../dist/core/truncate.js';

const text = (role, body) => ({ role, content: [{ type: 'text', text: body }] });
/** Ten "tokens" a message, one per character of its text otherwise. */
const counter = () => {
  const counted = [];
  const limits = new Set();
  const count = async (request, limit) => {
    counted.push(request.messages.length);
    limits.add(limit);
    return request.messages.reduce((n, m) => n + 10 + m.content.reduce((c, p) => c + (p.text?.length ?? 0), 0), 0);
  };
  return { count, counted, limits };
};

/** What dropping one unit at a time until it fits gives (the rule, written the slow way). */
async function oneAtATime(messages, max, count) {
  let current = messages;
  for (;;) {
    if ((await count({ messages: current })) <= max) return current;
    const first = current.findIndex((m, i) => m.role !== 'system' && i < current.length - 1);
    if (first < 0) return current;
    let end = first + 1;
    while (end < current.length - 1 && current[end].role === 'tool') end++;
    current = [...current.slice(0, first), ...current.slice(end)];
  }
}

describe('truncatePrompt', () => {
  it('drops what one-at-a-time dropping drops, in log2(turns) counts rather than one per turn', async () => {
    const messages = [text('system', 'rules')];
    for (let i = 0; i < 400; i++) messages.push(text(i % 2 ? 'assistant' : 'user', `turn ${i} `.padEnd(40, '.')));
    messages.push(text('user', 'last'));
    for (const max of [100, 1000, 5000, 20000, 30000]) {
      const reference = await oneAtATime(messages, max, counter().count);
      const { count, counted, limits } = counter();
      const { request, dropped } = await truncatePrompt({ model: 'm', messages }, max, count);
      // The counter is told the limit: a prompt known to be over it need not be tokenized whole.
      assert.deepEqual([...limits], [max]);
      assert.deepEqual(request.messages, reference, `max ${max}`);
      assert.equal(dropped, messages.length - reference.length);
      assert.ok(counted.length <= 11, `max ${max}: ${counted.length} counts for 400 turns`);
    }
  });

  it('keeps an assistant turn and its tool results together, the system messages and the last message', async () => {
    const call = { role: 'assistant', content: [{ type: 'tool-call', id: 'c1', name: 'f', arguments: '{}' }] };
    const result = { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'c1', content: [{ type: 'text', text: 'x'.repeat(50) }] }] };
    const messages = [text('system', 's'), text('user', 'u'.repeat(50)), call, result, result, text('user', 'now')];
    const { count } = counter();
    // Room for the system message, one message and the last: the call's unit cannot split.
    const { request } = await truncatePrompt({ model: 'm', messages }, 40, count);
    assert.deepEqual(request.messages, [messages[0], messages[5]]);
    const fits = await truncatePrompt({ model: 'm', messages }, 10_000, count);
    assert.equal(fits.dropped, 0);
    assert.equal(fits.request.messages, messages);
  });
});

describe('the local prompt bound (promptTokensAtLeast): tokens the prompt has at the least, read without tokenizing', async () => {
  const { promptTokensAtLeast } = await import('../dist/providers/local/prompt.js');
  const loaded = { longestTokenChars: 4 };
  it('counts the visible characters of every text and tool result, not whitespace a template may trim', () => {
    const result = { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'c', content: [{ type: 'text', text: 'abcdefgh' }] }] };
    const call = { role: 'assistant', content: [{ type: 'tool-call', id: 'c', name: 'f', arguments: '{"a": 1}'.padEnd(400, ' ') }] };
    const request = { model: 'm', messages: [text('system', 'abcd'), text('user', '  ab cd \n\t\u3000\u00a0'), call, result, text('assistant', 'abcd')] };
    // 4 + 4 + 8 + 4 visible characters over at most 4 a token; a call's arguments are re-serialized, so not counted.
    assert.equal(promptTokensAtLeast(loaded, request), 5);
    assert.equal(promptTokensAtLeast(loaded, { model: 'm', messages: [text('user', ' '.repeat(1_000_000))] }), 0);
  });
});
