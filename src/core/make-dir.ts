// `mkdir -p`, one level at a time: Node 20's recursive mkdir never returns for a path under /proc
// (it retries the ENOENT procfs answers forever), so a mistyped --data-dir would hang the start.

import fs from 'node:fs';
import path from 'node:path';

/** Creates `dir` and any missing parents; the first failing mkdir throws as it is. */
export function makeDir(dir: string): void {
  const missing: string[] = [];
  for (let current = path.resolve(dir); !fs.existsSync(current); current = path.dirname(current)) {
    missing.push(current);
    if (path.dirname(current) === current) break;
  }
  for (const level of missing.reverse()) {
    try {
      fs.mkdirSync(level);
    } catch (err) {
      // Made meanwhile by another process, or a file: the next level (or the caller) says which.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
