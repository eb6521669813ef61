// Prometheus metrics (prom-client). One registry for the process; gauges read their numbers
// from every live server when scraped.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Gateway } from '../core/gateway.js';
import type { Usage } from '../core/types.js';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry });

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const OVERHEAD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export const chatRequests = new Counter({
  name: 'switchboard_chat_requests_total',
  help: 'Chat requests by dialect, model, provider and status',
  labelNames: ['dialect', 'model', 'provider', 'status'],
  registers: [metricsRegistry],
});

export const chatErrors = new Counter({
  name: 'switchboard_chat_errors_total',
  help: 'Chat requests that failed, by dialect, model, provider, status and error kind',
  labelNames: ['dialect', 'model', 'provider', 'status', 'kind'],
  registers: [metricsRegistry],
});

export const chatTokens = new Counter({
  name: 'switchboard_tokens_total',
  help: 'Tokens by direction (input/output), model and provider',
  labelNames: ['direction', 'model', 'provider'],
  registers: [metricsRegistry],
});

/** Parts of the input/output tokens, apart from switchboard_tokens_total so a sum by direction counts each token once. */
export const chatTokenDetails = new Counter({
  name: 'switchboard_token_details_total',
  help: 'Parts of the tokens: kind cache_read / cache_write (of input), reasoning (of output), by model and provider',
  labelNames: ['kind', 'model', 'provider'],
  registers: [metricsRegistry],
});

export const serverToolRequests = new Counter({
  name: 'switchboard_server_tool_requests_total',
  help: 'Requests of tools the provider ran itself (web searches…), by counter name, model and provider',
  labelNames: ['kind', 'model', 'provider'],
  registers: [metricsRegistry],
});

export const chatCost = new Counter({
  name: 'switchboard_cost_usd_total',
  help: 'Cost in USD (from the model price table) by organisation, model and provider',
  labelNames: ['organisation', 'model', 'provider'],
  registers: [metricsRegistry],
});

export const chatLatency = new Histogram({
  name: 'switchboard_chat_latency_seconds',
  help: 'Whole chat request latency',
  labelNames: ['dialect', 'model', 'provider'],
  buckets: LATENCY_BUCKETS,
  registers: [metricsRegistry],
});

export const chatTtft = new Histogram({
  name: 'switchboard_chat_ttft_seconds',
  help: 'Time from request arrival to the first content part',
  labelNames: ['dialect', 'model', 'provider'],
  buckets: LATENCY_BUCKETS,
  registers: [metricsRegistry],
});

export const gatewayOverhead = new Histogram({
  name: 'switchboard_gateway_overhead_seconds',
  help: "The gateway's own time before a call is handed to the router: parsing, auth, limits and budgets",
  labelNames: ['dialect'],
  buckets: OVERHEAD_BUCKETS,
  registers: [metricsRegistry],
});

export const httpInFlight = new Gauge({
  name: 'switchboard_http_requests_in_flight',
  help: 'HTTP requests being served',
  registers: [metricsRegistry],
});

/** What a live server lets the scrape read: each function is asked at scrape time. */
export interface MetricsSource {
  gateway: Gateway;
  /** Chat calls admitted and not finished. */
  chatInFlight?: () => number;
  /** Async runs waiting to start (context.services.asyncQueueDepth, when async runs exist). */
  asyncQueueDepth?: () => number;
}

const sources = new Set<MetricsSource>();

export function addMetricsSource(source: MetricsSource): () => void {
  sources.add(source);
  return () => sources.delete(source);
}

const sum = (read: (s: MetricsSource) => number | undefined) => [...sources].reduce((n, s) => n + (read(s) ?? 0), 0);

new Gauge({
  name: 'switchboard_chat_in_flight',
  help: 'Chat calls admitted and not yet finished',
  registers: [metricsRegistry],
  collect() {
    this.set(sum((s) => s.chatInFlight?.()));
  },
});

new Gauge({
  name: 'switchboard_async_queue_depth',
  help: 'Async runs waiting to start',
  registers: [metricsRegistry],
  collect() {
    this.set(sum((s) => s.asyncQueueDepth?.()));
  },
});

