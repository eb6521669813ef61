// TenancyStore on PostgreSQL: organisation settings, and queries over api_keys and request_log
// that every gateway process sharing the database sees alike.

import type pg from 'pg';
import type { Reads } from './read-cache.js';
import { keyFromRow, logFromRow, requestLogWhere, usageSampleFromRow, USAGE_SAMPLE_COLUMNS, type KeyRow, type LogRow, type UsageSampleRow } from './rows.js';
import type { ApiKeyRecord, RequestLogEntry } from './store.js';
import type { KeyPatch, OrganisationSettings, RequestLogFilter, TenancyStore, UsageSample } from './tenancy.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
export const POSTGRES_TENANCY_SCHEMA = `
CREATE TABLE IF NOT EXISTS organisation_settings (
  organisation TEXT PRIMARY KEY,
  limits TEXT,
  log_bodies BOOLEAN,
  updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS request_log_key_time ON request_log (key_id, created_at);
CREATE INDEX IF NOT EXISTS request_log_time ON request_log (created_at);
`;

interface SettingsRow {
  organisation: string;
  limits: string | null;
  log_bodies: boolean | null;
  updated_at: number;
}

function settingsFromRow(row: SettingsRow): OrganisationSettings {
  return {
    organisation: row.organisation,
    limits: row.limits ? (JSON.parse(row.limits) as Record<string, unknown>) : undefined,
    logBodies: row.log_bodies ?? undefined,
    updatedAt: row.updated_at,
  };
}

export class PostgresTenancyStore implements TenancyStore {
  constructor(
    private readonly pool: pg.Pool,
    /** Writes request-log rows still waiting in the store's batch, before the log is read. */
    private readonly flushRequestLog: () => Promise<void>,
    /** The store's copies of what every request reads, and how to tell every process of a write. */
    private readonly shared: { reads: Reads; changed: () => Promise<void> },
  ) {}

  async keyById(id: string): Promise<ApiKeyRecord | undefined> {
    const load = async () => {
      const { rows } = await this.pool.query<KeyRow>('SELECT * FROM api_keys WHERE id = $1', [id]);
      return rows[0] ? keyFromRow(rows[0]) : undefined;
    };
    return this.shared.reads.get(`id:${id}`, load);
  }

  async updateKey(id: string, patch: KeyPatch): Promise<ApiKeyRecord | undefined> {
    const sets: string[] = [];
    const args: unknown[] = [];
    const set = (column: string, value: unknown) => {
      args.push(value);
      sets.push(`${column} = $${args.length}`);
    };
    if (patch.limits !== undefined) set('limits', patch.limits === null ? null : JSON.stringify(patch.limits));
    if (patch.allowedModels !== undefined) set('allowed_models', patch.allowedModels === null ? null : JSON.stringify(patch.allowedModels));
    if (patch.expiresAt !== undefined) set('expires_at', patch.expiresAt);
    if (patch.name !== undefined) set('name', patch.name);
    if (sets.length) {
      await this.pool.query(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = $${args.length + 1}`, [...args, id]);
      await this.shared.changed();
    }
    return this.keyById(id);
  }

  async organisationSettings(organisation: string): Promise<OrganisationSettings | undefined> {
    const load = async () => {
      const { rows } = await this.pool.query<SettingsRow>('SELECT * FROM organisation_settings WHERE organisation = $1', [organisation]);
      return rows[0] ? settingsFromRow(rows[0]) : undefined;
    };
    // Most organisations have no settings row: that answer is worth keeping too.
    return this.shared.reads.get(`org:${organisation}`, load, { keepUndefined: true });
  }

  async setOrganisationSettings(
    organisation: string,
    patch: { limits?: Record<string, unknown> | null; logBodies?: boolean | null },
  ): Promise<OrganisationSettings> {
    // One statement: a field left out keeps its stored value even when another process writes
    // the other field at the same moment.
    const { rows } = await this.pool.query<SettingsRow>(
      `INSERT INTO organisation_settings AS s (organisation, limits, log_bodies, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (organisation) DO UPDATE SET
         limits = CASE WHEN $5 THEN excluded.limits ELSE s.limits END,
         log_bodies = CASE WHEN $6 THEN excluded.log_bodies ELSE s.log_bodies END,
         updated_at = excluded.updated_at
       RETURNING *`,
      [
        organisation,
        patch.limits ? JSON.stringify(patch.limits) : null,
        patch.logBodies ?? null,
        Date.now(),
        patch.limits !== undefined,
        patch.logBodies !== undefined,
      ],
    );
    await this.shared.changed();
    return settingsFromRow(rows[0]!);
  }

  async listOrganisations(): Promise<string[]> {
    await this.flushRequestLog();
    const { rows } = await this.pool.query<{ organisation: string }>(
      `SELECT organisation FROM api_keys UNION SELECT organisation FROM organisation_settings
       UNION SELECT DISTINCT organisation FROM request_log ORDER BY organisation`,
    );
    return rows.map((r) => r.organisation);
  }

  async spentSince(scope: { keyId?: string; organisation?: string }, since: number): Promise<number> {
    await this.flushRequestLog();
    const { sql, args } = requestLogWhere({ keyId: scope.keyId, organisation: scope.organisation, since }, (n) => `$${n}`);
    const { rows } = await this.pool.query<{ spent: number }>(`SELECT COALESCE(SUM(cost), 0)::float8 AS spent FROM request_log ${sql}`, args);
    return rows[0]!.spent;
  }

  async queryRequestLog(filter: RequestLogFilter): Promise<RequestLogEntry[]> {
    await this.flushRequestLog();
    const { sql, args } = requestLogWhere(filter, (n) => `$${n}`);
    const { rows } = await this.pool.query<LogRow>(
      `SELECT * FROM request_log ${sql} ORDER BY created_at DESC, id LIMIT $${args.length + 1}`,
      [...args, filter.limit ?? 100],
    );
    return rows.map(logFromRow);
  }

  async usageSamples(filter: { organisation?: string; keyId?: string; model?: string; since?: number; until?: number }): Promise<UsageSample[]> {
    await this.flushRequestLog();
    const { sql, args } = requestLogWhere(filter, (n) => `$${n}`);
    const { rows } = await this.pool.query<UsageSampleRow>(
      `SELECT ${USAGE_SAMPLE_COLUMNS}
       FROM request_log ${sql} ORDER BY created_at`,
      args,
    );
    return rows.map(usageSampleFromRow);
  }
}
