// Helpers over async iterables of stream parts: priming (split "failed before content" from
// "failed during"), merging n choices, and collecting a buffered response.

import { GatewayError, toGatewayError } from './errors.js';
import type { FinishReason, StreamPart, TokenLogprob, Usage } from './types.js';
import { addChoiceUsage, emptyUsage } from './types.js';

/** Parts that mean the response has begun: after one of these, failures are in-stream. */
export function isContentPart(part: StreamPart): boolean {
  return (
    part.type === 'text-delta' ||
    part.type === 'reasoning-delta' ||
    part.type === 'tool-input-start' ||
    part.type === 'tool-result' ||
    part.type === 'finish'
  );
}

/**
 * An async iterator of parts may also hand over, with no promise, a part it already holds: one
 * network read often completes several parts, and each `await next()` across the layers between
 * the upstream and the socket allocated ≈ 0.3–0.7 KB per part (docs/benchmarks.md). `undefined`
 * means nothing is ready: call `next()`, which also reports the end and failures.
 */
export interface ReadyParts {
  takeReady?(): StreamPart | undefined;
}

/** The part `iterator` holds ready, if it offers any. */
export function takeReady(iterator: AsyncIterator<StreamPart>): StreamPart | undefined {
  return (iterator as ReadyParts).takeReady?.();
}

/**
 * A provider's side of ReadyParts: the parts one network read completed. The provider's generator
 * yields the first; the consumer may take the others with `takeReady` before it resumes the
 * generator, which then yields only what is left (`while (ready.pending) yield ready.take()!`).
 */
export class ReadyQueue {
  private parts: StreamPart[] = [];
  private position = 0;

  fill(parts: StreamPart[]): void {
    this.parts = parts;
    this.position = 0;
  }

  get pending(): boolean {
    return this.position < this.parts.length;
  }

  take(): StreamPart | undefined {
    return this.position < this.parts.length ? this.parts[this.position++] : undefined;
  }
}

/** Wraps a provider's generator so that its iterator offers the ready parts of its ReadyQueue. */
export function withReadyParts(run: (ready: ReadyQueue) => AsyncGenerator<StreamPart>): AsyncIterable<StreamPart> {
  return {
    [Symbol.asyncIterator]: (): AsyncIterator<StreamPart> & ReadyParts => {
      const ready = new ReadyQueue();
      const parts = run(ready);
      return {
        next: () => parts.next(),
        return: (value?: unknown) => parts.return(value),
        takeReady: () => ready.take(),
      };
    },
  };
}

/**
 * Reads a stream part by part as `for await` would, taking ready parts without a promise:
 * `const part = reader.ready() ?? (await reader.next())`, `undefined` at the end; `stop()` in a
 * `finally`, which stops a stream left early (and the upstream call behind it).
 */
export class PartReader {
  private readonly iterator: AsyncIterator<StreamPart>;
  private ended = false;

  constructor(stream: AsyncIterable<StreamPart>) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** A part already here; `undefined`: call `next()`. */
  ready(): StreamPart | undefined {
    return this.ended ? undefined : takeReady(this.iterator);
  }

  /** The next part, waiting for it; `undefined` when the stream has ended. */
  async next(): Promise<StreamPart | undefined> {
    const result = await this.iterator.next();
    if (!result.done) return result.value;
    this.ended = true;
    return undefined;
  }

  async stop(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.iterator.return?.().catch(() => undefined);
  }
}

/** Watches a primed stream from the inside: no extra async layer per part. */
export interface StreamObserver {
  /** Sees every part, just before the consumer does. */
  part?(part: StreamPart): void;
  /** Called once: `completed` when the stream was read to its end, false when stopped early. */
  end?(completed: boolean): void;
}

export interface PrimedStream extends AsyncIterable<StreamPart> {
  /** Parts read while priming, replayed first. */
  readonly head: StreamPart[];
  /** Adds an observer (router bookkeeping, accounting); returns the same stream. */
  observe(observer: StreamObserver): PrimedStream;
}

/**
 * Reads `source` until its first content part. A failure before that rejects (so the caller can
 * retry, fall back or answer with an HTTP error); afterwards failures become `error` parts.
 *
 * The returned stream is one hand-written iterator over the source, with observers called
 * inline: each part crosses one promise here instead of one async generator per wrapper.
 */
export async function primeStream(source: AsyncIterable<StreamPart>, onFirstContent?: () => void): Promise<PrimedStream> {
  const iterator = source[Symbol.asyncIterator]();
  const head: StreamPart[] = [];
  let sourceDone = false;
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        sourceDone = true;
        break;
      }
      if (next.value.type === 'error') throw next.value.error;
      head.push(next.value);
      if (isContentPart(next.value)) break;
    }
  } catch (err) {
    await iterator.return?.().catch(() => undefined);
    throw toGatewayError(err);
  }
  onFirstContent?.();
  return new PrimedPartStream(head, iterator, sourceDone);
}

