// Outbound HTTP through the proxy the environment names (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
// NO_PROXY, or their lower-case forms), as curl, huggingface_hub and LiteLLM's httpx honour them:
// model downloads and the openai and anthropic providers over undici; the AWS SDK's clients
// (Bedrock, S3 artifacts) over a node:http agent. MCP servers and HTTP tools check the address
// they connect to: those connect directly.

import type { Agent, ClientRequest } from 'node:http';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { GatewayError, withoutCredentials } from './errors.js';

const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'] as const;
const SETTINGS_VARS = [...PROXY_VARS, 'NO_PROXY', 'no_proxy'] as const;

/** Whether any proxy is set at all: without one, callers keep their own direct connections. */
export function proxyConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return PROXY_VARS.some((name) => env[name]);
}

/**
 * Throws, naming the variable, when a proxy variable is set to something that is not a URL (its
 * value is left out: it may hold credentials). Called at start, so that no call fails for it later.
 */
export function checkProxySettings(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of PROXY_VARS) {
    const value = env[name];
    if (!value) continue;
    try {
      new URL(withScheme(value)!);
    } catch {
      throw new Error(`Invalid ${name}: not a proxy URL (expected http://host:port, or http://user:password@host:port)`);
    }
  }
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
    httpProxy: withScheme(env.HTTP_PROXY ?? env.http_proxy ?? all),
    httpsProxy: withScheme(env.HTTPS_PROXY ?? env.https_proxy ?? all),
    noProxy: env.NO_PROXY ?? env.no_proxy,
  });
}

/**
 * `host:port` as curl and proxy-from-env read it, `http://host:port`: undici takes only whole URLs,
 * and a bare value made every call through it fail as an internal error.
 */
function withScheme(proxy: string | undefined): string | undefined {
  return proxy && !proxy.includes('://') ? `http://${proxy}` : proxy;
}

let shared: { settings: string; dispatcher: Dispatcher | undefined } | undefined;

/** One process-wide proxy dispatcher for model downloads (never closed), or undefined to go direct. */
export function sharedProxyDispatcher(): Dispatcher | undefined {
  const settings = proxySettings();
  if (shared?.settings !== settings) shared = { settings, dispatcher: newProxyDispatcher() };
  return shared.dispatcher;
}

/**
 * The proxy refused to open a tunnel (its answer to CONNECT was not 200): the gateway's network
 * setting is wrong or the proxy is failing, never the client's request, whichever client saw it.
 */
export function proxyRefusal(status: number, provider: string, cause?: unknown): GatewayError {
  // 407: the gateway's own credentials for the proxy are missing or wrong, as an upstream's 401 would be.
  const wantsCredentials = status === 407;
  const hint = wantsCredentials ? ': it asks for credentials, which go in the proxy URL (http://user:password@host:port)' : '';
  return new GatewayError(wantsCredentials ? 'auth' : 'upstream_5xx', `The egress proxy refused to connect to the ${provider} upstream (${status})${hint}`, {
    provider,
    status: 502,
    code: 'proxy_refused',
    retryable: status >= 500,
    cause,
  });
}

/** The proxy's status when `err` is undici's error for a refused CONNECT (a RequestAbortedError). */
export function refusedTunnelStatus(err: unknown): number | undefined {
  const match = /^Proxy response \((\d{3})\) !== 200 when HTTP Tunneling/.exec((err as Error | null)?.message ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * https-proxy-agent hands a refusing proxy's answer to the client as if the upstream had sent it
 * (a 407 would read as the upstream's 407); this fails the request with proxyRefusal instead.
 */
class TunnelAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: string,
    private readonly provider: string,
  ) {
    super(proxy, { keepAlive: true });
  }

  override async connect(req: ClientRequest, opts: Parameters<HttpsProxyAgent<string>['connect']>[1]) {
    let status = 200;
    req.once('proxyConnect', (answer: { statusCode: number }) => {
      status = answer.statusCode;
    });
    const socket = await super.connect(req, opts);
    if (status !== 200) {
      socket.destroy();
      throw proxyRefusal(status, this.provider);
    }
    return socket;
  }
}

/**
 * A node:http agent that tunnels to `target` through the proxy the environment names for it
 * (NO_PROXY applied), or undefined when that URL goes direct; the caller owns and destroys it.
 * `provider` names the upstream in a refusal's error.
 */
function newProxyHttpAgent(target: string, provider: string): Agent | undefined {
  const proxy = getProxyForUrl(target);
  return proxy ? new TunnelAgent(proxy, provider) : undefined;
}

/**
 * The URL an AWS SDK client will call, for the proxy choice: its configured endpoint, else the
 * variables the SDK reads (`AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`), else `standard`.
 */
export function awsEndpoint(configured: string | undefined, service: 'BEDROCK_RUNTIME' | 'S3', standard: string, env: NodeJS.ProcessEnv = process.env): string {
  return configured || env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || standard;
}

/**
 * An AWS SDK request handler for a client that calls `endpoint`: HTTP/1.1 through the proxy the
 * environment names for it, or undefined to keep the SDK's own handler (Bedrock's is HTTP/2,
 * which a tunnel for node:http cannot carry; every AWS endpoint answers HTTP/1.1 too).
 */
export function proxiedAwsRequestHandler(endpoint: string, provider: string): NodeHttpHandler | undefined {
  const agent = newProxyHttpAgent(endpoint, provider);
  return agent && new NodeHttpHandler({ httpAgent: agent, httpsAgent: agent });
}

/**
 * For an error message about `url`: where the proxy the environment names for it sits (its
 * credentials left out), or '' when the URL goes direct. undici's fetch reports a refused tunnel
 * only as "Request was cancelled.", so the message has to say a proxy was involved.
 */
export function viaProxy(url: string): string {
  const proxy = getProxyForUrl(url);
  return proxy ? ` through the egress proxy ${withoutCredentials(proxy)}` : '';
}
