// Reasoning on the local provider (`<think>…</think>` split into reasoning parts, budgets,
// exclusion), and the streaming text helpers it is built from.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JsonCompletionTracker } from '../dist/providers/local/json-tracker.js';
import { StopScanner } from '../dist/providers/local/stop-scanner.js';
import { ThinkSplitter } from '../dist/providers/local/think-splitter.js';
import { startLocalProvider, user } from './helpers/model.mjs';

function split(chunks, startInside = false) {
  const splitter = new ThinkSplitter('<think>', '</think>', startInside);
  const pieces = chunks.flatMap((c) => splitter.push(c)).concat(splitter.flush());
  const join = (channel) => pieces.filter((p) => p.channel === channel).map((p) => p.text).join('');
  return { reasoning: join('reasoning'), text: join('text') };
}

describe('think splitter', () => {
  it('splits a leading thought from the answer, tags cut anywhere', () => {
    assert.deepEqual(split(['<th', 'ink>\nLet me', ' see.\n</th', 'ink>\n\nThe answer', ' is 4.']), { reasoning: 'Let me see.\n', text: 'The answer is 4.' });
  });
  it('leaves an answer without a thought alone, even one mentioning the tag later', () => {
    assert.deepEqual(split(['Hello ', 'world <think>x</think>']), { reasoning: '', text: 'Hello world <think>x</think>' });
  });
  it('continues inside a thought opened by the prompt', () => {
    assert.deepEqual(split(['still thinking', '</think>done'], true), { reasoning: 'still thinking', text: 'done' });
  });
  it('keeps an unfinished thought as reasoning', () => {
    assert.deepEqual(split(['<think>never', ' ends']), { reasoning: 'never ends', text: '' });
  });
});

describe('stop scanner', () => {
  it('holds back a possible stop string and drops it when it completes', () => {
    const s = new StopScanner(['STOP']);
    assert.deepEqual(s.push('abc ST'), { emit: 'abc ' });
    assert.deepEqual(s.push('OP tail'), { emit: '', match: 'STOP' });
  });
  it('releases held text that turns out not to be a stop', () => {
    const s = new StopScanner(['STOP']);
    assert.deepEqual(s.push('xS'), { emit: 'x' });
    assert.deepEqual(s.push('Tx'), { emit: 'STx' });
    assert.equal(s.flush(), '');
  });
  it('reports the earliest of several stops', () => {
    assert.deepEqual(new StopScanner(['b', 'a']).push('xxaxb'), { emit: 'xx', match: 'a' });
  });
});

describe('JSON completion tracker', () => {
  it('finds the end of an object split across chunks, ignoring braces in strings', () => {
    const t = new JsonCompletionTracker();
    assert.equal(t.push('{"a": "}{\\"'), -1);
    assert.equal(t.push('", "b": [1, {"c": 2}]'), -1);
    assert.equal(t.push('}\n\n\n'), 1);
    assert.ok(t.complete);
  });
  it('ends a top-level scalar at the whitespace after it', () => {
    assert.equal(new JsonCompletionTracker().push('true\n'), 4);
  });
});

describe('local provider: reasoning', () => {
  let local;
  before(async () => {
    local = await startLocalProvider();
  });
  after(() => local.provider.close());

  // The random model does not think on its own; a prefilled, unfinished thought makes it.
  const thinking = [user('What is 2 + 2?'), { role: 'assistant', content: [{ type: 'reasoning', text: 'Let me think.' }] }];

  it('streams the continuation of an open thought as reasoning parts', async () => {
    const r = await local.run({ messages: thinking, maxTokens: 12, seed: 1 });
    assert.equal(r.types[1], 'reasoning-start');
    assert.ok(r.reasoning.length > 0);
    assert.equal(r.finish.usage.reasoningTokens, 12);
  });

  it('closes the thought when the reasoning budget is spent, then answers', async () => {
    const r = await local.run({ messages: thinking, maxTokens: 20, seed: 2, reasoning: { enabled: true, budgetTokens: 5 } });
    const kinds = r.types.filter((t, i, a) => t !== a[i - 1]);
    assert.deepEqual(kinds.slice(0, 5), ['start', 'reasoning-start', 'reasoning-delta', 'reasoning-end', 'text-start']);
    assert.equal(r.finish.usage.reasoningTokens, 5);
    // maxTokens is the answer's cap; the thinking budget is generated on top of it.
    assert.equal(r.finish.usage.outputTokens, 25);
    assert.ok(r.text.length > 0);
  });

  it('token logprobs cover the answer tokens only, never the reasoning ones', async () => {
    const r = await local.run({ messages: thinking, maxTokens: 20, seed: 2, reasoning: { enabled: true, budgetTokens: 5 }, logprobs: { top: 1 } });
    assert.equal(r.finish.finishReason, 'length');
    const tokens = r.parts.flatMap((p) => p.logprobs ?? []);
    assert.ok(r.parts.every((p) => p.logprobs === undefined || p.type === 'text-delta'));
    assert.equal(tokens.length, r.finish.usage.outputTokens - r.finish.usage.reasoningTokens);
    assert.equal(tokens.map((t) => t.token).join(''), r.text);
  });

  it('generates but does not return the reasoning when excluded', async () => {
    const r = await local.run({ messages: thinking, maxTokens: 20, seed: 2, reasoning: { enabled: true, budgetTokens: 5, exclude: true } });
    assert.ok(!r.types.some((t) => t.startsWith('reasoning')));
    assert.equal(r.finish.usage.reasoningTokens, 5);
    assert.ok(r.text.length > 0);
  });
});
