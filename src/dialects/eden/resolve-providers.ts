// An Eden "provider" → a model the gateway routes (docs/eden.md has the table):
//   settings[name] = model   → `name/model`
//   a model id or alias      → that model, any of its deployments
//   provider/model           → that model (id, alias, or a deployment's upstream model name),
//                              served only by that provider's deployments
//   a provider name          → the first configured model with a deployment of that provider

import { GatewayError } from '../../core/errors.js';
import type { ModelRegistry, ResolvedModel } from '../../core/models.js';

export interface EdenTarget {
  /** The provider exactly as the client wrote it: the key of its result. */
  name: string;
  model: ResolvedModel;
  /** Only this provider's deployments (when the client named a provider). */
  provider?: string;
}

function unknownProvider(name: string, field: string): GatewayError {
  const message = `Unknown provider '${name}': use a configured provider name, a model id, or provider/model`;
  return new GatewayError('bad_request', message, { param: field, code: 'unknown_provider', fieldErrors: { [field]: [message] } });
}

function withProvider(registry: ModelRegistry, provider: string, modelName: string): ResolvedModel | undefined {
  const byId = registry.find(modelName);
  if (byId?.deployments.some((d) => d.provider === provider)) return byId;
  return registry.models.find((m) => m.deployments.some((d) => d.provider === provider && d.model === modelName));
}

export function resolveTarget(registry: ModelRegistry, name: string, settings: Record<string, string>, field: string): EdenTarget {
  const configured = settings[name];
  if (configured !== undefined) {
    // A model id or alias as the name only labels the result. Anything else is a provider's name,
    // and means exactly `name/model`: never another provider's deployment under its name.
    if (registry.find(name)) {
      const model = registry.find(configured);
      if (!model) throw unknownProvider(`${name}/${configured}`, field);
      return { name, model };
    }
    const model = withProvider(registry, name, configured);
    if (!model) throw unknownProvider(`${name}/${configured}`, field);
    return { name, model, provider: name };
  }
  const direct = registry.find(name);
  if (direct) return { name, model: direct };
  const slash = name.indexOf('/');
  if (slash > 0) {
    const provider = name.slice(0, slash);
    const model = withProvider(registry, provider, name.slice(slash + 1));
    if (model) return { name, model, provider };
    throw unknownProvider(name, field);
  }
  const first = registry.models.find((m) => m.deployments.some((d) => d.provider === name));
  if (first) return { name, model: first, provider: name };
  throw unknownProvider(name, field);
}

/** Resolves every provider of a field, refusing duplicates (each names one result). */
export function resolveTargets(registry: ModelRegistry, names: string[], settings: Record<string, string>, field: string): EdenTarget[] {
  const seen = new Set<string>();
  return names.map((name, i) => {
    if (seen.has(name)) {
      const message = `Provider '${name}' is listed twice`;
      throw new GatewayError('bad_request', message, { param: field, code: 'duplicate_provider', fieldErrors: { [field]: [message] } });
    }
    seen.add(name);
    return resolveTarget(registry, name, settings, `${field}[${i}]`);
  });
}
