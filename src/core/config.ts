// The configuration file (YAML), its schema, and the environment overrides.
// With no file at all the server serves one local model, the default.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export const DEFAULT_LOCAL_MODEL_ID = 'qwen2.5-0.5b-instruct';
/**
 * Tokens per sequence a local model is served with when `local.contextSize` is not set (less when
 * the GGUF was trained for less): enough for chat, cheap in RAM with four sequences.
 */
export const DEFAULT_LOCAL_CONTEXT_SIZE = 8192;

/** Qwen2.5-0.5B-Instruct, Q4_K_M quantisation: small, multilingual, trained for tool calling. */
export const DEFAULT_LOCAL_MODEL_SOURCE = 'hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf';

const modalitySchema = z.enum(['text', 'image', 'video', 'document']);

const pricingSchema = z
  .object({
    /** USD per million input tokens. */
    input: z.number().nonnegative().default(0),
    /** USD per million output tokens. */
    output: z.number().nonnegative().default(0),
    /** USD per million cached input tokens (cache reads); defaults to `input`. */
    cachedInput: z.number().nonnegative().optional(),
    /** USD per million cache-write tokens; defaults to `input`. */
    cacheWrite: z.number().nonnegative().optional(),
    /** USD per million tokens written to a 1-hour cache (Anthropic: 2× input); defaults to `cacheWrite`. */
    cacheWrite1h: z.number().nonnegative().optional(),
    /** USD per request of a tool the provider runs itself, by kind (Anthropic's `web_search_requests`: 0.01). */
    serverToolUse: z.record(z.string(), z.number().nonnegative()).optional(),
  })
  .strict();

// Checked when the config loads, not when a request first needs them: a typo in a sha256 would
// otherwise show only after a whole model had downloaded.
const baseUrlSchema = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });
const sha256Schema = z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hexadecimal characters');

