// The Anthropic Messages provider: POST {baseUrl}/v1/messages over undici, always streaming,
// each server-sent event converted to canonical parts as it arrives.
//
// Timeouts (deployment.options): connectTimeoutMs (TCP/TLS connect), firstByteTimeoutMs (request
// sent → response headers), idleTimeoutMs (longest silence inside the body; Anthropic's `ping`
// events keep a healthy stream alive). All three fail with kind `timeout`.

import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, request as undiciRequest, type Dispatcher } from 'undici';
import { GatewayError } from '../../core/errors.js';
import { newProxyDispatcher } from '../../core/proxy.js';
import type { Capabilities, Provider, ProviderCallContext, ProviderFactory } from '../../core/provider.js';
import type { ResolvedDeployment } from '../../core/models.js';
import type { ChatRequest, StreamPart } from '../../core/types.js';
import type { AnthropicStreamEvent } from './api.js';
import { ANTHROPIC_DEFAULT_BASE_URL } from './api.js';
import { anthropicHttpError, anthropicTransportError } from './errors.js';
import { anthropicOptions, type AnthropicDeploymentOptions } from './options.js';
import { prepareAnthropicRequest, type PreparedAnthropicRequest } from './build-request.js';
import { countTokensBody, countedTokens } from './count-tokens.js';
import { textifyDocuments } from './convert-messages.js';
import { AnthropicStreamConverter } from './stream.js';

export const ANTHROPIC_CAPABILITIES: Capabilities = {
  modalities: ['text', 'image', 'document'],
  tools: true,
  // JSON output is emulated with a forced `json_response` tool call (see prepare-tools.ts).
  structuredOutput: 'native',
  reasoning: true,
  multipleChoices: false,
  logprobs: false,
  sampling: ['temperature', 'topP', 'topK', 'stop'],
};

/** {baseUrl}/v1/messages; a baseUrl that already ends in /v1 is not doubled. */
export function messagesUrl(baseUrl: string | undefined): string {
  const base = (baseUrl ?? ANTHROPIC_DEFAULT_BASE_URL).replace(/\/+$/, '');
  return base.endsWith('/v1') ? `${base}/messages` : `${base}/v1/messages`;
}

function parseEvent(message: EventSourceMessage): AnthropicStreamEvent {
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    throw new GatewayError('upstream_invalid', `Anthropic sent an event that is not JSON (${message.event ?? 'message'})`, {
      provider: 'anthropic',
      code: 'upstream_invalid_event',
    });
  }
  if (!data || typeof data !== 'object') {
    throw new GatewayError('upstream_invalid', 'Anthropic sent an event without a body', { provider: 'anthropic', code: 'upstream_invalid_event' });
  }
  const event = data as { type?: string };
  // The data carries its type; the SSE event name is the same and serves as a fallback.
  if (typeof event.type !== 'string' && message.event) event.type = message.event;
  return event as AnthropicStreamEvent;
}

/** The messages request for `request`, documents the upstream cannot read turned into text. */
async function prepare(request: ChatRequest, deployment: ResolvedDeployment, options: AnthropicDeploymentOptions): Promise<PreparedAnthropicRequest> {
  const messages = await textifyDocuments(request.messages);
  return prepareAnthropicRequest(messages === request.messages ? request : { ...request, messages }, deployment, options);
}

function requestHeaders(deployment: ResolvedDeployment, options: AnthropicDeploymentOptions, prepared: PreparedAnthropicRequest, accept: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept,
    'anthropic-version': options.anthropicVersion,
  };
  if (deployment.apiKey) headers['x-api-key'] = deployment.apiKey;
  if (prepared.betas.length) headers['anthropic-beta'] = prepared.betas.join(',');
  return Object.assign(headers, deployment.headers ?? {});
}

export class AnthropicProvider implements Provider {
  readonly name = 'anthropic';
  private readonly agents = new Map<number, Dispatcher>();

  capabilities(_deployment: ResolvedDeployment): Capabilities {
    return ANTHROPIC_CAPABILITIES;
  }

  private agent(connectTimeoutMs: number): Dispatcher {
    let agent = this.agents.get(connectTimeoutMs);
    if (!agent) {
      // Through the environment's proxy when it names one (core/proxy.ts).
      const connect = { timeout: connectTimeoutMs };
      agent = newProxyDispatcher({ connect }) ?? new Agent({ connect });
      this.agents.set(connectTimeoutMs, agent);
    }
    return agent;
  }

