// The sequence driver (src/providers/local/sequence-driver.ts) asks node-llama-cpp for each
// token's successor before handing the token out, and the batch gate (batch-gate.ts) dispatches a
// lone sequence's decode at once. These tests drive both against a scripted sequence, so the
// order of decodes and hand-outs is exact.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchGate } from '../dist/providers/local/batch-gate.js';
import { SequenceDriver } from '../dist/providers/local/sequence-driver.js';

/**
 * A stand-in for node-llama-cpp's LlamaContextSequence: each decode takes one macrotask and
 * advances `nextTokenIndex` by the tokens it evaluated; the model "samples" the script's tokens in
 * turn across generations, and 'eog' ends a turn. `failAt` makes that decode (counted from 0) fail.
 */
function scriptedSequence(script, { failAt } = {}) {
  const log = [];
  let decodes = 0;
  const sequence = {
    nextTokenIndex: 0,
    async adaptStateToTokens() {},
    evaluateWithMetadata(input) {
      return (async function* () {
        let evaluate = input;
        try {
          for (;;) {
            const decode = decodes++;
            log.push(`decode ${evaluate.join(',')}`);
            await new Promise((resolve) => setImmediate(resolve));
            if (decode === failAt) throw new Error('decode failed');
            sequence.nextTokenIndex += evaluate.length;
            const token = script.shift();
            if (token === undefined || token === 'eog') return;
            log.push(`sampled ${token}`);
            yield { token, confidence: 0.5 };
            evaluate = [token];
          }
        } finally {
          log.push('return');
        }
      })();
    },
  };
  return { sequence, log };
}

const driverFor = (sequence, contextSize = 1000, maxTokens) => new SequenceDriver(sequence, contextSize, new AbortController().signal, { probabilities: 'confidence', maxTokens });

describe('local provider: sequence driver', () => {
  it('asks for the next token before handing one out', async () => {
    const { sequence, log } = scriptedSequence([10, 11, 12]);
    const driver = driverFor(sequence);
    await driver.prepare([1, 2, 3]);
    const seenAtHandOut = [];
    for await (const step of driver.run({})) seenAtHandOut.push([step.token, log.at(-1)]);
    // When each token reaches the caller, the decode that evaluates it has already started.
    assert.deepEqual(seenAtHandOut, [
      [10, 'decode 10'],
      [11, 'decode 11'],
      [12, 'decode 12'],
    ]);
    assert.equal(driver.ended, 'eog');
    assert.deepEqual(driver.generated, [10, 11, 12]);
  });

  it('when the caller stops, drops the token asked ahead and keeps the cache aligned', async () => {
    const { sequence, log } = scriptedSequence([10, 11, 12, 13, 14, 'eog']);
    const driver = driverFor(sequence);
    await driver.prepare([1, 2, 3]);
    const handed = [];
    for await (const step of driver.run({})) {
      handed.push(step.token);
      if (handed.length === 2) break;
    }
    // The caller is not kept waiting for the decode of 11, asked ahead…
    assert.equal(log.at(-1), 'decode 11');
    // …which finishes in the background: then the prompt and both handed-out tokens are in the
    // cache, and 12, sampled ahead, is dropped.
    await driver.idle();
    assert.equal(sequence.nextTokenIndex, 5);
    assert.deepEqual(driver.generated, [10, 11]);
    assert.deepEqual(log, ['decode 1,2,3', 'sampled 10', 'decode 10', 'sampled 11', 'decode 11', 'sampled 12', 'return']);
    // The next phase evaluates only what the provider forces, not a token already in the cache.
    driver.force([99]);
    log.length = 0;
    for await (const step of driver.run({})) handed.push(step.token);
    assert.deepEqual(log, ['decode 99', 'sampled 13', 'decode 13', 'sampled 14', 'decode 14', 'return']);
    assert.deepEqual(driver.generated, [10, 11, 13, 14]);
    assert.equal(sequence.nextTokenIndex, 8);
  });

  it('asks nothing ahead once the caller has all the tokens it takes, yet goes on if asked', async () => {
    const { sequence, log } = scriptedSequence([10, 11, 12, 13, 'eog']);
    const limited = driverFor(sequence, 1000, 2);
    await limited.prepare([1, 2, 3]);
    for await (const step of limited.run({})) if (limited.generated.length >= 2) break;
    // 11 was not evaluated: no decode to wait for, and it is the next phase's first token.
    assert.deepEqual(log, ['decode 1,2,3', 'sampled 10', 'decode 10', 'sampled 11', 'return']);
    assert.equal(sequence.nextTokenIndex, 4);
    limited.force([99]);
    log.length = 0;
    const handed = [];
    for await (const step of limited.run({})) handed.push(step.token);
    assert.equal(log[0], 'decode 11,99');
    // Past the limit, each token is asked for when the caller wants it.
    assert.deepEqual(handed, [12, 13]);
    assert.deepEqual(log.slice(1), ['sampled 12', 'decode 12', 'sampled 13', 'decode 13', 'return']);
  });

  it('a failure of the token asked ahead is not left unhandled while the caller works, and reaches a caller that goes on', async () => {
    const unhandled = [];
    const onUnhandled = (reason) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // The caller stops after a slow hand-out, during which the decode asked ahead fails.
      const first = scriptedSequence([10, 11, 12], { failAt: 2 });
      const stopping = driverFor(first.sequence);
      await stopping.prepare([1]);
      for await (const step of stopping.run({})) {
        if (step.token === 11) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          break;
        }
      }
      assert.deepEqual(stopping.generated, [10, 11]);
      // A caller that asks for the next token gets the failure.
      const second = scriptedSequence([10, 11, 12], { failAt: 2 });
      const going = driverFor(second.sequence);
      await going.prepare([1]);
      await assert.rejects(async () => {
        for await (const _ of going.run({})) await new Promise((resolve) => setTimeout(resolve, 5));
      }, /decode failed/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('with no room left, hands out the last token without evaluating it and ends the phase', async () => {
    const { sequence, log } = scriptedSequence([10, 11, 12, 13]);
    const driver = driverFor(sequence, 6);
    await driver.prepare([1, 2, 3]);
    const handed = [];
    for await (const step of driver.run({})) handed.push(step.token);
    assert.deepEqual(handed, [10, 11, 12]);
    assert.equal(driver.ended, 'context-full');
    // 12 was not evaluated: the cache holds the prompt, 10 and 11.
    assert.equal(sequence.nextTokenIndex, 5);
    assert.ok(!log.includes('decode 12'));
  });
});

describe('local provider: batch gate', () => {
  it('dispatches a lone sequence at once, in the same turn', () => {
    const gate = new BatchGate();
    gate.enter();
    gate.ask();
    let dispatched = false;
    gate.schedule(() => {
      dispatched = true;
    });
    assert.equal(dispatched, true);
    assert.equal(gate.rounds, 1);
  });

  it('with two sequences generating, holds the dispatch until both asked, then sends it a turn later', async () => {
    const gate = new BatchGate(1000);
    gate.enter();
    gate.enter();
    gate.ask();
    let dispatched = 0;
    gate.schedule(() => dispatched++);
    assert.equal(dispatched, 0);
    gate.ask();
    assert.equal(dispatched, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(dispatched, 1);
    assert.equal(gate.roundSequences, 2);
  });
});
