// Canonical request → ConverseStream input.
//
// inferenceConfig {maxTokens, temperature, topP, stopSequences}; top_k and reasoning go in
// additionalModelRequestFields, by model family (see api.ts):
//   claude: thinking {type:'enabled', budget_tokens} (budget added on top of maxTokens, which
//           Claude requires to exceed the budget), top_k, anthropic_beta (the client's beta flags);
//           whitespace-only stop sequences left out (Claude refuses them, as on Anthropic's API);
//           thinking left off when the tool choice forces a tool (Claude refuses both) or the
//           tool turn being continued has no reasoning block (toolTurnLacksThinking);
//   nova:   reasoningConfig {type:'enabled', maxReasoningEffort low|medium|high}, inferenceConfig.topK;
//           a reasoning budget (budgetTokens) is added to maxTokens, as Nova's maxTokens counts
//           the reasoning too while the canonical maxTokens is the answer's alone.
// request.providerOptions.bedrock: Converse's own top-level fields (guardrailConfig,
// performanceConfig, requestMetadata, serviceTier, promptVariables, outputConfig,
// additionalModelResponseFieldPaths) go top-level; `additionalModelRequestFields` and any other
// key are merged into additionalModelRequestFields.

import { badRequest } from '../../core/errors.js';
import type { ChatRequest } from '../../core/types.js';
import { forcesToolCall, nonBlankStopSequences } from '../../core/types.js';
import type { ResolvedDeployment } from '../../core/models.js';
import type { AdditionalFields, BedrockDocument, BedrockMessage, ConverseStreamCommandInput, InferenceConfiguration } from './api.js';
import type { BedrockDeploymentOptions } from './options.js';
import { MIN_THINKING_BUDGET, THINKING_BUDGET_BY_EFFORT, novaEffort } from './options.js';
import type { JsonResponseTool } from './prepare-tools.js';
import { prepareBedrockTools } from './prepare-tools.js';
import { convertToBedrockMessages } from './convert-messages.js';

const TOP_LEVEL = new Set([
  'guardrailConfig',
  'performanceConfig',
  'requestMetadata',
  'serviceTier',
  'promptVariables',
  'outputConfig',
  'additionalModelResponseFieldPaths',
]);
const RESERVED = new Set(['modelId', 'messages', 'system', 'inferenceConfig', 'toolConfig']);

export interface PreparedBedrockRequest {
  input: ConverseStreamCommandInput;
  jsonTool?: JsonResponseTool;
  droppedUnsignedReasoning: number;
  /** Reasoning was asked for but Claude's thinking was left off, and why (see toolTurnLacksThinking and forcesToolCall). */
  thinkingDroppedReason?: ThinkingDroppedReason;
}

/** `tool-turn`: see toolTurnLacksThinking; `forced-tool`: see forcesToolCall. */
export type ThinkingDroppedReason = 'tool-turn' | 'forced-tool';


/**
 * Whether the request continues a tool-use turn (it ends with tool results) whose assistant
 * message does not start with reasoning content. Claude refuses thinking then ("a final
 * `assistant` message must start with a thinking block … To avoid this requirement, disable
 * `thinking`"), as it does on Anthropic's own API: the earlier turn's signed thinking could not
 * come back (made without thinking, by another provider, or through a dialect without signatures).
 */
export function toolTurnLacksThinking(messages: BedrockMessage[]): boolean {
  const last = messages.at(-1);
  if (last?.role !== 'user' || !last.content?.some((b) => b.toolResult !== undefined)) return false;
  const assistant = messages.at(-2);
  if (assistant?.role !== 'assistant') return false;
  return assistant.content?.[0]?.reasoningContent === undefined;
}

function setPath(target: AdditionalFields, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node = (node[key] = next && typeof next === 'object' && !Array.isArray(next) ? (next as AdditionalFields) : {}) as AdditionalFields;
  }
  node[keys[keys.length - 1]!] = value;
}

function reasoningOn(request: ChatRequest): boolean {
  const r = request.reasoning;
  return !!r && r.enabled && r.effort !== 'none';
}

