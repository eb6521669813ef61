// Facts about a model's vocabulary that need every token's text: read once, a slice at a time,
// so a model load does not hold the event loop for the whole vocabulary (~170 ms for 152k tokens).

import type { LlamaModel, Token } from 'node-llama-cpp';

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
    if (id % SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    visit(id as Token, model.detokenize([id as Token], true));
  }
}

/** The most characters one token stands for (Qwen2's: 128, a run of spaces). */
export async function longestTokenChars(model: LlamaModel): Promise<number> {
  let longest = 1;
  await forEachToken(model, (_, text) => {
    if (text.length > longest) longest = text.length;
  });
  return longest;
}
