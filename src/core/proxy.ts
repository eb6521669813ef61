// Outbound HTTP through the proxy the environment names (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
// NO_PROXY, or their lower-case forms), as curl, huggingface_hub and LiteLLM's httpx honour them:
// model downloads and the openai and anthropic providers over undici; the AWS SDK's clients
// (Bedrock, S3 artifacts) over a node:http agent. MCP servers and HTTP tools check the address
// they connect to: those connect directly.

import type { Agent } from 'node:http';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';

const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'] as const;
const SETTINGS_VARS = [...PROXY_VARS, 'NO_PROXY', 'no_proxy'] as const;

/** Whether any proxy is set at all: without one, callers keep their own direct connections. */
export function proxyConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return PROXY_VARS.some((name) => env[name]);
}

/** The variables' values as one string: agents read them once, so a change needs a new agent. */
function proxySettings(env: NodeJS.ProcessEnv = process.env): string {
  return SETTINGS_VARS.map((name) => env[name] ?? '').join('\n');
}

/**
 * A new undici EnvHttpProxyAgent (it applies NO_PROXY itself) when a proxy is set, else
 * undefined; the caller owns and closes it. `options` are the direct connections' own.
 */
export function newProxyDispatcher(options: EnvHttpProxyAgent.Options = {}, env: NodeJS.ProcessEnv = process.env): Dispatcher | undefined {
  if (!proxyConfigured(env)) return undefined;
  const all = env.ALL_PROXY ?? env.all_proxy;
  return new EnvHttpProxyAgent({
    ...options,
    // ALL_PROXY is not one EnvHttpProxyAgent reads on its own.
    httpProxy: env.HTTP_PROXY ?? env.http_proxy ?? all,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy ?? all,
    noProxy: env.NO_PROXY ?? env.no_proxy,
  });
}

let shared: { settings: string; dispatcher: Dispatcher | undefined } | undefined;

/** One process-wide proxy dispatcher for model downloads (never closed), or undefined to go direct. */
export function sharedProxyDispatcher(): Dispatcher | undefined {
  const settings = proxySettings();
  if (shared?.settings !== settings) shared = { settings, dispatcher: newProxyDispatcher() };
  return shared.dispatcher;
}

/**
 * A node:http agent that tunnels to `target` through the proxy the environment names for it
 * (NO_PROXY applied), or undefined when that URL goes direct; the caller owns and destroys it.
 */
export function newProxyHttpAgent(target: string): Agent | undefined {
  const proxy = getProxyForUrl(target);
  return proxy ? new HttpsProxyAgent(proxy, { keepAlive: true }) : undefined;
}

/**
 * An AWS SDK request handler for a client that calls `endpoint`: HTTP/1.1 through the proxy the
 * environment names for it, or undefined to keep the SDK's own handler (Bedrock's is HTTP/2,
 * which a tunnel for node:http cannot carry; every AWS endpoint answers HTTP/1.1 too).
 */
export function proxiedAwsRequestHandler(endpoint: string): NodeHttpHandler | undefined {
  const agent = newProxyHttpAgent(endpoint);
  return agent && new NodeHttpHandler({ httpAgent: agent, httpsAgent: agent });
}
