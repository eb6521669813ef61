// The OpenAI chunk renderer writes its most frequent chunk (a text delta) from a template rather
// than JSON.stringify: it must give byte for byte what JSON.stringify of the chunk object gives,
// for any text, on any choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkRenderer } from '../dist/dialects/openai/render.js';

const meta = { id: 'chatcmpl-abc"\\', created: 1700000000, model: 'mödel/"x"', includeReasoning: true };

function expected(choice, delta) {
  return JSON.stringify({
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: choice, delta, logprobs: null, finish_reason: null }],
  });
}

const texts = ['Hello', ' world', 'quote " backslash \\ slash /', 'line\nbreak\r\ttab', '\u2028\u2029 separators', 'emoji 🦊 and 中文', '\u0000\u001f control', 'lone \ud800 surrogate'];

test('text-delta chunks equal JSON.stringify of the chunk object, first and later deltas, several choices', () => {
  const renderer = new ChunkRenderer(meta);
  for (const choice of [0, 1]) {
    const [first] = renderer.render({ type: 'text-delta', id: 't', delta: 'Hi', choice });
    assert.equal(first, expected(choice, { role: 'assistant', content: 'Hi' }), 'the first delta of a choice carries the role');
    for (const text of texts) {
      const [chunk] = renderer.render({ type: 'text-delta', id: 't', delta: text, choice });
      assert.equal(chunk, expected(choice, { content: text }));
      assert.equal(JSON.parse(chunk).choices[0].delta.content, text.isWellFormed() ? text : JSON.parse(JSON.stringify(text)));
    }
  }
  assert.deepEqual(renderer.render({ type: 'text-delta', id: 't', delta: '' }), [], 'an empty delta sends nothing');
});
