// `switchboard usage`: the GET /v1/usage report, read from the store, printed as a table.

import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { ModelRegistry } from '../core/models.js';
import { queryInstant, toEpochMs } from '../server/admin/schemas.js';
import { usageReport } from '../server/admin/usage-report.js';
import type { UsageReport } from '../server/admin/schemas.js';
import { openStore } from '../store/index.js';

interface UsageFlags {
  config?: string;
  dataDir?: string;
  org?: string;
  key?: string;
  model?: string;
  since?: string;
  until?: string;
  json?: boolean;
}

const COLUMNS = ['DAY', 'ORGANISATION', 'KEY', 'MODEL', 'PROVIDER', 'REQUESTS', 'ERRORS', 'INPUT', 'CACHED', 'OUTPUT', 'COST_USD', 'P50_MS', 'P95_MS'] as const;

function cells(row: UsageReport['data'][number] | (UsageReport['totals'] & { day: string; organisation: string; key_id: null; model: null; provider: null })): string[] {
  const ms = (v: number | null) => (v === null ? '-' : v.toFixed(1));
  return [
    row.day,
    row.organisation,
    row.key_id ?? '-',
    row.model ?? '-',
    row.provider ?? '-',
    String(row.requests),
    String(row.errors),
    String(row.input_tokens),
    String(row.cache_read_tokens),
    String(row.output_tokens),
    row.cost.toFixed(6),
    ms(row.latency_p50_ms),
    ms(row.latency_p95_ms),
  ];
}

/** Left-aligned columns padded to their widest cell. */
export function formatUsageTable(report: UsageReport): string {
  const rows = [[...COLUMNS], ...report.data.map(cells), cells({ ...report.totals, day: 'TOTAL', organisation: '', key_id: null, model: null, provider: null })];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function registerUsageCommand(program: Command): void {
  program
    .command('usage')
    .description('Usage and cost by day, organisation, key, model and provider: requests, errors, tokens, cost, p50/p95 latency.')
    .addOption(new Option('-c, --config <file>', 'YAML config file'))
    .addOption(new Option('--data-dir <dir>', 'data directory of the server (default ./data)'))
    .option('--org <organisation>', 'only this organisation')
    .option('--key <id>', 'only this key id')
    .option('--model <id>', 'only this model')
    .option('--since <time>', 'from this time (ISO 8601 or epoch ms)')
    .option('--until <time>', 'before this time (ISO 8601 or epoch ms)')
    .option('--json', 'print the JSON of GET /v1/usage instead of a table')
    .action(async (flags: UsageFlags) => {
      // As GET /v1/usage reads them (Date.parse alone took "March 3" for 2001-03-03); before the
      // store is opened, so a refused flag creates nothing.
      for (const [flag, value] of [['--since', flags.since], ['--until', flags.until]] as const) {
        if (value !== undefined && !queryInstant.safeParse(value).success) throw new Error(`${flag} '${value}' must be ISO 8601 (2026-11-24, 2026-11-24T10:00:00Z) or epoch milliseconds`);
      }
      const config = loadConfig({ configFile: flags.config, dataDir: flags.dataDir });
      const store = await openStore(config, path.resolve(config.server.dataDir), { existing: true });
      try {
        if (!store.tenancy) throw new Error(`The ${store.kind} store does not keep usage`);
        const since = toEpochMs(flags.since);
        const until = toEpochMs(flags.until);
        // As GET /v1/usage: an alias of the config (default…) asks for the model it names.
        const model = flags.model === undefined ? undefined : (new ModelRegistry(config).find(flags.model)?.id ?? flags.model);
        const samples = await store.tenancy.usageSamples({ organisation: flags.org, keyId: flags.key, model, since, until });
        const report = usageReport(samples, { organisation: flags.org, since, until });
        process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatUsageTable(report));
      } finally {
        await store.close();
      }
    });
}
