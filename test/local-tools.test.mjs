// Tool calling on the local provider: forced calls (a named tool, or `required` where the
// grammar picks the tool) whose arguments always parse and match the schema; `auto` through the
// chat template; tool calls and results rendered back into the model's own format.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { getLlama, resolveChatWrapper } from 'node-llama-cpp';
import { startLocalProvider, TEST_MODEL_PATH, user } from './helpers/model.mjs';

const ajv = new Ajv();
const tools = [
  {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
  {
    name: 'set_alarm',
    description: 'Set an alarm',
    parameters: {
      type: 'object',
      properties: { enabled: { type: 'boolean' }, days: { type: 'array', items: { enum: ['mon', 'tue', 'wed'] }, maxItems: 3 } },
      required: ['enabled', 'days'],
    },
  },
];
const schemaOf = (name) => tools.find((t) => t.name === name).parameters;

let local;
before(async () => {
  local = await startLocalProvider();
});
after(() => local.provider.close());

function assertValidCall(call, allowed) {
  assert.ok(allowed.includes(call.name), `unexpected tool ${call.name}`);
  assert.match(call.id, /^call_[A-Za-z0-9_-]+$/);
  const args = JSON.parse(call.arguments);
  assert.ok(ajv.validate(schemaOf(call.name), args), `${call.arguments}: ${JSON.stringify(ajv.errors)}`);
}

describe('local provider: forced tool calls', () => {
  for (const seed of [1, 2, 3]) {
    it(`calls the named tool with arguments matching its schema (seed ${seed})`, async () => {
      const r = await local.run({ messages: [user('Weather in Paris?')], tools, toolChoice: { type: 'tool', name: 'get_weather' }, seed, maxTokens: 100 });
      assert.equal(r.finish.finishReason, 'tool-calls');
      assert.equal(r.toolCalls.length, 1);
      assertValidCall(r.toolCalls[0], ['get_weather']);
      assert.deepEqual(r.types.slice(0, 2), ['start', 'tool-input-start']);
      assert.deepEqual(r.types.slice(-2), ['tool-input-end', 'finish']);
      assert.equal(r.text, '');
    });
  }

  it('with tool_choice required, the grammar picks one of the tools and its arguments', async () => {
    const names = new Set();
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const r = await local.run({ messages: [user('Do something')], tools, toolChoice: { type: 'required' }, seed, maxTokens: 100 });
      assert.equal(r.finish.finishReason, 'tool-calls');
      assert.equal(r.toolCalls.length, 1);
      assertValidCall(r.toolCalls[0], ['get_weather', 'set_alarm']);
      names.add(r.toolCalls[0].name);
    }
    assert.ok(names.size >= 1);
  });

  it('completes the arguments even when maxTokens is smaller than the call', async () => {
    const r = await local.run({ messages: [user('Alarm')], tools, toolChoice: { type: 'tool', name: 'set_alarm' }, seed: 9, maxTokens: 2 });
    assertValidCall(r.toolCalls[0], ['set_alarm']);
  });
});

