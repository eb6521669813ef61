// Anthropic's message threads (beta `message-threads-2026-08-12`): a request with
// `thread: {type: "create"}` has its conversation — system, tools, messages and the reply — held
// under the response id; `{type: "continue", previous_message_id}` sends only the new messages
// and gets that conversation put back in front of them. Held in this process for five minutes
// after the last use, best-effort as Anthropic's are: a continue that finds nothing (expired,
// evicted, another instance, a restart) is a 404 `thread_not_found`, on which the SDKs' thread
// helpers replay the whole conversation under a new thread.

import { GatewayError, badRequest } from '../../core/errors.js';

interface HeldThread {
  organisation: string;
  system?: unknown;
  tools?: unknown;
  messages: unknown[];
  expiresAt: number;
  /** Characters of its JSON, for the memory budget. */
  size: number;
  /** A held conversation is continued once; the next turn continues from the new reply. */
  state: 'open' | 'continuing' | 'continued';
}

/** What a request becomes once its thread is applied, and how to keep the reply. */
export interface ThreadTurn {
  /** The body to serve: the full conversation, without `thread`. */
  body: Record<string, unknown>;
  /** Holds the conversation and `reply` under `id`, once the reply is complete. */
  keep(id: string, reply: Record<string, unknown>): void;
  /** Called when the request ends: unless the reply was kept, the previous reply may be continued again. */
  abandon(): void;
}

const TTL_MS = 5 * 60_000;
const MAX_THREADS = 1000;
/** Characters of JSON held at most, all threads together (≈ 2 bytes each in memory, at worst). */
const MAX_CHARACTERS = 128 * 1024 * 1024;
const CREATE_ONLY = ['system', 'tools'] as const;

function threadError(status: 404 | 409, code: string, message: string): GatewayError {
  return new GatewayError(status === 404 ? 'not_found' : 'conflict', message, { param: 'thread', code, details: { error_code: code } });
}

export class ThreadHolder {
  private readonly held = new Map<string, HeldThread>();
  private characters = 0;

  private readonly now: () => number;
  private readonly maxThreads: number;
  private readonly maxCharacters: number;

  constructor(options: { now?: () => number; maxThreads?: number; maxCharacters?: number } = {}) {
    this.now = options.now ?? Date.now;
    this.maxThreads = options.maxThreads ?? MAX_THREADS;
    this.maxCharacters = options.maxCharacters ?? MAX_CHARACTERS;
  }

  /** The turn for a body with a `thread` field; undefined when it has none. */
  begin(raw: unknown, organisation: string): ThreadTurn | undefined {
    if (!raw || typeof raw !== 'object') return undefined;
    const { thread, ...body } = raw as Record<string, unknown>;
    if (thread === undefined || thread === null) return undefined;
    const spec = thread as { type?: unknown; previous_message_id?: unknown };
    if (spec.type === 'create') return this.turn(organisation, body, undefined);
    if (spec.type !== 'continue' || typeof spec.previous_message_id !== 'string') {
      throw badRequest("'thread' is {\"type\": \"create\"} or {\"type\": \"continue\", \"previous_message_id\": …}", 'thread', 'invalid_thread');
    }
    const previous = this.live(spec.previous_message_id);
    if (!previous || previous.organisation !== organisation) {
      throw threadError(404, 'thread_not_found', `No thread is held for '${spec.previous_message_id}' (it expired, or another server instance holds it); send the whole conversation with thread {"type": "create"}`);
    }
    if (previous.state === 'continuing') throw threadError(409, 'thread_continue_in_flight', `The thread at '${spec.previous_message_id}' is being continued by another request`);
    if (previous.state === 'continued') throw threadError(409, 'thread_already_continued', `The thread at '${spec.previous_message_id}' was already continued; continue from the newest reply`);
    for (const field of CREATE_ONLY) {
      if (body[field] !== undefined) throw badRequest(`'${field}' comes from the thread on a continue; leave it out`, field, 'invalid_thread');
    }
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const full = { ...body, system: previous.system, tools: previous.tools, messages: [...previous.messages, ...messages] };
    previous.state = 'continuing';
    return this.turn(organisation, full, previous);
  }

  private turn(organisation: string, body: Record<string, unknown>, previous: HeldThread | undefined): ThreadTurn {
    return {
      body,
      keep: (id, reply) => {
        if (previous) {
          // Its conversation lives on in the new entry; only the refusal of a second continue needs it.
          previous.state = 'continued';
          previous.messages = [];
          this.characters -= previous.size;
          previous.size = 0;
        }
        const messages = [...(Array.isArray(body.messages) ? body.messages : []), { role: 'assistant', content: reply.content }];
        const size = JSON.stringify([body.system, body.tools, messages]).length;
        if (size > this.maxCharacters) return;
        this.held.set(id, { organisation, system: body.system, tools: body.tools, messages, expiresAt: this.now() + TTL_MS, state: 'open', size });
        this.characters += size;
        this.evict();
      },
      abandon: () => {
        // Still 'continuing' unless keep() ran: the previous reply may be continued again.
        if (previous?.state === 'continuing') previous.state = 'open';
      },
    };
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
    this.characters -= thread.size;
  }
}
