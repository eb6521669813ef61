// Everything decided before a sequence is taken: the rendered prompt, the tool-call mode and the
// grammars. Bad tool choices and schemas fail here, as 400s, before the request queues.

import type { LlamaGrammar } from 'node-llama-cpp';
import { badRequest } from '../../core/errors.js';
import type { ResolvedDeployment } from '../../core/models.js';
import type { ChatRequest } from '../../core/types.js';
import type { ResponsePlan } from './generate.js';
import { renderPrompt } from './prompt.js';
import { tokenBias } from './sampling.js';
import type { LoadedModel } from './runtime.js';
import { toolCallSyntax, type ToolCallSyntax } from './tool-syntax.js';

const syntaxCache = new WeakMap<LoadedModel, ToolCallSyntax>();

export async function buildPlan(loaded: LoadedModel, request: ChatRequest, deployment: ResolvedDeployment): Promise<ResponsePlan> {
  const prompt = await renderPrompt(loaded, request);
  const base = { request, prompt, tokenBias: tokenBias(request, loaded.model), tokenProbabilities: request.confidence === true && deployment.options.tokenProbabilities !== false };
  const choice = request.toolChoice ?? { type: 'auto' };
  const tools = request.tools ?? [];
  if ((choice.type === 'required' || choice.type === 'tool') && tools.length === 0) {
    throw badRequest(`tool_choice '${choice.type === 'tool' ? choice.name : 'required'}' needs tools, and none were given`, 'tool_choice');
  }
  if (!prompt.toolsOffered) {
    const jsonGrammar = request.responseFormat?.type === 'json' ? await loaded.grammars.forJsonSchema(request.responseFormat.schema, 'response_format') : undefined;
    return { ...base, jsonGrammar, tools: { mode: 'none' } };
  }

  const grammars = new Map<string, LlamaGrammar>();
  for (const tool of tools) grammars.set(tool.name, await loaded.grammars.forJsonSchema(tool.parameters, 'tools'));
  let syntax = syntaxCache.get(loaded);
  if (!syntax) {
    syntax = toolCallSyntax(loaded.chatWrapper);
    syntaxCache.set(loaded, syntax);
  }
  const names = tools.map((t) => t.name);
  if (choice.type === 'tool') {
    if (!names.includes(choice.name)) throw badRequest(`tool_choice names the tool '${choice.name}', which is not among the tools`, 'tool_choice');
    return { ...base, tools: { mode: 'forced', names: [choice.name], syntax, grammars } };
  }
  // With tools in auto mode the answer is free text or a call; a JSON response format is then
  // not grammar-enforced (the core still validates the text).
  return { ...base, tools: { mode: choice.type === 'required' ? 'forced' : 'auto', names, syntax, grammars } };
}
