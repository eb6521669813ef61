// `mcp_servers` (Anthropic's MCP connector shape): the server connects to each MCP server over
// streamable HTTP, offers its tools to the model, runs the calls itself and feeds the results
// back — the organisation chat's tool loop, reused — shown as mcp_tool_use / mcp_tool_result.

import { GatewayError, badRequest, isGatewayError } from '../../core/errors.js';
import type { ChatResult, RequestContext } from '../../core/gateway.js';
import { primeStream } from '../../core/stream.js';
import type { ExecutableTool, McpConnection, ToolService } from '../../core/tools/index.js';
import { assertPublicUrl, mcpResultToOutput, runToolLoop, toolServiceFor } from '../../core/tools/index.js';
import type { StreamPart } from '../../core/types.js';
import type { ServerContext } from '../../server/context.js';
import type { MessagesConfig } from './config.js';
import type { PreparedMessages } from './prepare.js';
import { isMcpToolset, type McpServerParam, type McpToolsetParam, type MessagesRequest } from './schema.js';

/** Where tool_context travels to MCP tools: the `_meta` of each tools/call request. */
export const TOOL_CONTEXT_META_KEY = 'switchboard/tool_context';

function toolService(context: ServerContext): ToolService {
  return toolServiceFor(context.services, {
    config: context.config,
    store: context.store,
    dataDir: context.gateway.dataDir,
    logger: context.logger,
  });
}

/** The `mcp_toolset` entries of `tools`, with their index, by the server they name. */
function toolsets(body: Pick<MessagesRequest, 'tools'>): Map<string, { toolset: McpToolsetParam; index: number }> {
  const byServer = new Map<string, { toolset: McpToolsetParam; index: number }>();
  for (const [index, tool] of (body.tools ?? []).entries()) {
    if (!isMcpToolset(tool)) continue;
    if (byServer.has(tool.mcp_server_name)) throw badRequest(`Two mcp_toolset entries name the MCP server '${tool.mcp_server_name}'`, `tools[${index}].mcp_server_name`, 'invalid_mcp_toolset');
    byServer.set(tool.mcp_server_name, { toolset: tool, index });
  }
  return byServer;
}

/**
 * The MCP connector's two shapes, not mixed: a server's own `tool_configuration` (beta
 * mcp-client-2025-04-04), or one `mcp_toolset` in `tools` for every server (mcp-client-2025-11-20).
 */
function checkToolsets(body: Pick<MessagesRequest, 'tools' | 'mcp_servers'>): void {
  const byServer = toolsets(body);
  if (byServer.size === 0) return;
  const servers = body.mcp_servers ?? [];
  for (const [name, { index }] of byServer) {
    if (!servers.some((s) => s.name === name)) throw badRequest(`The mcp_toolset names '${name}', which is not in mcp_servers`, `tools[${index}].mcp_server_name`, 'invalid_mcp_toolset');
  }
  for (const [i, server] of servers.entries()) {
    if (!byServer.has(server.name)) throw badRequest(`The MCP server '${server.name}' has no mcp_toolset in tools (each server needs exactly one)`, `mcp_servers[${i}]`, 'invalid_mcp_toolset');
    if (server.tool_configuration) throw badRequest("'tool_configuration' is the older shape: with mcp_toolset entries, say which tools to offer there", `mcp_servers[${i}].tool_configuration`, 'invalid_mcp_toolset');
  }
}

/** Which of a server's tools to offer: its toolset's configs, else its tool_configuration (all by default). */
function toolChoiceOf(server: McpServerParam, entry: { toolset: McpToolsetParam; index: number } | undefined, listed: ExecutableTool[], i: number): (name: string) => boolean {
  const known = (name: string) => listed.some((t) => t.name === name);
  if (entry) {
    const { toolset, index } = entry;
    for (const name of Object.keys(toolset.configs ?? {})) {
      if (!known(name)) throw badRequest(`The MCP server '${server.name}' has no tool '${name}'`, `tools[${index}].configs`);
    }
    return (name) => toolset.configs?.[name]?.enabled ?? toolset.default_config?.enabled ?? true;
  }
  const allowed = server.tool_configuration?.allowed_tools;
  for (const name of allowed ?? []) {
    if (!known(name)) throw badRequest(`The MCP server '${server.name}' has no tool '${name}'`, `mcp_servers[${i}].tool_configuration.allowed_tools`);
  }
  return (name) => !allowed || allowed.includes(name);
}

/** Refuses private-address targets (unless allowed in config) and ill-formed toolsets before anything is queued or sent. */
export async function checkMcpTargets(body: Pick<MessagesRequest, 'tools' | 'mcp_servers'>, config: MessagesConfig): Promise<void> {
  checkToolsets(body);
  const servers = body.mcp_servers;
  if (!servers?.length || config.mcpServers.allowPrivateNetwork) return;
  for (const [i, server] of servers.entries()) {
    try {
      await assertPublicUrl(server.url);
    } catch (err) {
      const message = isGatewayError(err) ? err.message : `cannot resolve ${server.url}: ${(err as Error).message}`;
      throw new GatewayError(isGatewayError(err) ? err.kind : 'bad_request', `mcp_servers[${i}].url: ${message}`, { param: `mcp_servers[${i}].url`, code: 'mcp_server_refused' });
    }
  }
  const names = new Set<string>();
  for (const [i, server] of servers.entries()) {
    if (names.has(server.name)) throw badRequest(`Two MCP servers are named '${server.name}'`, `mcp_servers[${i}].name`);
    names.add(server.name);
  }
}

