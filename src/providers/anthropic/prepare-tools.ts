// Canonical tools, tool choice and JSON response format → Anthropic `tools` and `tool_choice`.
//
// Structured output is emulated with a forced tool call: a tool (named `json_response` unless the
// request already has a tool of that name) whose input schema is the requested schema. The stream
// converter turns that tool's input back into text, so the caller sees a JSON text answer.

import type { ChatRequest, JsonSchema, ToolDefinition } from '../../core/types.js';
import type { AnthropicTool, AnthropicToolChoice } from './api.js';

export interface JsonResponseTool {
  name: string;
  /** The requested schema is not an object schema: it was wrapped as `{value: schema}`. */
  wrapped: boolean;
}

export interface PreparedAnthropicTools {
  tools?: AnthropicTool[];
  toolChoice?: AnthropicToolChoice;
  /** Set when structured output is emulated with a tool. */
  jsonTool?: JsonResponseTool;
  /** Extra system text (the tool cannot be forced while thinking is enabled). */
  systemInstruction?: string;
}

/** Anthropic wants an object schema at the root of `input_schema`. */
export function toInputSchema(parameters: JsonSchema | undefined): Record<string, unknown> {
  if (!parameters || Object.keys(parameters).length === 0) return { type: 'object', properties: {} };
  if (parameters.type === undefined && parameters.properties !== undefined) return { type: 'object', ...parameters };
  return parameters;
}

function isObjectSchema(schema: JsonSchema): boolean {
  return schema.type === 'object' || (schema.type === undefined && typeof schema.properties === 'object');
}

export function jsonResponseToolName(tools: ToolDefinition[] | undefined): string {
  let name = 'json_response';
  while (tools?.some((t) => t.name === name)) name = `_${name}`;
  return name;
}

/** The JSON tool's definition and how its input maps back to the answer text. */
export function jsonResponseDefinition(request: ChatRequest): { name: string; description: string; schema: JsonSchema; wrapped: boolean } {
  const format = request.responseFormat as Extract<ChatRequest['responseFormat'], { type: 'json' }>;
  const schema = format.schema ?? { type: 'object', additionalProperties: true };
  const wrapped = !isObjectSchema(schema);
  return {
    name: jsonResponseToolName(request.tools),
    description: `Respond with your final answer as the input of this tool${format.name ? ` (${format.name})` : ''}. Call it exactly once.`,
    schema: wrapped ? { type: 'object', properties: { value: schema }, required: ['value'] } : schema,
    wrapped,
  };
}

/**
 * Emulation is used when JSON output is requested and the tool choice leaves room for it: not
 * with `none` (no tool may be called) nor with a specific tool forced by the caller (that turn
 * ends in the caller's tool call).
 */
export function emulatesJson(request: ChatRequest): boolean {
  return request.responseFormat?.type === 'json' && request.toolChoice?.type !== 'none' && request.toolChoice?.type !== 'tool';
}

export function prepareAnthropicTools(request: ChatRequest, thinking: boolean): PreparedAnthropicTools {
  const userTools = request.tools ?? [];
  const tools: AnthropicTool[] = userTools.map((t) => {
    const tool: AnthropicTool = { name: t.name, input_schema: toInputSchema(t.parameters) };
    if (t.description) tool.description = t.description;
    if (t.cacheControl) tool.cache_control = t.cacheControl;
    Object.assign(tool, t.providerFields?.anthropic);
    return tool;
  });
  const disableParallel = request.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};

  if (emulatesJson(request)) {
    const json = jsonResponseDefinition(request);
    tools.push({ name: json.name, description: json.description, input_schema: json.schema });
    const jsonTool = { name: json.name, wrapped: json.wrapped };
    if (thinking) {
      // Extended thinking refuses forced tool use: ask for the tool instead of forcing it.
      return {
        tools,
        toolChoice: { type: 'auto', ...disableParallel },
        jsonTool,
        systemInstruction: `When you give your final answer, call the ${json.name} tool with it; do not write it as text.`,
      };
    }
    const toolChoice: AnthropicToolChoice = userTools.length > 0 ? { type: 'any', ...disableParallel } : { type: 'tool', name: json.name };
    return { tools, toolChoice, jsonTool };
  }

  // Server tools (web search…) count: a tool choice applies to them as well.
  if (tools.length === 0 && !request.providerTools?.some((t) => t.provider === 'anthropic')) return {};
  const choice = request.toolChoice;
  let toolChoice: AnthropicToolChoice | undefined;
  switch (choice?.type) {
    case undefined:
      if (request.parallelToolCalls === false) toolChoice = { type: 'auto', ...disableParallel };
      break;
    case 'auto':
      toolChoice = { type: 'auto', ...disableParallel };
      break;
    case 'required':
      toolChoice = { type: 'any', ...disableParallel };
      break;
    case 'tool':
      toolChoice = { type: 'tool', name: choice.name, ...disableParallel };
      break;
    case 'none':
      toolChoice = { type: 'none' };
      break;
  }
  return { tools: tools.length ? tools : undefined, toolChoice };
}
