// POST /api/v3/organizations/:organisation/ai/chat (buffered, seed 001), .../ai/chat/stream
// (SSE, seed 000), GET .../ai/tools/executions/:executionId, and the signed artifact downloads.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, toGatewayError } from '../../core/errors.js';
import type { ChatResult, RequestContext } from '../../core/gateway.js';
import { ResponseCollector, collectStream, isContentPart, primeStream } from '../../core/stream.js';
import { runToolLoop, toolServiceFor, type ToolService } from '../../core/tools/index.js';
import type { StreamPart } from '../../core/types.js';
import { parseBody } from '../../core/validation.js';
import type { ServerContext } from '../../server/context.js';
import { requestContext, servedByHeaders } from '../../server/context.js';
import { SSE_HEADERS, StreamWriter } from '../../server/sse.js';
import { organisationFor } from './access.js';
import { registerArtifactRoute } from './artifact-route.js';
import { orgErrorBody } from './errors.js';
import { parseOrgChatRequest } from './parse-request.js';
import { OrgStreamRenderer, renderChatResponse, type OrgResponseMeta } from './render.js';
import { orgChatRequestSchema } from './schema.js';

type OrgParams = { organisation: string };

const BASE = '/api/v3/organizations/:organisation/ai';

function absoluteUrlFor(request: FastifyRequest, tools: ToolService): (url: string) => string {
  const base = tools.artifactsConfig.publicBaseUrl ?? `${request.protocol}://${request.host}`;
  return (url) => (url.startsWith('/') ? `${base.replace(/\/$/, '')}${url}` : url);
}

interface StartedChat {
  parts: AsyncIterable<StreamPart>;
  model: string;
  headers: Record<string, string>;
}

/** The model call: one gateway.chat, or the auto-execute tool loop. Rejects before content. */
async function startChat(context: ServerContext, tools: ToolService, request: FastifyRequest<{ Params: OrgParams }>, ctx: RequestContext): Promise<StartedChat> {
  const body = parseBody(orgChatRequestSchema, request.body);
  const parsed = await parseOrgChatRequest(body);
  const model = context.gateway.registry.resolve(parsed.request.model, 'modelId');
  if (parsed.autoExecute) {
    const executor = await tools.executor(parsed.allowedTools);
    let first = undefined as ChatResult | undefined; // set by the loop's callback
    const loop = runToolLoop({ gateway: context.gateway, request: parsed.request, context: ctx, executor, maxRounds: tools.toolsConfig.maxRounds, onFirstCall: (result) => (first = result) });
    const parts = await primeStream(loop);
    // The first call's headers: who served it, and the key's rate-limit headroom.
    return { parts, model: model.id, headers: first ? servedByHeaders(first, request.arrivedAt, first.ttftMs) : { 'x-switchboard-model': model.id } };
  }
  const result = await context.gateway.chat(parsed.request, ctx);
  return { parts: result.stream, model: result.model.id, headers: servedByHeaders(result, request.arrivedAt, result.ttftMs) };
}

async function chat(context: ServerContext, tools: ToolService, request: FastifyRequest<{ Params: OrgParams }>, reply: FastifyReply) {
  const organisation = organisationFor(request, request.params.organisation);
  const ctx = requestContext(request, reply, { dialect: 'org', route: '/api/v3/organizations/:organisation/ai/chat', stream: false, organisation });
  const started = await startChat(context, tools, request, ctx);
  const collected = await collectStream(started.parts);
  const meta: OrgResponseMeta = { model: started.model, requestId: String(request.id), absoluteUrl: absoluteUrlFor(request, tools) };
  return reply.headers(started.headers).send(renderChatResponse(collected, meta));
}

