// The model registry: every routable id and alias, resolved to its deployments.

import { DEFAULT_LOCAL_CONTEXT_SIZE, type Config, type DeploymentConfig, type Modality, type ModelConfig } from './config.js';
import { GatewayError } from './errors.js';

export interface Pricing {
  input: number;
  output: number;
  cachedInput: number;
  cacheWrite: number;
  cacheWrite1h: number;
  /** USD per request of each server tool kind (see Usage.serverToolUse). */
  serverToolUse?: Record<string, number>;
}

export interface ResolvedDeployment {
  /** Stable name: the configured name or `<provider>:<model>#<index>`. */
  name: string;
  provider: string;
  /** Upstream model name (or local model source). */
  model: string;
  baseUrl?: string;
  /** Resolved from apiKeyEnv at load time; never logged. */
  apiKey?: string;
  headers?: Record<string, string>;
  sha256?: string;
  size?: number;
  region?: string;
  weight: number;
  maxConcurrent: number;
  options: Record<string, unknown>;
}

export interface ResolvedModel {
  id: string;
  aliases: string[];
  contextLength: number;
  /**
   * The config gave no contextLength and only the local provider serves the model: the listed
   * context is the one its sequences are served with, which the provider knows once the GGUF is
   * loaded (a model trained for less than local.contextSize gets less) and sets here.
   */
  contextLengthFromServer?: boolean;
  modalities: Modality[];
  pricing: Pricing;
  deployments: ResolvedDeployment[];
  routing: Record<string, unknown>;
  ownedBy: string;
  /** Seconds since epoch when the registry was built (OpenAI `created`). */
  created: number;
}

function resolveDeployment(d: DeploymentConfig, index: number, env: NodeJS.ProcessEnv): ResolvedDeployment {
  return {
    name: d.name ?? `${d.provider}:${d.model}#${index}`,
    provider: d.provider,
    model: d.model,
    baseUrl: d.baseUrl,
    apiKey: d.apiKeyEnv ? env[d.apiKeyEnv] : undefined,
    headers: d.headers,
    sha256: d.sha256,
    size: d.size,
    region: d.region,
    weight: d.weight,
    maxConcurrent: d.maxConcurrent,
    options: d.options ?? {},
  };
}

/** A model's deployments as configured: its `deployments`, or the one its own fields describe. */
export function deploymentsOf(m: ModelConfig): DeploymentConfig[] {
  if (m.deployments?.length) return m.deployments;
  return [
    {
      provider: m.provider!,
      model: m.model!,
      baseUrl: m.baseUrl,
      apiKeyEnv: m.apiKeyEnv,
      headers: m.headers,
      sha256: m.sha256,
      size: m.size,
      region: m.region,
      weight: 1,
      maxConcurrent: 0,
      options: m.options,
    },
  ];
}

/** A model's context when the config gives none (see ResolvedModel.contextLengthFromServer). */
const DEFAULT_CONTEXT_LENGTH = 4096;

function contextLengthOf(m: ModelConfig, config: Config): Pick<ResolvedModel, 'contextLength' | 'contextLengthFromServer'> {
  if (m.contextLength !== undefined) return { contextLength: m.contextLength };
  if (!deploymentsOf(m).every((d) => d.provider === 'local')) return { contextLength: DEFAULT_CONTEXT_LENGTH };
  return { contextLength: config.local.contextSize ?? DEFAULT_LOCAL_CONTEXT_SIZE, contextLengthFromServer: true };
}

export class ModelRegistry {
  private readonly byName = new Map<string, ResolvedModel>();
  readonly models: ResolvedModel[];
  readonly defaultModel: ResolvedModel;

  constructor(config: Config, env: NodeJS.ProcessEnv = process.env) {
    const created = Math.floor(Date.now() / 1000);
    this.models = config.models.map((m) => ({
      id: m.id,
      aliases: [...m.aliases],
      ...contextLengthOf(m, config),
      modalities: m.modalities,
      pricing: {
        input: m.pricing.input,
        output: m.pricing.output,
        cachedInput: m.pricing.cachedInput ?? m.pricing.input,
        cacheWrite: m.pricing.cacheWrite ?? m.pricing.input,
        cacheWrite1h: m.pricing.cacheWrite1h ?? m.pricing.cacheWrite ?? m.pricing.input,
        ...(m.pricing.serverToolUse ? { serverToolUse: { ...m.pricing.serverToolUse } } : {}),
      },
      deployments: deploymentsOf(m).map((d, i) => resolveDeployment(d, i, env)),
      routing: m.routing ?? {},
      ownedBy: m.ownedBy ?? 'switchboard',
      created,
    }));
    for (const model of this.models) {
      this.byName.set(model.id, model);
      for (const alias of model.aliases) if (!this.byName.has(alias)) this.byName.set(alias, model);
    }
    this.defaultModel = this.byName.get(config.defaultModel!)!;
    // The default model always answers to `default` as well.
    if (!this.defaultModel.aliases.includes('default')) this.defaultModel.aliases.push('default');
    this.byName.set('default', this.defaultModel);
  }

  find(name: string): ResolvedModel | undefined {
    return this.byName.get(name);
  }

  /** Resolves an id or alias, or throws a 404 naming the model. */
  resolve(name: string | undefined, param = 'model'): ResolvedModel {
    const model = this.byName.get(name ?? 'default');
    if (!model) {
      throw new GatewayError('not_found', `The model '${name}' does not exist or you do not have access to it.`, {
        param,
        code: 'model_not_found',
      });
    }
    return model;
  }

  /** Every routable name: ids then aliases. */
  names(): string[] {
    return [...this.byName.keys()];
  }
}

export function costOf(
  pricing: Pricing,
  usage: { inputTokens: number; outputTokens: number; cacheReadTokens?: number; cacheWriteTokens?: number; cacheWrite1hTokens?: number; serverToolUse?: Record<string, number> },
): number {
  const cacheRead = usage.cacheReadTokens ?? 0;
  const cacheWrite = usage.cacheWriteTokens ?? 0;
  const cacheWrite1h = Math.min(cacheWrite, usage.cacheWrite1hTokens ?? 0);
  const plainInput = Math.max(0, usage.inputTokens - cacheRead - cacheWrite);
  const writes = (cacheWrite - cacheWrite1h) * pricing.cacheWrite + cacheWrite1h * pricing.cacheWrite1h;
  let usd = (plainInput * pricing.input + cacheRead * pricing.cachedInput + writes + usage.outputTokens * pricing.output) / 1e6;
  // Server tools (web searches…) are priced per request, not per token.
  if (usage.serverToolUse && pricing.serverToolUse) {
    for (const [kind, count] of Object.entries(usage.serverToolUse)) usd += count * (pricing.serverToolUse[kind] ?? 0);
  }
  return Math.round(usd * 1e10) / 1e10;
}
