// What an executable tool is, independent of where it runs (HTTP, MCP server, built-in).

import type { JsonSchema, MediaPart, TextPart, ToolDefinition } from '../types.js';

/** What a tool returns: text and media for the model, and optional structured data for clients. */
export interface ToolOutput {
  content: Array<TextPart | MediaPart>;
  /** JSON result shown to clients as `result` (defaults to the text). */
  structured?: unknown;
  isError?: boolean;
}

export interface ToolCallContext {
  organisation: string;
  requestId: string;
  signal: AbortSignal;
}

export interface ExecutableTool {
  name: string;
  description?: string;
  parameters: JsonSchema;
  /** Where it runs, for logs and `serverExecuted.serverName`. */
  source: 'builtin' | 'http' | 'mcp';
  serverName?: string;
  /** Runs in the background; the caller gets an execution id to poll. */
  async?: boolean;
  execute(input: Record<string, unknown>, context: ToolCallContext): Promise<ToolOutput>;
}

export function toolDefinition(tool: ExecutableTool): ToolDefinition {
  return { name: tool.name, description: tool.description, parameters: tool.parameters };
}

export function textOutput(text: string, structured?: unknown, isError = false): ToolOutput {
  return { content: [{ type: 'text', text }], structured, isError };
}