async function chatStream(context: ServerContext, tools: ToolService, request: FastifyRequest<{ Params: OrgParams }>, reply: FastifyReply) {
  const organisation = organisationFor(request, request.params.organisation);
  const ctx = requestContext(request, reply, { dialect: 'org', route: '/api/v3/organizations/:organisation/ai/chat/stream', stream: true, organisation });
  const started = await startChat(context, tools, request, ctx);
  const requestId = String(request.id);
  const renderer = new OrgStreamRenderer({ model: started.model, requestId, absoluteUrl: absoluteUrlFor(request, tools) });

  reply.hijack();
  const writer = new StreamWriter(reply);
  writer.start(200, { ...SSE_HEADERS, ...started.headers, 'x-request-id': requestId });
  const collector = new ResponseCollector();
  try {
    await writer.sse(renderer.start());
    let failure: GatewayError | undefined;
    for await (const part of started.parts) {
      if (writer.isClosed) return;
      collector.add(part);
      if (part.type === 'error') {
        failure = toGatewayError(part.error);
        break;
      }
      for (const event of renderer.render(part)) await writer.sse(event);
      if (isContentPart(part)) writer.contentWritten();
    }
    if (writer.isClosed) return;
    if (failure) {
      await writer.sse(renderer.error(orgErrorBody(failure, requestId)));
      return;
    }
    for (const event of renderer.flush()) await writer.sse(event);
    const choice = collector.choice(0);
    await writer.sse(renderer.done(choice.finishReason, collector.response.usage));
  } catch (err) {
    // Nothing may escape after the headers are out: end with an error event instead.
    context.logger.error({ err, reqId: request.id }, 'org stream failed');
    await writer.sse(renderer.error(orgErrorBody(toGatewayError(err), requestId)))?.catch(() => undefined);
  } finally {
    writer.end();
  }
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export function registerOrgRoutes(app: FastifyInstance, context: ServerContext): void {
  const tools = toolServiceFor(context.services, { config: context.config, store: context.store, dataDir: context.gateway.dataDir, logger: context.logger, env: context.env });
  app.addHook('onClose', async () => {
    await tools.close();
  });
  app.addHook('preHandler', async (request) => {
    if ((request.routeOptions.config as { publicRoute?: boolean } | undefined)?.publicRoute) return;
    request.auth = await context.auth.authenticate(request);
  });

  app.post<{ Params: OrgParams }>(`${BASE}/chat`, (request, reply) => chat(context, tools, request, reply));
  app.post<{ Params: OrgParams }>(`${BASE}/chat/stream`, (request, reply) => chatStream(context, tools, request, reply));

  app.get<{ Params: OrgParams & { executionId: string } }>(`${BASE}/tools/executions/:executionId`, async (request) => {
    const organisation = organisationFor(request, request.params.organisation);
    const execution = await tools.executionStore.getExecution(organisation, request.params.executionId);
    if (!execution) {
      throw new GatewayError('not_found', `No tool execution '${request.params.executionId}'`, { param: 'executionId', code: 'execution_not_found' });
    }
    const absoluteUrl = absoluteUrlFor(request, tools);
    const body: Record<string, unknown> = {
      executionId: execution.id,
      status: execution.status,
      toolUseId: execution.toolUseId,
      name: execution.toolName,
      input: execution.input,
      requestId: execution.requestId,
      createdAt: isoTime(execution.createdAt),
      updatedAt: isoTime(execution.updatedAt),
    };
    if (execution.result) {
      const { result, images, s3Urls, artifactIds } = execution.result as { result?: unknown; images?: string[]; s3Urls?: string[]; artifactIds?: string[] };
      if (result !== undefined) body.result = result;
      if (images) body.images = images;
      // Signed now, for as long as a fresh URL lasts: the ones made when it finished may have expired.
      const urls = artifactIds ? await Promise.all(artifactIds.map((id) => tools.artifacts.urlFor(execution.organisation, id))) : s3Urls;
      if (urls) body.s3Urls = urls.map(absoluteUrl);
    }
    if (execution.error) body.error = execution.error;
    return body;
  });

  registerArtifactRoute(app, tools);
}
