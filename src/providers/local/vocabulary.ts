// Facts about a model's vocabulary that need every token's text: read once, a slice at a time,
// so a model load does not hold the event loop for the whole vocabulary (~170 ms for 152k tokens).

import type { LlamaModel, Token } from 'node-llama-cpp';
import { yieldToIo } from '../../core/event-loop.js';

/** Tokens detokenized between yields. */
const SLICE = 8192;

/** Tokens in the model's vocabulary, from its GGUF metadata. */
export function vocabularySize(model: LlamaModel): number {
  return model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
}

/** Calls `visit` with each token and its text (special tokens as text), yielding to other work between slices. */
export async function forEachToken(model: LlamaModel, visit: (token: Token, text: string) => void): Promise<void> {
  const size = vocabularySize(model);
  for (let id = 0; id < size; id++) {
    if (id % SLICE === 0) await yieldToIo();
    visit(id as Token, model.detokenize([id as Token], true));
  }
}

export interface VocabularyFacts {
  /** The most characters one token stands for (Qwen2's: 128, a run of spaces): a text of n characters is at least n / this tokens. */
  longestTokenChars: number;
  /** No token runs from a line's end into the next line's text (a newline, then a character other than whitespace). */
  noTokenCrossesLineStart: boolean;
  /** No token runs from a character other than whitespace into a following space. */
  noTokenCrossesWordEnd: boolean;
}

/** What a model's vocabulary allows, from one pass over it. */
export async function vocabularyFacts(model: LlamaModel): Promise<VocabularyFacts> {
  const facts: VocabularyFacts = { longestTokenChars: 1, noTokenCrossesLineStart: true, noTokenCrossesWordEnd: true };
  await forEachToken(model, (_, text) => {
    if (text.length > facts.longestTokenChars) facts.longestTokenChars = text.length;
    // A token ending in part of a character's bytes reads as U+FFFD, which \S matches.
    if (facts.noTokenCrossesLineStart && /\n\S/.test(text)) facts.noTokenCrossesLineStart = false;
    if (facts.noTokenCrossesWordEnd && /\S /.test(text)) facts.noTokenCrossesWordEnd = false;
  });
  return facts;
}
