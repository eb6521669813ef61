// Grammars for constrained decoding, compiled once per schema and reused: JSON-schema output,
// generic JSON objects, and the choice of a tool name.

import { LlamaGrammar, type GbnfJsonSchema, type Llama } from 'node-llama-cpp';
import { badRequest } from '../../core/errors.js';
import type { JsonSchema } from '../../core/types.js';

const MAX_CACHED = 128;

/** Keywords that constrain a value; a schema with none of them (e.g. `{}`) accepts any JSON. */
const CONSTRAINING_KEYS = ['type', 'properties', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', 'items', 'prefixItems', '$ref'];

export class GrammarCache {
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  /**
   * A grammar producing JSON that matches `schema`; with no schema, or one that constrains
   * nothing (node-llama-cpp would read `{}` as "null only"), any JSON object.
   */
  forJsonSchema(schema: JsonSchema | undefined, param: string): Promise<LlamaGrammar> {
    if (!schema || acceptsAnyObject(schema)) return this.cached('json', () => LlamaGrammar.getFor(this.llama, 'json'));
    return this.cached(`schema:${JSON.stringify(schema)}`, async () => {
      try {
        // The schema is the client's: node-llama-cpp's static schema type cannot describe it.
        const create = this.llama.createGrammarForJsonSchema.bind(this.llama) as (s: GbnfJsonSchema) => Promise<LlamaGrammar>;
        return await create(schema as unknown as GbnfJsonSchema);
      } catch (err) {
        throw badRequest(`The JSON schema cannot be turned into a grammar: ${(err as Error).message}`, param, 'invalid_schema');
      }
    });
  }

  /** A grammar producing exactly one of `names`, followed by `terminator`. */
  forNames(names: readonly string[], terminator: string): Promise<LlamaGrammar> {
    const alternatives = names.map((name) => gbnfString(name + terminator)).join(' | ');
    return this.cached(`names:${alternatives}`, () => this.llama.createGrammar({ grammar: `root ::= ${alternatives}` }));
  }

  private cached(key: string, make: () => Promise<LlamaGrammar>): Promise<LlamaGrammar> {
    let grammar = this.cache.get(key);
    if (grammar) {
      // Refresh its place: the map's order is the eviction order.
      this.cache.delete(key);
      this.cache.set(key, grammar);
      return grammar;
    }
    grammar = make();
    grammar.catch(() => this.cache.delete(key));
    this.cache.set(key, grammar);
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    return grammar;
  }
}

function acceptsAnyObject(schema: JsonSchema): boolean {
  if (!CONSTRAINING_KEYS.some((k) => k in schema)) return true;
  // {type: 'object'} with no properties: node-llama-cpp would allow only `{}`.
  return schema.type === 'object' && !schema.properties && schema.additionalProperties !== false && Object.keys(schema).every((k) => ['type', 'additionalProperties', 'description', 'title', '$schema', 'required'].includes(k));
}

function gbnfString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}