/** Provider numbers (provider.stats()) of the providers a server has started. */
function providerStats(): Array<{ provider: string; stat: string; value: number }> {
  const out: Array<{ provider: string; stat: string; value: number }> = [];
  for (const source of sources) {
    for (const provider of source.gateway.startedProviders()) {
      for (const [stat, value] of Object.entries(provider.stats?.() ?? {})) {
        if (Number.isFinite(value)) out.push({ provider: provider.name, stat, value });
      }
    }
  }
  return out;
}

new Gauge({
  name: 'switchboard_local_queue_depth',
  help: 'Requests waiting for a free sequence of the local model',
  registers: [metricsRegistry],
  collect() {
    this.set(providerStats().filter((s) => s.stat === 'local_queue_depth').reduce((n, s) => n + s.value, 0));
  },
});

new Gauge({
  name: 'switchboard_provider_stat',
  help: 'Numbers providers report (provider.stats()): queue depth, active sequences, open connections',
  labelNames: ['provider', 'stat'],
  registers: [metricsRegistry],
  collect() {
    this.reset();
    for (const s of providerStats()) this.set({ provider: s.provider, stat: s.stat }, s.value);
  },
});

const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;

interface DeploymentSnapshot {
  name?: unknown;
  circuit?: { state?: unknown };
}

new Gauge({
  name: 'switchboard_router_breaker_state',
  help: "Circuit breaker state per deployment: 1 on the current state's series",
  labelNames: ['model', 'deployment', 'state'],
  registers: [metricsRegistry],
  collect() {
    this.reset();
    for (const source of sources) {
      const status = source.gateway.router.status() as { models?: Array<{ id?: unknown; deployments?: DeploymentSnapshot[] }> };
      for (const model of status.models ?? []) {
        for (const d of model.deployments ?? []) {
          const current = d.circuit?.state;
          if (typeof current !== 'string') continue;
          for (const state of BREAKER_STATES) this.set({ model: String(model.id), deployment: String(d.name), state }, state === current ? 1 : 0);
        }
      }
    }
  },
});

let attached = new WeakSet<Gateway>();

/** Feeds chat outcomes from the core into the metrics. */
export function attachMetrics(gateway: Gateway): void {
  if (attached.has(gateway)) return;
  attached.add(gateway);
  gateway.onChatDone(({ context, model, provider, summary, ttftMs, setAside }) => {
    const labels = { dialect: context.dialect, model: model ?? 'unknown', provider: provider ?? 'none' };
    const status = String(summary.status);
    chatRequests.inc({ ...labels, status });
    if (summary.status >= 400) chatErrors.inc({ ...labels, status, kind: summary.errorKind ?? 'unknown' });
    chatLatency.observe(labels, summary.latencyMs / 1000);
    if (ttftMs !== undefined) chatTtft.observe(labels, ttftMs / 1000);
    countSpend(context.organisation, { model: labels.model, provider: labels.provider }, summary.usage, summary.cost);
    // A declined answer the router rerouted was paid for too: counted under the model that declined.
    for (const answer of setAside) countSpend(context.organisation, { model: answer.model, provider: answer.provider }, answer.usage, answer.cost);
  });
}

function countSpend(organisation: string, by: { model: string; provider: string }, usage: Usage, cost: number): void {
  chatTokens.inc({ direction: 'input', ...by }, usage.inputTokens);
  chatTokens.inc({ direction: 'output', ...by }, usage.outputTokens);
  const { cacheReadTokens, cacheWriteTokens, reasoningTokens, serverToolUse } = usage;
  if (cacheReadTokens) chatTokenDetails.inc({ kind: 'cache_read', ...by }, cacheReadTokens);
  if (cacheWriteTokens) chatTokenDetails.inc({ kind: 'cache_write', ...by }, cacheWriteTokens);
  if (reasoningTokens) chatTokenDetails.inc({ kind: 'reasoning', ...by }, reasoningTokens);
  for (const [kind, count] of Object.entries(serverToolUse ?? {})) serverToolRequests.inc({ kind, ...by }, count);
  chatCost.inc({ organisation, ...by }, cost);
}

export function resetMetricsAttachments(): void {
  attached = new WeakSet<Gateway>();
}
