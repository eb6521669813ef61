// Canonical tools, tool choice and JSON response format → Converse `toolConfig`.
//
// tools → [{toolSpec:{name, description, inputSchema:{json}}}]; tool choice auto → {auto:{}},
// required → {any:{}}, tool → {tool:{name}}. Converse has no `none`: the tools are left out,
// unless earlier turns hold toolUse/toolResult blocks — Converse then requires toolConfig, so the
// tools are sent without a choice (the model may still call one). For the same reason, a request
// that offers no tools while its history holds tool blocks gets a toolConfig listing the tools the
// history calls (by name, with an open object schema), without a choice; a call the model makes to
// one is an ordinary tool call. Converse has no switch for parallel tool calls; parallelToolCalls
// is not sent.
//
// Structured output is emulated as on Anthropic: a `json_response` tool with the schema, forced
// with {tool:{name}} (or {any:{}} beside the caller's tools; only asked for, with `auto` and a
// system instruction, while reasoning is on, since Claude refuses forced tools when thinking).

import { cachePoint } from './convert-messages.js';
import type { ChatRequest, JsonSchema } from '../../core/types.js';
import type { BedrockDocument, BedrockTool, BedrockToolChoice, ToolConfiguration } from './api.js';

export interface JsonResponseTool {
  name: string;
  wrapped: boolean;
}

export interface PreparedBedrockTools {
  toolConfig?: ToolConfiguration;
  jsonTool?: JsonResponseTool;
  systemInstruction?: string;
}

function inputSchema(parameters: JsonSchema | undefined): Record<string, unknown> {
  if (!parameters || Object.keys(parameters).length === 0) return { type: 'object', properties: {} };
  if (parameters.type === undefined && parameters.properties !== undefined) return { type: 'object', ...parameters };
  return parameters;
}

function toolSpec(name: string, description: string | undefined, schema: Record<string, unknown>): BedrockTool {
  return {
    toolSpec: {
      name,
      ...(description ? { description } : {}),
      inputSchema: { json: schema as BedrockDocument },
    },
  };
}

function isObjectSchema(schema: JsonSchema): boolean {
  return schema.type === 'object' || (schema.type === undefined && typeof schema.properties === 'object');
}

export function emulatesJson(request: ChatRequest): boolean {
  return request.responseFormat?.type === 'json' && request.toolChoice?.type !== 'none' && request.toolChoice?.type !== 'tool';
}

/** What the conversation's history holds that decides whether Converse requires a toolConfig. */
export interface ToolHistory {
  /** toolUse/toolResult blocks are in the history. */
  hasToolBlocks: boolean;
  /** The tool names its toolUse blocks call, each once. */
  historyToolNames: string[];
}

export const HISTORY_TOOL_DESCRIPTION = "A tool from this conversation's history.";

export function prepareBedrockTools(request: ChatRequest, reasoning: boolean, history: ToolHistory): PreparedBedrockTools {
  const { hasToolBlocks } = history;
  const userTools = request.tools ?? [];
  // A tool's cache_control becomes a cache point after its spec, as Converse marks the tools' prefix.
  const tools: BedrockTool[] = userTools.flatMap((t) => [toolSpec(t.name, t.description, inputSchema(t.parameters)), ...(t.cacheControl ? [{ cachePoint: cachePoint(t.cacheControl) }] : [])]);

  if (emulatesJson(request)) {
    const format = request.responseFormat as Extract<ChatRequest['responseFormat'], { type: 'json' }>;
    let name = 'json_response';
    while (userTools.some((t) => t.name === name)) name = `_${name}`;
    const schema = format.schema ?? { type: 'object', additionalProperties: true };
    const wrapped = !isObjectSchema(schema);
    tools.push(
      toolSpec(
        name,
        `Respond with your final answer as the input of this tool${format.name ? ` (${format.name})` : ''}. Call it exactly once.`,
        wrapped ? { type: 'object', properties: { value: schema }, required: ['value'] } : schema,
      ),
    );
    const jsonTool = { name, wrapped };
    if (reasoning) {
      return {
        toolConfig: { tools, toolChoice: { auto: {} } },
        jsonTool,
        systemInstruction: `When you give your final answer, call the ${name} tool with it; do not write it as text.`,
      };
    }
    const toolChoice: BedrockToolChoice = userTools.length > 0 ? { any: {} } : { tool: { name } };
    return { toolConfig: { tools, toolChoice }, jsonTool };
  }

  if (tools.length === 0) {
    // Converse refuses toolUse/toolResult blocks without a toolConfig ("The toolConfig field must
    // be defined when using toolUse and toolResult content blocks"): name the history's tools.
    if (!hasToolBlocks || history.historyToolNames.length === 0) return {};
    return { toolConfig: { tools: history.historyToolNames.map((name) => toolSpec(name, HISTORY_TOOL_DESCRIPTION, { type: 'object' })) } };
  }
  const choice = request.toolChoice;
  switch (choice?.type) {
    case undefined:
      return { toolConfig: { tools } };
    case 'auto':
      return { toolConfig: { tools, toolChoice: { auto: {} } } };
    case 'required':
      return { toolConfig: { tools, toolChoice: { any: {} } } };
    case 'tool':
      return { toolConfig: { tools, toolChoice: { tool: { name: choice.name } } } };
    case 'none':
      return hasToolBlocks ? { toolConfig: { tools } } : {};
  }
}
