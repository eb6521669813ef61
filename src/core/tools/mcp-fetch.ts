// The fetch the MCP client's streamable HTTP transport uses, closing each cancelled call's HTTP
// request. The SDK cancels a call (its signal, its timeout) by sending `notifications/cancelled`
// and keeps reading the call's response stream; a server that honours the cancel never answers
// it (the MCP spec says not to), so every cancelled call left a request open at both ends, for
// the life of a kept connection. A resumable server (its streams carry event ids) is the same one
// step later: the SDK, seeing the stream cut, reconnects with `Last-Event-ID` to resume it, and
// that GET waits for ever too; it is answered here with 405, which the SDK takes as "no stream".

type Fetch = typeof fetch;

interface JsonRpcMessage {
  id?: string | number;
  method?: string;
  params?: { requestId?: string | number };
}

interface OpenRequest {
  controller: AbortController;
  /** The last SSE event id of its response: what a resumption would send as Last-Event-ID. */
  lastEventId?: string;
}

/** Cancelled streams whose resumption is still to come; bounded, in case a server never gives ids twice. */
const MAX_DEAD_STREAMS = 1000;
const EVENT_ID = /(?:^|\n)id:[ ]?([^\r\n]*)\r?\n/g;
/** Longest unfinished line kept for the next chunk; past it, a marker that the next chunk begins mid-line. */
const MAX_ID_LINE = 1024;
const MID_LINE = 'x';

function messageOf(body: unknown): JsonRpcMessage | undefined {
  if (typeof body !== 'string' || !body.startsWith('{')) return undefined;
  try {
    return JSON.parse(body) as JsonRpcMessage;
  } catch {
    return undefined;
  }
}

/** `base` with every request's HTTP exchange aborted once the client sends its cancellation. */
export function cancellingFetch(base: Fetch): Fetch {
  const open = new Map<string | number, OpenRequest>();
  const deadStreams = new Set<string>();

  /** The response, its body passed through: event ids noted (of an event stream), the entry forgotten at its end. */
  function tracked(response: Response, id: string | number, request: OpenRequest): Response {
    const reader = response.body!.getReader();
    const events = response.headers.get('content-type')?.includes('text/event-stream') === true;
    const decoder = new TextDecoder();
    let tail = '';
    const forget = () => open.delete(id);
    const body = new ReadableStream<Uint8Array>({
      async pull(stream) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            forget();
            stream.close();
            return;
          }
          if (events) {
            // Lines may be split across chunks: keep the unfinished one for the next, unless it is
            // long (a data line: an id line is short), so a large result is not scanned again and again.
            const text = tail + decoder.decode(value, { stream: true });
            for (const match of text.matchAll(EVENT_ID)) request.lastEventId = match[1];
            tail = text.slice(text.lastIndexOf('\n') + 1);
            if (tail.length > MAX_ID_LINE) tail = MID_LINE;
          }
          stream.enqueue(value);
        } catch (err) {
          forget();
          stream.error(err);
        }
      },
      cancel(reason) {
        forget();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  function cancel(requestId: string | number, notification: Promise<Response>): void {
    const request = open.get(requestId);
    if (!request) return;
    open.delete(requestId);
    if (request.lastEventId !== undefined) {
      deadStreams.add(request.lastEventId);
      if (deadStreams.size > MAX_DEAD_STREAMS) deadStreams.delete(deadStreams.values().next().value!);
    }
    // After the notification has gone: the server must learn of the cancel before the close.
    void notification.finally(() => request.controller.abort()).catch(() => undefined);
  }

  return (async (input: string | URL | Request, init?: RequestInit) => {
    if ((init?.method ?? 'GET') === 'GET') {
      const resumeFrom = new Headers(init?.headers).get('last-event-id');
      if (resumeFrom !== null && deadStreams.delete(resumeFrom)) return new Response(null, { status: 405 });
      return base(input, init);
    }
    const message = messageOf(init?.body);
    if (message?.method === 'notifications/cancelled' && message.params?.requestId !== undefined) {
      const sent = base(input, init);
      cancel(message.params.requestId, sent);
      return sent;
    }
    if (message?.id === undefined || message.method === undefined) return base(input, init);
    const id = message.id;
    const request: OpenRequest = { controller: new AbortController() };
    open.set(id, request);
    const signal = init?.signal ? AbortSignal.any([init.signal, request.controller.signal]) : request.controller.signal;
    let response: Response;
    try {
      response = await base(input, { ...init, signal });
    } catch (err) {
      open.delete(id);
      throw err;
    }
    if (!response.body) {
      open.delete(id);
      return response;
    }
    return tracked(response, id, request);
  }) as Fetch;
}
