// Per-process copies of the rows every request reads (its key, its organisation's settings, whether
// any key exists), for a store shared by several processes: without them each request paid two
// or three database round trips before reaching a provider. Every write to those rows, in any
// process (the CLI included), clears every process's copies through a signal; the time-to-live
// bounds what a lost signal (a dropped Redis connection) can leave stale.

const TTL_MS = 5_000;
/** Entries at most; a flood of distinct keys clears the cache rather than growing it. */
const MAX_ENTRIES = 10_000;

interface Entry {
  value: unknown;
  expires: number;
}

export interface Reads {
  get<T>(key: string, load: () => Promise<T>, options?: { keepUndefined?: boolean }): Promise<T>;
  clear(): void;
}

/** No copies: every read goes to the database (a shared store without Redis to keep copies true). */
export const readThrough: Reads = {
  get: (_key, load) => load(),
  clear: () => undefined,
};

export class ReadCache implements Reads {
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every clear: a read that began before a write must not store its stale result. */
  private generation = 0;

  async get<T>(key: string, load: () => Promise<T>, options: { keepUndefined?: boolean } = {}): Promise<T> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expires > now) return entry.value as T;
    const generation = this.generation;
    const value = await load();
    if (generation === this.generation && (value !== undefined || options.keepUndefined)) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(key, { value, expires: now + TTL_MS });
    }
    return value;
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}
