// Moves SQLite's WAL checkpoints off the event loop. With automatic checkpoints, the commit that
// crosses 1000 WAL pages copies them into the database and fsyncs it on the server's thread: a
// 10–20 ms stall every few hundred requests (measured with bench/latency.mjs on this machine's
// disk). Here the connection that serves requests never checkpoints; a worker does, every second.

import { Worker } from 'node:worker_threads';

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(file: string, intervalMs = 1000): Checkpointer {
  const worker = new Worker(new URL('./sqlite-checkpoint-worker.js', import.meta.url), { workerData: { file, intervalMs } });
  // Never keeps the process alive; an error in the worker only means checkpoints happen on close.
  worker.unref();
  worker.on('error', () => undefined);
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        // A worker that cannot answer (still starting, or gone) is terminated anyway.
        const fallback = setTimeout(() => done(), 1000).unref();
        const done = () => {
          clearTimeout(fallback);
          void worker.terminate().finally(resolve);
        };
        worker.once('message', done);
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      });
      return stopped;
    },
  };
}