describe('local provider: a call still open at maxTokens is closed, not left to run', () => {
  // A tree: each node may hold more nodes. Sampled freely, the test model nests on and on (seeds
  // 4 and 6 wrote past 1,800 tokens for maxTokens 20, until the context was full).
  const tree = {
    name: 'tree',
    parameters: {
      type: 'object',
      $defs: { node: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/$defs/node' } } } } },
      properties: { root: { $ref: '#/$defs/node' } },
    },
  };
  // Every property required: a string with a minimum length, at least two items, a nested object.
  const record = {
    name: 'record',
    parameters: {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 3 },
        age: { type: 'integer' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
        meta: { type: 'object', properties: { x: { type: 'number' }, note: { type: 'string' } }, required: ['x'] },
      },
      required: ['name', 'age', 'tags', 'meta'],
    },
  };
  /** Tokens the closing took past maxTokens, at most. */
  const CLOSED_WITHIN = 64;

  for (const [tool, maxTokens] of [
    [tree, 20],
    [record, 3],
  ]) {
    it(`${tool.name}: arguments that parse and fit the schema, a few tokens past maxTokens ${maxTokens} (seeds 1–8)`, async () => {
      for (let seed = 1; seed <= 8; seed++) {
        const r = await local.run({ messages: [user('Go')], tools: [tool], toolChoice: { type: 'tool', name: tool.name }, seed, temperature: 1, maxTokens });
        const where = `seed ${seed}: ${r.toolCalls[0]?.arguments}`;
        assert.equal(r.finish.finishReason, 'tool-calls', where);
        assert.ok(ajv.validate(tool.parameters, JSON.parse(r.toolCalls[0].arguments)), `${where} ${JSON.stringify(ajv.errors)}`);
        assert.ok(r.finish.usage.outputTokens <= maxTokens + CLOSED_WITHIN, `${where}: ${r.finish.usage.outputTokens} tokens`);
      }
    });
  }

  it('a schema that needs more than the closing budget ends the call where it stopped: finish length', async () => {
    const many = { name: 'many', parameters: { type: 'object', properties: { xs: { type: 'array', items: { type: 'integer' }, minItems: 300 } }, required: ['xs'] } };
    const r = await local.run({ messages: [user('Go')], tools: [many], toolChoice: { type: 'tool', name: 'many' }, seed: 1, maxTokens: 3 });
    assert.equal(r.finish.finishReason, 'length');
    assert.deepEqual(r.types.slice(-2), ['tool-input-end', 'finish']);
    assert.ok(r.finish.usage.outputTokens > 3 && r.finish.usage.outputTokens <= 3 + 256, `${r.finish.usage.outputTokens} tokens`);
    assert.throws(() => JSON.parse(r.toolCalls[0].arguments));
  });
});

describe('local provider: auto tool choice', () => {
  it('offers the tools through the chat template and answers (text or a valid call)', async () => {
    const plain = await local.run({ messages: [user('Weather in Paris?')], seed: 4, maxTokens: 16 });
    const r = await local.run({ messages: [user('Weather in Paris?')], tools, seed: 4, maxTokens: 16 });
    assert.ok(r.finish.usage.inputTokens > plain.finish.usage.inputTokens + 50, 'the tool definitions are in the prompt');
    assert.ok(['stop', 'length', 'tool-calls'].includes(r.finish.finishReason));
    for (const call of r.toolCalls) assertValidCall(call, ['get_weather', 'set_alarm']);
  });

  // The random model never opens a call by itself; a logit bias on `<tool_call>` makes it.
  const TOOL_CALL_TOKEN = '151657';

  it('detects a call the model opens in free text and completes it with grammars', async () => {
    const r = await local.run({
      messages: [user('Weather in Paris?')],
      tools,
      seed: 5,
      maxTokens: 64,
      parallelToolCalls: false,
      providerOptions: { local: { logitBias: { [TOOL_CALL_TOKEN]: 100 } } },
    });
    assert.equal(r.finish.finishReason, 'tool-calls');
    assert.equal(r.toolCalls.length, 1);
    assertValidCall(r.toolCalls[0], ['get_weather', 'set_alarm']);
    assert.ok(!r.text.includes('<tool_call>'), 'the call syntax never shows as text');
  });

  it('makes further parallel calls while the model keeps opening them', async () => {
    const r = await local.run({
      messages: [user('Weather in Paris and Rome?')],
      tools,
      seed: 6,
      maxTokens: 30,
      providerOptions: { local: { logitBias: { [TOOL_CALL_TOKEN]: 100 } } },
    });
    assert.equal(r.finish.finishReason, 'tool-calls');
    assert.ok(r.toolCalls.length >= 2, `${r.toolCalls.length} calls`);
    for (const call of r.toolCalls) assertValidCall(call, ['get_weather', 'set_alarm']);
    assert.equal(new Set(r.toolCalls.map((c) => c.id)).size, r.toolCalls.length);
  });

  it('refuses a malformed logit bias', async () => {
    await assert.rejects(local.run({ messages: [user('x')], providerOptions: { local: { logitBias: { abc: 1 } } } }), (err) => err.status === 400);
  });

  it('refuses a logit bias on a token id past the vocabulary (2^32 biased token 0; larger ids were ignored)', async () => {
    for (const id of ['151936', '999999999', String(2 ** 32)]) {
      await assert.rejects(local.run({ messages: [user('x')], maxTokens: 2, logitBias: { [id]: 100 } }), (err) => err.status === 400 && err.code === 'invalid_token_id' && err.message.includes('0 to 151935'), id);
    }
    const last = await local.run({ messages: [user('x')], maxTokens: 2, seed: 1, logitBias: { 151935: 100 } });
    assert.equal(last.finish.usage.outputTokens, 2);
  });

  it('with tool_choice none, the tools are not offered', async () => {
    const plain = await local.run({ messages: [user('Weather in Paris?')], seed: 4, maxTokens: 4 });
    const none = await local.run({ messages: [user('Weather in Paris?')], tools, toolChoice: { type: 'none' }, seed: 4, maxTokens: 4 });
    assert.equal(none.finish.usage.inputTokens, plain.finish.usage.inputTokens);
    assert.equal(none.toolCalls.length, 0);
  });
});

