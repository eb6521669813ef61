// A route constraint that tells the Anthropic SDK's requests from the others: it sends
// `anthropic-version` on every request, and OpenAI's SDK never does. GET /v1/models is the one
// path both SDKs use with different answers; the Messages dialect registers its own version of it
// under this constraint, so each dialect keeps its own route and error shape.

import type { FastifyInstance } from 'fastify';

export const ANTHROPIC_CLIENT = { client: 'anthropic' } as const;

export function addClientConstraint(app: FastifyInstance): void {
  app.addConstraintStrategy({
    name: 'client',
    storage() {
      const handlers = new Map<string, unknown>();
      return {
        get: (value: string) => (handlers.get(value) ?? null) as never,
        set: (value: string, handler: unknown) => void handlers.set(value, handler),
      };
    },
    deriveConstraint: (request) => (request.headers['anthropic-version'] !== undefined ? 'anthropic' : undefined) as string,
    mustMatchWhenDerived: false,
  });
}
