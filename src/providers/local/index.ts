// The `local` provider: GGUF models run in-process through node-llama-cpp. Requests on one
// model share its context; up to `local.parallel` of them decode together in batches, the rest
// wait in a bounded FIFO queue (see sequence-pool.ts).

import { GatewayError } from '../../core/errors.js';
import type { ResolvedDeployment, ResolvedModel } from '../../core/models.js';
import type { Capabilities, Provider, ProviderCallContext, ProviderFactory } from '../../core/provider.js';
import type { ChatRequest, StreamPart } from '../../core/types.js';
import { runChoices } from './choices.js';
import { ResponseGenerator, type ResponsePlan } from './generate.js';
import { generationEnded } from './native-memory.js';
import { buildPlan } from './plan.js';
import { promptTokensAtLeast, renderPrompt } from './prompt.js';
import { LocalRuntime, type LoadedModel } from './runtime.js';
import type { SequenceLease } from './sequence-pool.js';
import { parseModelSource } from './source.js';

export { pullModel } from './download.js';

const CAPABILITIES: Capabilities = {
  modalities: ['text'],
  tools: true,
  structuredOutput: 'grammar',
  reasoning: true,
  // n choices decoded side by side on the sequences of one context (choices.ts).
  multipleChoices: true,
  logprobs: true,
  sampling: ['temperature', 'topP', 'topK', 'minP', 'seed', 'stop', 'presencePenalty', 'frequencyPenalty', 'repetitionPenalty', 'logitBias'],
};

function promptTooLong(contextSize: number, promptTokens: string): GatewayError {
  return new GatewayError(
    'context_window',
    `This model's maximum context length is ${contextSize} tokens (prompt and answer together), but the prompt is ${promptTokens} tokens. Shorten the conversation.`,
    { param: 'messages', code: 'context_length_exceeded' },
  );
}

export const createLocalProvider: ProviderFactory = (env) => {
  const runtime = new LocalRuntime(env.config.local, env.logger);
  const warnedContext = new Set<string>();
  /**
   * A model listed with a longer context than its sequences hold would turn prompts away that its
   * listing (and the admission checks) promise to take. Where the config left the context to the
   * server, the listing takes the served one; where it set one, the operator is told once.
   */
  const checkContext = (model: Pick<ResolvedModel, 'id' | 'contextLength' | 'contextLengthFromServer'> | undefined, served: number) => {
    if (model?.contextLengthFromServer) {
      model.contextLength = Math.min(model.contextLength, served);
      return;
    }
    if (!model || model.contextLength <= served || warnedContext.has(model.id)) return;
    warnedContext.add(model.id);
    env.logger.warn(
      { model: model.id, contextLength: model.contextLength, servedContext: served },
      'local model: its contextLength is longer than the context each sequence is served with; raise local.contextSize or lower contextLength',
    );
  };

  async function* stream(request: ChatRequest, context: ProviderCallContext): AsyncGenerator<StreamPart> {
    const loaded = await runtime.load(context.deployment);
    checkContext(context.model, loaded.contextSize);
    const atLeast = promptTokensAtLeast(loaded, request);
    if (atLeast >= loaded.contextSize) throw promptTooLong(loaded.contextSize, `at least ${atLeast}`);
    const plan = await buildPlan(loaded, request, context.deployment);
    const promptTokens = plan.prompt.tokens.length;
    if (promptTokens >= loaded.contextSize) throw promptTooLong(loaded.contextSize, String(promptTokens));
    const n = request.n ?? 1;
    const leases = await loaded.pool.acquireMany(plan.prompt.tokens, Math.min(n, loaded.pool.size), context.signal);
    if (n === 1) {
      yield* generate(loaded, plan, leases[0]!, context, (lease) => lease.release());
      return;
    }
    // A fixed seed must still give n different choices: choice i samples with seed + i.
    const seeded = (i: number): ResponsePlan => (request.seed === undefined ? plan : { ...plan, request: { ...plan.request, seed: request.seed + i } });
    yield* runChoices(n, leases, (i, lease, done) => generate(loaded, seeded(i), lease, context, done));
  }

  async function* generate(loaded: LoadedModel, plan: ResponsePlan, lease: SequenceLease, context: ProviderCallContext, done: (lease: SequenceLease) => void): AsyncGenerator<StreamPart> {
    const started = performance.now();
    let generator: ResponseGenerator | undefined;
    try {
      generator = new ResponseGenerator(loaded, lease, plan, context.signal);
      for await (const part of generator.run(context.model.id)) {
        if (part.type === 'finish') {
          const seconds = (performance.now() - started) / 1000;
          context.logger.debug(
            { requestId: context.requestId, inputTokens: part.usage.inputTokens, outputTokens: part.usage.outputTokens, tokensPerSecond: Math.round(part.usage.outputTokens / seconds) },
            'local generation finished',
          );
        }
        yield part;
      }
    } finally {
      // A token asked ahead and dropped may still be decoding: the sequence goes back after it,
      // while the response ends now.
      void (generator?.driver.idle() ?? Promise.resolve()).then(() => {
        done(lease);
        generationEnded();
      });
    }
  }

  const provider: Provider = {
    name: 'local',
    capabilities: (deployment) => (deployment.options.tokenProbabilities === false ? { ...CAPABILITIES, logprobs: false } : CAPABILITIES),
    stream,
    async countPromptTokens(request: ChatRequest, deployment: ResolvedDeployment, limit?: number) {
      const loaded = await runtime.load(deployment);
      const atLeast = promptTokensAtLeast(loaded, request);
      return limit !== undefined && atLeast > limit ? atLeast : (await renderPrompt(loaded, request)).tokens.length;
    },
    checkDeployment(deployment: ResolvedDeployment) {
      // A malformed `hf:` reference throws here, at start, instead of failing each request.
      parseModelSource(deployment.model);
    },
    async warmUp(deployment: ResolvedDeployment, model?: ResolvedModel) {
      checkContext(model, (await runtime.load(deployment)).contextSize);
    },
    stats() {
      const { queueDepth, active, decodeRounds, decodeRoundSequences } = runtime.stats();
      // The last two are running totals: their ratio is how many sequences share a decode.
      return { local_queue_depth: queueDepth, local_active_sequences: active, local_decode_rounds: decodeRounds, local_decode_round_sequences: decodeRoundSequences };
    },
    close: () => runtime.close(),
  };
  return provider;
};
