// Shared by the generated-input tests: a seeded PRNG, and the paths of a JSON value.

/** A small seeded PRNG (mulberry32): the same seed gives the same cases, run after run. */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every path in a JSON value (keys and array indexes), the root's `[]` first. */
export function paths(value, prefix = []) {
  const out = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

/** The object or array holding the value at `path`. */
export function parentOf(root, path) {
  let node = root;
  for (const key of path.slice(0, -1)) node = node[key];
  return node;
}
