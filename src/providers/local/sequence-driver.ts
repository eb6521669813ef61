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

export class SequenceDriver {
  /** Tokens not yet in the KV cache; evaluated at the start of the next phase. */
  private pending: Token[] = [];
  readonly generated: Token[] = [];
  private confidenceSum = 0;
  /** How the last phase ended, when the model (not the caller) ended it. */
  ended: 'eog' | 'context-full' | undefined;

  /**
   * `probabilities`: each chosen token's probability is cheap when sampling (top-k leaves few
   * candidates), but greedy decoding then sorts the whole vocabulary per token; the whole
   * distribution (for token logprobs) also copies every candidate into JavaScript.
   */
  constructor(
    private readonly sequence: LlamaContextSequence,
    private readonly contextSize: number,
    private readonly signal: AbortSignal,
    private readonly probabilities: TokenProbabilities = 'confidence',
    private readonly batchPriority?: EvaluationPriority,
    private readonly gate?: BatchGate,
  ) {}

  get meanProbability(): number | undefined {
    return this.probabilities !== 'none' && this.generated.length > 0 ? this.confidenceSum / this.generated.length : undefined;
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
   * dropped (one decode per phase) and the last handed-out token is already in the cache.
   */
  async *run(options: SequenceEvaluateOptions): AsyncGenerator<GeneratedToken> {
    this.ended = undefined;
    if (this.signal.aborted) throw cancelledError();
    if (this.pending.length === 0 || this.sequence.nextTokenIndex + this.pending.length >= this.contextSize) {
      this.ended = 'context-full';
      return;
    }
    const input = this.pending;
    this.pending = [];
    const metadata = { confidence: this.probabilities !== 'none', probabilities: this.probabilities === 'distribution' };
    const steps = this.sequence.evaluateWithMetadata(input, metadata, { ...options, evaluationPriority: this.batchPriority });
    const iterator = (steps as AsyncIterable<GeneratedToken>)[Symbol.asyncIterator]();
    const gate = this.gate;
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
        if (this.sequence.nextTokenIndex + 1 >= this.contextSize) {
          // No room to evaluate it: the token stays pending, and this phase ends after it.
          this.pending = [step.token];
          yield step;
          this.ended = 'context-full';
          return;
        }
        ahead = this.ask(iterator, gate);
        // Until the caller awaits it, a failure of the token asked ahead has no handler.
        ahead.catch(() => {});
        yield step;
        if (this.signal.aborted) throw cancelledError();
      }
    } finally {
      // The caller stopped: let the decode in flight finish so the cache holds what was handed out.
      if (ahead) await ahead.catch(() => undefined);
      gate?.leave();
      // What `for await` does on an early exit: ends node-llama-cpp's generation loop.
      await iterator.return?.();
    }
    this.ended = 'eog';
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
