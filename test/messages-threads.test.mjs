// The thread holder of POST /v1/messages (src/dialects/messages/threads.ts) on a fake clock:
// five minutes of life, one continuation per reply, one organisation's threads invisible to
// another. The wire behaviour with the Anthropic SDK is in sdk-helpers-local.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThreadHolder } from '../dist/dialects/messages/threads.js';

const reply = (text) => ({ content: [{ type: 'text', text }] });
const create = (holder, org = 'acme') => {
  const turn = holder.begin({ model: 'm', system: 'S', tools: [{ name: 't' }], messages: [{ role: 'user', content: 'one' }], thread: { type: 'create' } }, org);
  turn.keep('msg_1', reply('first'));
  return turn;
};
const continueFrom = (holder, id, org = 'acme') => holder.begin({ model: 'm', messages: [{ role: 'user', content: 'two' }], thread: { type: 'continue', previous_message_id: id } }, org);
const code = (fn) => {
  try {
    fn();
  } catch (err) {
    return err.details?.error_code ?? err.code;
  }
  return 'no error';
};

test('a continue gets the held system, tools and conversation in front of its messages, without thread', () => {
  const holder = new ThreadHolder();
  assert.equal(holder.begin({ model: 'm', messages: [] }, 'acme'), undefined, 'no thread, nothing to do');
  create(holder);
  const turn = continueFrom(holder, 'msg_1');
  assert.deepEqual(turn.body, {
    model: 'm',
    system: 'S',
    tools: [{ name: 't' }],
    messages: [{ role: 'user', content: 'one' }, { role: 'assistant', content: [{ type: 'text', text: 'first' }] }, { role: 'user', content: 'two' }],
  });
});

test('one continuation per reply: in flight, then continued; a failed continuation frees it again', () => {
  const holder = new ThreadHolder();
  create(holder);
  const turn = continueFrom(holder, 'msg_1');
  assert.equal(code(() => continueFrom(holder, 'msg_1')), 'thread_continue_in_flight');
  turn.abandon();
  const retry = continueFrom(holder, 'msg_1');
  retry.keep('msg_2', reply('second'));
  retry.abandon();
  assert.equal(code(() => continueFrom(holder, 'msg_1')), 'thread_already_continued');
  assert.equal(continueFrom(holder, 'msg_2').body.messages.length, 5);
});

test('threads expire five minutes after their reply, and are not visible to another organisation', () => {
  let now = 1_000_000;
  const holder = new ThreadHolder({ now: () => now });
  create(holder);
  assert.equal(code(() => continueFrom(holder, 'msg_1', 'other-org')), 'thread_not_found');
  now += 5 * 60_000 - 1;
  continueFrom(holder, 'msg_1').abandon();
  now += 1;
  assert.equal(code(() => continueFrom(holder, 'msg_1')), 'thread_not_found');
});

test('a continue that repeats system or tools, or a malformed thread, is a 400', () => {
  const holder = new ThreadHolder();
  create(holder);
  assert.equal(code(() => holder.begin({ model: 'm', system: 'S', messages: [], thread: { type: 'continue', previous_message_id: 'msg_1' } }, 'acme')), 'invalid_thread');
  assert.equal(code(() => holder.begin({ model: 'm', messages: [], thread: { type: 'resume' } }, 'acme')), 'invalid_thread');
  continueFrom(holder, 'msg_1').abandon();
});

test('the oldest threads go first when the count or the size budget is exceeded; a continued reply stops counting', () => {
  const hold = (holder, id, text) => holder.begin({ model: 'm', messages: [{ role: 'user', content: text }], thread: { type: 'create' } }, 'acme').keep(id, reply('r'));
  const byCount = new ThreadHolder({ maxThreads: 2 });
  for (const id of ['a', 'b', 'c']) hold(byCount, id, 'x');
  assert.equal(code(() => continueFrom(byCount, 'a')), 'thread_not_found');
  continueFrom(byCount, 'b').abandon();

  const bySize = new ThreadHolder({ maxCharacters: 2500 });
  hold(bySize, 'big1', 'y'.repeat(1000));
  hold(bySize, 'big2', 'y'.repeat(1000));
  hold(bySize, 'big3', 'y'.repeat(1000));
  assert.equal(code(() => continueFrom(bySize, 'big1')), 'thread_not_found');
  // A continued reply's copy is released at once: here it is what keeps an older thread held.
  const released = new ThreadHolder({ maxCharacters: 2500 });
  hold(released, 'older', 'o'.repeat(300));
  hold(released, 'long', 'l'.repeat(1000));
  continueFrom(released, 'long').keep('long2', reply('r'));
  continueFrom(released, 'older').abandon();
  assert.equal(continueFrom(released, 'long2').body.messages.length, 5, 'user, reply, user, reply, and the new user turn');
  hold(bySize, 'huge', 'z'.repeat(3000));
  assert.equal(code(() => continueFrom(bySize, 'huge')), 'thread_not_found', 'a conversation over the whole budget is not held');
});
