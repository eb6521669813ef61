// One response, token by token: free text (reasoning split off, stop strings, an optional JSON
// grammar, tool-call detection) streamed as canonical parts while it is generated; tool calls
// are written by tool-calls.ts.

import { LlamaGrammarEvaluationState, LlamaText, type LlamaGrammar, type TokenBias } from 'node-llama-cpp';
import type { ChatRequest, FinishReason, ReasoningConfig, StreamPart, Usage } from '../../core/types.js';
import { IncrementalDetokenizer } from './detokenizer.js';
import { JsonCompletionTracker } from './json-tracker.js';
import { PartWriter } from './part-writer.js';
import type { RenderedPrompt } from './prompt.js';
import type { LoadedModel } from './runtime.js';
import { repeatPenalty, samplingOptions, type SamplingOptions } from './sampling.js';
import { SequenceDriver } from './sequence-driver.js';
import type { SequenceLease } from './sequence-pool.js';
import { StopScanner } from './stop-scanner.js';
import { ThinkSplitter } from './think-splitter.js';
import { TokenLogprobQueue } from './token-logprobs.js';
import { thoughtSyntax } from './thought-syntax.js';
import { ToolCallWriter, type GenerationState, type OfferedTools } from './tool-calls.js';

/** Reasoning budgets for an effort given without an explicit token budget (high: unbounded). */
const EFFORT_BUDGET: Partial<Record<NonNullable<ReasoningConfig['effort']>, number>> = { minimal: 256, low: 1024, medium: 4096 };

export interface ResponsePlan {
  request: ChatRequest;
  prompt: RenderedPrompt;
  /** Grammar for a JSON response format, when it applies. */
  jsonGrammar?: LlamaGrammar;
  /** Logit bias for free text. */
  tokenBias?: TokenBias;
  /** Compute each token's probability (for `meanTokenProbability`): asked for, and not turned off. */
  tokenProbabilities: boolean;
  /** Tool-call mode: `forced` lists the names one of which must be called. */
  tools: { mode: 'none' } | ({ mode: 'auto' | 'forced' } & OfferedTools);
}

type RunOutcome = FinishReason | 'restart';

export class ResponseGenerator implements GenerationState {
  readonly out = new PartWriter();
  readonly driver: SequenceDriver;
  readonly request: ChatRequest;
  readonly sampling: SamplingOptions;
  /** Sampling for free text: the request's options plus its logit bias. */
  readonly freeSampling: SamplingOptions & { tokenBias?: TokenBias };
  readonly maxTokens: number;
  private readonly thought;
  private readonly toolWriter?: ToolCallWriter;
  private reasoningTokens = 0;
  private stopSequence?: string;

  constructor(
    readonly loaded: LoadedModel,
    lease: SequenceLease,
    private readonly plan: ResponsePlan,
    signal: AbortSignal,
  ) {
    // Each token's probability only when the dialect reports a confidence score (a deployment's
    // `options.tokenProbabilities: false` turns that off) or logprobs: at temperature 0
    // node-llama-cpp sorts the whole vocabulary for it, every token (docs/providers.md). The whole
    // distribution only for alternatives: a chosen token's probability is its confidence.
    const top = plan.request.logprobs?.top ?? 0;
    const probabilities = top > 0 ? 'distribution' : plan.tokenProbabilities || plan.request.logprobs ? 'confidence' : 'none';
    // The canonical maxTokens is the answer's; what is generated includes the thinking budget.
    const budget = plan.request.reasoning?.enabled ? (plan.request.reasoning.budgetTokens ?? 0) : 0;
    this.maxTokens = plan.request.maxTokens === undefined ? Number.POSITIVE_INFINITY : plan.request.maxTokens + budget;
    this.driver = new SequenceDriver(lease.sequence, loaded.contextSize, signal, { probabilities, batchPriority: lease.batchPriority, gate: loaded.gate, maxTokens: this.maxTokens });
    this.sampling = samplingOptions(plan.request);
    this.freeSampling = { ...this.sampling, tokenBias: plan.tokenBias };
    this.thought = thoughtSyntax(loaded);
    this.request = plan.request;
    if (plan.tools.mode !== 'none') this.toolWriter = new ToolCallWriter(this, plan.tools);
  }

  async *run(modelName: string): AsyncGenerator<StreamPart, void> {
    const promptTokens = this.plan.prompt.tokens.length;
    yield { type: 'start', model: modelName, usage: { inputTokens: promptTokens, outputTokens: 0, totalTokens: promptTokens } };
    await this.driver.prepare(this.plan.prompt.tokens);
    const tools = this.plan.tools;
    // A forced call cannot wait for a thought the format opened: close it first.
    if (tools.mode === 'forced' && this.plan.prompt.startsInThought) this.force(LlamaText([this.thought.suffix, '\n\n']));
    const finishReason =
      tools.mode === 'forced' ? yield* this.toolWriter!.write(tools.names, false, true) : yield* this.freeText();
    yield* this.out.close();
    const usage: Usage = {
      inputTokens: this.plan.prompt.tokens.length,
      outputTokens: this.driver.generated.length,
      totalTokens: this.plan.prompt.tokens.length + this.driver.generated.length,
    };
    if (this.reasoningTokens > 0) usage.reasoningTokens = this.reasoningTokens;
    const stopped = finishReason === 'stop' && this.stopSequence !== undefined ? { stopSequence: this.stopSequence } : {};
    const contextFull = finishReason === 'length' && this.driver.ended === 'context-full' ? { contextFull: true } : {};
    yield { type: 'finish', finishReason, usage, meanTokenProbability: this.driver.meanProbability, ...stopped, ...contextFull };
  }

