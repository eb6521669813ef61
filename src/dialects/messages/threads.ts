// Anthropic's message threads (beta `message-threads-2026-08-12`): a request with
// `thread: {type: "create"}` has its conversation — system, tools, messages and the reply — held
// under the response id; `{type: "continue", previous_message_id}` sends only the new messages
// and gets that conversation put back in front of them. Held for five minutes after the reply
// (src/store/threads.ts: in this process, or in Redis when processes share a store), best-effort
// as Anthropic's are: a continue that finds nothing (expired, evicted, a restart) is a 404
// `thread_not_found`, on which the SDKs' thread helpers replay the whole conversation under a
// new thread. The refusals' statuses and codes are those the SDK's error classes expect.

import { GatewayError, badRequest } from '../../core/errors.js';
import type { ThreadRefusal, ThreadStore } from '../../store/threads.js';

/** What a request becomes once its thread is applied, and how to keep the reply. */
export interface ThreadTurn {
  /** The body to serve: the full conversation, without `thread`. */
  body: Record<string, unknown>;
  /** Holds the conversation and `reply` under `id`, once the reply is complete. */
  keep(id: string, reply: Record<string, unknown>): Promise<void>;
  /** Called when the request ends: unless the reply was kept, the previous reply may be continued again. */
  abandon(): Promise<void>;
}

interface HeldConversation {
  system?: unknown;
  tools?: unknown;
  messages: unknown[];
}

const CREATE_ONLY = ['system', 'tools'] as const;

/** The statuses (through the error kind) and codes @anthropic-ai/sdk's error classes are keyed by. */
const REFUSALS: Record<ThreadRefusal, { kind: 'not_found' | 'bad_request'; code: string; message: (id: string) => string }> = {
  not_found: {
    kind: 'not_found',
    code: 'thread_not_found',
    message: (id) => `No thread is held for '${id}' (it expired or was evicted); send the whole conversation with thread {"type": "create"}`,
  },
  in_flight: { kind: 'bad_request', code: 'thread_continue_in_flight', message: (id) => `The thread at '${id}' is being continued by another request` },
  continued: { kind: 'bad_request', code: 'thread_already_continued', message: (id) => `The thread at '${id}' was already continued; continue from the newest reply` },
};

/**
 * A request threads cannot take, refused in the form the SDKs' thread helpers read: they resend
 * the whole conversation without `thread` (the tool runner does so on its own).
 */
export function threadUnsupported(message: string, unsupported: string): GatewayError {
  return new GatewayError('bad_request', message, {
    param: 'thread',
    code: 'thread_unsupported_request',
    details: { error_code: 'thread_unsupported_request', unsupported: [unsupported] },
  });
}

function refusal(reason: ThreadRefusal, id: string): GatewayError {
  const { kind, code, message } = REFUSALS[reason];
  return new GatewayError(kind, message(id), { param: 'thread', code, details: { error_code: code } });
}

export class MessageThreads {
  constructor(
    private readonly store: ThreadStore,
    /** A reply that could not be held: its continue will be a thread_not_found, which the SDK recovers from. */
    private readonly onHoldFailed: (err: unknown) => void,
  ) {}

  /** The turn for a body with a `thread` field; undefined when it has none. */
  async begin(raw: unknown, organisation: string): Promise<ThreadTurn | undefined> {
    if (!raw || typeof raw !== 'object') return undefined;
    const { thread, ...body } = raw as Record<string, unknown>;
    if (thread === undefined || thread === null) return undefined;
    const spec = thread as { type?: unknown; previous_message_id?: unknown };
    // As Anthropic's: a reply a fallback model wrote is not held.
    if (body.fallbacks != null) throw threadUnsupported("Message threads cannot be combined with 'fallbacks'", 'fallbacks');
    if (spec.type === 'create') return this.turn(organisation, body, undefined);
    if (spec.type !== 'continue' || typeof spec.previous_message_id !== 'string') {
      throw badRequest("'thread' is {\"type\": \"create\"} or {\"type\": \"continue\", \"previous_message_id\": …}", 'thread', 'invalid_thread');
    }
    for (const field of CREATE_ONLY) {
      if (body[field] !== undefined) throw badRequest(`'${field}' comes from the thread on a continue; leave it out`, field, 'invalid_thread');
    }
    const previousId = spec.previous_message_id;
    const claimed = await this.store.claim(organisation, previousId);
    if ('refused' in claimed) throw refusal(claimed.refused, previousId);
    const held = JSON.parse(claimed.conversation) as HeldConversation;
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const full = { ...body, system: held.system, tools: held.tools, messages: [...held.messages, ...messages] };
    return this.turn(organisation, full, previousId);
  }

  private turn(organisation: string, body: Record<string, unknown>, previousId: string | undefined): ThreadTurn {
    let kept = false;
    return {
      body,
      keep: async (id, reply) => {
        kept = true;
        const messages = [...(Array.isArray(body.messages) ? body.messages : []), { role: 'assistant', content: reply.content }];
        const conversation: HeldConversation = { system: body.system, tools: body.tools, messages };
        await this.store.hold(organisation, id, JSON.stringify(conversation), previousId).catch(this.onHoldFailed);
      },
      abandon: async () => {
        if (previousId !== undefined && !kept) await this.store.release(previousId);
      },
    };
  }
}
