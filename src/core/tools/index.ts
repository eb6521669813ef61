// The tool capability's public API, for every dialect (org autoExecute, Messages mcp_servers).

export { ToolService, toolServiceFor, type ToolServiceOptions } from './service.js';
export { runToolLoop, mergeTools, toolResultPart, type ToolLoopOptions } from './loop.js';
export { createToolExecutor, type ToolExecutor, type ToolCallOutcome, type ToolCallRequest } from './executor.js';
export { McpConnection, mcpResultToOutput, type McpServerSpec } from './mcp.js';
export { httpTool } from './http-tool.js';
export { builtinTools, evaluateArithmetic } from './builtins.js';
export { isPrivateAddress, assertPublicUrl } from './address-guard.js';
export { presentOutput, type ToolResultView } from './present.js';
export type { ExecutableTool, ToolOutput, ToolCallContext } from './types.js';
