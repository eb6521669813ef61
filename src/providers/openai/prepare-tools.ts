// Canonical tools, tool choice and parallel calls → OpenAI `tools`, `tool_choice`,
// `parallel_tool_calls`.

import { badRequest } from '../../core/errors.js';
import type { ChatRequest } from '../../core/types.js';
import type { OpenAIChatRequest, OpenAIToolChoice } from './api.js';

type PreparedTools = Pick<OpenAIChatRequest, 'tools' | 'tool_choice' | 'parallel_tool_calls'>;

export function prepareTools(request: ChatRequest): PreparedTools {
  const tools = request.tools ?? [];
  const choice = request.toolChoice;
  if (tools.length === 0) {
    // Without tools only "none" is meaningful, and it is what happens anyway.
    if (choice && choice.type !== 'none') throw badRequest(`tool_choice '${choice.type}' needs tools`, 'tool_choice');
    return {};
  }
  const out: PreparedTools = {
    tools: tools.map((t) => ({
      type: 'function',
      function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters, ...t.providerFields?.openai },
    })),
  };
  if (choice) out.tool_choice = convertToolChoice(choice, tools.map((t) => t.name));
  if (request.parallelToolCalls !== undefined) out.parallel_tool_calls = request.parallelToolCalls;
  return out;
}

function convertToolChoice(choice: NonNullable<ChatRequest['toolChoice']>, names: string[]): OpenAIToolChoice {
  if (choice.type !== 'tool') return choice.type;
  if (!names.includes(choice.name)) throw badRequest(`tool_choice names '${choice.name}', which is not among the tools`, 'tool_choice');
  return { type: 'function', function: { name: choice.name } };
}
