// Running many teams on one gateway: admission control (allowed models, rate limits, budgets)
// in the core, the admin and usage APIs, the per-request log line, metrics sources, request-log
// retention and /openapi.json. Installed by createServer before any route is registered.

import type { FastifyInstance } from 'fastify';
import { toGatewayError } from '../../core/errors.js';
import { Admission } from '../../core/limits/admission.js';
import { openAIErrorBody } from '../../dialects/openai/errors.js';
import { limitsConfigOf } from '../../core/limits/spec.js';
import type { ServerContext } from '../context.js';
import { addMetricsSource, gatewayOverhead } from '../metrics.js';
import { RouteCatalog } from '../openapi-catalog.js';
import { registerOpenApiRoute } from '../openapi.js';
import { registerAdminRoutes } from './admin-routes.js';
import { attachRequestLogging } from './request-logging.js';
import { attachRetention } from './retention.js';
import { registerUsageRoutes } from './usage-routes.js';

/** context.services keys this feature reads or sets. */
export const ADMISSION_SERVICE = 'admission';
/** Set by the async-runs feature: `() => number` of runs waiting to start. */
export const ASYNC_QUEUE_DEPTH_SERVICE = 'asyncQueueDepth';

export function installOperations(app: FastifyInstance, context: ServerContext): void {
  const catalog = new RouteCatalog();
  catalog.attach(app);
  const limits = limitsConfigOf(context.config);
  const { gateway, store } = context;

  let admission: Admission | undefined;
  if (store.tenancy) {
    admission = new Admission({
      config: limits,
      tenancy: store.tenancy,
      coordination: store.coordination,
      countTokens: (request, limit) => gateway.countPromptTokens(request, limit),
      reachableModels: (model) => gateway.router.reachableModels(model),
      onAdmitted: (call, overheadMs) => gatewayOverhead.observe({ dialect: call.dialect }, overheadMs / 1000),
    });
    gateway.admission = admission;
    context.services[ADMISSION_SERVICE] = admission;
  }

  const removeSource = addMetricsSource({
    gateway,
    chatInFlight: () => admission?.inFlight ?? 0,
    asyncQueueDepth: () => {
      const depth = context.services[ASYNC_QUEUE_DEPTH_SERVICE];
      return typeof depth === 'function' ? Number(depth()) || 0 : 0;
    },
  });
  app.addHook('onClose', async () => removeSource());

  attachRequestLogging(app, context);
  attachRetention(app, context, limits.requestLog.retentionDays);
  registerOpenApiRoute(app, catalog, { version: '0.1.0' });
  void app.register(async (scope) => {
    withOpenAIErrors(scope, context);
    registerAdminRoutes(scope, context);
  });
  void app.register(async (scope) => {
    withOpenAIErrors(scope, context);
    registerUsageRoutes(scope, context);
  });
}

/** The admin and usage APIs answer errors in OpenAI's shape, like the rest of /v1. */
function withOpenAIErrors(scope: FastifyInstance, context: ServerContext): void {
  scope.setErrorHandler(async (err, request, reply) => {
    const error = toGatewayError(err);
    if (error.kind === 'internal') context.logger.error({ err, reqId: request.id }, 'unhandled error');
    if (error.retryAfter !== undefined) reply.header('retry-after', String(Math.max(0, Math.ceil(error.retryAfter))));
    return reply.status(error.status).send(openAIErrorBody(error));
  });
}