/** One upstream that can serve a model: provider + upstream model + credentials. */
const deploymentSchema = z
  .object({
    /** Optional name, shown in headers, logs and router status. */
    name: z.string().optional(),
    provider: z.string(),
    /** Upstream model name; for `local`, a GGUF path, http(s) URL or hf: reference. */
    model: z.string(),
    baseUrl: baseUrlSchema.optional(),
    /** Name of the environment variable holding the API key (never the key itself). */
    apiKeyEnv: z.string().optional(),
    /** Extra request headers for the upstream. */
    headers: z.record(z.string(), z.string()).optional(),
    /** Expected sha256 of a downloaded local model file. */
    sha256: sha256Schema.optional(),
    /** Expected size in bytes of a downloaded local model file. */
    size: z.number().int().positive().optional(),
    region: z.string().optional(),
    weight: z.number().positive().default(1),
    /** Max requests in flight on this deployment (0 = unlimited). */
    maxConcurrent: z.number().int().nonnegative().default(0),
    /** Provider-specific options, passed to the provider unchanged. */
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const modelSchema = z
  .object({
    id: z.string().min(1),
    aliases: z.array(z.string()).default([]),
    provider: z.string().optional(),
    model: z.string().optional(),
    baseUrl: baseUrlSchema.optional(),
    apiKeyEnv: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    sha256: sha256Schema.optional(),
    size: z.number().int().positive().optional(),
    region: z.string().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
    /** Omitted: 4096, or for a model served only by `local`, the context its sequences are served with (models.ts). */
    contextLength: z.number().int().positive().optional(),
    modalities: z.array(modalitySchema).default(['text']),
    pricing: pricingSchema.default({ input: 0, output: 0 }),
    /** Several upstreams for one model; when absent, the model's own provider fields are the one deployment. */
    deployments: z.array(deploymentSchema).optional(),
    /** Router settings for this model (strategy, retries, fallbacks, timeouts). */
    routing: z.record(z.string(), z.unknown()).optional(),
    ownedBy: z.string().optional(),
  })
  .strict()
  .refine((m) => m.deployments?.length || (m.provider && m.model), {
    message: 'a model needs `provider` and `model`, or `deployments`',
  });

/** node-llama-cpp's GPU backends; `false` keeps local models on the CPU. */
const GPU_BACKENDS = ['auto', 'cuda', 'vulkan', 'metal'] as const;

// Fields a flag or env var can also set: the same rule checks them there.
const portSchema = z.number().int().min(0).max(65535);
const threadsSchema = z.number().int().positive();
const logLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const localSchema = z
  .object({
    /** CPU threads per context. 1 is by far the fastest for small models on small machines (measured). */
    threads: threadsSchema.default(1),
    /** Sequences evaluated together in one context (batched). */
    parallel: z.number().int().positive().default(4),
    /** Requests that may wait for a free sequence before new ones get 429/503. */
    queueLimit: z.number().int().nonnegative().default(64),
    /** Context size per sequence, in tokens (capped by the model's own). */
    contextSize: z.number().int().positive().optional(),
    /** Where downloaded models are kept. */
    cacheDir: z.string().optional(),
    gpu: z.union([z.literal(false), z.enum(GPU_BACKENDS)], { error: `expected false or one of ${GPU_BACKENDS.join(', ')}` }).default(false),
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: portSchema.default(8080),
        dataDir: z.string().default('./data'),
        /** Whole-request body cap in bytes. */
        bodyLimit: z.number().int().positive().default(25 * 1024 * 1024),
        logLevel: logLevelSchema.default('info'),
        /**
         * On SIGTERM/SIGINT, how long requests in flight may go on finishing; those still running
         * then end with a 503 `server_shutting_down` (in-stream when streaming).
         */
        shutdownGraceSeconds: z.number().min(0).max(3600).default(20),
        /**
         * How long a client may take to send its whole request (headers and body); past it, 408 and
         * the connection closed. It does not bound the answer: a long generation is never cut. 0: no limit.
         */
        requestTimeoutSeconds: z.number().min(0).max(86_400).default(300),
        /**
         * How long a streamed answer may wait for a client that stopped reading (its socket full);
         * past it the connection is closed and the work behind it (a local sequence, an upstream
         * call) stops. nginx's send_timeout is the same idea. 0: wait for ever.
         */
        streamStallSeconds: z.number().min(0).max(86_400).default(60),
        /** Admin key (raw) taken from this env var, for the admin API. */
        adminKeyEnv: z.string().default('SWITCHBOARD_ADMIN_KEY'),
        /** Web origins whose pages may call the API from a browser (CORS); ['*'] for any. Absent: none. */
        cors: z
          .object({ origins: z.array(z.string().min(1)).min(1) })
          .strict()
          .optional(),
      })
      .strict()
      .default({
        host: '127.0.0.1',
        port: 8080,
        dataDir: './data',
        bodyLimit: 25 * 1024 * 1024,
        logLevel: 'info',
        shutdownGraceSeconds: 20,
        requestTimeoutSeconds: 300,
        streamStallSeconds: 60,
        adminKeyEnv: 'SWITCHBOARD_ADMIN_KEY',
      }),
    local: localSchema.default({ threads: 1, parallel: 4, queueLimit: 64, gpu: false }),
    defaultModel: z.string().optional(),
    models: z.array(modelSchema).default([]),
    /** Settings owned by later features (tools, router, limits, store…), validated by their owners. */
    tools: z.unknown().optional(),
    router: z.unknown().optional(),
    limits: z.unknown().optional(),
    store: z.unknown().optional(),
    async: z.unknown().optional(),
    /** The Messages API (seed 003): request-named MCP servers; validated in src/dialects/messages/config.ts. */
    messages: z.unknown().optional(),
    artifacts: z.unknown().optional(),
    mcp: z.unknown().optional(),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type DeploymentConfig = z.infer<typeof deploymentSchema>;
export type Modality = z.infer<typeof modalitySchema>;

export interface ConfigOverrides {
  configFile?: string;
  host?: string;
  /** Numbers as a flag gives them (strings) or as code does. */
  port?: number | string;
  dataDir?: string;
  /** Default local model: path, URL or hf: reference. */
  model?: string;
  threads?: number | string;
  /** GPU backend for local models: false, auto, cuda, vulkan or metal. */
  gpu?: string;
  logLevel?: string;
}

/** A --gpu / SWITCHBOARD_GPU value: `false` (or off/none/cpu) keeps the model on the CPU. */
function parseGpu(value: string, source: string): Config['local']['gpu'] {
  const v = value.trim().toLowerCase();
  if (['false', 'off', 'none', 'cpu', ''].includes(v)) return false;
  const backend = GPU_BACKENDS.find((b) => b === v);
  if (!backend) throw new Error(`Invalid ${source} "${value}": use false, ${GPU_BACKENDS.join(', ')}`);
  return backend;
}

export function defaultCacheDir(): string {
  return expandHome(process.env.SWITCHBOARD_CACHE_DIR || path.join(os.homedir(), '.cache', 'switchboard', 'models'));
}

/** `~` or `~/…` in a path from the config file or the environment, which no shell expanded: the home directory. */
export function expandHome(file: string): string {
  if (file === '~' || file.startsWith('~/')) return path.join(os.homedir(), file.slice(1));
  // Another user's home (~bob/…) would silently become a folder named "~bob" here.
  if (/^~[^/]/.test(file)) throw new Error(`Cannot use the path '${file}': only ~/ (this user's home) is expanded; write the full path`);
  return file;
}

/** `hf.co/owner/repo…`, as the Hub's "use this model" buttons write it for Ollama, is `hf:owner/repo…`. */
export function normalizeHubSource(source: string): string {
  const short = /^(?:hf\.co|huggingface\.co)\/(.+)$/.exec(source);
  return short ? `hf:${short[1]}` : source;
}

/**
 * `hf:owner/repo[:QUANT]` (or its `hf.co/` form), a repository whose file the Hub picks: owner,
 * repo and tag — a quantization upper-cased as llama.cpp and node-llama-cpp name it (Q4_K_M, …),
 * or `latest` to let the Hub choose. Undefined for any other source.
 */
export function hubRepoReference(source: string): { owner: string; repo: string; tag: string } | undefined {
  const match = /^hf:([^/#:]+)\/([^/#:]+)(?::([^/#]+))?$/.exec(normalizeHubSource(source));
  if (!match) return undefined;
  const tag = !match[3] || match[3].toLowerCase() === 'latest' ? 'latest' : match[3].toUpperCase();
  return { owner: match[1]!, repo: match[2]!, tag };
}

/**
 * Model id for a local model source: the file name without `.gguf`; for `hf:owner/repo:QUANT`,
 * the repository without `-GGUF` and the quantization (`Qwen2.5-0.5B-Instruct-Q4_K_M`).
 */
export function localModelId(given: string): string {
  const hubRepo = hubRepoReference(given);
  if (hubRepo) return `${hubRepo.repo.replace(/-gguf$/i, '')}${hubRepo.tag === 'latest' ? '' : `-${hubRepo.tag}`}`;
  const source = normalizeHubSource(given);
  const file = source.startsWith('hf:') ? source.split('#')[0]! : source;
  const last = file.split(/[\\/]/).pop() ?? file;
  return last.replace(/\.gguf$/i, '') || DEFAULT_LOCAL_MODEL_ID;
}

/** The file's YAML; a missing file or a syntax error says which file. */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? (err as Error).message);
    throw new Error(`Cannot read the config file ${file}: ${reason}`);
  }
  try {
    return (parseYaml(text) as Record<string, unknown> | null) ?? {};
  } catch (err) {
    // The parser's message, without the excerpt of the file it appends after the first line.
    throw new Error(`Invalid YAML in ${file}: ${(err as Error).message.split('\n')[0]!.replace(/:$/, '')}`);
  }
}

type Source = [name: string, value: string | number | undefined];

const asNumber = (value: string | number): number => (typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value));

