// Long prompts are tokenized a slice at a time, with turns for other work between slices, and the
// tokens must be exactly those of the whole text: checked on the test model's real Qwen2 vocabulary
// against node-llama-cpp's own tokenization of the whole, and on a tokenizer whose vocabulary
// misreports itself (the check at each cut must catch it).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { getLlama, LlamaLogLevel, LlamaText, SpecialTokensText } from 'node-llama-cpp';
import { SLICE_CHARS, SlicedTokenizer } from '../dist/providers/local/sliced-tokenizer.js';
import { vocabularyFacts } from '../dist/providers/local/vocabulary.js';
import { ensureTestModel } from './helpers/model.mjs';

let llama;
let model;
let facts;

before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.error });
  model = await llama.loadModel({ modelPath: ensureTestModel(), vocabOnly: true });
  facts = await vocabularyFacts(model);
});
after(async () => {
  await model.dispose();
  await llama.dispose();
});

/** The model, counting its tokenize calls and the longest text one was given. */
function watched(target) {
  const seen = { calls: 0, longest: 0 };
  const proxy = new Proxy(target, {
    get(obj, key) {
      if (key === 'tokenize') {
        return (text, ...rest) => {
          seen.calls++;
          seen.longest = Math.max(seen.longest, text.length);
          return obj.tokenize(text, ...rest);
        };
      }
      const value = Reflect.get(obj, key);
      return typeof value === 'function' ? value.bind(obj) : value;
    },
  });
  return { proxy, seen };
}

function randomText(seed, length) {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  let text = '';
  while (text.length < length) {
    const r = next();
    if (r < 0.15) text += ' ';
    else if (r < 0.2) text += '\n';
    else if (r < 0.23) text += ['\t', '\r', '\u00a0', '\u2003', '\f', '\u0085', '  ', '\r\n'][Math.floor(next() * 8)];
    else if (r < 0.6) text += String.fromCharCode(33 + Math.floor(next() * 94));
    else if (r < 0.8) text += String.fromCodePoint(0xa0 + Math.floor(next() * 0x2f00));
    else if (r < 0.9) text += String.fromCodePoint(0x4e00 + Math.floor(next() * 0x5000));
    else text += String.fromCodePoint(0x1f300 + Math.floor(next() * 0x300));
  }
  return text;
}

describe('on the Qwen2 vocabulary', () => {
  test('no token runs from a newline into the next line, or from a word into a following space', () => {
    assert.equal(facts.noTokenCrossesLineStart, true);
    assert.equal(facts.noTokenCrossesWordEnd, true);
    assert.equal(facts.longestTokenChars, 128);
  });

  const source = fs.readFileSync(new URL('../src/providers/local/generate.ts', import.meta.url), 'utf8');
  const texts = {
    prose: 'The quick brown fox jumps over the lazy dog; it said "hello", twice.  '.repeat(3000),
    'source code': source.repeat(Math.ceil(200_000 / source.length)),
    'one-line JSON': JSON.stringify(Array.from({ length: 4000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a b', 'c'] }))),
    'Chinese lines': '中文文本测试，这是一个句子。\n'.repeat(8000),
    'runs of whitespace': 'word   word\t\tword \n  \n word  \r\n\r\n'.repeat(5000),
    'leading spaces': ' '.repeat(40_000) + 'x y '.repeat(20_000),
    ...Object.fromEntries([1, 2, 3, 4, 5, 6].map((seed) => [`random text ${seed}`, randomText(seed, 60_000 + seed * 25_000)])),
  };
  for (const [name, text] of Object.entries(texts)) {
    test(`${name}: the slices' tokens are the whole text's`, async () => {
      const whole = model.tokenize(text, false, 'trimLeadingSpace');
      const { proxy, seen } = watched(model);
      const sliced = await new SlicedTokenizer(proxy, facts).tokenizePlain(text, 'trimLeadingSpace');
      assert.deepEqual(sliced, whole);
      assert.ok(seen.longest < 3 * SLICE_CHARS, `no call tokenized more than a few slices (longest ${seen.longest} of ${text.length})`);
    });
  }

  test('a prompt with special tokens comes out as LlamaText.tokenize gives it', async () => {
    const text = LlamaText([new SpecialTokensText('<|im_start|>user\n'), texts.prose, new SpecialTokensText('<|im_end|>\n<|im_start|>assistant\n'), texts['source code']]);
    assert.deepEqual(await new SlicedTokenizer(model, facts).tokenize(text), text.tokenize(model.tokenizer));
    const short = LlamaText([new SpecialTokensText('<|im_start|>system\n'), ' Be brief.', new SpecialTokensText('<|im_end|>\n')]);
    assert.deepEqual(await new SlicedTokenizer(model, facts).tokenize(short), short.tokenize(model.tokenizer));
  });

  test('other work gets turns while a long text is tokenized', async () => {
    const tokenizer = new SlicedTokenizer(model, facts);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    await tokenizer.tokenizePlain(texts.prose.repeat(4), 'trimLeadingSpace');
    clearInterval(ticker);
    assert.ok(turns > 0, 'a timer ran during the tokenizing');
  });

  test('a text with no place to cut (Chinese without spaces or newlines) is tokenized whole, correctly', async () => {
    const text = '中文文本测试，这是一个句子。'.repeat(8000);
    const { proxy, seen } = watched(model);
    assert.deepEqual(await new SlicedTokenizer(proxy, facts).tokenizePlain(text, 'trimLeadingSpace'), model.tokenize(text, false, 'trimLeadingSpace'));
    assert.equal(seen.longest, text.length);
  });
});

describe('a vocabulary that misreports itself', () => {
  // One token for "x " runs from a word into the space after it, which the facts deny.
  const joining = {
    tokenize(text) {
      const tokens = [];
      for (let i = 0; i < text.length; i++) {
        if (text[i] === 'x' && text[i + 1] === ' ') {
          tokens.push(100_000);
          i++;
        } else tokens.push(text.charCodeAt(i));
      }
      return tokens;
    },
  };
  const lying = { noTokenCrossesLineStart: true, noTokenCrossesWordEnd: true };

  test('the check at each cut refuses the cuts that would split a token, and the tokens stay right', async () => {
    for (const text of ['ax bx '.repeat(20_000), 'ab cd ex '.repeat(15_000), 'x '.repeat(70_000)]) {
      assert.deepEqual(await new SlicedTokenizer(joining, lying).tokenizePlain(text, undefined), joining.tokenize(text));
    }
  });
});
