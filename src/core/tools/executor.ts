// Decides and runs one tool call the model made: only tools the server knows AND that the
// request allows run; anything else is refused with an error the model can read. Never throws.

import type { RequestContext } from '../gateway.js';
import type { ArtifactStore } from '../artifacts/store.js';
import type { ToolDefinition } from '../types.js';
import type { ExecutionRunner } from './executions.js';
import { presentOutput, type ToolResultView } from './present.js';
import type { ExecutableTool } from './types.js';
import { toolDefinition } from './types.js';

export interface ToolCallRequest {
  id: string;
  name: string;
  /** JSON text of the arguments object, as the model wrote it. */
  arguments: string;
}

export type ToolCallOutcome =
  | { status: 'complete' | 'failed'; modelText: string; isError: boolean; view: ToolResultView }
  | { status: 'pending'; executionId: string; modelText: string; isError: false };

export interface ToolExecutor {
  /** Server tools to offer the model (those allowed), beside the request's own definitions. */
  readonly offered: ToolDefinition[];
  /** True when the tool is known and allowed: a call to it will run. */
  handles(name: string): boolean;
  /** The MCP server (or 'gateway') that will run a tool, for `serverExecuted`. */
  serverNameOf(name: string): string | undefined;
  execute(call: ToolCallRequest, context: RequestContext): Promise<ToolCallOutcome>;
}

export interface ExecutorOptions {
  tools: ExecutableTool[];
  /** Names that may run; every other call is refused. */
  allowedTools: string[];
  artifacts: ArtifactStore;
  executions: ExecutionRunner;
}

function refused(message: string): ToolCallOutcome {
  return { status: 'failed', modelText: `Error: ${message}`, isError: true, view: { result: { error: message, type: 'permission_denied' } } };
}

function parseInput(text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return {};
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function createToolExecutor(options: ExecutorOptions): ToolExecutor {
  const allowed = new Set(options.allowedTools);
  const byName = new Map<string, ExecutableTool>();
  for (const tool of options.tools) if (!byName.has(tool.name)) byName.set(tool.name, tool);
  return {
    offered: [...byName.values()].filter((t) => allowed.has(t.name)).map(toolDefinition),
    handles: (name) => allowed.has(name) && byName.has(name),
    serverNameOf: (name) => {
      const tool = byName.get(name);
      return tool ? (tool.serverName ?? 'gateway') : undefined;
    },
    async execute(call, context) {
      const tool = byName.get(call.name);
      if (!allowed.has(call.name)) return refused(`The tool '${call.name}' is not in allowedTools; it was not run (403).`);
      if (!tool) return refused(`The tool '${call.name}' is not known to the server; it was not run (403).`);
      const input = parseInput(call.arguments);
      if (!input) return refused(`The arguments for '${call.name}' are not a JSON object: ${call.arguments.slice(0, 200)}`);
      if (tool.async) {
        const started = await options.executions.start(tool, input, { toolUseId: call.id, organisation: context.organisation, requestId: context.requestId });
        return { ...started, modelText: `The tool is running in the background (execution ${started.executionId}).`, isError: false };
      }
      try {
        const output = await tool.execute(input, { organisation: context.organisation, requestId: context.requestId, signal: context.signal });
        const presented = await presentOutput(output, options.artifacts, context.organisation);
        return { status: presented.isError ? 'failed' : 'complete', modelText: presented.modelText, isError: presented.isError, view: presented.view };
      } catch (err) {
        const message = `The tool '${call.name}' failed: ${(err as Error).message ?? String(err)}`;
        return { status: 'failed', modelText: `Error: ${message}`, isError: true, view: { result: { error: message } } };
      }
    },
  };
}