/**
 * A flag's value, else the env var's (an empty one counts as unset), checked by the config
 * field's own rule: `--port abc` or `SWITCHBOARD_PORT=99999` is an error naming where it came
 * from, not a silently ignored setting.
 */
function checkedOverride<T>(schema: z.ZodType<T>, flag: Source, envVar: Source, convert: (value: string | number) => unknown): T | undefined {
  const [name, value] = flag[1] !== undefined ? flag : envVar[1] !== undefined && envVar[1] !== '' ? envVar : [undefined, undefined];
  if (name === undefined || value === undefined) return undefined;
  const result = schema.safeParse(convert(value));
  if (!result.success) throw new Error(`Invalid ${name} ${JSON.stringify(String(value))}: ${result.error.issues.map((i) => i.message).join('; ')}`);
  return result.data;
}

function formatZodError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** An empty variable (`SWITCHBOARD_GPU=`) counts as unset, as docs/configuration.md says. */
function withoutEmptyValues(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
}

const sources = new WeakMap<Config, string>();

/** The file a config was read from, if any: the sections checked later name it in their errors. */
export function configSource(config: Config): string | undefined {
  return sources.get(config);
}

/** "Invalid config in FILE: detail", or without the file for a config that came from none. */
export function invalidConfig(detail: string, source?: string): Error {
  return new Error(`Invalid config${source ? ` in ${source}` : ''}: ${detail}`);
}

/** A section's validation failure (`limits`, `store`, `tools`…), each problem named by its path. */
export function invalidConfigSection(section: string, error: z.ZodError, source?: string): Error {
  return invalidConfig(error.issues.map((i) => `${section}.${i.path.join('.')}: ${i.message}`).join('; '), source);
}

