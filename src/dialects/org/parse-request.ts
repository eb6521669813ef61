// Organisation chat request → canonical ChatRequest (+ the auto-execute settings).

import { badRequest } from '../../core/errors.js';
import { firstRepeat } from '../../core/validation.js';
import { compileSchema } from '../../core/structured-output.js';
import type { ChatRequest, ContentPart, Message, ToolChoice } from '../../core/types.js';
import { unansweredToolResult } from '../../core/types.js';
import { convertBlock } from './blocks.js';
import type { OrgChatRequest, OrgMessage } from './schema.js';
import { toolDefinitionFromSpec } from './tool-mapping.js';

/** Prepended to the system prompt when tools are enabled (seed 001). */
export const TOOL_GUIDANCE =
  'You can call the tools described to you. Call a tool only when it is needed to answer; pass arguments that match its input schema exactly. ' +
  'When a tool result arrives, use it to answer the user in plain text. If a tool fails or is refused, say so instead of guessing its result.';

export interface ParsedOrgRequest {
  request: ChatRequest;
  autoExecute: boolean;
  allowedTools: string[];
}

async function convertMessage(message: OrgMessage, index: number): Promise<Message[]> {
  const param = `messages[${index}].content`;
  const blocks = typeof message.content === 'string' ? [{ text: message.content }] : message.content;
  const parts: ContentPart[] = [];
  for (const [i, block] of blocks.entries()) parts.push(await convertBlock(block, `${param}[${i}]`));
  const where = (kind: string) => parts.findIndex((p) => p.type === kind);
  if (message.role === 'system') {
    const bad = parts.findIndex((p) => p.type !== 'text');
    if (bad >= 0) throw badRequest('System messages carry text only', `${param}[${bad}]`, 'invalid_content_block');
    return [{ role: 'system', content: parts }];
  }
  if (message.role === 'assistant') {
    const bad = parts.findIndex((p) => p.type !== 'text' && p.type !== 'tool-call');
    if (bad >= 0) throw badRequest('Assistant messages carry text and toolUse blocks only', `${param}[${bad}]`, 'invalid_content_block');
    return [{ role: 'assistant', content: parts }];
  }
  if (where('tool-call') >= 0) throw badRequest('toolUse blocks belong in assistant messages', `${param}[${where('tool-call')}]`, 'invalid_content_block');
  // Tool results answer the previous assistant turn: canonically they are a tool message.
  const results = parts.filter((p) => p.type === 'tool-result');
  const rest = parts.filter((p) => p.type !== 'tool-result');
  const out: Message[] = [];
  if (results.length) out.push({ role: 'tool', content: results });
  if (rest.length) out.push({ role: 'user', content: rest });
  return out;
}

function checkToolRoundTrips(messages: Message[]): void {
  const orphan = unansweredToolResult(messages);
  if (orphan) throw badRequest(`toolResult '${orphan.toolCallId}' does not answer any earlier toolUse`, 'messages', 'invalid_tool_result');
}

export async function parseOrgChatRequest(body: OrgChatRequest): Promise<ParsedOrgRequest> {
  const autoExecute = body.autoExecute === true;
  if (body.responseFormat?.jsonSchema) compileSchema(body.responseFormat.jsonSchema, 'responseFormat.jsonSchema');
  if (autoExecute && !body.allowedTools?.length) {
    throw badRequest('autoExecute needs allowedTools: the list of tools the server may run for you', 'allowedTools', 'allowed_tools_required');
  }
  const converted: Message[] = [];
  for (const [i, m] of body.messages.entries()) converted.push(...(await convertMessage(m, i)));
  checkToolRoundTrips(converted);
  const tools = body.toolConfig?.tools.map((t) => toolDefinitionFromSpec(t.toolSpec));
  const repeat = firstRepeat((tools ?? []).map((t) => t.name));
  if (repeat >= 0) throw badRequest(`Duplicate tool name '${tools![repeat]!.name}'`, `toolConfig.tools[${repeat}].toolSpec.name`);
  const names = new Set((tools ?? []).map((t) => t.name));
  const choice = body.toolConfig?.toolChoice;
  const toolChoice: ToolChoice | undefined = !choice ? undefined : 'auto' in choice ? { type: 'auto' } : 'any' in choice ? { type: 'required' } : { type: 'tool', name: choice.tool.name };
  if (toolChoice?.type === 'tool' && !names.has(toolChoice.name)) {
    throw badRequest(`toolChoice names '${toolChoice.name}', which is not in toolConfig.tools`, 'toolConfig.toolChoice.tool.name');
  }
  if (toolChoice && toolChoice.type !== 'auto' && !tools?.length) throw badRequest('toolChoice needs toolConfig.tools', 'toolConfig.toolChoice');
  const toolsEnabled = !!tools?.length || autoExecute;
  const systemText = toolsEnabled ? [TOOL_GUIDANCE, body.systemPrompt].filter(Boolean).join('\n\n') : body.systemPrompt;
  const messages: Message[] = [
    ...(systemText ? [{ role: 'system' as const, content: [{ type: 'text' as const, text: systemText }] }] : []),
    ...converted.filter((m) => m.role === 'system'),
    ...converted.filter((m) => m.role !== 'system'),
  ];
  if (!messages.some((m) => m.role !== 'system')) throw badRequest('messages needs at least one user or assistant message', 'messages');
  const request: ChatRequest = {
    model: body.modelId,
    messages,
    temperature: body.temperature,
    maxTokens: body.maxTokens,
    topP: body.topP,
    stop: body.stopSequences,
    tools: tools?.length ? tools : undefined,
    toolChoice,
    responseFormat: body.responseFormat ? { type: 'json', schema: body.responseFormat.jsonSchema } : undefined,
  };
  return { request, autoExecute, allowedTools: body.allowedTools ?? [] };
}
