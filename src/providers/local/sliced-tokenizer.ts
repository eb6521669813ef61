// Tokenizes prompts a slice at a time, giving other requests a turn between slices.
// node-llama-cpp tokenizes synchronously, ~4 MB/s here: on the event loop a 1 MB prompt held every
// other request for ~250 ms, and an 18 MB count_tokens body for 5 s.
//
// A text is cut only where no token of the vocabulary can run across the cut (vocabulary.ts):
// at a line's start or before a space. Byte-pair merges never join symbols no token holds, and
// the pre-tokenizers of these models (GPT-2 / Llama 3 / Qwen style) split there too, so the
// slices' tokens are the whole text's. Each cut is still checked on the text around it, so a
// tokenizer that behaved otherwise would only lose the cut, never change a count.

import { SpecialToken, SpecialTokensText, type LlamaModel, type LlamaText, type Token } from 'node-llama-cpp';
import type { VocabularyFacts } from './vocabulary.js';
import { yieldToIo } from '../../core/event-loop.js';

/** About this many characters are tokenized between turns (~4 ms here). */
export const SLICE_CHARS = 16 * 1024;
/** Characters either side of a cut that its check tokenizes. */
const CHECK_CHARS = 256;
/** Checks that may fail before the rest of a text is tokenized whole. */
const CHECKS_TO_FAIL = 8;

type Option = 'trimLeadingSpace' | undefined;

export class SlicedTokenizer {
  private readonly cutPlace?: RegExp;

  constructor(
    private readonly model: LlamaModel,
    vocabulary: Pick<VocabularyFacts, 'noTokenCrossesLineStart' | 'noTokenCrossesWordEnd'>,
  ) {
    const places = [vocabulary.noTokenCrossesLineStart && '(?<=\\n)(?=\\S)', vocabulary.noTokenCrossesWordEnd && '(?<=\\S)(?= )'].filter(Boolean);
    if (places.length > 0) this.cutPlace = new RegExp(places.join('|'), 'g');
  }

  /** The tokens of a LlamaText, exactly as `text.tokenize(model.tokenizer)` gives them. */
  async tokenize(text: LlamaText): Promise<Token[]> {
    // LlamaText.tokenize's walk: the plain strings between special tokens are tokenized together,
    // without a leading space of their own once anything is there.
    const tokens: Token[] = [];
    let pending = '';
    const flush = async (): Promise<number> => {
      const flushed = pending.length;
      const option: Option = tokens.length > 0 || flushed > 0 ? 'trimLeadingSpace' : undefined;
      // Straight into the result: copying a long text's tokens afterwards was one turn of its own
      // (19M tokens held the event loop 0.9 s).
      await this.tokenizePlainInto(tokens, pending, option);
      pending = '';
      return flushed;
    };
    for (const value of text.values) {
      if (typeof value === 'string') {
        pending += value;
      } else if (value instanceof SpecialToken) {
        await flush();
        append(tokens, value.tokenize(this.model.tokenizer));
      } else if (value instanceof SpecialTokensText) {
        const flushed = await flush();
        append(tokens, value.tokenize(this.model.tokenizer, tokens.length > 0 || flushed > 0));
      }
    }
    await flush();
    return tokens;
  }

  /** One plain string (no special tokens), in slices when it is long and can be cut. */
  async tokenizePlain(text: string, option: Option): Promise<Token[]> {
    const tokens: Token[] = [];
    await this.tokenizePlainInto(tokens, text, option);
    return tokens;
  }

  /** tokenizePlain, appending to `tokens` a slice at a time. */
  private async tokenizePlainInto(tokens: Token[], text: string, option: Option): Promise<void> {
    if (!this.cutPlace || text.length < 2 * SLICE_CHARS) {
      append(tokens, this.model.tokenize(text, false, option));
      return;
    }
    let start = 0;
    while (text.length - start >= 2 * SLICE_CHARS) {
      const cut = this.findCut(text, start + SLICE_CHARS);
      if (cut === undefined) break;
      append(tokens, this.model.tokenize(text.slice(start, cut), false, start === 0 ? option : 'trimLeadingSpace'));
      start = cut;
      await yieldToIo();
    }
    append(tokens, this.model.tokenize(text.slice(start), false, start === 0 ? option : 'trimLeadingSpace'));
  }

  /** The first place at or after `from` where the text can be cut, checked; none in the rest of the text. */
  private findCut(text: string, from: number): number | undefined {
    const place = this.cutPlace!;
    place.lastIndex = from;
    let failed = 0;
    for (let match = place.exec(text); match; match = place.exec(text)) {
      const cut = match.index;
      // Leave enough after the cut that the rest is worth a slice of its own.
      if (text.length - cut < SLICE_CHARS) return undefined;
      if (this.cutKeepsTokens(text, cut)) return cut;
      if (++failed === CHECKS_TO_FAIL) return undefined;
      place.lastIndex = cut + 1;
    }
    return undefined;
  }

  /** Tokenizing around the cut gives the same tokens whole as in two parts. */
  private cutKeepsTokens(text: string, cut: number): boolean {
    const before = text.slice(Math.max(0, cut - CHECK_CHARS), cut);
    const after = text.slice(cut, cut + CHECK_CHARS);
    const whole = this.model.tokenize(before + after, false, 'trimLeadingSpace');
    const parts = [...this.model.tokenize(before, false, 'trimLeadingSpace'), ...this.model.tokenize(after, false, 'trimLeadingSpace')];
    return whole.length === parts.length && whole.every((token, i) => token === parts[i]);
  }
}

function append(target: Token[], tokens: readonly Token[]): void {
  for (const token of tokens) target.push(token);
}
