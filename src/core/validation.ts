// Turns schema failures into one clear 400 that names the field and says why.

import type { z } from 'zod';
import { GatewayError } from './errors.js';

/** Index of the first name an earlier one repeats (two tools of one name), or -1. */
export function firstRepeat(names: readonly string[]): number {
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (seen.has(name)) return i;
    seen.add(name);
  }
  return -1;
}

/** `messages[0].content` style path, as OpenAI names parameters. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/**
 * Of a union's failed branches, the one the value was meant for: the first whose first complaint
 * is not about the value's kind (its `type`, or the whole value), else the last.
 */
function meantBranch(branches: z.core.$ZodIssue[][]): z.core.$ZodIssue | undefined {
  const failed = branches.filter((b) => b.length > 0);
  const wrongKind = (issue: z.core.$ZodIssue) => issue.path.length === 0 || (issue.path.length === 1 && issue.path[0] === 'type');
  return (failed.find((b) => !wrongKind(b[0]!)) ?? failed.at(-1))?.[0];
}

function describeIssue(issue: z.core.$ZodIssue): { param: string; message: string } {
  if (issue.code === 'invalid_union') {
    const inner = meantBranch(issue.errors);
    if (inner) return describeIssue({ ...inner, path: [...issue.path, ...inner.path] });
  }
  const base = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (base ? `${base}.${k}` : k));
    return { param: keys[0]!, message: `Unrecognized request argument supplied: ${keys.join(', ')}` };
  }
  // Zod leaves the input out of its issues; its message says when there was none.
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
    return { param: base, message: `Missing required parameter: '${base}'` };
  }
  return { param: base, message: `Invalid value for '${base || 'body'}': ${issue.message}` };
}

export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new GatewayError('bad_request', 'The request body must be a JSON object', { code: 'invalid_body' });
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const first = describeIssue(issues[0]!);
  // No prototype: a field named `constructor` or `__proto__` is a field like any other.
  const fieldErrors: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const issue of issues) {
    const d = describeIssue(issue);
    (fieldErrors[d.param || 'body'] ??= []).push(d.message);
  }
  return (() => {
    throw new GatewayError('bad_request', first.message, { param: first.param || undefined, code: 'invalid_request', fieldErrors });
  })();
}
