/**
 * Resolves once the event loop has polled for I/O, so requests that arrived meanwhile are read
 * before long synchronous work goes on. One immediate is not enough: queued while a request is
 * being handled (the poll phase) it runs in the same loop turn, before any new I/O is read, and a
 * body's parsing and its rendering then held other requests as one (0.55 + 0.63 s). An immediate
 * queued from an immediate runs in the next turn, after its poll.
 */
export function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
