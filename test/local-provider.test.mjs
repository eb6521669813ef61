// The local provider on the tiny random-weight model: streaming, limits, stops, seeds, usage,
// token probabilities, JSON-schema output and the errors a client can cause.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { startLocalProvider, system, user } from './helpers/model.mjs';

const ajv = new Ajv();
let local;

before(async () => {
  local = await startLocalProvider();
  await local.provider.warmUp(local.deployment);
});
after(() => local.provider.close());

describe('local provider: text generation', () => {
  it('streams start, text deltas and a finish, in that order', async () => {
    const r = await local.run({ messages: [user('Hello there')], maxTokens: 12, seed: 7 });
    assert.equal(r.types[0], 'start');
    assert.equal(r.parts[0].model, 'tiny-qwen2');
    assert.equal(r.types[1], 'text-start');
    assert.ok(r.types.filter((t) => t === 'text-delta').length > 1, 'text arrives in several deltas');
    assert.deepEqual(r.types.slice(-2), ['text-end', 'finish']);
    assert.ok(r.text.length > 0);
  });

  it('a context that fills before maxTokens is a length finish that says so (Anthropic clients get model_context_window_exceeded)', async () => {
    const small = await startLocalProvider({ contextSize: 96 });
    try {
      const r = await small.run({ messages: [user('Count to ten')], maxTokens: 10_000, seed: 1, temperature: 1 });
      assert.equal(r.finish.finishReason, 'length');
      assert.equal(r.finish.contextFull, true);
      // node-llama-cpp rounds a context up (to 256 here): far below maxTokens either way.
      assert.ok(r.finish.usage.totalTokens <= 512, String(r.finish.usage.totalTokens));
    } finally {
      await small.provider.close();
    }
  });

  it('stops at maxTokens with finish reason length, counting every generated token', async () => {
    const r = await local.run({ messages: [user('Count to ten')], maxTokens: 9, seed: 1 });
    assert.equal(r.finish.finishReason, 'length');
    assert.equal(r.finish.contextFull, undefined);
    assert.equal(r.finish.usage.outputTokens, 9);
    assert.equal(r.finish.usage.totalTokens, r.finish.usage.inputTokens + 9);
  });

  it('cuts the text before a stop sequence and finishes with stop', async () => {
    const request = { messages: [user('Say something')], maxTokens: 30, temperature: 0.7, seed: 21 };
    const full = (await local.run(request)).text;
    const stop = full.slice(12, 15);
    assert.equal(stop.length, 3);
    const r = await local.run({ ...request, stop: ['§never§', stop] });
    assert.equal(r.finish.finishReason, 'stop');
    assert.equal(r.text, full.slice(0, full.indexOf(stop)));
    assert.ok(!r.text.includes(stop));
  });

  it('is reproducible with a seed, and a different seed gives a different answer', async () => {
    const request = { messages: [user('Tell me a story')], maxTokens: 24, temperature: 0.9, topP: 0.95, topK: 50, minP: 0.01 };
    const a = await local.run({ ...request, seed: 1234 });
    const b = await local.run({ ...request, seed: 1234 });
    const c = await local.run({ ...request, seed: 999 });
    assert.equal(a.text, b.text);
    assert.notEqual(a.text, c.text);
  });

  it('accepts the penalties', async () => {
    const r = await local.run({ messages: [user('Hi')], maxTokens: 8, seed: 3, presencePenalty: 0.5, frequencyPenalty: 0.5, repetitionPenalty: 1.2 });
    assert.equal(r.finish.usage.outputTokens, 8);
  });

  it('reports input tokens equal to countPromptTokens (the tokenizer count; checked against ChatML in local-tools)', async () => {
    const messages = [system('You are terse.'), user('Hello there, how are you?')];
    const r = await local.run({ messages, maxTokens: 4, seed: 2 });
    assert.equal(r.finish.usage.inputTokens, await local.provider.countPromptTokens({ model: 'x', messages }, local.deployment));
    assert.equal(r.finish.usage.outputTokens, 4);
  });

  it('reports the mean probability of the generated tokens when the request asks for it (confidence), and only then', async () => {
    const r = await local.run({ messages: [user('Hi')], maxTokens: 10, seed: 5, confidence: true });
    const p = r.finish.meanTokenProbability;
    assert.ok(typeof p === 'number' && p > 0 && p <= 1, `meanTokenProbability ${p}`);
    const greedy = await local.run({ messages: [user('Hi')], maxTokens: 10, temperature: 0, confidence: true });
    assert.ok(greedy.finish.meanTokenProbability > 0 && greedy.finish.meanTokenProbability <= 1);
    // A dialect that shows no confidence score does not pay for one (a sort of the vocabulary per token at temperature 0).
    const unasked = await local.run({ messages: [user('Hi')], maxTokens: 10, temperature: 0 });
    assert.equal(unasked.finish.usage.outputTokens, 10);
    assert.equal(unasked.finish.meanTokenProbability, undefined);
  });

  it('skips token probabilities when the deployment turns them off', async () => {
    const deployment = { ...local.deployment, options: { tokenProbabilities: false } };
    const r = await local.run({ messages: [user('Hi')], maxTokens: 3, temperature: 0, confidence: true }, undefined, deployment);
    assert.equal(r.finish.usage.outputTokens, 3);
    assert.equal(r.finish.meanTokenProbability, undefined);
    assert.equal(local.provider.capabilities(deployment).logprobs, false);
  });

  it('declares its capabilities', () => {
    const caps = local.provider.capabilities(local.deployment);
    assert.deepEqual(caps.modalities, ['text']);
    assert.equal(caps.structuredOutput, 'grammar');
    assert.equal(caps.multipleChoices, true, 'n is run by the provider itself (choices.ts)');
    assert.equal(caps.logprobs, true);
    assert.equal(caps.reasoning, true);
    assert.deepEqual(caps.sampling, ['temperature', 'topP', 'topK', 'minP', 'seed', 'stop', 'presencePenalty', 'frequencyPenalty', 'repetitionPenalty', 'logitBias']);
  });
});

