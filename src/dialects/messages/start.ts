// Starts the response of a prepared Messages request: one model call through the gateway, or the
// tool loop when the request names MCP servers. Shared by /v1/messages and the async runs.

import type { ChatResult, RequestContext } from '../../core/gateway.js';
import type { ServerContext } from '../../server/context.js';
import type { MessagesConfig } from './config.js';
import { withRequestId } from '../../core/gateway.js';
import { autocompactParts, compactionParts } from './compaction.js';
import { withRefusalFallbacks, type MessagesPart } from './fallbacks.js';
import { streamWithMcpServers } from './mcp-servers.js';
import type { PreparedMessages } from './prepare.js';

export interface StartedMessages {
  /** Primed: a failure before the first content part has already rejected. */
  stream: AsyncIterable<MessagesPart>;
  modelId: string;
  /**
   * The gateway call serving the response (for the served-by headers): the first, then, once a
   * fallback has started, that one's; for the MCP tool loop, its first call.
   */
  readonly chat?: ChatResult;
}

export interface MessagesDeps {
  context: ServerContext;
  config: MessagesConfig;
}

export async function startMessages(prepared: PreparedMessages, ctx: RequestContext, deps: MessagesDeps): Promise<StartedMessages> {
  if (prepared.body.mcp_servers?.length) {
    const { stream, first } = await streamWithMcpServers(prepared, ctx, deps.context, deps.config);
    return { stream, modelId: prepared.info.model.id, chat: first };
  }
  const { gateway, logger } = deps.context;
  if (prepared.autocompact) {
    // The summary first (its own call in the request log), then the answer from it.
    const { summary, answer } = prepared.autocompact;
    const compacting = await gateway.chat(summary, withRequestId(ctx, `${ctx.requestId}-compaction`));
    let serving = compacting;
    const answering = async (text: string | null) => {
      serving = await gateway.chat(answer(text), ctx);
      return serving.stream;
    };
    return {
      stream: autocompactParts(compacting.stream, answering),
      modelId: compacting.model.id,
      get chat() {
        return serving;
      },
    };
  }
  const chat = await gateway.chat(prepared.request, ctx);
  if (prepared.info.compaction) return { stream: compactionParts(chat.stream), modelId: chat.model.id, chat };
  if (!prepared.fallbacks.length) return { stream: chat.stream, modelId: chat.model.id, chat };
  let serving = chat;
  const hops = prepared.fallbacks.map((hop) => async (hopCtx: RequestContext) => {
    serving = await gateway.chat(hop.request, hopCtx);
    return { stream: serving.stream, modelId: serving.model.id };
  });
  const onSkipped = (err: unknown, hop: number) => logger.warn({ err, reqId: ctx.requestId, hop }, 'a fallback model could not start; trying the next');
  return {
    stream: withRefusalFallbacks(chat.stream, prepared.body.model, hops, ctx, onSkipped),
    modelId: chat.model.id,
    get chat() {
      return serving;
    },
  };
}
