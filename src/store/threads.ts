// Where Anthropic's message threads are held between turns (the wire side is
// src/dialects/messages/threads.ts): a conversation as JSON under the id of the reply that ended
// it, for a few minutes. In this process by default; in Redis when processes share a store, so a
// continue may reach any of them (src/store/redis-threads.ts).

/** How long a held conversation lives after its reply. */
export const THREAD_TTL_MS = 5 * 60_000;
/** Characters of JSON held at most (one conversation; in memory, all of them together). */
export const MAX_THREAD_CHARACTERS = 128 * 1024 * 1024;

/** Why a conversation cannot be continued. */
export type ThreadRefusal = 'not_found' | 'in_flight' | 'continued';

export interface ThreadStore {
  /**
   * Takes the conversation held under `id` for one continue: one atomic step, so of two requests
   * continuing the same reply one gets it and the other `in_flight` (or `continued` once the
   * first kept its reply). Another organisation's conversation is `not_found`.
   */
  claim(organisation: string, id: string): Promise<{ conversation: string } | { refused: ThreadRefusal }>;
  /**
   * Holds `conversation` under `id`. With `previousId` (the claimed reply this turn continued),
   * that one becomes `continued`: its copy is released, only the refusal of a second continue needs it.
   */
  hold(organisation: string, id: string, conversation: string, previousId?: string): Promise<void>;
  /** The continue of `id` ended without a reply: the reply may be continued again. */
  release(id: string): Promise<void>;
}

interface HeldThread {
  organisation: string;
  /** Empty once continued. */
  conversation: string;
  expiresAt: number;
  state: 'open' | 'continuing' | 'continued';
}

/** In this process: gone on a restart, invisible to other instances, bounded by count and size. */
export class MemoryThreadStore implements ThreadStore {
  private readonly held = new Map<string, HeldThread>();
  private characters = 0;

  private readonly now: () => number;
  private readonly maxThreads: number;
  private readonly maxCharacters: number;

  constructor(options: { now?: () => number; maxThreads?: number; maxCharacters?: number } = {}) {
    this.now = options.now ?? Date.now;
    this.maxThreads = options.maxThreads ?? 1000;
    this.maxCharacters = options.maxCharacters ?? MAX_THREAD_CHARACTERS;
  }

  async claim(organisation: string, id: string): Promise<{ conversation: string } | { refused: ThreadRefusal }> {
    const thread = this.live(id);
    if (!thread || thread.organisation !== organisation) return { refused: 'not_found' };
    if (thread.state !== 'open') return { refused: thread.state === 'continuing' ? 'in_flight' : 'continued' };
    thread.state = 'continuing';
    return { conversation: thread.conversation };
  }

  async hold(organisation: string, id: string, conversation: string, previousId?: string): Promise<void> {
    const previous = previousId === undefined ? undefined : this.held.get(previousId);
    if (previous) {
      previous.state = 'continued';
      this.characters -= previous.conversation.length;
      previous.conversation = '';
    }
    if (conversation.length > this.maxCharacters) return;
    this.held.set(id, { organisation, conversation, expiresAt: this.now() + THREAD_TTL_MS, state: 'open' });
    this.characters += conversation.length;
    this.evict();
  }

  async release(id: string): Promise<void> {
    const thread = this.held.get(id);
    if (thread?.state === 'continuing') thread.state = 'open';
  }

  private live(id: string): HeldThread | undefined {
    const thread = this.held.get(id);
    if (thread && thread.expiresAt <= this.now()) {
      this.drop(id, thread);
      return undefined;
    }
    return thread;
  }

  /** Oldest first (the map's insertion order): the expired, then any over the count or size budget. */
  private evict(): void {
    for (const [id, thread] of this.held) {
      if (this.held.size <= this.maxThreads && this.characters <= this.maxCharacters && thread.expiresAt > this.now()) break;
      this.drop(id, thread);
    }
  }

  private drop(id: string, thread: HeldThread): void {
    this.held.delete(id);
    this.characters -= thread.conversation.length;
  }
}
