// The Bedrock provider: ConverseStream through @aws-sdk/client-bedrock-runtime (HTTP/2, or HTTP/1.1
// through an egress proxy: client.ts; SigV4 signing), every request streamed, each event converted as it comes.
//
// Timeouts (deployment.options) are the provider's own timers on an AbortController passed to
// the SDK: connectTimeoutMs + firstByteTimeoutMs bound the wait for the response headers,
// idleTimeoutMs the silence between two events. Both fail with kind `timeout`. The caller's
// AbortSignal aborts the same controller.

import { ConverseStreamCommand, CountTokensCommand } from '@aws-sdk/client-bedrock-runtime';
import { GatewayError } from '../../core/errors.js';
import type { Capabilities, Provider, ProviderCallContext, ProviderFactory } from '../../core/provider.js';
import type { ResolvedDeployment } from '../../core/models.js';
import type { ChatRequest, StreamPart } from '../../core/types.js';
import type { ConverseStreamOutput } from './api.js';
import { BedrockClientPool } from './client.js';
import { bedrockError } from './errors.js';
import { bedrockOptions, type BedrockDeploymentOptions } from './options.js';
import { prepareBedrockRequest } from './build-request.js';
import { BedrockStreamConverter } from './stream.js';

export function bedrockCapabilities(deployment: ResolvedDeployment): Capabilities {
  const options = bedrockOptions(deployment.model, deployment.options);
  const sampling: Capabilities['sampling'] = ['temperature', 'topP', 'stop'];
  if (options.topKField) sampling.push('topK');
  return {
    modalities: ['text', 'image', 'video', 'document'],
    tools: true,
    // JSON output is emulated with a forced `json_response` tool call (see prepare-tools.ts).
    structuredOutput: 'native',
    // Reasoning is mapped for Claude (thinking) and Nova (reasoningConfig); refused otherwise.
    reasoning: options.family !== 'other',
    multipleChoices: false,
    logprobs: false,
    sampling,
  };
}

/** Never-settling rejections must not become unhandled ones. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * Bedrock's answers for a model id CountTokens will not take: "The provided model doesn't support
 * counting tokens." (reported for cross-region profiles such as `us.anthropic.claude-…`, whose
 * base model id counts) or "The provided model identifier is invalid."
 */
const UNCOUNTABLE = /support(s|ed)? counting tokens|token counting is not supported|model identifier is invalid/i;
/** A cross-region inference profile's geography prefix (`us.anthropic.claude-…`). */
const GEO_PREFIX = /^(us|eu|apac|global|jp|au|ca|us-gov)\./;

export class BedrockProvider implements Provider {
  readonly name = 'bedrock';
  private readonly pool = new BedrockClientPool();
  /** The id CountTokens took for a deployment's model (the profile's or its base model's), or null: none. */
  private readonly countingIds = new Map<string, string | null>();

  capabilities(deployment: ResolvedDeployment): Capabilities {
    return bedrockCapabilities(deployment);
  }