interface OpenedServers {
  tools: ExecutableTool[];
  close(): Promise<void>;
}

async function openServers(prepared: PreparedMessages, service: ToolService, config: MessagesConfig): Promise<OpenedServers> {
  const connections: McpConnection[] = [];
  const close = async () => {
    await Promise.all(connections.map((c) => c.close()));
  };
  const toolContext = prepared.body.tool_context;
  const byServer = toolsets(prepared.body);
  const tools: ExecutableTool[] = [];
  try {
    for (const [i, server] of (prepared.body.mcp_servers ?? []).entries()) {
      if (server.tool_configuration?.enabled === false) continue;
      const connection = service.connectMcp({
        name: server.name,
        transport: 'http',
        url: server.url,
        headers: server.authorization_token ? { authorization: `Bearer ${server.authorization_token}` } : {},
        allowPrivateNetwork: config.mcpServers.allowPrivateNetwork,
        timeoutMs: config.mcpServers.timeoutMs,
      });
      connections.push(connection);
      let listed: ExecutableTool[];
      try {
        listed = await connection.tools();
      } catch (err) {
        if (isGatewayError(err)) throw new GatewayError(err.kind, `mcp_servers[${i}] (${server.name}): ${err.message}`, { param: `mcp_servers[${i}].url`, code: err.code });
        throw badRequest(`Could not use the MCP server '${server.name}': ${(err as Error).message}`, `mcp_servers[${i}].url`, 'mcp_server_unavailable');
      }
      const offered = toolChoiceOf(server, byServer.get(server.name), listed, i);
      const client = toolContext?.length ? await connection.connect() : undefined;
      for (const tool of listed) {
        if (!offered(tool.name)) continue;
        if (tools.some((t) => t.name === tool.name)) continue;
        tools.push(
          client
            ? {
                ...tool,
                execute: async (input, ctx) =>
                  mcpResultToOutput(
                    (await client.callTool({ name: tool.name, arguments: input, _meta: { [TOOL_CONTEXT_META_KEY]: toolContext } }, undefined, {
                      signal: ctx.signal,
                      timeout: config.mcpServers.timeoutMs,
                    })) as Parameters<typeof mcpResultToOutput>[0],
                  ),
              }
            : tool,
        );
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { tools, close };
}

/** tool_choice against every tool the model will be offered: the request's own and the MCP servers' chosen ones. */
function checkToolChoice(request: PreparedMessages['request'], mcpTools: ExecutableTool[]): void {
  const choice = request.toolChoice;
  const names = [...(request.tools ?? []), ...mcpTools].map((tool) => tool.name);
  if ((choice?.type === 'required' || choice?.type === 'tool') && !names.length) {
    throw badRequest(`tool_choice '${choice.type === 'required' ? 'any' : 'tool'}' needs tools, and the MCP servers offer none`, 'tool_choice');
  }
  if (choice?.type === 'tool' && !names.includes(choice.name)) {
    throw badRequest(`tool_choice names '${choice.name}', which is neither in tools nor offered by mcp_servers`, 'tool_choice.name');
  }
}

async function* closingAfter(parts: AsyncIterable<StreamPart>, close: () => Promise<void>): AsyncGenerator<StreamPart> {
  try {
    yield* parts;
  } finally {
    await close();
  }
}

/**
 * The response stream of a request with mcp_servers: primed like Gateway.chat (a failure before
 * the first content part rejects), connections closed when the stream ends.
 */
/** The loop's stream, and its first model call (for the served-by and rate-limit headers). */
export async function streamWithMcpServers(
  prepared: PreparedMessages,
  ctx: RequestContext,
  context: ServerContext,
  config: MessagesConfig,
): Promise<{ stream: AsyncIterable<StreamPart>; first?: ChatResult }> {
  const service = toolService(context);
  const opened = await openServers(prepared, service, config);
  try {
    checkToolChoice(prepared.request, opened.tools);
    const executor = await service.executor(
      opened.tools.map((t) => t.name),
      opened.tools,
    );
    // The request's own tools are the client's to run, as with Anthropic's connector.
    const clientTools = (prepared.request.tools ?? []).map((tool) => tool.name);
    let first = undefined as ChatResult | undefined; // set by the loop's callback
    const onFirstCall = (result: ChatResult) => (first = result);
    const loop = runToolLoop({ gateway: context.gateway, request: prepared.request, context: ctx, executor, maxRounds: service.toolsConfig.maxRounds, clientTools, onFirstCall });
    const stream = closingAfter(await primeStream(loop), opened.close);
    return { stream, first };
  } catch (err) {
    await opened.close();
    throw err;
  }
}
