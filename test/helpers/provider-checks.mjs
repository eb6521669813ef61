// Checks every provider that needs a user turn first (Anthropic, Bedrock) must pass alike.
import assert from 'node:assert/strict';

const user = (text) => ({ role: 'user', content: [{ type: 'text', text }] });

/**
 * A conversation that is empty, or does not start with a non-empty user turn, is a 400 naming
 * `messages` before any upstream call, and not retryable. `failure(request)` runs the provider
 * and returns `{ parts, error }`; `chat(fields)` builds its request; `upstreamCalls()` counts the
 * fake upstream's requests.
 */
export async function assertConversationStartRefused({ chat, failure, upstreamCalls }) {
  const before = upstreamCalls();
  for (const messages of [
    [{ role: 'system', content: [{ type: 'text', text: 'Be brief.' }] }, user('')],
    [user(''), { role: 'assistant', content: [{ type: 'text', text: 'x' }] }, user('y')],
    [],
  ]) {
    const { parts, error } = await failure(chat({ messages }));
    assert.deepEqual(parts, []);
    assert.equal(error.kind, 'bad_request');
    assert.equal(error.status, 400);
    assert.equal(error.param, 'messages');
    assert.equal(error.retryable, false);
    assert.match(error.message, /start with a non-empty user message/);
  }
  assert.equal(upstreamCalls(), before);
}
