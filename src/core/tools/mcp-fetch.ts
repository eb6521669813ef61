// The fetch the MCP client's streamable HTTP transport uses, closing each cancelled call's HTTP
// request. The SDK cancels a call (its signal, its timeout) by sending `notifications/cancelled`
// and keeps reading the call's response stream; a server that honours the cancel never answers
// it (the MCP spec says not to), so every cancelled call left a request open at both ends, for
// the life of a kept connection.

type Fetch = typeof fetch;

interface JsonRpcMessage {
  id?: string | number;
  method?: string;
  params?: { requestId?: string | number };
}

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
  const open = new Map<string | number, AbortController>();
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const message = messageOf(init?.body);
    if (message?.method === 'notifications/cancelled' && message.params?.requestId !== undefined) {
      const call = open.get(message.params.requestId);
      open.delete(message.params.requestId);
      // After the notification has gone: the server must learn of the cancel before the close.
      const sent = base(input, init);
      void sent.finally(() => call?.abort()).catch(() => undefined);
      return sent;
    }
    if (message?.id === undefined || message.method === undefined) return base(input, init);
    const id = message.id;
    const controller = new AbortController();
    open.set(id, controller);
    const signal = init?.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal;
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
    // Forget the request once its answer has been read, has failed, or is no longer wanted.
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(stream) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            open.delete(id);
            stream.close();
          } else {
            stream.enqueue(value);
          }
        } catch (err) {
          open.delete(id);
          stream.error(err);
        }
      },
      cancel(reason) {
        open.delete(id);
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }) as Fetch;
}
