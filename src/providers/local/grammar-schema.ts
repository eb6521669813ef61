// The client's JSON schema rewritten into what node-llama-cpp's grammar builder reads the same
// way. Left as they are, some common schemas came out wrong: a node it does not recognise
// (`anyOf`, `allOf`, `{}`, a description alone) became "null only", so every nullable field
// that zod or Pydantic writes as `anyOf: [{…}, {type: "null"}]` could only ever be null;
// `{type: "object"}` allowed only `{}`; a `$ref` into `definitions` or to the root (`#`) became
// "any value"; a string `format` other than date, time and date-time allowed only ""; and
// numeric bounds are not read at all. The grammar only steers generation: the output is still
// validated against the client's original schema.

type Schema = Record<string, unknown>;

/** Keywords the grammar builder acts on; a node with none of them is "any value" in JSON Schema. */
export const CONSTRAINING_KEYWORDS = ['type', 'properties', 'enum', 'const', 'oneOf', 'anyOf', 'allOf', 'items', 'prefixItems', '$ref'];

const ANY_VALUE: Schema = {
  oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'array' }, { type: 'object', additionalProperties: true }],
};

/** String formats the builder has a grammar for. */
const GRAMMAR_FORMATS = new Set(['date', 'time', 'date-time']);

/** The widest integer range written out as an enum; wider ones are left to the validation. */
const MAX_ENUMERATED_RANGE = 1024;

/** Where the root goes when something refers to it: the builder resolves `#/$defs/…` only. */
const ROOT_DEF = '__root';

export function grammarSchema(schema: unknown): unknown {
  const rewritten = rewrite(schema);
  checkDefinitionRefs(rewritten);
  if (!rewritten || typeof rewritten !== 'object' || !refersToRoot(rewritten)) return rewritten;
  // A recursive schema as zod writes it (`$ref: "#"`): the builder read that as "any value".
  const { $defs, ...root } = rewritten as Schema;
  return { $ref: `#/$defs/${ROOT_DEF}`, $defs: withRootRefs({ ...($defs as Schema | undefined), [ROOT_DEF]: root }) };
}

/**
 * A `$ref` to a definition the schema does not have: the builder read it as "any value", so a tool
 * whose schema named a missing definition got arguments of any shape (validation, where there is
 * one, refuses such a schema for the same reason).
 */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples']);

function checkDefinitionRefs(root: unknown): void {
  const defs = root && typeof root === 'object' && !Array.isArray(root) ? ((root as Schema).$defs as Schema | undefined) : undefined;
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const node = pending.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      pending.push(...node);
      continue;
    }
    const ref = (node as Schema).$ref;
    if (typeof ref === 'string' && ref.startsWith('#/$defs/')) {
      const name = ref.slice('#/$defs/'.length).split('/')[0]!.replace(/~1/g, '/').replace(/~0/g, '~');
      if (!defs || !Object.hasOwn(defs, name)) throw new Error(`$ref '${ref}' points to no definition in the schema`);
    }
    // Values, not schemas: a `$ref` inside them is data.
    for (const [key, value] of Object.entries(node)) if (!DATA_KEYWORDS.has(key)) pending.push(value);
  }
}

function refersToRoot(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(refersToRoot);
  if (!node || typeof node !== 'object') return false;
  return Object.entries(node).some(([key, value]) => (key === '$ref' ? value === '#' : refersToRoot(value)));
}

function withRootRefs<T>(node: T): T {
  if (Array.isArray(node)) return node.map(withRootRefs) as T;
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, key === '$ref' && value === '#' ? `#/$defs/${ROOT_DEF}` : withRootRefs(value)])) as T;
}