  async *stream(request: ChatRequest, context: ProviderCallContext): AsyncGenerator<StreamPart> {
    const { deployment, signal } = context;
    const options = bedrockOptions(deployment.model, deployment.options);
    const prepared = prepareBedrockRequest(request, deployment, options);
    if (prepared.droppedUnsignedReasoning > 0) {
      context.logger.debug({ dropped: prepared.droppedUnsignedReasoning }, 'bedrock: reasoning parts without a signature were not sent back');
    }
    if (prepared.thinkingDroppedReason) {
      context.logger.debug(
        prepared.thinkingDroppedReason === 'forced-tool'
          ? 'bedrock: thinking left off: the tool choice forces a tool, which Claude refuses with thinking'
          : 'bedrock: thinking left off: the tool-use turn being continued has no reasoning block to send back',
      );
    }
    const client = this.pool.get(deployment, options);
    if (signal.aborted) throw bedrockError(signal.reason, { signal });

    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const aborted = quiet(
      new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason ?? new Error('aborted')), { once: true });
      }),
    );
    let timedOut: 'first_byte' | 'idle' | undefined;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number, phase: 'first_byte' | 'idle') => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = phase;
        controller.abort(new Error(`bedrock ${phase} timeout`));
      }, ms);
    };

    let iterator: AsyncIterator<ConverseStreamOutput> | undefined;
    let complete = false;
    try {
      arm(options.connectTimeoutMs + options.firstByteTimeoutMs, 'first_byte');
      const response = await Promise.race([
        quiet(client.send(new ConverseStreamCommand(prepared.input), { abortSignal: controller.signal })),
        aborted,
      ]);
      clearTimeout(timer);
      if (!response.stream) {
        throw new GatewayError('upstream_invalid', 'Bedrock answered ConverseStream without an event stream', { provider: 'bedrock', code: 'upstream_not_streaming' });
      }
      const converter = new BedrockStreamConverter({ model: deployment.model, responseId: response.$metadata.requestId, jsonTool: prepared.jsonTool, excludeReasoning: request.reasoning?.exclude === true, stopSequences: prepared.input.inferenceConfig?.stopSequences });
      const pending: StreamPart[] = [];
      const emit = (part: StreamPart) => pending.push(part);
      iterator = response.stream[Symbol.asyncIterator]();
      for (;;) {
        // The idle timer runs only while waiting on Bedrock, never while the consumer is slow.
        arm(options.idleTimeoutMs, 'idle');
        const next = await Promise.race([quiet(iterator.next()), aborted]);
        clearTimeout(timer);
        if (next.done) break;
        converter.transform(next.value, emit);
        for (const part of pending.splice(0)) yield part;
        if (converter.finished) return; // messageStop and metadata are both in: nothing else follows
      }
      complete = true;
      converter.flush(emit);
      for (const part of pending.splice(0)) yield part;
    } catch (err) {
      throw bedrockError(err, { signal, timedOut });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (!complete) {
        // Stopped early (finished, failed, or the consumer left): close the upstream stream.
        if (!controller.signal.aborted) controller.abort(new Error('bedrock stream closed'));
        if (iterator?.return) quiet(iterator.return());
      }
    }
  }

  /**
   * The prompt's tokens from Bedrock's CountTokens, for the Converse request `stream` would send
   * (without inferenceConfig, which it does not take); undefined for a model it cannot count.
   * A cross-region profile id it refuses is tried again as its base model id; what worked (or
   * that nothing did) is remembered per model.
   */
  async countInputTokens(request: ChatRequest, context: ProviderCallContext): Promise<number | undefined> {
    const { deployment } = context;
    const known = this.countingIds.get(deployment.model);
    if (known === null) return undefined;
    const candidates = known ? [known] : [deployment.model, ...(GEO_PREFIX.test(deployment.model) ? [deployment.model.replace(GEO_PREFIX, '')] : [])];
    const options = bedrockOptions(deployment.model, deployment.options);
    const { messages, system, toolConfig, additionalModelRequestFields } = prepareBedrockRequest(request, deployment, options).input;
    const converse = { messages, system, toolConfig, additionalModelRequestFields };
    for (const modelId of candidates) {
      const counted = await this.countTokensAs(new CountTokensCommand({ modelId, input: { converse } }), options, context);
      if (counted !== undefined) {
        this.countingIds.set(deployment.model, modelId);
        return counted;
      }
    }
    this.countingIds.set(deployment.model, null);
    context.logger.info({ model: deployment.model }, 'bedrock: this model has no token counting; count_tokens estimates for it from now on');
    return undefined;
  }

  /** One CountTokens call; undefined when Bedrock will not count for the command's model id. */
  private async countTokensAs(command: CountTokensCommand, options: BedrockDeploymentOptions, context: ProviderCallContext): Promise<number | undefined> {
    const { deployment, signal } = context;
    const client = this.pool.get(deployment, options);
    if (signal.aborted) throw bedrockError(signal.reason, { signal });
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut: 'first_byte' | undefined;
    const timer = setTimeout(() => {
      timedOut = 'first_byte';
      controller.abort(new Error('bedrock first_byte timeout'));
    }, options.connectTimeoutMs + options.firstByteTimeoutMs);
    try {
      const { inputTokens } = await client.send(command, { abortSignal: controller.signal });
      if (typeof inputTokens !== 'number') {
        throw new GatewayError('upstream_invalid', 'Bedrock answered CountTokens without inputTokens', { provider: 'bedrock', code: 'upstream_invalid_body' });
      }
      return inputTokens;
    } catch (err) {
      const e = err as { name?: string; message?: string };
      if (!timedOut && !signal.aborted && e?.name === 'ValidationException' && UNCOUNTABLE.test(e.message ?? '')) return undefined;
      throw bedrockError(err, { signal, timedOut });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    this.pool.close();
  }
}

export const createBedrockProvider: ProviderFactory = () => new BedrockProvider();
