#!/usr/bin/env node
// An MCP server over stdio, started by the gateway as a configured `mcp.servers` entry in tests.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { buildMcpServer } from './mcp-servers.mjs';

await buildMcpServer('stdio-mcp').connect(new StdioServerTransport());
