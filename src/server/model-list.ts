// The models a caller may name, for the model-list routes of every dialect (OpenAI's GET
// /v1/models, the Anthropic SDK's models.list): each model id and alias the caller's key is
// allowed (docs/operations.md, allowed models), in config order.

import { GatewayError } from '../core/errors.js';
import { modelAllowed } from '../core/limits/admission.js';
import type { ResolvedModel } from '../core/models.js';
import type { AuthContext } from './auth.js';
import type { ServerContext } from './context.js';

export interface ListedModel {
  /** The name a request uses: the model's id or one of its aliases. */
  id: string;
  model: ResolvedModel;
}

export function listedModels(context: ServerContext, auth: AuthContext | undefined): ListedModel[] {
  const key = auth?.key;
  const listed: ListedModel[] = [];
  for (const model of context.gateway.registry.models) {
    for (const id of [model.id, ...model.aliases]) if (!key || modelAllowed(key, id, model)) listed.push({ id, model });
  }
  return listed;
}

/** One listed model by the name a request would use; 404 `model_not_found` otherwise (also for a model the key may not use). */
export function listedModel(context: ServerContext, auth: AuthContext | undefined, id: string): ListedModel {
  const found = listedModels(context, auth).find((m) => m.id === id);
  if (!found) throw new GatewayError('not_found', `The model '${id}' does not exist`, { param: 'model', code: 'model_not_found' });
  return found;
}