  async *stream(request: ChatRequest, context: ProviderCallContext): AsyncGenerator<StreamPart> {
    const { deployment, signal } = context;
    const options = anthropicOptions(deployment.options);
    const prepared = await prepare(request, deployment, options);
    if (prepared.droppedUnsignedReasoning > 0) {
      context.logger.debug({ dropped: prepared.droppedUnsignedReasoning }, 'anthropic: reasoning parts without a signature were not sent back');
    }
    if (prepared.thinkingDroppedReason) {
      context.logger.debug(
        prepared.thinkingDroppedReason === 'forced-tool'
          ? 'anthropic: thinking left off: the tool choice forces a tool, which Anthropic refuses with thinking'
          : 'anthropic: thinking left off: the tool-use turn being continued has no thinking block to send back',
      );
    }

    if (signal.aborted) throw anthropicTransportError(signal.reason, signal);
    let response: Awaited<ReturnType<typeof undiciRequest>>;
    try {
      response = await undiciRequest(messagesUrl(deployment.baseUrl), {
        method: 'POST',
        headers: requestHeaders(deployment, options, prepared, 'text/event-stream'),
        body: JSON.stringify(prepared.body),
        signal,
        dispatcher: this.agent(options.connectTimeoutMs),
        headersTimeout: options.firstByteTimeoutMs,
        bodyTimeout: options.idleTimeoutMs,
      });
    } catch (err) {
      throw anthropicTransportError(err, signal);
    }

    const body = response.body;
    let ended = false;
    let complete = false;
    let bytesRead = 0;
    try {
      if (response.statusCode < 200 || response.statusCode >= 300) {
        let text = '';
        try {
          text = await body.text();
          ended = true;
        } catch {
          // The status says enough.
        }
        throw anthropicHttpError(response.statusCode, response.headers, text);
      }
      const contentType = String(response.headers['content-type'] ?? '');
      if (!contentType.includes('text/event-stream')) {
        const text = await body.text().catch(() => '');
        ended = true;
        throw new GatewayError('upstream_invalid', `Anthropic answered with ${contentType || 'no content type'} instead of an event stream: ${text.slice(0, 200)}`, {
          provider: 'anthropic',
          code: 'upstream_not_streaming',
        });
      }

      const converter = new AnthropicStreamConverter({ jsonTool: prepared.jsonTool, excludeReasoning: request.reasoning?.exclude === true });
      const pending: StreamPart[] = [];
      let failure: unknown;
      const emit = (part: StreamPart) => pending.push(part);
      const parser = createParser({
        onEvent: (message) => {
          if (failure !== undefined || converter.finished) return;
          try {
            converter.transform(parseEvent(message), emit);
          } catch (err) {
            failure = err;
          }
        },
      });
      const decoder = new TextDecoder();

      // Iterated by hand: leaving a for-await loop would destroy the body (and the connection).
      const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      for (;;) {
        const next = await chunks.next();
        if (next.done) break;
        const chunk = next.value;
        bytesRead += chunk.length;
        parser.feed(decoder.decode(chunk, { stream: true }));
        // Parts that came before a failure in the same chunk are delivered first.
        for (const part of pending.splice(0)) yield part;
        if (failure !== undefined) throw failure;
        if (converter.finished) {
          complete = true;
          return;
        }
      }
      ended = true;
      parser.feed(decoder.decode());
      for (const part of pending.splice(0)) yield part;
      if (failure !== undefined) throw failure;
      converter.flush();
    } catch (err) {
      throw anthropicTransportError(err, signal);
    } finally {
      if (!ended && !body.destroyed) {
        // After message_stop the upstream ends the body at once: read the rest in the background
        // so the kept-alive connection goes back to the pool. On an error, or when the consumer
        // stopped early, cut the connection.
        if (complete) body.dump({ limit: bytesRead + 64 * 1024 }).catch(() => undefined);
        else body.destroy();
      }
    }
  }

  /** The prompt's tokens as Anthropic counts them (count-tokens.ts), for the same request `stream` would send. */
  async countInputTokens(request: ChatRequest, context: ProviderCallContext): Promise<number> {
    const { deployment, signal } = context;
    const options = anthropicOptions(deployment.options);
    const prepared = await prepare(request, deployment, options);
    if (signal.aborted) throw anthropicTransportError(signal.reason, signal);
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let text: string;
    try {
      const response = await undiciRequest(`${messagesUrl(deployment.baseUrl)}/count_tokens`, {
        method: 'POST',
        headers: requestHeaders(deployment, options, prepared, 'application/json'),
        body: JSON.stringify(countTokensBody(prepared.body)),
        signal,
        dispatcher: this.agent(options.connectTimeoutMs),
        headersTimeout: options.firstByteTimeoutMs,
        bodyTimeout: options.idleTimeoutMs,
      });
      ({ statusCode: status, headers } = response);
      text = await response.body.text();
    } catch (err) {
      throw anthropicTransportError(err, signal);
    }
    if (status < 200 || status >= 300) throw anthropicHttpError(status, headers, text);
    const tokens = countedTokens(text);
    if (tokens === undefined) {
      throw new GatewayError('upstream_invalid', `Anthropic answered count_tokens without input_tokens: ${text.slice(0, 200)}`, {
        provider: 'anthropic',
        code: 'upstream_invalid_body',
      });
    }
    return tokens;
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
  }
}

export const createAnthropicProvider: ProviderFactory = () => new AnthropicProvider();
