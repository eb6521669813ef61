// Tools of MCP servers, through the official SDK client over stdio or streamable HTTP.
// A connection is opened on first use and kept; its tools become ExecutableTools.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { fetch as undiciFetch } from 'undici';
import type { Logger } from 'pino';
import { normaliseMediaType, mediaKindOf } from '../media.js';
import type { MediaPart, TextPart } from '../types.js';
import { assertPublicUrl, publicOnlyAgent } from './address-guard.js';
import { cancellingFetch } from './mcp-fetch.js';
import type { ExecutableTool, ToolOutput } from './types.js';

/** What is needed to reach one MCP server (from config, or per request: Messages `mcp_servers`). */
export interface McpServerSpec {
  name: string;
  transport: 'stdio' | 'http';
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  url?: string;
  headers?: Record<string, string>;
  allowPrivateNetwork?: boolean;
  asyncTools?: string[];
  timeoutMs?: number;
}

interface McpContentItem {
  type: string;
  text?: string;
  data?: string;
  mimeType?: string;
  resource?: { uri?: string; text?: string; blob?: string; mimeType?: string };
}

/** MCP tool result content → canonical text and media parts. */
export function mcpResultToOutput(result: { content?: unknown; structuredContent?: unknown; isError?: boolean }): ToolOutput {
  const content: Array<TextPart | MediaPart> = [];
  for (const item of (Array.isArray(result.content) ? result.content : []) as McpContentItem[]) {
    if (item.type === 'text' && typeof item.text === 'string') content.push({ type: 'text', text: item.text });
    else if ((item.type === 'image' || item.type === 'audio') && item.data) {
      const mediaType = normaliseMediaType(item.mimeType ?? 'application/octet-stream');
      content.push({ type: mediaKindOf(mediaType), mediaType, data: new Uint8Array(Buffer.from(item.data, 'base64')) });
    } else if (item.type === 'resource' && item.resource) {
      if (item.resource.text !== undefined) content.push({ type: 'text', text: item.resource.text });
      else if (item.resource.blob) {
        const mediaType = normaliseMediaType(item.resource.mimeType ?? 'application/octet-stream');
        content.push({ type: mediaKindOf(mediaType), mediaType, data: new Uint8Array(Buffer.from(item.resource.blob, 'base64')), name: item.resource.uri });
      }
    } else if (item.type === 'resource_link') {
      content.push({ type: 'text', text: JSON.stringify(item) });
    }
  }
  return { content, structured: result.structuredContent, isError: result.isError === true };
}

export class McpConnection {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;

  constructor(
    readonly spec: McpServerSpec,
    private readonly logger?: Logger,
  ) {}

  private async transport(): Promise<Transport> {
    const { spec } = this;
    if (spec.transport === 'stdio') {
      return new StdioClientTransport({
        command: spec.command!,
        args: spec.args ?? [],
        env: { ...getDefaultEnvironment(), ...(spec.env ?? {}) },
        cwd: spec.cwd,
        stderr: 'ignore',
      });
    }
    if (!spec.allowPrivateNetwork) await assertPublicUrl(spec.url!);
    const dispatcher = spec.allowPrivateNetwork ? undefined : publicOnlyAgent();
    const guardedFetch = ((input: string | URL, init?: RequestInit) =>
      undiciFetch(input, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch;
    return new StreamableHTTPClientTransport(new URL(spec.url!), {
      requestInit: { headers: spec.headers ?? {} },
      fetch: cancellingFetch(guardedFetch),
    });
  }

  /** The connected client (connects once; a failed attempt is retried on the next call). */
  async connect(): Promise<Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const client = new Client({ name: 'switchboard', version: '0.1.0' });
      await client.connect(await this.transport(), { timeout: this.spec.timeoutMs ?? 30_000 });
      // A server that exits (or drops the session) is reconnected on next use.
      client.onclose = () => {
        if (this.client === client) this.client = undefined;
      };
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** The server's tools as executable tools. */
  async tools(): Promise<ExecutableTool[]> {
    const client = await this.connect();
    const listed = await client.listTools(undefined, { timeout: this.spec.timeoutMs ?? 30_000 });
    const asyncTools = new Set(this.spec.asyncTools ?? []);
    return listed.tools.map((tool) => ({
      name: tool.name,
      description: tool.description,
      parameters: tool.inputSchema as Record<string, unknown>,
      source: 'mcp' as const,
      serverName: this.spec.name,
      async: asyncTools.has(tool.name),
      execute: async (input, context) => {
        const result = await client.callTool({ name: tool.name, arguments: input }, undefined, {
          signal: context.signal,
          timeout: this.spec.timeoutMs ?? 30_000,
        });
        return mcpResultToOutput(result as { content?: unknown; structuredContent?: unknown; isError?: boolean });
      },
    }));
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.close().catch((err: unknown) => this.logger?.warn({ err, server: this.spec.name }, 'closing MCP connection failed'));
  }
}