export function prepareBedrockRequest(request: ChatRequest, deployment: ResolvedDeployment, options: BedrockDeploymentOptions): PreparedBedrockRequest {
  const prompt = convertToBedrockMessages(request.messages);
  const thinkingDroppedReason: ThinkingDroppedReason | undefined =
    !reasoningOn(request) || options.family !== 'claude'
      ? undefined
      : toolTurnLacksThinking(prompt.messages)
        ? 'tool-turn'
        : forcesToolCall(request, 'bedrock')
          ? 'forced-tool'
          : undefined;
  const reasoning = reasoningOn(request) && !thinkingDroppedReason;
  const tools = prepareBedrockTools(request, reasoning, prompt);
  const additional: AdditionalFields = {};
  const inferenceConfig: InferenceConfiguration = {};

  let maxTokens = request.maxTokens ?? options.maxTokens;
  if (reasoning) {
    const r = request.reasoning!;
    if (options.family === 'claude') {
      const budget = Math.max(MIN_THINKING_BUDGET, Math.floor(r.budgetTokens ?? (r.effort ? THINKING_BUDGET_BY_EFFORT[r.effort as keyof typeof THINKING_BUDGET_BY_EFFORT] : options.defaultThinkingBudget)));
      additional.thinking = { type: 'enabled', budget_tokens: budget };
      maxTokens = (maxTokens ?? 4096) + budget;
    } else if (options.family === 'nova') {
      additional.reasoningConfig = { type: 'enabled', maxReasoningEffort: novaEffort(r.effort, r.budgetTokens) };
      // Nova's maxTokens covers its reasoning as well; the canonical one is the answer's alone
      // (the Messages dialect takes the budget out of max_tokens), so the budget goes back on.
      if (maxTokens !== undefined && r.budgetTokens !== undefined && r.budgetTokens > 0) maxTokens += Math.floor(r.budgetTokens);
    } else {
      throw badRequest(
        `The Bedrock model '${deployment.model}' has no known reasoning control (set deployment.options.family to 'claude' or 'nova' if it is one)`,
        'reasoning',
        'unsupported_parameter',
      );
    }
  }
  if (maxTokens !== undefined) inferenceConfig.maxTokens = maxTokens;
  if (request.temperature !== undefined) inferenceConfig.temperature = request.temperature;
  if (request.topP !== undefined) inferenceConfig.topP = request.topP;
  const stop = options.family === 'claude' ? nonBlankStopSequences(request.stop) : (request.stop ?? []);
  if (stop.length) inferenceConfig.stopSequences = stop;
  if (request.topK !== undefined) {
    if (!options.topKField) throw badRequest(`The Bedrock model '${deployment.model}' does not support 'top_k'`, 'top_k', 'unsupported_parameter');
    setPath(additional, options.topKField, request.topK);
  }

  const input: ConverseStreamCommandInput = { modelId: deployment.model, messages: prompt.messages };
  const system = prompt.system ? [...prompt.system] : [];
  if (tools.systemInstruction) system.push({ text: tools.systemInstruction });
  if (system.length) input.system = system;
  if (Object.keys(inferenceConfig).length) input.inferenceConfig = inferenceConfig;
  if (tools.toolConfig) input.toolConfig = tools.toolConfig;

  const extra = request.providerOptions?.bedrock ?? {};
  const target = input as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined || RESERVED.has(key)) continue;
    if (TOP_LEVEL.has(key)) target[key] = value;
    else if (key === 'additionalModelRequestFields' && value && typeof value === 'object') Object.assign(additional, value);
    else additional[key] = value;
  }
  // Claude on Bedrock takes the client's Anthropic beta flags in the body.
  if (options.family === 'claude' && request.anthropicBetas?.length) {
    const given = Array.isArray(additional.anthropic_beta) ? (additional.anthropic_beta as unknown[]) : [];
    additional.anthropic_beta = [...new Set([...given, ...request.anthropicBetas])];
  }
  if (Object.keys(additional).length) input.additionalModelRequestFields = additional as BedrockDocument;
  // Claude says which stop sequence fired only when asked (Converse's stopReason does not).
  if (options.family === 'claude' && stop.length) {
    input.additionalModelResponseFieldPaths = [...new Set([...(input.additionalModelResponseFieldPaths ?? []), '/delta/stop_sequence'])];
  }

  return {
    input,
    jsonTool: tools.jsonTool,
    droppedUnsignedReasoning: prompt.droppedUnsignedReasoning,
    ...(thinkingDroppedReason ? { thinkingDroppedReason } : {}),
  };
}
