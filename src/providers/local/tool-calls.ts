// Writes tool calls in the model's own call syntax: the fixed parts are forced into the
// sequence, the tool name is chosen under a grammar of the offered names, and the arguments
// under the tool's JSON-schema grammar, streamed as tool-input deltas. After a call the model
// may open another one (parallel calls) or end its turn.

import { LlamaGrammarEvaluationState, LlamaText, type LlamaGrammar, type SequenceEvaluateOptions } from 'node-llama-cpp';
import { GatewayError } from '../../core/errors.js';
import type { ChatRequest, FinishReason, StreamPart } from '../../core/types.js';
import { closingBias } from './closing-bias.js';
import { IncrementalDetokenizer } from './detokenizer.js';
import { JsonCompletionTracker } from './json-tracker.js';
import { newToolCallId, type PartWriter } from './part-writer.js';
import type { LoadedModel } from './runtime.js';
import type { SamplingOptions } from './sampling.js';
import type { SequenceDriver } from './sequence-driver.js';
import type { ToolCallSyntax } from './tool-syntax.js';

/** Parallel tool calls one response may make. */
const MAX_TOOL_CALLS = 16;
/**
 * Tokens past `maxTokens` that closing a call's arguments may take. The closing bias needs a
 * handful for most schemas; one that demands more (long required strings, many required items)
 * is cut here, finish `length`, as OpenAI cuts a call at its limit.
 */
const CLOSING_BUDGET = 256;

/** What the tool-call writer shares with the response it is part of. */
export interface GenerationState {
  readonly loaded: LoadedModel;
  readonly request: ChatRequest;
  readonly driver: SequenceDriver;
  readonly out: PartWriter;
  /** Sampling under a grammar. */
  readonly sampling: SamplingOptions;
  /** Sampling for free text (with the logit bias). */
  readonly freeSampling: SamplingOptions;
  readonly maxTokens: number;
  force(text: LlamaText): void;
}

export interface OfferedTools {
  names: string[];
  syntax: ToolCallSyntax;
  grammars: Map<string, LlamaGrammar>;
}

export class ToolCallWriter {
  private calls = 0;

  constructor(
    private readonly state: GenerationState,
    private readonly tools: OfferedTools,
  ) {}

  /**
   * One or more calls to `names`. `triggered`: the model already wrote the start of the call
   * syntax. A call whose arguments are still open at `maxTokens` is closed (see
   * writeArguments), so it parses and matches the schema; finish `length` if that too runs out.
   */
  async *write(names: string[], triggered: boolean, forced: boolean): AsyncGenerator<StreamPart, FinishReason> {
    const { syntax } = this.tools;
    const { driver, request } = this.state;
    for (;;) {
      this.state.force(triggered ? syntax.afterTrigger : syntax.prefix);
      let name: string;
      if (names.length === 1) {
        name = names[0]!;
        this.state.force(LlamaText([name, syntax.paramsPrefix(name)]));
      } else {
        name = await this.chooseName(names);
      }
      const id = newToolCallId();
      yield* this.state.out.toolStart(id, name);
      const closed = yield* this.writeArguments(id, this.tools.grammars.get(name)!);
      yield { type: 'tool-input-end', id };
      if (!closed) return 'length';
      this.calls++;
      const more = !forced && request.parallelToolCalls !== false && this.calls < MAX_TOOL_CALLS && driver.generated.length < this.state.maxTokens;
      if (!more) return 'tool-calls';
      this.state.force(syntax.suffixAndSeparator(name));
      if (!(await this.anotherCallFollows())) return 'tool-calls';
      triggered = true;
      names = this.tools.names;
    }
  }

  private async chooseName(names: string[]): Promise<string> {
    const { syntax } = this.tools;
    const { loaded, driver } = this.state;
    const terminator = syntax.nameTerminator;
    const grammar = await loaded.grammars.forNames(names, terminator);
    const grammarEvaluationState = new LlamaGrammarEvaluationState({ model: loaded.model, grammar });
    const detokenizer = new IncrementalDetokenizer(loaded.model);
    // Without a terminator a name that prefixes another is only final when the grammar ends.
    const complete = (text: string) => names.find((n) => text === n + terminator && (terminator !== '' || !names.some((o) => o !== n && o.startsWith(n))));
    let text = '';
    let name: string | undefined;
    for await (const step of driver.run({ ...this.state.sampling, grammarEvaluationState })) {
      text += detokenizer.push(step.token);
      name = complete(text);
      if (name) break;
    }
    text += detokenizer.flush();
    name ??= names.find((n) => text === n + terminator);
    if (!name) throw contextRanOut('choosing a tool');
    this.state.force(syntax.paramsPrefixAfterTerminator(name));
    return name;
  }

  /**
   * The arguments under the tool's grammar. At `maxTokens` they are closed instead of left to
   * run on (a recursive or unbounded schema lets a model write until the context is full):
   * greedy decoding with the closing bias, at most CLOSING_BUDGET tokens more. False when even
   * that did not close them: the call ends where it stopped.
   */
  private async *writeArguments(id: string, grammar: LlamaGrammar): AsyncGenerator<StreamPart, boolean> {
    const { loaded, driver, maxTokens } = this.state;
    const grammarEvaluationState = new LlamaGrammarEvaluationState({ model: loaded.model, grammar });
    const detokenizer = new IncrementalDetokenizer(loaded.model);
    const tracker = new JsonCompletionTracker();
    const write = async function* (options: SequenceEvaluateOptions, until: number): AsyncGenerator<StreamPart, 'closed' | 'limit' | 'ended'> {
      if (driver.generated.length >= until) return 'limit';
      for await (const step of driver.run(options)) {
        let text = detokenizer.push(step.token);
        const end = tracker.push(text);
        if (end >= 0) text = text.slice(0, end);
        if (text) yield { type: 'tool-input-delta', id, delta: text };
        if (tracker.complete) return 'closed';
        if (driver.generated.length >= until) return 'limit';
      }
      return 'ended';
    };
    let outcome = yield* write({ ...this.state.sampling, grammarEvaluationState }, maxTokens);
    if (outcome === 'limit') {
      const bias = await closingBias(loaded.model);
      // Read before each token: the bias depends on whether the arguments end inside a string.
      const closing = { temperature: 0, grammarEvaluationState, tokenBias: () => (tracker.inString ? bias.inString : bias.outside) };
      outcome = yield* write(closing, driver.generated.length + CLOSING_BUDGET);
    }
    if (outcome === 'ended') throw contextRanOut('writing tool call arguments');
    if (outcome === 'limit') {
      const rest = detokenizer.flush();
      if (rest) yield { type: 'tool-input-delta', id, delta: rest };
    }
    return outcome === 'closed';
  }

  /** After a call: does the model open another one, or end its turn? */
  private async anotherCallFollows(): Promise<boolean> {
    const { loaded, driver } = this.state;
    const triggers = this.tools.syntax.triggers;
    const detokenizer = new IncrementalDetokenizer(loaded.model);
    let text = '';
    for await (const step of driver.run(this.state.freeSampling)) {
      text += detokenizer.push(step.token);
      const start = text.trimStart();
      if (triggers.some((t) => start.startsWith(t))) return true;
      if (start && !triggers.some((t) => t.startsWith(start))) return false;
      if (driver.generated.length >= this.state.maxTokens) return false;
    }
    return false;
  }
}

function contextRanOut(what: string): GatewayError {
  return new GatewayError('context_window', `The model's context filled up while ${what}`, { code: 'context_length_exceeded', retryable: false });
}