/**
 * Primes every stream. When one fails, the others are stopped before its error is thrown: they
 * may hold upstream work or a local model's sequence, and nothing else would ever read them.
 */
export async function primeAll(sources: AsyncIterable<StreamPart>[]): Promise<PrimedStream[]> {
  const settled = await Promise.allSettled(sources.map((source) => primeStream(source)));
  const primed = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (!failure) return primed;
  await Promise.all(primed.map((stream) => stream[Symbol.asyncIterator]().return?.().catch(() => undefined)));
  throw failure.reason;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

class PrimedPartStream implements PrimedStream {
  private readonly observers: StreamObserver[] = [];
  private position = 0;
  /** No more parts: the source ended, failed (after its error part) or the consumer stopped. */
  private finished = false;

  constructor(
    readonly head: StreamPart[],
    private readonly source: AsyncIterator<StreamPart>,
    private sourceDone: boolean,
  ) {}

  observe(observer: StreamObserver): PrimedStream {
    this.observers.push(observer);
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamPart> & ReadyParts {
    return {
      next: () => this.next(),
      return: () => this.stop(),
      takeReady: () => this.takeReady(),
    };
  }

  private deliver(part: StreamPart): IteratorResult<StreamPart> {
    return { done: false, value: this.notify(part) };
  }

  private notify(part: StreamPart): StreamPart {
    for (const observer of this.observers) observer.part?.(part);
    return part;
  }

  /** The next part when it is already here (ReadyParts), observers notified as for `next()`. */
  private takeReady(): StreamPart | undefined {
    if (this.finished) return undefined;
    if (this.position < this.head.length) return this.notify(this.head[this.position++]!);
    if (this.sourceDone) return undefined;
    const part = takeReady(this.source);
    return part === undefined ? undefined : this.notify(part);
  }

  private close(completed: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.tellEnd(completed);
  }

  private tellEnd(completed: boolean): void {
    for (const observer of this.observers) observer.end?.(completed);
  }

  private next(): Promise<IteratorResult<StreamPart>> {
    if (this.finished) return Promise.resolve(DONE);
    if (this.position < this.head.length) return Promise.resolve(this.deliver(this.head[this.position++]!));
    if (this.sourceDone) {
      this.close(true);
      return Promise.resolve(DONE);
    }
    return this.source.next().then(
      (result) => {
        if (this.finished) return DONE;
        if (!result.done) return this.deliver(result.value);
        this.sourceDone = true;
        this.close(true);
        return DONE;
      },
      (err: unknown) => {
        if (this.finished) return DONE;
        // The failure is the last part; the stream then ends as read to its end.
        this.sourceDone = true;
        const result = this.deliver({ type: 'error', error: toGatewayError(err) });
        this.close(true);
        return result;
      },
    );
  }

  /**
   * The consumer stopped early (client gone): stop the upstream work too. The observers hear of the
   * end only once that work has stopped, so a concurrency slot they give back is really free.
   */
  private async stop(): Promise<IteratorResult<StreamPart>> {
    if (!this.finished) {
      const stoppedEarly = !this.sourceDone;
      this.finished = true;
      if (stoppedEarly) await this.source.return?.().catch(() => undefined);
      this.tellEnd(false);
    }
    return DONE;
  }
}

/** Interleaves several streams, tagging each part with its choice index. */
export async function* mergeChoices(streams: AsyncIterable<StreamPart>[]): AsyncGenerator<StreamPart> {
  const iterators = streams.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ index: number; result: IteratorResult<StreamPart> }>>();
  const pull = (index: number) => pending.set(index, iterators[index]!.next().then((result) => ({ index, result })));
  iterators.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield { ...result.value, choice: index } as StreamPart;
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.().catch(() => undefined)));
  }
}

export interface CollectedToolCall {
  id: string;
  name: string;
  arguments: string;
  serverExecuted?: { serverName?: string };
}

export interface CollectedToolResult {
  toolCallId: string;
  toolName: string;
  result: unknown;
  isError?: boolean;
  extra?: Record<string, unknown>;
}

/** One item of an assistant turn, in the order it was produced. */
export type CollectedBlock =
  | { type: 'text'; text: string; citations?: Array<Record<string, unknown>>; refusal?: boolean }
  | { type: 'provider-block'; provider: string; block: Record<string, unknown> }
  | { type: 'reasoning'; text: string; signature?: string; redactedData?: string }
  | { type: 'tool-call'; call: CollectedToolCall }
  | { type: 'tool-result'; result: CollectedToolResult };

export interface CollectedChoice {
  index: number;
  /** All text, a refusal's included (dialects without a refusal field show it as the answer). */
  text: string;
  /** The part of `text` that is the model's refusal (OpenAI's `refusal`), if any. */
  refusal?: string;
  reasoning: string;
  reasoningSignature?: string;
  toolCalls: CollectedToolCall[];
  toolResults: CollectedToolResult[];
  blocks: CollectedBlock[];
  finishReason: FinishReason;
  usage: Usage;
  meanTokenProbability?: number;
  /** Token log-probabilities of the answer text, when the request asked for them. */
  logprobs?: TokenLogprob[];
  rawResponse?: unknown;
}

