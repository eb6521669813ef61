// Chooses the deployment that serves a request and what happens when it fails.
// This first version tries the model's deployments in order, falling over to the next one on a
// retryable failure before the first content token.

import type { ResolvedDeployment, ResolvedModel } from '../models.js';
import type { PrimedStream } from '../stream.js';
import { primeStream } from '../stream.js';
import type { StreamPart } from '../types.js';
import { GatewayError, toGatewayError } from '../errors.js';

export interface RouteAttempt {
  deployment: ResolvedDeployment;
  error?: GatewayError;
}

export interface RouteResult {
  stream: PrimedStream;
  model: ResolvedModel;
  deployment: ResolvedDeployment;
  attempts: RouteAttempt[];
}

/** Starts one attempt on a deployment; the router primes it. */
export type AttemptFn = (model: ResolvedModel, deployment: ResolvedDeployment, signal: AbortSignal) => AsyncIterable<StreamPart>;

export interface RouterOptions {
  signal: AbortSignal;
}

export class Router {
  async route(model: ResolvedModel, attempt: AttemptFn, options: RouterOptions): Promise<RouteResult> {
    const attempts: RouteAttempt[] = [];
    let lastError: GatewayError | undefined;
    for (const deployment of model.deployments) {
      if (options.signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled');
      try {
        const stream = await primeStream(attempt(model, deployment, options.signal));
        attempts.push({ deployment });
        return { stream, model, deployment, attempts };
      } catch (err) {
        lastError = toGatewayError(err);
        attempts.push({ deployment, error: lastError });
        if (!lastError.retryable) break;
      }
    }
    throw lastError ?? new GatewayError('unavailable', `No deployment can serve '${model.id}'`);
  }

  /** Router state for GET /v1/router/status. */
  status(): Record<string, unknown> {
    return {};
  }
}