function rewrite(node: unknown): unknown {
  if (node === true) return ANY_VALUE;
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
  // allOf first, on the parts as written: a part alone may constrain nothing (`{maxLength: 3}`).
  let out: Schema = Array.isArray((node as Schema).allOf) ? mergeAllOf(node as Schema) : { ...(node as Schema) };

  // Sub-schemas next.
  for (const key of ['properties', '$defs', 'definitions']) {
    const map = out[key];
    if (map && typeof map === 'object' && !Array.isArray(map)) out[key] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, rewrite(v)]));
  }
  for (const key of ['oneOf', 'anyOf', 'prefixItems']) {
    if (Array.isArray(out[key])) out[key] = (out[key] as unknown[]).map(rewrite);
  }
  if (out.items !== undefined) out.items = Array.isArray(out.items) ? out.items.map(rewrite) : rewrite(out.items);
  if (out.additionalProperties !== undefined && typeof out.additionalProperties === 'object') out.additionalProperties = rewrite(out.additionalProperties);

  // References: the builder resolves `#/$defs/…` only.
  if (out.definitions && typeof out.definitions === 'object') {
    out.$defs = { ...(out.definitions as Schema), ...((out.$defs as Schema | undefined) ?? {}) };
    delete out.definitions;
  }
  if (typeof out.$ref === 'string' && out.$ref.startsWith('#/definitions/')) out.$ref = `#/$defs/${out.$ref.slice('#/definitions/'.length)}`;

  // A value that matches one alternative matches `anyOf`: the grammar picks one.
  if (Array.isArray(out.anyOf) && out.oneOf === undefined) {
    out.oneOf = out.anyOf;
    delete out.anyOf;
  }
  // The builder ignores the other keywords of a node whose `type` is a list (maxLength on
  // ["string", "null"]…): one alternative per type, each with them, says the same.
  if (Array.isArray(out.type) && out.type.length > 1) {
    const { type: types, ...rest } = out;
    return { oneOf: (types as unknown[]).map((type) => rewrite({ ...rest, type })) };
  }

  // The builder writes any other format (email, uuid, uri…) as the empty string only.
  if (typeof out.format === 'string' && !GRAMMAR_FORMATS.has(out.format)) delete out.format;

  if (!CONSTRAINING_KEYWORDS.some((key) => key in out)) return { ...out, ...ANY_VALUE };
  // An object with no properties listed may hold any; the builder would allow only `{}`.
  if (out.type === 'object' && out.properties === undefined && out.additionalProperties === undefined) out.additionalProperties = true;
  return integerRangeAsEnum(out);
}

/**
 * `allOf` folded into its parent: properties merged, `required` joined, other keys kept
 * first-come. Exact for the common use (a base object extended with more properties); where the
 * parts disagree on a keyword the grammar follows one of them and the validation has the last word.
 */
function mergeAllOf(node: Schema): Schema {
  const { allOf, ...merged } = node as Schema & { allOf: unknown[] };
  for (const raw of allOf) {
    // A part may itself be an allOf (nested extension).
    const part = raw && typeof raw === 'object' && Array.isArray((raw as Schema).allOf) ? mergeAllOf(raw as Schema) : raw;
    if (!part || typeof part !== 'object') continue;
    for (const [key, value] of Object.entries(part as Schema)) {
      if (key === 'properties' && value && typeof value === 'object') merged.properties = mergeProperties((merged.properties as Schema | undefined) ?? {}, value as Schema);
      else if (key === 'required' && Array.isArray(value)) merged.required = [...new Set([...((merged.required as unknown[] | undefined) ?? []), ...value])];
      else if (!(key in merged)) merged[key] = value;
    }
  }
  return merged;
}

/** A property both parts define must satisfy both: it becomes their `allOf`, folded in turn. */
function mergeProperties(into: Schema, from: Schema): Schema {
  const merged = { ...into };
  for (const [name, schema] of Object.entries(from)) merged[name] = name in merged ? { allOf: [merged[name], schema] } : schema;
  return merged;
}

/**
 * The builder ignores `minimum`/`maximum`. A bounded integer (an hour, a rating, a count) is what
 * tool parameters mostly hold, so a small range is handed to it as the enum of its values.
 */
function integerRangeAsEnum(schema: Schema): Schema {
  const integer = schema.type === 'integer' || (Array.isArray(schema.type) && schema.type.length === 1 && schema.type[0] === 'integer');
  if (!integer || 'enum' in schema || 'const' in schema) return schema;
  const low = bound(schema.minimum, schema.exclusiveMinimum, 'low');
  const high = bound(schema.maximum, schema.exclusiveMaximum, 'high');
  if (low === undefined || high === undefined || high < low || high - low >= MAX_ENUMERATED_RANGE) return schema;
  const step = typeof schema.multipleOf === 'number' && Number.isInteger(schema.multipleOf) && schema.multipleOf > 0 ? schema.multipleOf : 1;
  const values: number[] = [];
  for (let v = low; v <= high; v++) if (v % step === 0) values.push(v);
  if (values.length === 0) return schema;
  const { type: _t, minimum: _a, maximum: _b, exclusiveMinimum: _c, exclusiveMaximum: _d, multipleOf: _e, ...rest } = schema;
  return { ...rest, enum: values };
}

/** The tightest integer bound from an inclusive and an exclusive limit (draft 6+: both numbers). */
function bound(inclusive: unknown, exclusive: unknown, side: 'low' | 'high'): number | undefined {
  const candidates: number[] = [];
  if (typeof inclusive === 'number') candidates.push(side === 'low' ? Math.ceil(inclusive) : Math.floor(inclusive));
  if (typeof exclusive === 'number') candidates.push(side === 'low' ? Math.floor(exclusive) + 1 : Math.ceil(exclusive) - 1);
  if (candidates.length === 0) return undefined;
  return side === 'low' ? Math.max(...candidates) : Math.min(...candidates);
}
