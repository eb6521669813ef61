// The contract between the core and a provider. A provider turns a canonical request into a
// stream of canonical parts; it never sees a wire request of any dialect.

import type { Logger } from 'pino';
import type { Config, Modality } from './config.js';
import type { ChatRequest, StreamPart } from './types.js';
import type { ResolvedDeployment, ResolvedModel } from './models.js';

export interface Capabilities {
  /** Input modalities the upstream model accepts natively. */
  modalities: Modality[];
  tools: boolean;
  /** 'grammar': constrained decoding; 'native': upstream json_schema mode; 'none': core validates/emulates. */
  structuredOutput: 'grammar' | 'native' | 'none';
  reasoning: boolean;
  /** Several choices from one upstream call (else the core makes n calls). */
  multipleChoices: boolean;
  /** Token probabilities: confidence_score, and token logprobs when a request asks for them. */
  logprobs: boolean;
  /**
   * Makes a buffered upstream call when the caller collects the whole answer (context.buffered).
   * Such a call has no first token to time: the router bounds it by its total timeout only.
   */
  bufferedCalls?: boolean;
  /** Sampling and output-control fields the provider can honour; the core refuses the others with a 400. */
  sampling: Array<'temperature' | 'topP' | 'topK' | 'minP' | 'seed' | 'stop' | 'presencePenalty' | 'frequencyPenalty' | 'repetitionPenalty' | 'logitBias' | 'verbosity'>;
}

export interface ProviderCallContext {
  model: ResolvedModel;
  deployment: ResolvedDeployment;
  signal: AbortSignal;
  /** Request id, for upstream correlation headers and logs. */
  requestId: string;
  /** The caller collects the whole answer before replying: a provider with bufferedCalls may make a buffered call. */
  buffered?: boolean;
  logger: Logger;
}

export interface Provider {
  readonly name: string;
  capabilities(deployment: ResolvedDeployment): Capabilities;
  /**
   * Streams the response. Throws a GatewayError for failures; the core decides whether a failure
   * is retried, falls back, becomes an HTTP error or an in-stream error.
   */
  stream(request: ChatRequest, context: ProviderCallContext): AsyncIterable<StreamPart>;
  /**
   * Exact token count of a request's prompt, where the provider has a tokenizer. With `limit`, a
   * count above it may be a lower bound: the caller only asks whether the prompt fits.
   */
  countPromptTokens?(request: ChatRequest, deployment: ResolvedDeployment, limit?: number): Promise<number>;
  /**
   * Asks the upstream to count the prompt's input tokens as it would bill them: one network call,
   * for count-tokens routes only (never on the chat path: limits use countPromptTokens or an
   * estimate). Undefined when the upstream cannot count for this model; failures throw.
   */
  countInputTokens?(request: ChatRequest, context: ProviderCallContext): Promise<number | undefined>;
  /** Refuses, when the server starts, a deployment it could never serve (a malformed model source): throws saying why. */
  checkDeployment?(deployment: ResolvedDeployment): void;
  /** Loads what must be loaded before serving (a local model); called at start for the default model. */
  warmUp?(deployment: ResolvedDeployment, model?: ResolvedModel): Promise<void>;
  /** Numbers for /metrics and readiness (queue depth, loaded models). */
  stats?(): Record<string, number>;
  close?(): Promise<void>;
}

export interface ProviderEnvironment {
  config: Config;
  logger: Logger;
  dataDir: string;
}

export type ProviderFactory = (env: ProviderEnvironment) => Provider;
