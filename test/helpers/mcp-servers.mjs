// MCP servers for tool tests, built with the official SDK: `buildMcpServer` defines the tools,
// `startMcpHttpServer` serves them over streamable HTTP on loopback (stateless), and
// mcp-stdio-server.mjs serves them over stdio.
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { png } from './media-fixtures.mjs';

/** `prefix` keeps tool names apart when two of these servers are configured at once. */
export function buildMcpServer(name, prefix = '') {
  const server = new McpServer({ name, version: '1.0.0' });
  server.registerTool(`${prefix}add`, { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    content: [{ type: 'text', text: `${a + b}` }],
  }));
  server.registerTool(`${prefix}shout`, { description: 'Upper-cases text', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text: `${text.toUpperCase()} (from ${name})` }],
  }));
  server.registerTool(`${prefix}draw`, { description: 'Draws a tiny image', inputSchema: {} }, async () => ({
    content: [{ type: 'image', data: png.toString('base64'), mimeType: 'image/png' }],
  }));
  // Answers only when cancelled; a server that honours the cancel sends no answer (MCP spec).
  server.registerTool(`${prefix}wait`, { description: 'Waits until cancelled', inputSchema: {} }, async (_args, extra) => {
    await new Promise((resolve) => extra.signal.addEventListener('abort', resolve, { once: true }));
    return { content: [] };
  });
  return server;
}

/**
 * `calls`: the JSON-RPC methods received; `toolCalls`: each tools/call request's tool name and a
 * promise of its HTTP request's close; `toolCalled`: resolves with the next tools/call.
 */
export async function startMcpHttpServer(name = 'http-mcp', prefix = 'web_') {
  const calls = [];
  const toolCalls = [];
  const waiters = [];
  const httpServer = http.createServer(async (req, res) => {
    const server = buildMcpServer(name, prefix);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    let body = '';
    for await (const chunk of req) body += chunk;
    const parsed = body ? JSON.parse(body) : undefined;
    if (parsed?.method) calls.push(parsed.method);
    if (parsed?.method === 'tools/call') {
      const call = { name: parsed.params.name, closed: new Promise((resolve) => res.once('close', resolve)) };
      toolCalls.push(call);
      waiters.splice(0).forEach((resolve) => resolve(call));
    }
    await server.connect(transport);
    await transport.handleRequest(req, res, parsed);
  });
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${httpServer.address().port}/mcp`,
    calls,
    toolCalls,
    toolCalled: () => new Promise((resolve) => waiters.push(resolve)),
    close: () => new Promise((resolve) => { httpServer.closeAllConnections(); httpServer.close(resolve); }),
  };
}