  /** Free generation until a stop, the token limit, the end of the turn, or a tool call. */
  private async *freeText(): AsyncGenerator<StreamPart, FinishReason> {
    const { request, prompt, tools } = this.plan;
    const triggers = tools.mode === 'auto' ? tools.syntax.triggers : [];
    const splitter = new ThinkSplitter(this.thought.open, this.thought.close, prompt.startsInThought);
    const scanner = new StopScanner([...(request.stop ?? []), ...prompt.stopTriggers, ...triggers]);
    const json = this.plan.jsonGrammar ? new JsonCompletionTracker() : undefined;
    const budget = request.reasoning?.budgetTokens ?? (request.reasoning?.effort ? EFFORT_BUDGET[request.reasoning.effort] : undefined);
    const exclude = request.reasoning?.exclude === true;
    const detokenizer = new IncrementalDetokenizer(this.loaded.model, prompt.tokens);
    const logprobs = request.logprobs ? new TokenLogprobQueue(this.loaded.model, request.logprobs.top) : undefined;
    const penalty = repeatPenalty(request, () => this.driver.generated);

    /** Answer text through the JSON tracker and the stop scanner; says whether and why to stop. */
    const answer = (text: string, parts: StreamPart[]): 'stop' | 'trigger' | undefined => {
      let complete = false;
      if (json) {
        const end = json.push(text);
        if (end >= 0) {
          text = text.slice(0, end);
          complete = true;
        }
      }
      const scanned = scanner.push(text);
      parts.push(...this.out.text(scanned.emit));
      if (scanned.match !== undefined) {
        if (triggers.includes(scanned.match)) return 'trigger';
        // The client's own stop sequences are reported (Anthropic's stop_sequence); the template's are not.
        if (request.stop?.includes(scanned.match)) this.stopSequence = scanned.match;
        return 'stop';
      }
      if (complete) {
        parts.push(...this.out.text(scanner.flush()));
        return 'stop';
      }
      return undefined;
    };
    const emit = (pieces: ReturnType<ThinkSplitter['push']>, parts: StreamPart[]) => {
      for (const piece of pieces) {
        if (piece.channel === 'reasoning') {
          if (!exclude) parts.push(...this.out.reasoning(piece.text));
          continue;
        }
        const outcome = answer(piece.text, parts);
        if (outcome) return outcome;
      }
      return undefined;
    };
    const flush = (): StreamPart[] => {
      const parts: StreamPart[] = [];
      const outcome = emit([...splitter.push(detokenizer.flush()), ...splitter.flush()], parts);
      if (!outcome) parts.push(...this.out.text(scanner.flush()));
      logprobs?.attach(parts);
      return parts;
    };

    const runOnce = async function* (this: ResponseGenerator): AsyncGenerator<StreamPart, RunOutcome> {
      // The JSON grammar starts with the answer, so a model may still think first.
      const grammar = this.plan.jsonGrammar && !splitter.inReasoning ? this.plan.jsonGrammar : undefined;
      const grammarEvaluationState = grammar ? new LlamaGrammarEvaluationState({ model: this.loaded.model, grammar }) : undefined;
      for await (const step of this.driver.run({ ...this.freeSampling, repeatPenalty: penalty, grammarEvaluationState })) {
        const wasReasoning = splitter.inReasoning;
        if (wasReasoning) this.reasoningTokens++;
        const parts: StreamPart[] = [];
        // Only answer tokens have logprobs: OpenAI gives none for reasoning or the end of the turn.
        if (logprobs && !wasReasoning && !this.loaded.model.isEogToken(step.token)) logprobs.push(step.token, step.confidence, step.probabilities);
        const outcome = emit(splitter.push(detokenizer.push(step.token)), parts);
        logprobs?.attach(parts);
        if (splitter.inReasoning) logprobs?.discard();
        yield* parts;
        if (outcome === 'stop') return 'stop';
        if (outcome === 'trigger') return yield* this.toolWriter!.write((tools as OfferedTools).names, true, false);
        if (wasReasoning && !splitter.inReasoning && this.plan.jsonGrammar) return 'restart';
        if (splitter.inReasoning && budget !== undefined && this.reasoningTokens >= budget) {
          // Budget spent: close the thought ourselves and let the model answer.
          for (const piece of splitter.closeThought()) if (!exclude) yield* this.out.reasoning(piece.text);
          this.force(LlamaText([this.thought.suffix, '\n\n']));
          return 'restart';
        }
        if (this.driver.generated.length >= this.maxTokens) {
          yield* flush();
          return 'length';
        }
      }
      yield* flush();
      return this.driver.ended === 'context-full' ? 'length' : 'stop';
    };

    for (;;) {
      const outcome = yield* runOnce.call(this);
      if (outcome !== 'restart') return outcome;
    }
  }

  force(text: LlamaText): void {
    this.driver.force(text.tokenize(this.loaded.model.tokenizer));
  }
}
