// Turns generated tokens into text as they arrive. A UTF-8 character can span several tokens;
// until it is complete the decoded text ends in U+FFFD, so those tokens are held back.

import type { LlamaModel, Token } from 'node-llama-cpp';

const REPLACEMENT_CHAR = '\uFFFD';
/** Give up waiting for a character to complete after this many tokens (it was really invalid). */
const MAX_HELD_TOKENS = 4;
/** Preceding tokens handed to the detokenizer so spacing continues correctly. */
const CONTEXT_TOKENS = 8;

export class IncrementalDetokenizer {
  private held: Token[] = [];
  private previous: Token[];

  /** `context`: the tokens just before the generated ones (the prompt's tail). */
  constructor(
    private readonly model: LlamaModel,
    context: readonly Token[] = [],
  ) {
    this.previous = context.slice(-CONTEXT_TOKENS);
  }

  /** Text completed by `token` (possibly empty). */
  push(token: Token): string {
    this.held.push(token);
    const text = this.model.detokenize(this.held, false, this.previous);
    if (text.endsWith(REPLACEMENT_CHAR) && this.held.length < MAX_HELD_TOKENS) return '';
    this.previous = [...this.previous, ...this.held].slice(-CONTEXT_TOKENS);
    this.held = [];
    return text;
  }

  /** Whatever is still held, decoded as is. */
  flush(): string {
    if (this.held.length === 0) return '';
    const text = this.model.detokenize(this.held, false, this.previous);
    this.held = [];
    return text;
  }
}