export interface CollectedResponse {
  model?: string;
  responseId?: string;
  choices: CollectedChoice[];
  /** Summed over choices; the prompt counted once. */
  usage: Usage;
  /** Set when the stream ended with an error part. */
  error?: GatewayError;
}

function newChoice(index: number): CollectedChoice {
  return { index, text: '', reasoning: '', toolCalls: [], toolResults: [], blocks: [], finishReason: 'stop', usage: emptyUsage() };
}

/** Accumulates parts into a buffered response; usable incrementally via `add`. */
export class ResponseCollector {
  readonly response: CollectedResponse = { choices: [], usage: emptyUsage() };
  private readonly toolInputs = new Map<string, CollectedToolCall>();
  private readonly openBlocks = new Map<string, CollectedBlock>();

  choice(index = 0): CollectedChoice {
    let c = this.response.choices[index];
    if (!c) {
      c = newChoice(index);
      this.response.choices[index] = c;
    }
    return c;
  }

  add(part: StreamPart): void {
    const choice = this.choice(part.choice ?? 0);
    const key = (id: string) => `${part.choice ?? 0}:${id}`;
    switch (part.type) {
      case 'start':
        this.response.model ??= part.model;
        this.response.responseId ??= part.responseId;
        break;
      case 'text-start': {
        const block: CollectedBlock = { type: 'text', text: '', ...(part.refusal && { refusal: true }) };
        choice.blocks.push(block);
        this.openBlocks.set(key(part.id), block);
        break;
      }
      case 'text-delta': {
        choice.text += part.delta;
        let block = this.openBlocks.get(key(part.id));
        if (!block) {
          block = { type: 'text', text: '' };
          choice.blocks.push(block);
          this.openBlocks.set(key(part.id), block);
        }
        if (block.type === 'text') block.text += part.delta;
        if (block.type === 'text' && block.refusal) choice.refusal = (choice.refusal ?? '') + part.delta;
        if (part.logprobs) (choice.logprobs ??= []).push(...part.logprobs);
        break;
      }
      case 'text-citation': {
        const block = this.openBlocks.get(key(part.id));
        if (block?.type === 'text') (block.citations ??= []).push(part.citation);
        break;
      }
      case 'provider-block':
        choice.blocks.push({ type: 'provider-block', provider: part.provider, block: part.block });
        break;
      case 'reasoning-start': {
        const block: CollectedBlock = { type: 'reasoning', text: '', redactedData: part.redactedData };
        choice.blocks.push(block);
        this.openBlocks.set(key(part.id), block);
        break;
      }
      case 'reasoning-delta': {
        choice.reasoning += part.delta;
        let block = this.openBlocks.get(key(part.id));
        if (!block) {
          block = { type: 'reasoning', text: '' };
          choice.blocks.push(block);
          this.openBlocks.set(key(part.id), block);
        }
        if (block.type === 'reasoning') block.text += part.delta;
        break;
      }
      case 'reasoning-end': {
        const block = this.openBlocks.get(key(part.id));
        if (part.signature) {
          choice.reasoningSignature = part.signature;
          if (block?.type === 'reasoning') block.signature = part.signature;
        }
        break;
      }
      case 'tool-input-start': {
        const call: CollectedToolCall = { id: part.id, name: part.toolName, arguments: '', serverExecuted: part.serverExecuted };
        this.toolInputs.set(key(part.id), call);
        choice.toolCalls.push(call);
        choice.blocks.push({ type: 'tool-call', call });
        break;
      }
      case 'tool-input-delta': {
        const call = this.toolInputs.get(key(part.id));
        if (call) call.arguments += part.delta;
        break;
      }
      case 'tool-result': {
        const result: CollectedToolResult = { toolCallId: part.toolCallId, toolName: part.toolName, result: part.result, isError: part.isError, extra: part.extra };
        choice.toolResults.push(result);
        choice.blocks.push({ type: 'tool-result', result });
        break;
      }
      case 'finish': {
        choice.finishReason = part.finishReason;
        choice.usage = part.usage;
        choice.meanTokenProbability = part.meanTokenProbability;
        choice.rawResponse = part.rawResponse;
        this.response.usage = addChoiceUsage(this.response.usage, part.usage);
        break;
      }
      case 'error':
        this.response.error = toGatewayError(part.error);
        break;
      default:
        break;
    }
  }
}

/** Collects a whole stream into a buffered response. An error part is thrown. */
export async function collectStream(parts: AsyncIterable<StreamPart>): Promise<CollectedResponse> {
  const collector = new ResponseCollector();
  const reader = new PartReader(parts);
  try {
    for (let part; (part = reader.ready() ?? (await reader.next())) !== undefined; ) collector.add(part);
  } finally {
    await reader.stop();
  }
  if (collector.response.error) throw collector.response.error;
  if (collector.response.choices.length === 0) collector.choice(0);
  return collector.response;
}
