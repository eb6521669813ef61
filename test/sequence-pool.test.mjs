// The local model's sequence pool (src/providers/local/sequence-pool.ts) and the relay that passes
// a request's sequences between its choices (choices.ts), against stand-in sequences.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseRelay } from '../dist/providers/local/choices.js';
import { SequencePool } from '../dist/providers/local/sequence-pool.js';

/** A stand-in LlamaContextSequence: no cached tokens shared with any prompt. */
const fakeSequence = (name) => ({ name, compareContextTokens: () => ({ firstDifferentIndex: 0 }) });
const pool = (size, queueLimit = 8) => new SequencePool(Array.from({ length: size }, (_, i) => fakeSequence(`s${i}`)), queueLimit);
const never = new AbortController().signal;
const settled = (promise) => Promise.race([promise.then(() => true), new Promise((resolve) => setImmediate(() => resolve(false)))]);

describe('SequencePool.acquireMany', () => {
  it('hands out several sequences at once or none: a waiter for three holds nothing while it waits', async () => {
    const p = pool(4);
    const first = await p.acquireMany([], 2, never);
    const three = p.acquireMany([], 3, never);
    assert.equal(await settled(three), false);
    assert.equal(p.activeCount, 2, 'the waiter took none of the two free sequences');
    first[0].release();
    assert.equal(await settled(three), true);
    const leases = await three;
    assert.equal(new Set(leases.map((l) => l.sequence.name)).size, 3);
    assert.equal(p.activeCount, 4);
  });

  it('is first come, first served: a later waiter for one does not pass an earlier waiter for several', async () => {
    const p = pool(2);
    const held = await p.acquireMany([], 2, never);
    const two = p.acquireMany([], 2, never);
    const one = p.acquire([], never);
    held[0].release();
    assert.equal(await settled(one), false, 'one free sequence waits for the waiter ahead');
    held[1].release();
    assert.equal(await settled(two), true);
    assert.equal(await settled(one), false);
    (await two).forEach((l) => l.release());
    assert.equal(await settled(one), true);
  });

  it('a waiter for several that leaves lets the waiters behind it go', async () => {
    const p = pool(2);
    const held = await p.acquire([], never);
    const leaving = new AbortController();
    const two = p.acquireMany([], 2, leaving.signal);
    two.catch(() => undefined);
    const one = p.acquire([], never);
    assert.equal(await settled(one), false);
    leaving.abort();
    await assert.rejects(two, (err) => err.kind === 'cancelled');
    assert.equal(await settled(one), true);
    held.release();
  });
});

describe('LeaseRelay', () => {
  it('passes a sequence from a choice that ended to the next one; at the close, gives back what it keeps and ends the waiting', async () => {
    const p = pool(2);
    const relay = new LeaseRelay(await p.acquireMany([], 2, never));
    const a = await relay.take();
    const b = await relay.take();
    const c = relay.take();
    const d = relay.take();
    assert.equal(await settled(c), false);
    relay.give(a);
    assert.equal(await c, a, 'the next choice gets the sequence the first one ended with');
    relay.give(b);
    relay.close();
    assert.equal(await d, b, 'handed on before the close');
    assert.equal(await relay.take(), undefined);
    assert.equal(p.activeCount, 2, 'c and d still hold theirs');
    relay.give(a);
    relay.give(b);
    assert.equal(p.activeCount, 0, 'given after the close: back to the pool');
  });

  it('a choice still waiting when the response closes gets no sequence', async () => {
    const p = pool(1);
    const relay = new LeaseRelay(await p.acquireMany([], 1, never));
    const held = await relay.take();
    const waiting = relay.take();
    relay.close();
    assert.equal(await waiting, undefined);
    relay.give(held);
    assert.equal(p.activeCount, 0);
  });
});
