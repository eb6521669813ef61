// Opens the configured store. SQLite in the data directory is the embedded default.

import type { Config } from '../core/config.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

export async function openStore(_config: Config, dataDir: string): Promise<Store> {
  return SqliteStore.inDataDir(dataDir);
}
