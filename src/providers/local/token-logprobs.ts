// OpenAI-style token logprobs from node-llama-cpp's sampling distribution: each answer token's
// log-probability and the most likely tokens at its position. A token's text may reach the
// client later than the token (a character split over tokens, text held back by the stop
// scanner), so entries wait here until the next text delta and ride on it.

import type { LlamaModel, Token } from 'node-llama-cpp';
import type { StreamPart, TokenLogprob } from '../../core/types.js';

/** OpenAI's value for a token too unlikely to have a log-probability worth showing. */
const UNLIKELY = -9999;
const REPLACEMENT_CHAR = '\uFFFD';

function logOf(probability: number | undefined): number {
  return probability !== undefined && probability > 0 ? Math.max(Math.log(probability), UNLIKELY) : UNLIKELY;
}

/**
 * The entries with the whitespace that leads their joined text taken out of their `token` (and
 * `bytes`): a whitespace-only token keeps its place and logprob with empty text, so the tokens
 * still number the completion's and spell its content. `reached`: a token with text was found.
 */
function trimLeadingWhitespace(entries: TokenLogprob[]): { entries: TokenLogprob[]; reached: boolean } {
  const first = entries.findIndex((e) => e.token.trim() !== '');
  const end = first < 0 ? entries.length : first + 1;
  const trim = <T extends { token: string; bytes: number[] | null }>(e: T): T => {
    const token = e.token.trimStart();
    return token === e.token ? e : { ...e, token, bytes: e.bytes && [...Buffer.from(token, 'utf8')] };
  };
  // The alternatives at those positions are trimmed alike, so the chosen one still reads as one of them.
  const trimmed = entries.map((e, i) => (i < end ? { ...trim(e), top: e.top.map(trim) } : e));
  return { entries: trimmed, reached: first >= 0 };
}

export class TokenLogprobQueue {
  private queue: TokenLogprob[] = [];
  /** No entry has reached the answer yet (since it began or a thought ended). */
  private answerStart = true;
  private readonly texts = new Map<Token, { token: string; bytes: number[] | null }>();

  constructor(
    private readonly model: LlamaModel,
    private readonly top: number,
  ) {}

  /** Queues a generated token; `distribution` is node-llama-cpp's, most likely first. */
  push(token: Token, probability: number | undefined, distribution: ReadonlyMap<Token, number> | undefined): void {
    const alternatives: TokenLogprob['top'] = [];
    if (distribution && this.top > 0) {
      for (const [candidate, p] of distribution) {
        alternatives.push({ ...this.text(candidate), logprob: logOf(p) });
        if (alternatives.length === this.top) break;
      }
    }
    this.queue.push({ ...this.text(token), logprob: logOf(probability ?? distribution?.get(token)), top: alternatives });
  }

  /** Hands the queued entries to the first text delta among `parts`, if there is one. */
  attach(parts: StreamPart[]): void {
    if (this.queue.length === 0) return;
    const index = parts.findIndex((p) => p.type === 'text-delta' && p.delta.length > 0);
    if (index < 0) return;
    // The answer's leading whitespace is trimmed (think-splitter.ts): so are its tokens, for the
    // tokens to spell the content exactly, as OpenAI's do.
    if (this.answerStart) {
      const { entries, reached } = trimLeadingWhitespace(this.queue);
      this.queue = entries;
      this.answerStart = !reached;
    }
    parts[index] = { ...(parts[index] as Extract<StreamPart, { type: 'text-delta' }>), logprobs: this.queue };
    this.queue = [];
  }

  /** Drops what is queued: tokens whose text will never be answer text (a thought's opening tag). */
  discard(): void {
    this.queue = [];
    this.answerStart = true;
  }

  /** A token's own text and bytes; a token holding part of a character has no bytes to show. */
  private text(token: Token): { token: string; bytes: number[] | null } {
    let entry = this.texts.get(token);
    if (!entry) {
      const text = this.model.detokenize([token], false);
      entry = { token: text, bytes: text.includes(REPLACEMENT_CHAR) ? null : [...Buffer.from(text, 'utf8')] };
      this.texts.set(token, entry);
    }
    return entry;
  }
}
