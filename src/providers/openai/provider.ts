// The provider: capabilities, and one call = build the body, POST it, turn the response (SSE, or
// a buffered JSON completion) into canonical parts as the bytes arrive. A caller that collects the
// whole answer (a buffered client) gets a buffered upstream call: one JSON body to parse instead
// of an event per token.

import type { Logger } from 'pino';
import { GatewayError } from '../../core/errors.js';
import type { ResolvedDeployment } from '../../core/models.js';
import type { Capabilities, Provider, ProviderCallContext } from '../../core/provider.js';
import type { ChatRequest, StreamPart } from '../../core/types.js';
import { withReadyParts, type ReadyQueue } from '../../core/stream.js';
import { buildRequestBody, supportedSampling } from './build-request.js';
import { partsFromCompletionBody } from './convert-completion.js';
import { errorFromResponse, errorFromTransport, invalidUpstream, type ResponseHeaders } from './errors.js';
import { UpstreamClient, chatCompletionsTarget, requestHeaders } from './http.js';
import { readOptions, type OpenAIDeploymentOptions } from './options.js';
import { EventStreamReader } from './sse.js';
import { ChunkConverter } from './stream.js';

function contentType(headers: ResponseHeaders): string {
  const type = headers['content-type'];
  return (Array.isArray(type) ? type[0] : type) ?? '';
}

export class OpenAIProvider implements Provider {
  readonly name = 'openai';
  private readonly client = new UpstreamClient();
  // Options are read once per deployment object, not once per request.
  private readonly optionsCache = new WeakMap<ResolvedDeployment, OpenAIDeploymentOptions>();

  constructor(private readonly logger: Logger) {}

  private options(deployment: ResolvedDeployment): OpenAIDeploymentOptions {
    let options = this.optionsCache.get(deployment);
    if (!options) {
      options = readOptions(deployment);
      this.optionsCache.set(deployment, options);
    }
    return options;
  }

  capabilities(deployment: ResolvedDeployment): Capabilities {
    return {
      // The model config decides what a model accepts; this provider can send text and images.
      modalities: ['text', 'image'],
      tools: true,
      structuredOutput: 'native',
      reasoning: true,
      multipleChoices: true,
      logprobs: true,
      sampling: supportedSampling(this.options(deployment)),
      bufferedCalls: true,
    };
  }

  stream(request: ChatRequest, context: ProviderCallContext): AsyncIterable<StreamPart> {
    // The rest of one read's parts can be taken while the generator waits at the yield of the first.
    return withReadyParts((ready) => this.streamChat(request, context, ready));
  }

  private async *streamChat(request: ChatRequest, context: ProviderCallContext, ready: ReadyQueue): AsyncGenerator<StreamPart> {
    const { deployment, signal } = context;
    const options = this.options(deployment);
    const buffered = context.buffered === true;
    const body = JSON.stringify(buildRequestBody(request, deployment.model, options, buffered));
    const target = chatCompletionsTarget(deployment);
    if (signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled', { provider: this.name });
    let response;
    try {
      response = await this.client.post(target, requestHeaders(deployment, context.requestId, buffered), body, options, signal, buffered);
    } catch (err) {
      throw errorFromTransport(err, options, signal);
    }
    const converter = new ChunkConverter({ tagChoices: (request.n ?? 1) > 1, excludeReasoning: request.reasoning?.exclude === true, logprobs: request.logprobs !== undefined });
    try {
      if (response.statusCode >= 300) {
        const error = errorFromResponse(response.statusCode, response.headers, await response.body.text(), target.path);
        this.logger.debug({ deployment: deployment.name, status: response.statusCode, kind: error.kind }, 'upstream error response');
        throw error;
      }
      const type = contentType(response.headers);
      if (type.includes('text/html')) {
        // A login page of a captive portal or proxy, answered with 200: neither of the API's shapes.
        throw invalidUpstream(`The upstream answered with ${type} instead of an event stream or JSON: ${(await response.body.text()).slice(0, 200)}`);
      }
      if (type.includes('application/json')) {
        // A buffered call, or an upstream that ignored `stream: true` and answered with the whole completion.
        ready.fill(partsFromCompletionBody(await response.body.text(), converter));
        while (ready.pending) yield ready.take()!;
        return;
      }
      const reader = new EventStreamReader(converter);
      for await (const chunk of response.body) {
        ready.fill(reader.feed(chunk));
        while (ready.pending) yield ready.take()!;
        reader.check();
      }
      ready.fill(reader.end());
      while (ready.pending) yield ready.take()!;
      reader.check();
    } catch (err) {
      throw errorFromTransport(err, options, signal);
    } finally {
      // Failed or stopped early (the client went away): close the connection so the upstream
      // stops generating. A fully read body keeps its connection for the next request.
      if (!response.body.readableEnded) response.body.destroy();
    }
  }

  stats(): Record<string, number> {
    return this.client.stats();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
