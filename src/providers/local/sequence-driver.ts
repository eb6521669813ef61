// Drives one context sequence through the phases of a response (free text, tool name, tool
// arguments…), each with its own sampling options and grammar. It keeps the KV cache aligned:
// every token handed out is in the cache when a phase ends (it was evaluated while the caller
// handled it), so the next phase evaluates only the text the provider writes itself; a token that
// did not fit the context stays pending. It also counts the generated tokens and their
// probabilities.

import type { EvaluationPriority, LlamaContextSequence, SequenceEvaluateOptions, Token } from 'node-llama-cpp';
import type { BatchGate } from './batch-gate.js';
import { cancelledError } from './sequence-pool.js';

export interface GeneratedToken {
  token: Token;
  /** Probability of the chosen token under the sampling distribution (when asked for). */
  confidence?: number;
  /** The whole sampling distribution, most likely first (only for `probabilities: 'distribution'`). */
  probabilities?: Map<Token, number>;
}

/** What to learn about each generated token: nothing, its probability, or the whole distribution. */
export type TokenProbabilities = 'none' | 'confidence' | 'distribution';

export interface SequenceDriverOptions {
  /**
   * What to learn about each token. Its probability is cheap when sampling (top-k leaves few
   * candidates), but greedy decoding then sorts the whole vocabulary per token; the whole
   * distribution (for token logprobs) also copies every candidate into JavaScript.
   */
  probabilities?: TokenProbabilities;
  /** The sequence's place in its context's batches (see batch-order.ts). */
  batchPriority?: EvaluationPriority;
  gate?: BatchGate;
  /** The most tokens the caller will take: no token is asked ahead past it. */
  maxTokens?: number;
}

export class SequenceDriver {
  /** Tokens not yet in the KV cache; evaluated at the start of the next phase. */
  private pending: Token[] = [];
  readonly generated: Token[] = [];
  private confidenceSum = 0;
  /** A token asked ahead and dropped is still decoding: the sequence is busy until this settles. */
  private busy: Promise<void> | undefined;
  /** How the last phase ended, when the model (not the caller) ended it. */
  ended: 'eog' | 'context-full' | undefined;
  private readonly probabilities: TokenProbabilities;
  private readonly maxTokens: number;

  constructor(
    private readonly sequence: LlamaContextSequence,
    private readonly contextSize: number,
    private readonly signal: AbortSignal,
    private readonly options: SequenceDriverOptions = {},
  ) {
    this.probabilities = options.probabilities ?? 'confidence';
    this.maxTokens = options.maxTokens ?? Number.POSITIVE_INFINITY;
  }

  get meanProbability(): number | undefined {
    return this.probabilities !== 'none' && this.generated.length > 0 ? this.confidenceSum / this.generated.length : undefined;
  }

  /** Resolves once no decode of this driver's is in flight: only then may the sequence be reused. */
  idle(): Promise<void> {
    return this.busy ?? Promise.resolve();
  }

  /** Reuses the cached prefix the sequence shares with `prompt`; the rest is evaluated by the first phase. */
  async prepare(prompt: readonly Token[]): Promise<void> {
    // At least one token must be evaluated to get the next token's distribution.
    const head = prompt.slice(0, -1);
    await this.sequence.adaptStateToTokens(head, false);
    this.pending = prompt.slice(this.sequence.nextTokenIndex);
  }

  /** Appends text the provider writes itself (e.g. a tool call's fixed parts). */
  force(tokens: readonly Token[]): void {
    this.pending.push(...tokens);
  }

  /**
   * Generates tokens until the caller stops iterating, the model ends its turn, or the context is
   * full. Each token's successor is asked for before the token is handed to the caller, so the
   * decode runs while the caller streams the token out: on a fast backend the server's work per
   * token would otherwise add to every step. When the caller stops, the token asked for ahead is
   * dropped (its decode finishes in the background; see idle()) and the last handed-out token is
   * already in the cache. No token is asked ahead when the caller can take no more (`maxTokens`)
   * or the context has no room for it: that token stays pending.
   */
  async *run(options: SequenceEvaluateOptions): AsyncGenerator<GeneratedToken> {
    this.ended = undefined;
    if (this.busy) await this.busy;
    this.busy = undefined;
    if (this.signal.aborted) throw cancelledError();
    if (this.pending.length === 0 || this.sequence.nextTokenIndex + this.pending.length >= this.contextSize) {
      this.ended = 'context-full';
      return;
    }
    const input = this.pending;
    this.pending = [];
    const metadata = { confidence: this.probabilities !== 'none', probabilities: this.probabilities === 'distribution' };
    const steps = this.sequence.evaluateWithMetadata(input, metadata, { ...options, evaluationPriority: this.options.batchPriority });
    const iterator = (steps as AsyncIterable<GeneratedToken>)[Symbol.asyncIterator]();
    const gate = this.options.gate;
    gate?.enter();
    let ahead: Promise<IteratorResult<GeneratedToken>> | undefined = this.ask(iterator, gate);
    try {
      for (;;) {
        const next = await ahead;
        ahead = undefined;
        if (next.done) break;
        const step = next.value;
        this.generated.push(step.token);
        this.confidenceSum += step.confidence ?? 0;
        const room = this.sequence.nextTokenIndex + 1 < this.contextSize;
        if (room && this.generated.length < this.maxTokens) {
          ahead = this.ask(iterator, gate);
          // Until the caller awaits it, a failure of the token asked ahead has no handler.
          ahead.catch(() => {});
          yield step;
        } else {
          this.pending = [step.token];
          yield step;
          if (!room) {
            this.ended = 'context-full';
            return;
          }
          // Past maxTokens, yet the caller asked for more.
          this.pending = [];
          ahead = this.ask(iterator, gate);
        }
        if (this.signal.aborted) throw cancelledError();
      }
    } finally {
      if (ahead) this.busy = this.drop(ahead, iterator, gate);
      else {
        gate?.leave();
        // What `for await` does on an early exit: ends node-llama-cpp's generation loop.
        await iterator.return?.();
      }
    }
    this.ended = 'eog';
  }

  /** The caller stopped while a token asked ahead was decoding: end the loop once that decode is done. */
  private async drop(ahead: Promise<unknown>, iterator: AsyncIterator<GeneratedToken>, gate: BatchGate | undefined): Promise<void> {
    await ahead.catch(() => undefined);
    gate?.leave();
    await Promise.resolve(iterator.return?.()).catch(() => undefined);
  }

  /** The next token, asked for through the batch gate when there is one (see batch-gate.ts). */
  private async ask(iterator: AsyncIterator<GeneratedToken>, gate: BatchGate | undefined): Promise<IteratorResult<GeneratedToken>> {
    if (!gate) return iterator.next();
    const turn = gate.beforeAsk();
    if (turn) await turn;
    gate.ask();
    try {
      return await iterator.next();
    } finally {
      gate.answered();
    }
  }
}
