// Grammars for constrained decoding, compiled once per schema and reused: JSON-schema output,
// generic JSON objects, and the choice of a tool name.

import { LlamaGrammar, type GbnfJsonSchema, type Llama } from 'node-llama-cpp';
import { badRequest } from '../../core/errors.js';
import { checkSchemaSize } from '../../core/schema-size.js';
import type { JsonSchema } from '../../core/types.js';
import { CONSTRAINING_KEYWORDS, grammarSchema } from './grammar-schema.js';

const MAX_CACHED = 128;

export class GrammarCache {
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  /**
   * A grammar producing JSON that matches `schema`; with no schema, or one that constrains
   * nothing (node-llama-cpp would read `{}` as "null only"), any JSON object.
   */
  forJsonSchema(schema: JsonSchema | undefined, param: string): Promise<LlamaGrammar> {
    if (!schema || acceptsAnyObject(schema)) return this.cached('json', async () => this.withBoundedNumbers(await LlamaGrammar.getFor(this.llama, 'json')));
    return this.cached(`schema:${JSON.stringify(schema)}`, async () => {
      checkSchemaSize(schema, param);
      let grammar: LlamaGrammar;
      try {
        // The schema is the client's: node-llama-cpp's static schema type cannot describe it.
        const create = this.llama.createGrammarForJsonSchema.bind(this.llama) as (s: GbnfJsonSchema) => Promise<LlamaGrammar>;
        grammar = await create(grammarSchema(schema) as unknown as GbnfJsonSchema);
      } catch (err) {
        throw badRequest(`The JSON schema cannot be turned into a grammar: ${(err as Error).message}`, param, 'invalid_schema');
      }
      return this.withBoundedNumbers(grammar);
    });
  }

  /** The same grammar with node-llama-cpp's number rules narrowed (see `boundNumbers`). */
  private withBoundedNumbers(grammar: LlamaGrammar): Promise<LlamaGrammar> {
    return this.llama.createGrammar({
      grammar: boundNumbers(grammar.grammar),
      rootRuleName: grammar.rootRuleName,
      stopGenerationTriggers: grammar.stopGenerationTriggers,
      trimWhitespaceSuffix: grammar.trimWhitespaceSuffix,
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
  if (!CONSTRAINING_KEYWORDS.some((k) => k in schema)) return true;
  // {type: 'object'} with no properties: node-llama-cpp would allow only `{}`.
  return schema.type === 'object' && !schema.properties && schema.additionalProperties !== false && Object.keys(schema).every((k) => ['type', 'additionalProperties', 'description', 'title', '$schema', 'required'].includes(k));
}

/**
 * node-llama-cpp's number rules let an exponent of up to 16 digits follow any number, integers
 * included: `5e-3` satisfied `type: integer`, and `7e6968871519197300` parsed to Infinity (which
 * JSON cannot carry back). Integers get no exponent; other numbers an exponent of at most two
 * digits, which keeps every value finite (16 digits × 1e99 < 1.8e308).
 */
const EXPONENT = /\(\[eE\] \[-\+\]\? (?:\("0" \| \[1-9\] \[0-9\]\{0,15\}\)|\[0-9\] \[1-9\]\{0,15\})\)\?/g;
const BOUNDED_EXPONENT = '([eE] [-+]? [0-9]{1,2})?';

function boundNumbers(grammar: string): string {
  return grammar
    .split('\n')
    .map((line) => (line.startsWith('integer-number-rule ::=') ? line.replace(EXPONENT, '').trimEnd() : line.replace(EXPONENT, BOUNDED_EXPONENT)))
    .join('\n');
}

function gbnfString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}
