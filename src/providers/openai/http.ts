// The HTTP side: one undici Pool per upstream origin (keep-alive connections reused across
// requests; one proxy agent for every origin when the environment names a proxy), the
// chat/completions URL, and the request headers.

import { Pool, type Dispatcher } from 'undici';
import { GatewayError } from '../../core/errors.js';
import { newProxyDispatcher, proxyConfigured } from '../../core/proxy.js';
import type { ResolvedDeployment } from '../../core/models.js';
import { DEFAULT_BASE_URL, type OpenAIDeploymentOptions } from './options.js';

export interface UpstreamTarget {
  origin: string;
  /** Path and query of `{baseUrl}/chat/completions`. */
  path: string;
}

export function chatCompletionsTarget(deployment: ResolvedDeployment): UpstreamTarget {
  let url: URL;
  try {
    url = new URL(deployment.baseUrl ?? DEFAULT_BASE_URL);
  } catch (err) {
    throw new GatewayError('internal', `Deployment '${deployment.name}' has an invalid baseUrl`, { cause: err });
  }
  // The query survives (Azure-style `?api-version=`).
  return { origin: url.origin, path: `${url.pathname.replace(/\/+$/, '')}/chat/completions${url.search}` };
}

export function requestHeaders(deployment: ResolvedDeployment, requestId: string, buffered = false): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: buffered ? 'application/json' : 'text/event-stream',
    'x-request-id': requestId,
    ...(deployment.apiKey ? { authorization: `Bearer ${deployment.apiKey}` } : {}),
    // Last, so a deployment can replace any of the above (e.g. Azure's `api-key` scheme).
    ...deployment.headers,
  };
}

export class UpstreamClient {
  private readonly pools = new Map<string, Dispatcher>();
  private inFlight = 0;
  /** Read once: the environment's proxy does not change while a process runs (reading it costs ≈ 1.4 µs). */
  private proxied: boolean | undefined;

  private pool(origin: string, options: OpenAIDeploymentOptions): Dispatcher {
    // The connect timeout and size belong to the pool, so they are part of its key; a proxy
    // agent serves every origin (and sends the NO_PROXY ones direct).
    this.proxied ??= proxyConfigured();
    const key = `${this.proxied ? 'proxy' : origin} ${options.connectTimeoutMs} ${options.maxConnections}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const connect = { timeout: options.connectTimeoutMs };
      const connections = options.maxConnections || null;
      pool = (this.proxied && newProxyDispatcher({ connect, connections })) || new Pool(origin, { connect, connections });
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Resolves at the response headers; the body is read (and timed) by the caller. */
  async post(
    target: UpstreamTarget,
    headers: Record<string, string>,
    body: string,
    options: OpenAIDeploymentOptions,
    signal: AbortSignal,
    buffered = false,
  ): Promise<Dispatcher.ResponseData> {
    this.inFlight++;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.pool(target.origin, options).request({
        origin: target.origin,
        method: 'POST',
        path: target.path,
        headers,
        body,
        signal,
        // A buffered answer's headers come when the whole answer is ready.
        headersTimeout: buffered ? options.bufferedTimeoutMs : options.firstByteTimeoutMs,
        // undici restarts this timer on every body chunk: it is the idle limit between chunks.
        bodyTimeout: options.idleTimeoutMs,
      });
    } catch (err) {
      this.inFlight--;
      throw err;
    }
    response.body.once('close', () => this.inFlight--);
    return response;
  }

  stats(): Record<string, number> {
    return { upstream_pools: this.pools.size, upstream_in_flight: this.inFlight };
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }
}
