// Every route the Fastify app registers, collected with an onRoute hook as it is added, so
// /openapi.json covers new routes without anyone listing them. A route may carry its own
// description in `config.openapi` (schemas are zod, the same ones the handler validates with).

import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';

export interface RouteDoc {
  summary?: string;
  description?: string;
  tags?: string[];
  /** JSON request body schema. */
  body?: z.ZodType;
  /** Query string schema (an object). */
  query?: z.ZodType;
  /** 200 (or `status`) JSON response schema. */
  response?: z.ZodType;
  status?: number;
  /** Media types of the success response (default application/json; text/event-stream for SSE). */
  produces?: string[];
  /** 'key' (API key), 'admin' (admin key) or 'none'. */
  security?: 'key' | 'admin' | 'none';
  /** Request headers the route reads. */
  headers?: Array<{ name: string; description: string; required?: boolean }>;
  /** Response headers beyond x-request-id (which every response has). */
  responseHeaders?: string[];
}

export interface CatalogRoute {
  method: string;
  /** Fastify path, e.g. /v1/messages/async/:message_id */
  url: string;
  doc?: RouteDoc;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's OpenAPI description (see src/server/openapi-catalog.ts). */
    openapi?: RouteDoc;
  }
}

export class RouteCatalog {
  readonly routes: CatalogRoute[] = [];

  /** Must run before any route is registered. */
  attach(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const doc = (route.config as { openapi?: RouteDoc } | undefined)?.openapi;
      for (const method of methods) this.routes.push({ method: String(method).toUpperCase(), url: route.url, doc });
    });
  }
}