/**
 * Loads the config: file (flag, then SWITCHBOARD_CONFIG, then ./switchboard.yaml if present),
 * then env vars, then CLI flags. Flags beat env beat file.
 */
export function loadConfig(overrides: ConfigOverrides = {}, given: NodeJS.ProcessEnv = process.env): Config {
  const env = withoutEmptyValues(given);
  const named = overrides.configFile ?? env.SWITCHBOARD_CONFIG;
  const file = named !== undefined ? expandHome(named) : fs.existsSync('switchboard.yaml') ? 'switchboard.yaml' : undefined;
  let raw: Record<string, unknown> = {};
  if (file) raw = readConfigFile(file);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw invalidConfig(formatZodError(parsed.error), file);
  const config = parsed.data;
  if (file) sources.set(config, file);

  const host = overrides.host ?? env.SWITCHBOARD_HOST;
  const port = checkedOverride(portSchema, ['--port', overrides.port], ['SWITCHBOARD_PORT', env.SWITCHBOARD_PORT], asNumber);
  const dataDir = overrides.dataDir ?? env.SWITCHBOARD_DATA_DIR;
  const model = overrides.model ?? env.SWITCHBOARD_MODEL;
  const threads = checkedOverride(threadsSchema, ['--threads', overrides.threads], ['SWITCHBOARD_THREADS', env.SWITCHBOARD_THREADS], asNumber);
  const logLevel = checkedOverride(logLevelSchema, ['--log-level', overrides.logLevel], ['SWITCHBOARD_LOG_LEVEL', env.SWITCHBOARD_LOG_LEVEL], String);
  const gpu = overrides.gpu ?? env.SWITCHBOARD_GPU;
  if (host) config.server.host = host;
  if (port !== undefined) config.server.port = port;
  if (dataDir) config.server.dataDir = dataDir;
  if (threads !== undefined) config.local.threads = threads;
  if (logLevel) config.server.logLevel = logLevel;
  if (gpu !== undefined) config.local.gpu = parseGpu(gpu, overrides.gpu !== undefined ? '--gpu' : 'SWITCHBOARD_GPU');
  // The variable beats the file, as every other one does.
  const cacheDir = env.SWITCHBOARD_CACHE_DIR ?? config.local.cacheDir;
  if (cacheDir) config.local.cacheDir = expandHome(cacheDir);
  config.server.dataDir = expandHome(config.server.dataDir);

  if (model) {
    // --model replaces the default local model (or adds it when the config has none).
    const existing = config.models.find((m) => m.id === config.defaultModel && m.provider === 'local');
    if (existing) existing.model = model;
    else {
      const id = localModelId(model);
      config.models = config.models.filter((m) => m.id !== id);
      config.models.unshift(modelSchema.parse({ id, provider: 'local', model }));
      config.defaultModel = id;
    }
  }
  if (config.models.length === 0) {
    config.models.push(
      modelSchema.parse({ id: DEFAULT_LOCAL_MODEL_ID, provider: 'local', model: DEFAULT_LOCAL_MODEL_SOURCE, ownedBy: 'qwen' }),
    );
  }
  if (!config.defaultModel) config.defaultModel = config.models[0]!.id;
  if (!config.models.some((m) => m.id === config.defaultModel)) {
    throw invalidConfig(`defaultModel "${config.defaultModel}" is not one of the models`, file);
  }
  checkModelNames(config.models, config.defaultModel, file);
  return config;
}

/**
 * Every id and alias names one model: a second model of the same name was silently shadowed (the
 * later id won, an alias lost to any id). `default` names the default model only.
 */
function checkModelNames(models: Config['models'], defaultModel: string, file: string | undefined): void {
  const owner = new Map<string, string>();
  for (const model of models) {
    for (const name of new Set([model.id, ...model.aliases])) {
      if (name === 'default' && model.id !== defaultModel) {
        const has = model.id === 'default' ? "the id 'default'" : "the alias 'default'";
        throw invalidConfig(`model '${model.id}' has ${has}, which names the default model ('${defaultModel}'); set defaultModel: ${model.id} instead`, file);
      }
      const first = owner.get(name);
      if (first !== undefined) {
        if (first === name && model.id === name) throw invalidConfig(`two models have the id '${name}'`, file);
        const what = (id: string) => (id === name ? `the id of model '${id}'` : `an alias of model '${id}'`);
        throw invalidConfig(`'${name}' is ${what(first)} and ${what(model.id)}; each model id and alias must name one model`, file);
      }
      owner.set(name, model.id);
    }
  }
}
