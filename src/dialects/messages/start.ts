// Starts the response of a prepared Messages request: one model call through the gateway, or the
// tool loop when the request names MCP servers. Shared by /v1/messages and the async runs.

import type { ChatResult, RequestContext } from '../../core/gateway.js';
import type { StreamPart } from '../../core/types.js';
import type { ServerContext } from '../../server/context.js';
import type { MessagesConfig } from './config.js';
import { streamWithMcpServers } from './mcp-servers.js';
import type { PreparedMessages } from './prepare.js';

export interface StartedMessages {
  /** Primed: a failure before the first content part has already rejected. */
  stream: AsyncIterable<StreamPart>;
  modelId: string;
  /** The single gateway call, when there is exactly one (for the served-by headers). */
  chat?: ChatResult;
}

export interface MessagesDeps {
  context: ServerContext;
  config: MessagesConfig;
}

export async function startMessages(prepared: PreparedMessages, ctx: RequestContext, deps: MessagesDeps): Promise<StartedMessages> {
  if (prepared.body.mcp_servers?.length) {
    return { stream: await streamWithMcpServers(prepared, ctx, deps.context, deps.config), modelId: prepared.info.model.id };
  }
  const chat = await deps.context.gateway.chat(prepared.request, ctx);
  return { stream: chat.stream, modelId: chat.model.id, chat };
}