describe('local provider: tool history in the prompt', () => {
  let loaded;
  before(async () => {
    const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true });
    const model = await llama.loadModel({ modelPath: TEST_MODEL_PATH, vocabOnly: true });
    const { SlicedTokenizer } = await import('../dist/providers/local/sliced-tokenizer.js');
    const { vocabularyFacts } = await import('../dist/providers/local/vocabulary.js');
    loaded = { llama, model, chatWrapper: resolveChatWrapper(model), tokenizer: new SlicedTokenizer(model, await vocabularyFacts(model)) };
  });
  after(async () => {
    await loaded.model.dispose();
    await loaded.llama.dispose();
  });

  it('resolves the Qwen chat wrapper from the model template', () => {
    assert.equal(loaded.chatWrapper.wrapperName, 'Qwen');
  });

  it('counts input tokens exactly as the tokenizer counts the ChatML prompt', async () => {
    const messages = [{ role: 'system', content: [{ type: 'text', text: 'You are terse.' }] }, user('Hello there, how are you?')];
    const rendered = '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello there, how are you?<|im_end|>\n<|im_start|>assistant\n';
    const expected = loaded.model.tokenize(rendered, true).length;
    const r = await local.run({ messages, maxTokens: 3, seed: 2 });
    assert.equal(r.finish.usage.inputTokens, expected);
    assert.equal(await local.provider.countPromptTokens({ model: 'x', messages }, local.deployment), expected);
  });

  it('renders assistant tool calls and tool results in the Qwen format, and continues the turn', async () => {
    const { renderPrompt } = await import('../dist/providers/local/prompt.js');
    const messages = [
      user('Weather in Paris?'),
      { role: 'assistant', content: [{ type: 'tool-call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' }] },
      { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'call_1', name: 'get_weather', content: [{ type: 'text', text: '{"temperature":21}' }] }] },
    ];
    const rendered = await renderPrompt(loaded, { model: 'x', messages, tools });
    assert.ok(rendered.text.includes('<tools>'), 'tool definitions');
    assert.ok(rendered.text.includes('"name": "get_weather"'));
    assert.ok(rendered.text.includes('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'), rendered.text);
    assert.ok(rendered.text.includes('<|im_start|>user\n<tool_response>\n{"temperature": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n'), rendered.text);
    assert.ok(rendered.text.endsWith('<|im_start|>assistant\n'));
    assert.ok(rendered.tokens.length > 100);

    // The answer after the tool result, then a new question: a new user turn.
    const next = await renderPrompt(loaded, {
      model: 'x',
      messages: [...messages, { role: 'assistant', content: [{ type: 'text', text: 'It is 21 degrees.' }] }, user('Thanks!')],
      tools,
    });
    assert.ok(next.text.includes('</tool_response><|im_end|>\n<|im_start|>assistant\nIt is 21 degrees.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n'), next.text);
  });

  it('generates after a tool result', async () => {
    const messages = [
      user('Weather in Paris?'),
      { role: 'assistant', content: [{ type: 'tool-call', id: 'call_9', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' }] },
      { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'call_9', content: [{ type: 'text', text: 'sunny' }] }] },
    ];
    const r = await local.run({ messages, tools, toolChoice: { type: 'none' }, seed: 1, maxTokens: 6 });
    assert.equal(r.finish.usage.outputTokens, 6);
  });
});
