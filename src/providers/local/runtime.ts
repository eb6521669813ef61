// The llama.cpp runtime: one `Llama` per provider, one loaded model per source shared by every
// request, each with one context whose sequences are decoded together in batches.

import os from 'node:os';
import { getLlama, LlamaLogLevel, resolveChatWrapper, type ChatWrapper, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import type { Logger } from 'pino';
import { DEFAULT_LOCAL_CONTEXT_SIZE, defaultCacheDir, type Config } from '../../core/config.js';
import { GatewayError, isGatewayError } from '../../core/errors.js';
import type { ResolvedDeployment } from '../../core/models.js';
import { pullModel } from './download.js';
import { BatchGate } from './batch-gate.js';
import { inSequenceOrder } from './batch-order.js';
import { checkGgufHeader } from './gguf-header.js';
import { GrammarCache } from './grammars.js';
import { SequencePool } from './sequence-pool.js';
import { SlicedTokenizer } from './sliced-tokenizer.js';
import { vocabularyFacts } from './vocabulary.js';


export interface LoadedModel {
  readonly source: string;
  readonly path: string;
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly pool: SequencePool;
  readonly chatWrapper: ChatWrapper;
  readonly grammars: GrammarCache;
  /** Tokens one request (prompt + output) can hold. */
  readonly contextSize: number;
  /** The most characters one token stands for: a text of n characters is at least n / this tokens. */
  readonly longestTokenChars: number;
  /** Holds decodes until the generating sequences have all asked (see batch-gate.ts). */
  readonly gate: BatchGate;
  /** Tokenizes prompts, long ones a slice at a time. */
  readonly tokenizer: SlicedTokenizer;
}

export class LocalRuntime {
  private llama?: Promise<Llama>;
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private readonly loaded = new Set<LoadedModel>();

  constructor(
    private readonly settings: Config['local'],
    private readonly logger: Logger,
  ) {}

  /**
   * More threads than cores make each decode wait on descheduled threads: measured here with 2
   * threads on a loaded 2-core VM, 17 tokens/s against ≈ 300 with 1 (docs/benchmarks.md (b)).
   */
  private warnIfThreadsExceedCores(): void {
    const cores = os.availableParallelism();
    if (this.settings.threads <= cores) return;
    this.logger.warn({ threads: this.settings.threads, cores }, `local.threads is ${this.settings.threads}, more than the ${cores} CPU cores here: generation will be much slower than with ${cores} or fewer`);
  }

  /** The model of `deployment`, downloading and loading it on first use. */
  load(deployment: ResolvedDeployment): Promise<LoadedModel> {
    const source = deployment.model;
    let pending = this.loading.get(source);
    if (!pending) {
      pending = this.loadModel(deployment);
      // A failed load is not cached: the next request tries again.
      pending.catch(() => this.loading.delete(source));
      this.loading.set(source, pending);
    }
    return pending;
  }

  stats(): { queueDepth: number; active: number; decodeRounds: number; decodeRoundSequences: number } {
    let queueDepth = 0;
    let active = 0;
    let decodeRounds = 0;
    let decodeRoundSequences = 0;
    for (const m of this.loaded) {
      queueDepth += m.pool.queueDepth;
      active += m.pool.activeCount;
      decodeRounds += m.gate.rounds;
      decodeRoundSequences += m.gate.roundSequences;
    }
    return { queueDepth, active, decodeRounds, decodeRoundSequences };
  }

  async close(): Promise<void> {
    const models = [...this.loaded];
    this.loaded.clear();
    this.loading.clear();
    for (const m of models) m.pool.close();
    for (const m of models) {
      await m.context.dispose().catch(() => undefined);
      await m.model.dispose().catch(() => undefined);
    }
    const llama = this.llama;
    this.llama = undefined;
    if (llama) await (await llama).dispose().catch(() => undefined);
  }

  private getLlama(): Promise<Llama> {
    if (!this.llama) this.warnIfThreadsExceedCores();
    this.llama ??= getLlama({
      gpu: this.settings.gpu,
      build: 'never',
      skipDownload: true,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (!text) return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) this.logger.error({ component: 'llama.cpp' }, text);
        else if (level === LlamaLogLevel.warn) this.logger.warn({ component: 'llama.cpp' }, text);
        else this.logger.debug({ component: 'llama.cpp' }, text);
      },
    }).catch((err: unknown) => {
      this.llama = undefined;
      throw new GatewayError('unavailable', `The llama.cpp runtime could not start: ${(err as Error).message}`, { cause: err });
    });
    return this.llama;
  }

  private async loadModel(deployment: ResolvedDeployment): Promise<LoadedModel> {
    const path = await pullModel(deployment.model, {
      cacheDir: this.settings.cacheDir ?? defaultCacheDir(),
      sha256: deployment.sha256,
      size: deployment.size,
    });
    const llama = await this.getLlama();
    const started = performance.now();
    let model: LlamaModel | undefined;
    try {
      await checkGgufHeader(path);
      model = await llama.loadModel({ modelPath: path });
      const contextSize = Math.min(this.settings.contextSize ?? DEFAULT_LOCAL_CONTEXT_SIZE, model.trainContextSize);
      const gate = new BatchGate();
      const context = await model.createContext({
        sequences: this.settings.parallel,
        contextSize,
        threads: this.settings.threads,
        batching: { dispatchSchedule: gate.schedule, itemPrioritizationStrategy: inSequenceOrder },
        failedCreationRemedy: false,
      });
      const sequences = Array.from({ length: this.settings.parallel }, () => context.getSequence());
      const vocabulary = await vocabularyFacts(model);
      const loaded: LoadedModel = {
        source: deployment.model,
        path,
        llama,
        model,
        context,
        pool: new SequencePool(sequences, this.settings.queueLimit),
        chatWrapper: resolveChatWrapper(model),
        grammars: new GrammarCache(llama),
        contextSize: context.contextSize,
        longestTokenChars: vocabulary.longestTokenChars,
        gate,
        tokenizer: new SlicedTokenizer(model, vocabulary),
      };
      this.loaded.add(loaded);
      this.logger.info(
        { model: path, ms: Math.round(performance.now() - started), contextSize: loaded.contextSize, sequences: this.settings.parallel, threads: this.settings.threads, chatWrapper: loaded.chatWrapper.wrapperName },
        'local model loaded',
      );
      return loaded;
    } catch (err) {
      await model?.dispose().catch(() => undefined);
      if (isGatewayError(err)) throw err;
      throw new GatewayError('unavailable', `The local model ${path} could not be loaded: ${(err as Error).message}`, { cause: err, retryable: false });
    }
  }
}
