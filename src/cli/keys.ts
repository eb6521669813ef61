import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { generateApiKey, hashApiKey, keyPrefix } from '../core/keys.js';
import { keyOrganisationName } from '../server/admin/schemas.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/store.js';
import { limitSpecSchema, type LimitSpec } from '../core/limits/spec.js';

interface StoreFlags {
  config?: string;
  dataDir?: string;
}

/** `existing`: the command reads or changes keys, so a store must be there (only create makes one). */
async function withStore<T>(flags: StoreFlags, fn: (store: Store) => Promise<T>, existing = true): Promise<T> {
  const config = loadConfig({ configFile: flags.config, dataDir: flags.dataDir });
  const store = await openStore(config, path.resolve(config.server.dataDir), { existing });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function storeOptions(command: Command): Command {
  return command
    .addOption(new Option('-c, --config <file>', 'YAML config file'))
    .addOption(new Option('--data-dir <dir>', 'data directory of the server (default ./data)'));
}

function parseDuration(text: string): number {
  const match = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new Error(`Invalid duration '${text}': use one above zero, e.g. 30d, 12h, 15m`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit * 1000;
}

interface LimitFlags {
  rpm?: string;
  tpm?: string;
  concurrent?: string;
  budgetDay?: string;
  budgetMonth?: string;
}

function limitOptions(command: Command): Command {
  return command
    .option('--rpm <n>', 'requests per minute')
    .option('--tpm <n>', 'tokens per minute')
    .option('--concurrent <n>', 'requests in flight at once')
    .option('--budget-day <usd>', 'money per UTC day, in USD')
    .option('--budget-month <usd>', 'money per UTC month, in USD');
}

/** The limit flags as a validated LimitSpec, or undefined when none was given. */
function limitsFromFlags(flags: LimitFlags): LimitSpec | undefined {
  const defined = (entries: Array<[string, string | undefined]>) =>
    Object.fromEntries(entries.filter(([, v]) => v !== undefined).map(([k, v]) => [k, Number(v)]));
  const spec: Record<string, unknown> = defined([['rpm', flags.rpm], ['tpm', flags.tpm], ['concurrent', flags.concurrent]]);
  const budget = defined([['day', flags.budgetDay], ['month', flags.budgetMonth]]);
  if (Object.keys(budget).length) spec.budget = budget;
  if (Object.keys(spec).length === 0) return undefined;
  const parsed = limitSpecSchema.safeParse(spec);
  if (!parsed.success) throw new Error(`Invalid limits: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('Create, list and revoke API keys and set their limits (stored hashed; each bound to one organisation).');

  limitOptions(storeOptions(keys.command('create')))
    .description('Create a key. The key is printed once, alone on the last line of output.')
    .requiredOption('--org <organisation>', 'organisation the key belongs to')
    .option('--name <name>', 'a label for the key')
    .option('--expires-in <duration>', 'expiry, e.g. 30d, 12h')
    .option('--models <ids>', 'comma-separated model ids/aliases this key may use (default: all)')
    .action(async (flags: StoreFlags & LimitFlags & { org: string; name?: string; expiresIn?: string; models?: string }) => {
      // As POST /admin/keys checks it: '' or ' ' could never be used, 'default' is reserved.
      const org = keyOrganisationName.safeParse(flags.org);
      if (!org.success) throw new Error(`Invalid --org '${flags.org}': ${org.error.issues[0]!.message}`);
      const expiresAt = flags.expiresIn ? Date.now() + parseDuration(flags.expiresIn) : undefined;
      const limits = limitsFromFlags(flags);
      const key = generateApiKey();
      const record = await withStore(flags, (store) =>
        store.createKey({
          organisation: flags.org,
          name: flags.name,
          hash: hashApiKey(key),
          prefix: keyPrefix(key),
          expiresAt,
          allowedModels: flags.models ? flags.models.split(',').map((m) => m.trim()).filter(Boolean) : undefined,
          limits,
        }),
        false,
      );
      process.stdout.write(`Created key ${record.id} for organisation ${record.organisation}. It is shown once; store it now:\n${key}\n`);
    });

  storeOptions(keys.command('list'))
    .description('List keys (never the keys themselves: id, organisation, prefix, state).')
    .option('--org <organisation>', 'only this organisation')
    .action(async (flags: StoreFlags & { org?: string }) => {
      const rows = await withStore(flags, (store) => store.listKeys(flags.org));
      const now = Date.now();
      process.stdout.write('ID\tORGANISATION\tPREFIX\tNAME\tSTATE\tCREATED\n');
      for (const k of rows) {
        const state = k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt <= now ? 'expired' : 'active';
        process.stdout.write(`${k.id}\t${k.organisation}\t${k.prefix}…\t${k.name ?? ''}\t${state}\t${new Date(k.createdAt).toISOString()}\n`);
      }
    });

  storeOptions(keys.command('revoke'))
    .description('Revoke a key by id; it is refused (401) at once.')
    .argument('<id>', 'key id (from keys list)')
    .action(async (id: string, flags: StoreFlags) => {
      const revoked = await withStore(flags, (store) => store.revokeKey(id));
      if (!revoked) throw new Error(`No active key with id ${id}`);
      process.stdout.write(`Revoked ${id}\n`);
    });

  limitOptions(storeOptions(keys.command('limits')))
    .description("Set a key's rate limits and budgets (replacing its current ones); --clear removes them.")
    .argument('<id>', 'key id (from keys list)')
    .option('--clear', 'remove the key’s own limits (config defaults apply again)')
    .action(async (id: string, flags: StoreFlags & LimitFlags & { clear?: boolean }) => {
      const limits = flags.clear ? null : limitsFromFlags(flags);
      if (limits === undefined) throw new Error('Give at least one of --rpm, --tpm, --concurrent, --budget-day, --budget-month, or --clear');
      const updated = await withStore(flags, async (store) => {
        if (!store.tenancy) throw new Error(`The ${store.kind} store does not keep limits`);
        return store.tenancy.updateKey(id, { limits });
      });
      if (!updated) throw new Error(`No key with id ${id}`);
      process.stdout.write(`Limits of ${id}: ${limits ? JSON.stringify(limits) : 'none (defaults apply)'}\n`);
    });
}
