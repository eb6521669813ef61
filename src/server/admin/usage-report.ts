// Aggregates request-log samples by day, organisation, key, model and provider: requests,
// errors, tokens, cost and latency percentiles. Shared by GET /v1/usage and `switchboard usage`.

import { addCounts } from '../../core/types.js';
import type { UsageSample } from '../../store/tenancy.js';
import type { UsageReport, UsageRow } from './schemas.js';

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1]!;
}

interface Bucket {
  row: Omit<UsageRow, 'latency_p50_ms' | 'latency_p95_ms'>;
  latencies: number[];
}

function emptyNumbers() {
  return {
    requests: 0,
    errors: 0,
    input_tokens: 0,
    output_tokens: 0,
    total_tokens: 0,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
    server_tool_use: {} as Record<string, number>,
    cost: 0,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function usageReport(samples: UsageSample[], scope: { organisation?: string; since?: number; until?: number }): UsageReport {
  const buckets = new Map<string, Bucket>();
  const totals = emptyNumbers();
  const allLatencies: number[] = [];
  for (const s of samples) {
    const day = new Date(s.createdAt).toISOString().slice(0, 10);
    const id = JSON.stringify([day, s.organisation, s.keyId ?? null, s.model ?? null, s.provider ?? null]);
    let bucket = buckets.get(id);
    if (!bucket) {
      bucket = {
        row: { day, organisation: s.organisation, key_id: s.keyId ?? null, model: s.model ?? null, provider: s.provider ?? null, ...emptyNumbers() },
        latencies: [],
      };
      buckets.set(id, bucket);
    }
    for (const target of [bucket.row, totals]) {
      target.requests++;
      if (s.status >= 400) target.errors++;
      target.input_tokens += s.inputTokens;
      target.output_tokens += s.outputTokens;
      target.total_tokens += s.inputTokens + s.outputTokens;
      target.cache_read_tokens += s.cacheReadTokens;
      target.cache_write_tokens += s.cacheWriteTokens;
      target.reasoning_tokens += s.reasoningTokens;
      addCounts(target.server_tool_use, s.serverToolUse);
      target.cost += s.cost;
    }
    bucket.latencies.push(s.latencyMs);
    allLatencies.push(s.latencyMs);
  }
  const latencyOf = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const p50 = percentile(sorted, 0.5);
    const p95 = percentile(sorted, 0.95);
    return { latency_p50_ms: p50 === null ? null : round(p50, 2), latency_p95_ms: p95 === null ? null : round(p95, 2) };
  };
  const data = [...buckets.values()].map((b) => ({ ...b.row, cost: round(b.row.cost, 10), ...latencyOf(b.latencies) }));
  return {
    object: 'usage',
    organisation: scope.organisation ?? null,
    since: scope.since === undefined ? null : new Date(scope.since).toISOString(),
    until: scope.until === undefined ? null : new Date(scope.until).toISOString(),
    data,
    totals: { ...totals, cost: round(totals.cost, 10), ...latencyOf(allLatencies) },
  };
}
