// Prometheus metrics (prom-client). One registry for the process.

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Gateway } from '../core/gateway.js';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry });

export const chatRequests = new Counter({
  name: 'switchboard_chat_requests_total',
  help: 'Chat requests by dialect, model, provider and status',
  labelNames: ['dialect', 'model', 'provider', 'status'],
  registers: [metricsRegistry],
});

export const chatTokens = new Counter({
  name: 'switchboard_tokens_total',
  help: 'Tokens by direction (input/output), model and provider',
  labelNames: ['direction', 'model', 'provider'],
  registers: [metricsRegistry],
});

export const chatLatency = new Histogram({
  name: 'switchboard_chat_latency_seconds',
  help: 'Whole chat request latency',
  labelNames: ['dialect', 'model', 'provider'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [metricsRegistry],
});

let attached = new WeakSet<Gateway>();

/** Feeds chat outcomes from the core into the metrics. */
export function attachMetrics(gateway: Gateway): void {
  if (attached.has(gateway)) return;
  attached.add(gateway);
  gateway.onChatDone(({ context, model, provider, summary }) => {
    const labels = { dialect: context.dialect, model: model ?? 'unknown', provider: provider ?? 'none' };
    chatRequests.inc({ ...labels, status: String(summary.status) });
    chatLatency.observe(labels, summary.latencyMs / 1000);
    chatTokens.inc({ direction: 'input', model: labels.model, provider: labels.provider }, summary.usage.inputTokens);
    chatTokens.inc({ direction: 'output', model: labels.model, provider: labels.provider }, summary.usage.outputTokens);
  });
}

export function resetMetricsAttachments(): void {
  attached = new WeakSet<Gateway>();
}
