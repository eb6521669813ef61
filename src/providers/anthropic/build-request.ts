// Canonical request → the Anthropic Messages request body and headers.
//
// Sampling: temperature, top_p, top_k and stop sequences are sent as is (seed, penalties and
// min_p are refused by the core through capabilities), except whitespace-only stop sequences,
// which Anthropic refuses ("each stop sequence must contain non-whitespace"; OpenAI clients often
// send "\n"): they are left out, the others sent. max_tokens is required upstream: the
// request's, else deployment.options.maxTokens, else 4096. With thinking enabled, the thinking
// budget is added on top so the answer keeps its own max_tokens (Anthropic requires
// budget_tokens < max_tokens).
//
// Thinking is left off for a request that continues a tool-use turn whose assistant message does
// not start with a thinking block (see toolTurnLacksThinking), and for one whose tool choice
// forces a tool (`any` or a named tool: see forcesToolCall), which Anthropic refuses with thinking
// ("Thinking may not be enabled when tool_choice forces tool use"); the forced choice is kept.
//
// request.providerOptions.anthropic is merged into the body last (metadata, service_tier, a
// top-level cache_control, a hand-written `thinking`…), except `model`, `messages` and `stream`;
// its `betas` (string[]) go to the `anthropic-beta` header instead.

import type { ChatRequest, ReasoningConfig } from '../../core/types.js';
import { forcesToolCall, nonBlankStopSequences } from '../../core/types.js';
import type { ResolvedDeployment } from '../../core/models.js';
import type { AnthropicMessage, AnthropicMessagesRequest } from './api.js';
import type { AnthropicDeploymentOptions } from './options.js';
import { MIN_THINKING_BUDGET, THINKING_BUDGET_BY_EFFORT } from './options.js';
import type { JsonResponseTool } from './prepare-tools.js';
import { prepareAnthropicTools } from './prepare-tools.js';
import { convertToAnthropicMessages } from './convert-messages.js';

const RESERVED = new Set(['model', 'messages', 'stream', 'betas']);

export interface PreparedAnthropicRequest {
  body: AnthropicMessagesRequest;
  betas: string[];
  jsonTool?: JsonResponseTool;
  droppedUnsignedReasoning: number;
  /** Reasoning was asked for but thinking was left off, and why (see toolTurnLacksThinking and forcesToolCall). */
  thinkingDroppedReason?: ThinkingDroppedReason;
}

/** `tool-turn`: see toolTurnLacksThinking; `forced-tool`: see forcesToolCall. */
export type ThinkingDroppedReason = 'tool-turn' | 'forced-tool';


/**
 * Whether the request continues a tool-use turn (it ends with tool results) whose assistant
 * message does not start with a thinking block. Anthropic then refuses thinking: "When
 * `thinking` is enabled, a final `assistant` message must start with a thinking block (preceding
 * the lastmost set of `tool_use` and `tool_result` blocks) … To avoid this requirement, disable
 * `thinking`." It happens whenever the earlier turn's signed thinking could not come back: it was
 * made without thinking, by another provider, or through a dialect that cannot carry signatures
 * (organisation chat, Eden, an OpenAI client that drops `reasoning_details`).
 */
export function toolTurnLacksThinking(messages: AnthropicMessage[]): boolean {
  const last = messages.at(-1);
  if (last?.role !== 'user' || !last.content.some((b) => b.type === 'tool_result')) return false;
  const assistant = messages.at(-2);
  if (assistant?.role !== 'assistant') return false;
  const first = assistant.content[0];
  return first?.type !== 'thinking' && first?.type !== 'redacted_thinking';
}

/** The thinking budget for a reasoning config, or undefined when thinking is off. */
export function thinkingBudget(reasoning: ReasoningConfig | undefined, defaultBudget: number): number | undefined {
  if (!reasoning || !reasoning.enabled || reasoning.effort === 'none') return undefined;
  const budget = reasoning.budgetTokens ?? (reasoning.effort ? THINKING_BUDGET_BY_EFFORT[reasoning.effort] : defaultBudget);
  return Math.max(MIN_THINKING_BUDGET, Math.floor(budget));
}

export function prepareAnthropicRequest(
  request: ChatRequest,
  deployment: ResolvedDeployment,
  options: AnthropicDeploymentOptions,
): PreparedAnthropicRequest {
  const prompt = convertToAnthropicMessages(request.messages);
  const wanted = thinkingBudget(request.reasoning, options.defaultThinkingBudget);
  const thinkingDroppedReason: ThinkingDroppedReason | undefined =
    wanted === undefined ? undefined : toolTurnLacksThinking(prompt.messages) ? 'tool-turn' : forcesToolCall(request, 'anthropic') ? 'forced-tool' : undefined;
  const budget = thinkingDroppedReason ? undefined : wanted;
  const tools = prepareAnthropicTools(request, budget !== undefined);

  const maxTokens = request.maxTokens ?? options.maxTokens;
  const body: AnthropicMessagesRequest = {
    model: deployment.model,
    max_tokens: budget !== undefined ? maxTokens + budget : maxTokens,
    messages: prompt.messages,
    stream: true,
  };
  const system = prompt.system ? [...prompt.system] : [];
  if (tools.systemInstruction) system.push({ type: 'text', text: tools.systemInstruction });
  if (system.length) body.system = system;
  const serverTools = (request.providerTools ?? []).filter((t) => t.provider === 'anthropic').map((t) => t.definition);
  if (tools.tools || serverTools.length) body.tools = [...(tools.tools ?? []), ...serverTools];
  if (tools.toolChoice) body.tool_choice = tools.toolChoice;
  // display 'omitted' is asked of Anthropic itself, whose signature then covers a block sent back without text.
  if (budget !== undefined) body.thinking = { type: 'enabled', budget_tokens: budget, ...(request.reasoning?.omitText && { display: 'omitted' as const }) };
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.topP !== undefined) body.top_p = request.topP;
  if (request.topK !== undefined) body.top_k = request.topK;
  const stop = nonBlankStopSequences(request.stop);
  if (stop.length) body.stop_sequences = stop;

  const extra = request.providerOptions?.anthropic ?? {};
  for (const [key, value] of Object.entries(extra)) {
    if (!RESERVED.has(key) && value !== undefined) body[key] = value;
  }
  const extraBetas = extra.betas;
  const betas = [...options.betas, ...(request.anthropicBetas ?? []), ...(Array.isArray(extraBetas) ? extraBetas.filter((b): b is string => typeof b === 'string') : [])];

  return { body, betas: [...new Set(betas)], jsonTool: tools.jsonTool, droppedUnsignedReasoning: prompt.droppedUnsignedReasoning, ...(thinkingDroppedReason ? { thinkingDroppedReason } : {}) };
}
