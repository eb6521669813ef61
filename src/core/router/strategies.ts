// How one deployment is chosen among those that may take a request. Candidates arrive in config
// order; every strategy is a pure function of them (and a random source), so it can be tested
// on its own.

import type { Strategy } from './settings.js';

export interface Candidate {
  weight: number;
  inFlight: number;
  /** Moving average of time to first token; undefined when never measured. */
  ttftAverageMs: number | undefined;
}

export function pickOrdered<T extends Candidate>(candidates: T[]): T {
  return candidates[0]!;
}

/** Weighted random: deployment i is chosen with probability weight_i / Σ weights. */
export function pickWeighted<T extends Candidate>(candidates: T[], random: () => number = Math.random): T {
  const total = candidates.reduce((sum, c) => sum + c.weight, 0);
  let point = random() * total;
  for (const c of candidates) {
    point -= c.weight;
    if (point < 0) return c;
  }
  return candidates[candidates.length - 1]!;
}

/** Fewest requests in flight; ties go to the earlier one in config order. */
export function pickLeastBusy<T extends Candidate>(candidates: T[]): T {
  return candidates.reduce((best, c) => (c.inFlight < best.inFlight ? c : best));
}

/** Lowest average time to first token; a never-measured deployment is tried first (to learn it). */
export function pickLowestLatency<T extends Candidate>(candidates: T[]): T {
  const unmeasured = candidates.find((c) => c.ttftAverageMs === undefined);
  if (unmeasured) return unmeasured;
  return candidates.reduce((best, c) => (c.ttftAverageMs! < best.ttftAverageMs! ? c : best));
}

export function pickDeployment<T extends Candidate>(strategy: Strategy, candidates: T[], random: () => number = Math.random): T {
  switch (strategy) {
    case 'weighted':
      return pickWeighted(candidates, random);
    case 'least-busy':
      return pickLeastBusy(candidates);
    case 'lowest-latency':
      return pickLowestLatency(candidates);
    default:
      return pickOrdered(candidates);
  }
}