describe('local provider: structured output', () => {
  const schema = {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      color: { enum: ['red', 'green', 'blue'] },
      tag: { type: 'string', maxLength: 6 },
    },
    required: ['ok', 'color', 'tag'],
    additionalProperties: false,
  };

  for (const seed of [1, 2, 3]) {
    it(`produces JSON matching the schema (seed ${seed}) and stops right after it`, async () => {
      const r = await local.run({ messages: [user('Give me JSON')], maxTokens: 200, seed, responseFormat: { type: 'json', schema } });
      assert.equal(r.finish.finishReason, 'stop');
      const value = JSON.parse(r.text);
      assert.ok(ajv.validate(schema, value), JSON.stringify(ajv.errors));
      assert.equal(r.text, r.text.trim());
    });
  }

  it('produces a JSON object without a schema', async () => {
    const r = await local.run({ messages: [user('JSON please')], maxTokens: 10, seed: 11, responseFormat: { type: 'json' } });
    assert.ok(r.text.startsWith('{'), r.text);
  });
});

describe('local provider: errors', () => {
  it('refuses a prompt longer than the context with a context_window error', async () => {
    await assert.rejects(
      local.run({ messages: [user('lorem ipsum '.repeat(2000))], maxTokens: 4 }),
      (err) => err.kind === 'context_window' && err.status === 400 && /context/.test(err.message),
    );
  });

  it('says clearly when the model file is missing', async () => {
    const missing = { ...local.deployment, model: '/nonexistent/dir/missing-model.gguf' };
    await assert.rejects(
      local.run({ messages: [user('hi')] }, undefined, missing),
      (err) => err.status === 503 && err.code === 'model_file_not_found' && err.message.includes('/nonexistent/dir/missing-model.gguf'),
    );
  });

  it('refuses a tool_choice naming an unknown tool', async () => {
    const tools = [{ name: 'a', parameters: { type: 'object', properties: { x: { type: 'boolean' } } } }];
    await assert.rejects(local.run({ messages: [user('hi')], tools, toolChoice: { type: 'tool', name: 'b' } }), (err) => err.status === 400 && err.param === 'tool_choice');
  });
});

describe('local provider: settings that would slow it down', () => {
  it('more threads than CPU cores: a warning naming both when the runtime starts; none within the cores', async () => {
    const { createLocalProvider } = await import('../dist/providers/local/index.js');
    const { default: pino } = await import('pino');
    const cores = (await import('node:os')).availableParallelism();
    const warningsWith = async (threads) => {
      const lines = [];
      const logger = pino({ level: 'warn' }, { write: (line) => lines.push(JSON.parse(line)) });
      const provider = createLocalProvider({ config: { local: { threads, parallel: 1, queueLimit: 1, gpu: false, contextSize: 512 } }, logger, dataDir: '.cache/test-data' });
      try {
        await provider.warmUp({ ...local.deployment, name: `threads-${threads}` });
      } finally {
        await provider.close();
      }
      return lines.filter((l) => l.threads !== undefined && l.cores !== undefined);
    };
    const [warning, ...more] = await warningsWith(cores + 1);
    assert.deepEqual(more, []);
    assert.equal(warning.msg, `local.threads is ${cores + 1}, more than the ${cores} CPU cores here: generation will be much slower than with ${cores} or fewer`);
    assert.deepEqual(await warningsWith(1), []);
  });
});
