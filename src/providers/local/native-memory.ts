// node-llama-cpp frees some of its native memory only when the JavaScript objects holding it are
// garbage-collected (a sampler made for each evaluation, grammar evaluation states, which have no
// dispose). V8 does not count that memory, so with a small JavaScript heap it collected far too
// seldom: 2,000 short requests took the server to 4.3 GB resident, which a collection every 100
// requests kept at 290 MB. A major collection is asked for after every GENERATIONS local
// generations; it is incremental, so the event loop keeps serving.

import v8 from 'node:v8';
import vm from 'node:vm';

const GENERATIONS = 32;

type Collect = (options: { type: 'major'; execution: 'async' }) => Promise<void>;
let collect: Collect | null | undefined;
let generations = 0;
let collecting = false;

/** V8's `gc`, exposed at run time (the `--expose-gc` flag can be set after start); null if refused. */
function exposeCollect(): Collect | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as Collect;
  } catch {
    return null;
  }
}

/** Counts a finished generation; every GENERATIONS of them, asks for a collection. */
export function generationEnded(): void {
  if (++generations % GENERATIONS !== 0 || collecting) return;
  collect ??= exposeCollect();
  if (!collect) return;
  collecting = true;
  void collect({ type: 'major', execution: 'async' })
    .catch(() => undefined)
    .finally(() => (collecting = false));
}
