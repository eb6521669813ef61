// Server-side conversations (X-Session-ID): earlier turns are prepended to later requests of
// the same session, and the new turns are appended once the answer is complete.

import { badRequest } from './errors.js';
import type { CollectedChoice } from './stream.js';
import type { ChatRequest, ContentPart, Message } from './types.js';
import type { Store } from '../store/store.js';

const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function checkSessionId(id: string, param = 'X-Session-ID'): string {
  if (!SESSION_ID.test(id)) throw badRequest('A session id is 1-128 characters of letters, digits, ".", "_", ":" and "-"', param, 'invalid_session_id');
  return id;
}

/** The session's stored turns (none for a new session). */
export async function sessionHistory(store: Store, organisation: string, sessionId: string): Promise<Message[]> {
  return (await store.readSession(organisation, sessionId)) ?? [];
}

/** The request with the session's history placed after its own system messages. */
export function withSessionHistory(history: Message[], request: ChatRequest): ChatRequest {
  if (history.length === 0) return request;
  const system = request.messages.filter((m) => m.role === 'system');
  const rest = request.messages.filter((m) => m.role !== 'system');
  return { ...request, messages: [...system, ...history, ...rest] };
}

/** The assistant turn to remember: text and tool calls (reasoning is not replayed). */
export function assistantTurn(choice: CollectedChoice): Message {
  const content: ContentPart[] = [];
  if (choice.text) content.push({ type: 'text', text: choice.text });
  for (const call of choice.toolCalls) content.push({ type: 'tool-call', id: call.id, name: call.name, arguments: call.arguments });
  return { role: 'assistant', content };
}

export async function recordSessionTurn(store: Store, organisation: string, sessionId: string, requestMessages: Message[], choice: CollectedChoice): Promise<void> {
  const newTurns = requestMessages.filter((m) => m.role !== 'system');
  await store.appendSession(organisation, sessionId, [...newTurns, assistantTurn(choice)]);
}
