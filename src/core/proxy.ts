// Outbound HTTP through the proxy the environment names (HTTPS_PROXY, HTTP_PROXY and NO_PROXY, or
// their lower-case forms), as curl and huggingface_hub honour them. Model downloads use it.

import { EnvHttpProxyAgent, type Dispatcher } from 'undici';

const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const;

let cached: { settings: string; dispatcher: Dispatcher } | undefined;

/** undici's EnvHttpProxyAgent when a proxy is set, else undefined (a direct connection). */
export function envProxyDispatcher(env: NodeJS.ProcessEnv = process.env): Dispatcher | undefined {
  if (!PROXY_VARS.some((name) => env[name])) return undefined;
  // The agent reads the variables once; a change (a test, a config reload) gets a new one.
  const settings = [...PROXY_VARS, 'NO_PROXY', 'no_proxy'].map((name) => env[name] ?? '').join('\n');
  if (cached?.settings !== settings) cached = { settings, dispatcher: new EnvHttpProxyAgent() };
  return cached.dispatcher;
}
