// Past max_tokens a tool call's arguments are closed rather than cut or left to run: greedy
// decoding under their grammar, biased toward tokens that end strings, arrays and objects and
// against those that open more. The grammar still decides what may come next (node-llama-cpp's
// writes every property, and a string's minLength still holds), so the call parses after a few
// tokens more. Inside a string only its closing quote is favoured, so the text is the model's.

import { TokenBias, type LlamaModel } from 'node-llama-cpp';
import { forEachToken } from './vocabulary.js';

/** Added to a logit: far more than a model's own preferences, so greedy decoding follows it where the grammar allows. */
const CLOSES = 50;
/** A comma is needed between properties (the grammar writes them all) but in an array it adds an item: below a closer. */
const NEXT = 25;
const OPENS = -50;
const NEWLINE = 10;

export interface ClosingBias {
  /** For a token that follows the inside of a string. */
  inString: TokenBias;
  /** For a token anywhere else. */
  outside: TokenBias;
}

const built = new WeakMap<LlamaModel, Promise<ClosingBias>>();

/** The model's closing biases, built once from its whole vocabulary. */
export function closingBias(model: LlamaModel): Promise<ClosingBias> {
  let bias = built.get(model);
  if (!bias) {
    bias = build(model);
    built.set(model, bias);
  }
  return bias;
}

async function build(model: LlamaModel): Promise<ClosingBias> {
  const bias = { inString: new TokenBias(model.tokenizer), outside: new TokenBias(model.tokenizer) };
  await forEachToken(model, (token, text) => {
    if (text === '' || model.isEogToken(token)) return;
    const inString = closingLogit(text, true);
    const outside = closingLogit(text, false);
    if (inString !== 0) bias.inString.set(token, { logit: inString });
    if (outside !== 0) bias.outside.set(token, { logit: outside });
  });
  return bias;
}

/** The logit added to a token whose text is `text`, inside a string or outside one. */
export function closingLogit(text: string, inString: boolean): number {
  const logit = structuralLogit(text, inString);
  // A line break makes the grammar indent the next line: a few tokens more than a closer without one.
  return logit > 0 && text.includes('\n') ? logit - NEWLINE : logit;
}

function structuralLogit(text: string, inString: boolean): number {
  if (inString) return text.startsWith('"') ? afterValue(withoutSpace(text.slice(1))) : 0;
  const bare = withoutSpace(text);
  if (bare === '') return OPENS;
  // An empty value ends as soon as it begins.
  const empty = /^(\[\]|\{\}|"")/.exec(bare);
  if (empty) return afterValue(bare.slice(empty[0].length));
  if (/^[\]}]*,?$/.test(bare)) return afterValue(bare);
  return /[[{,]/.test(bare) ? OPENS : 0;
}

/** What may follow the end of a value: closers (or nothing), a comma after them, or anything that opens more. */
function afterValue(rest: string): number {
  if (/^[\]}]*$/.test(rest)) return CLOSES;
  if (/^[\]}]*,$/.test(rest)) return NEXT;
  return OPENS;
}

function withoutSpace(text: string): string {
  return text.replace(/\s+/g, '');
}
