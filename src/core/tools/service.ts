// The tool capability as one object a dialect can hold: the registry (built-ins, HTTP tools,
// configured MCP servers' tools), artifacts, async executions, and executors per request.

import path from 'node:path';
import type { Logger } from 'pino';
import { configSource, expandHome, type Config } from '../config.js';
import type { Store } from '../../store/store.js';
import { MemoryToolExecutionStore, type ToolExecutionStore } from '../../store/tool-executions.js';
import { parseArtifactsConfig, type ArtifactsConfig } from '../artifacts/config.js';
import { LocalArtifactStore, S3ArtifactStore, type ArtifactStore } from '../artifacts/store.js';
import { builtinTools } from './builtins.js';
import { parseMcpConfig, parseToolsConfig, type ToolsConfig } from './config.js';
import { ExecutionRunner } from './executions.js';
import { createToolExecutor, type ToolExecutor } from './executor.js';
import { httpTool } from './http-tool.js';
import { McpConnection, type McpServerSpec } from './mcp.js';
import type { ExecutableTool } from './types.js';

export interface ToolServiceOptions {
  config: Config;
  store: Store;
  dataDir: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

function headersFromEnv(names: Record<string, string>, env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(names).flatMap(([header, variable]) => (env[variable] !== undefined ? [[header, env[variable]!]] : [])));
}

export class ToolService {
  readonly toolsConfig: ToolsConfig;
  readonly artifactsConfig: ArtifactsConfig;
  readonly artifacts: ArtifactStore;
  /** Set when artifacts are served by the gateway itself (no S3). */
  readonly localArtifacts?: LocalArtifactStore;
  readonly executionStore: ToolExecutionStore;
  readonly executions: ExecutionRunner;
  private readonly staticTools: ExecutableTool[];
  private readonly mcp: McpConnection[];
  private readonly logger: Logger;

  constructor(options: ToolServiceOptions) {
    const env = options.env ?? process.env;
    this.logger = options.logger.child({ component: 'tools' });
    const source = configSource(options.config);
    this.toolsConfig = parseToolsConfig(options.config.tools, source);
    const mcpConfig = parseMcpConfig(options.config.mcp, source);
    this.artifactsConfig = parseArtifactsConfig(options.config.artifacts, source);
    if (this.artifactsConfig.s3) {
      this.artifacts = new S3ArtifactStore(this.artifactsConfig.s3, this.artifactsConfig.ttlSeconds, env);
    } else {
      const dir = this.artifactsConfig.dir ? expandHome(this.artifactsConfig.dir) : path.join(options.dataDir, 'artifacts');
      this.localArtifacts = new LocalArtifactStore(dir, options.dataDir, env, this.artifactsConfig);
      this.artifacts = this.localArtifacts;
      if (options.store.shared && (!this.artifactsConfig.dir || !this.artifactsConfig.secretEnv)) {
        // Another process sharing the store would answer 404 or 403 for this process's files.
        this.logger.warn(
          { dir },
          'artifacts are kept by this process alone: with a shared store, set artifacts.s3, or artifacts.dir on a shared volume and artifacts.secretEnv alike in every process',
        );
      }
    }
    this.executionStore = options.store.toolExecutions ?? new MemoryToolExecutionStore();
    this.executions = new ExecutionRunner(this.executionStore, this.artifacts, this.logger);
    // Background work does not survive a restart: say so instead of leaving it pending forever.
    void this.executionStore
      .abandonUnfinished?.('The gateway process running this tool stopped before it finished')
      .catch((err: unknown) => this.logger.error({ err }, 'could not fail unfinished tool executions'));
    const enabled = this.toolsConfig.builtins ? new Set(this.toolsConfig.builtins) : undefined;
    this.staticTools = [
      ...this.toolsConfig.http.map((t) => httpTool(t, env, this.toolsConfig.maxResultBytes)),
      ...builtinTools.filter((t) => !enabled || enabled.has(t.name)),
    ];
    this.mcp = mcpConfig.servers.map(
      (s) =>
        new McpConnection(
          {
            name: s.name,
            transport: s.transport,
            command: s.command,
            args: s.args,
            env: s.env,
            cwd: s.cwd,
            url: s.url,
            headers: headersFromEnv(s.headersFromEnv, env),
            allowPrivateNetwork: s.allowPrivateNetwork,
            asyncTools: s.asyncTools,
            timeoutMs: s.timeoutMs,
          },
          this.logger,
        ),
    );
  }

  /** Every tool the server can run. A configured MCP server that cannot be reached is skipped (logged). */
  async tools(): Promise<ExecutableTool[]> {
    const fromMcp = await Promise.all(
      this.mcp.map((c) =>
        c.tools().catch((err: unknown) => {
          this.logger.warn({ err, server: c.spec.name }, 'MCP server unavailable; its tools are not offered');
          return [] as ExecutableTool[];
        }),
      ),
    );
    return [...this.staticTools, ...fromMcp.flat()];
  }

  /**
   * An executor for one request: the server's tools plus `extraTools` (e.g. the tools of a
   * request's own MCP servers), of which only `allowedTools` run.
   */
  async executor(allowedTools: string[], extraTools: ExecutableTool[] = []): Promise<ToolExecutor> {
    return createToolExecutor({ tools: [...extraTools, ...(await this.tools())], allowedTools, artifacts: this.artifacts, executions: this.executions });
  }

  /** Opens a connection to an MCP server named by a request (close it when the request is done). */
  connectMcp(spec: McpServerSpec): McpConnection {
    return new McpConnection(spec, this.logger);
  }

  async close(): Promise<void> {
    await this.executions.close();
    await Promise.all(this.mcp.map((c) => c.close()));
  }
}

const SERVICE_KEY = 'tools';

/** The server's one ToolService, created on first use and kept in `services` (shared by dialects). */
export function toolServiceFor(services: Record<string, unknown>, options: ToolServiceOptions): ToolService {
  let service = services[SERVICE_KEY] as ToolService | undefined;
  if (!service) {
    service = new ToolService(options);
    services[SERVICE_KEY] = service;
  }
  return service;
}
