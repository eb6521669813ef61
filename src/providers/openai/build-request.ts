// Canonical request → the OpenAI request body. Sampling is one declarative table so the
// capabilities the core checks and the fields actually sent cannot drift apart.

import { badRequest } from '../../core/errors.js';
import type { Capabilities } from '../../core/provider.js';
import type { ChatRequest, ReasoningConfig, ResponseFormat } from '../../core/types.js';
import type { OpenAIChatRequest, OpenAIResponseFormat } from './api.js';
import { convertToOpenAIMessages } from './convert-messages.js';
import type { OpenAIDeploymentOptions } from './options.js';
import { prepareTools } from './prepare-tools.js';

type SamplingField = Capabilities['sampling'][number];

interface SamplingMapping {
  field: SamplingField;
  wire: string;
  /** Only sent where the upstream accepts it (deployment.options.extendedSampling). */
  extended?: boolean;
}

const SAMPLING: SamplingMapping[] = [
  { field: 'temperature', wire: 'temperature' },
  { field: 'topP', wire: 'top_p' },
  { field: 'seed', wire: 'seed' },
  { field: 'stop', wire: 'stop' },
  { field: 'presencePenalty', wire: 'presence_penalty' },
  { field: 'frequencyPenalty', wire: 'frequency_penalty' },
  { field: 'logitBias', wire: 'logit_bias' },
  { field: 'verbosity', wire: 'verbosity' },
  { field: 'topK', wire: 'top_k', extended: true },
  { field: 'minP', wire: 'min_p', extended: true },
  { field: 'repetitionPenalty', wire: 'repetition_penalty', extended: true },
];

/** Extra body fields a request may not override through providerOptions.openai. */
const RESERVED = new Set(['model', 'messages', 'stream', 'stream_options', 'n']);

export function supportedSampling(options: OpenAIDeploymentOptions): SamplingField[] {
  return SAMPLING.filter((s) => !s.extended || options.extendedSampling).map((s) => s.field);
}

/**
 * `buffered`: the caller collects the whole answer, so the upstream is asked for one
 * `chat.completion` (usage always included); otherwise a stream with a final usage chunk.
 */
export function buildRequestBody(request: ChatRequest, model: string, options: OpenAIDeploymentOptions, buffered = false): OpenAIChatRequest {
  const body: OpenAIChatRequest = {
    model,
    messages: convertToOpenAIMessages(request.messages),
    ...(buffered ? { stream: false } : { stream: true, stream_options: { include_usage: true } }),
    ...prepareTools(request),
  };
  for (const { field, wire, extended } of SAMPLING) {
    const value = request[field];
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    if (extended && !options.extendedSampling) {
      // The core refuses these from capabilities already; this keeps the provider honest alone.
      throw badRequest(`This upstream does not accept '${wire}'`, wire, 'unsupported_parameter');
    }
    body[wire] = value;
  }
  // The canonical maxTokens is the answer's; OpenAI's cap covers the reasoning too.
  const budget = request.reasoning?.enabled ? (request.reasoning.budgetTokens ?? 0) : 0;
  if (request.maxTokens !== undefined) body[options.maxCompletionTokens ? 'max_completion_tokens' : 'max_tokens'] = request.maxTokens + budget;
  if (request.n !== undefined) body.n = request.n;
  const responseFormat = convertResponseFormat(request.responseFormat);
  if (responseFormat) body.response_format = responseFormat;
  if (request.reasoning) Object.assign(body, convertReasoning(request.reasoning, options));
  if (request.logprobs) {
    body.logprobs = true;
    if (request.logprobs.top > 0) body.top_logprobs = request.logprobs.top;
  }
  for (const [key, value] of Object.entries(request.providerOptions?.openai ?? {})) {
    if (RESERVED.has(key)) throw badRequest(`providerOptions.openai may not set '${key}'`, `providerOptions.openai.${key}`);
    body[key] = value;
  }
  return body;
}

function convertResponseFormat(format: ResponseFormat | undefined): OpenAIResponseFormat | undefined {
  if (!format || format.type === 'text') return undefined;
  if (!format.schema) return { type: 'json_object' };
  // Not `strict`: OpenAI's strict mode refuses most ordinary schemas; the core validates the output.
  const name = (format.name ?? 'response').replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64);
  return { type: 'json_schema', json_schema: { name, ...(format.description && { description: format.description }), schema: format.schema } };
}

/** Budget → effort, for upstreams that only take an effort (OpenRouter maps the same way round). */
function effortForBudget(budget: number): string {
  if (budget < 4096) return 'low';
  if (budget < 16384) return 'medium';
  return 'high';
}

function convertReasoning(reasoning: ReasoningConfig, options: OpenAIDeploymentOptions): Partial<OpenAIChatRequest> {
  if (options.reasoningObject) {
    // OpenRouter's object carries everything (effort, budget, exclude), so it replaces reasoning_effort.
    return {
      reasoning: {
        enabled: reasoning.enabled,
        ...(reasoning.effort ? { effort: reasoning.effort } : {}),
        ...(reasoning.budgetTokens !== undefined ? { max_tokens: reasoning.budgetTokens } : {}),
        ...(reasoning.exclude !== undefined ? { exclude: reasoning.exclude } : {}),
      },
    };
  }
  if (reasoning.effort) return { reasoning_effort: reasoning.effort };
  // "Off" without an effort sends nothing: OpenAI has no universal off switch, and
  // reasoning_effort 'none' is refused by exactly the models for which no reasoning is the default.
  if (!reasoning.enabled) return {};
  if (reasoning.budgetTokens !== undefined) return { reasoning_effort: effortForBudget(reasoning.budgetTokens) };
  return {};
}
