// `mcp_servers` (Anthropic's MCP connector shape): the server connects to each MCP server over
// streamable HTTP, offers its tools to the model, runs the calls itself and feeds the results
// back — the organisation chat's tool loop, reused — shown as mcp_tool_use / mcp_tool_result.

import { GatewayError, badRequest, isGatewayError } from '../../core/errors.js';
import type { RequestContext } from '../../core/gateway.js';
import { primeStream } from '../../core/stream.js';
import type { ExecutableTool, McpConnection, ToolService } from '../../core/tools/index.js';
import { assertPublicUrl, mcpResultToOutput, runToolLoop, toolServiceFor } from '../../core/tools/index.js';
import type { StreamPart } from '../../core/types.js';
import type { ServerContext } from '../../server/context.js';
import type { MessagesConfig } from './config.js';
import type { PreparedMessages } from './prepare.js';
import type { McpServerParam } from './schema.js';

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

/** Refuses private-address targets (unless allowed in config) before anything is queued or sent. */
export async function checkMcpTargets(servers: McpServerParam[] | undefined, config: MessagesConfig): Promise<void> {
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
      const allowed = server.tool_configuration?.allowed_tools;
      for (const name of allowed ?? []) {
        if (!listed.some((t) => t.name === name)) throw badRequest(`The MCP server '${server.name}' has no tool '${name}'`, `mcp_servers[${i}].tool_configuration.allowed_tools`);
      }
      const client = toolContext?.length ? await connection.connect() : undefined;
      for (const tool of listed) {
        if (allowed && !allowed.includes(tool.name)) continue;
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
export async function streamWithMcpServers(prepared: PreparedMessages, ctx: RequestContext, context: ServerContext, config: MessagesConfig): Promise<AsyncIterable<StreamPart>> {
  const service = toolService(context);
  const opened = await openServers(prepared, service, config);
  try {
    const executor = await service.executor(
      opened.tools.map((t) => t.name),
      opened.tools,
    );
    // The request's own tools are the client's to run, as with Anthropic's connector.
    const clientTools = (prepared.request.tools ?? []).map((tool) => tool.name);
    const loop = runToolLoop({ gateway: context.gateway, request: prepared.request, context: ctx, executor, maxRounds: service.toolsConfig.maxRounds, clientTools });
    return closingAfter(await primeStream(loop), opened.close);
  } catch (err) {
    await opened.close();
    throw err;
  }
}
