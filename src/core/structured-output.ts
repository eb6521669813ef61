// Structured output is never a silent pass: the finished text is validated against the
// requested schema, and a failure becomes an error instead of a finish.

import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { GatewayError, badRequest } from './errors.js';
import { checkSchemaSize } from './schema-size.js';
import type { JsonSchema, ResponseFormat, StreamPart } from './types.js';

// allErrors: with it off, Ajv nests each property's check inside the previous one's, which made
// compiling quadratic (1.4 s for 2,000 properties) and overflowed the stack past ~3,000.
const options = { strict: false, allErrors: true, validateFormats: false };
/** One validator per dialect a schema may declare in `$schema`; draft-07 when it declares none. */
const validators = { draft7: new Ajv(options), draft2019: new Ajv2019(options), draft2020: new Ajv2020(options) };

/** Validators compiled before, by the schema's JSON: a client sends the same schema on every call. */
const compiledByText = new Map<string, ValidateFunction>();
const MAX_COMPILED = 256;
/** The same, by object: a request's schema is compiled when checked and used again to validate. */
const compiledByObject = new WeakMap<object, ValidateFunction>();

/**
 * The Ajv that reads `schema` as its `$schema` says, and the schema to give it: 2020-12 and 2019-09
 * have their own; draft-07 and none are the default; any other (draft-04, draft-06) is read as
 * draft-07 rather than refused, as the providers do with what they do not check.
 */
function validatorFor(schema: JsonSchema): { ajv: Ajv; schema: JsonSchema } {
  const declared = typeof schema === 'object' && schema !== null ? (schema as { $schema?: unknown }).$schema : undefined;
  if (typeof declared !== 'string') return { ajv: validators.draft7, schema };
  const draft = declared.replace(/^https?:\/\//, '').replace(/#$/, '');
  if (draft === 'json-schema.org/draft/2020-12/schema') return { ajv: validators.draft2020, schema };
  if (draft === 'json-schema.org/draft/2019-09/schema') return { ajv: validators.draft2019, schema };
  if (draft === 'json-schema.org/draft-07/schema') return { ajv: validators.draft7, schema };
  const { $schema: _other, ...rest } = schema as Record<string, unknown>;
  return { ajv: validators.draft7, schema: rest as JsonSchema };
}

export function compileSchema(schema: JsonSchema, param = 'response_format'): ValidateFunction {
  const known = compiledByObject.get(schema);
  if (known) return known;
  const text = JSON.stringify(schema);
  let fn = compiledByText.get(text);
  if (fn) {
    // Most recently used last: the oldest is the one dropped when the cache is full.
    compiledByText.delete(text);
  } else {
    checkSchemaSize(schema, param);
    const chosen = validatorFor(schema);
    try {
      fn = chosen.ajv.compile(chosen.schema);
    } catch (err) {
      // Ajv follows `$ref`s recursively: a chain of them that loops without reaching a schema never ends.
      const reason = err instanceof RangeError ? 'its $ref chain loops without reaching a schema' : (err as Error).message;
      throw badRequest(`Invalid JSON schema: ${reason}`, param, 'invalid_schema');
    } finally {
      // Ajv keeps every schema it compiled (and refuses a second one with the same `$id`); the
      // validator needs none of that once built, and the caches here are bounded.
      chosen.ajv.removeSchema(chosen.schema);
    }
    if (compiledByText.size >= MAX_COMPILED) compiledByText.delete(compiledByText.keys().next().value!);
  }
  compiledByText.set(text, fn);
  compiledByObject.set(schema, fn);
  return fn;
}

/** Schema errors named in a message; Ajv reports every one. */
const MAX_REPORTED_ERRORS = 5;

/** Throws unless `text` is JSON matching the format. */
export function validateJsonOutput(text: string, format: Extract<ResponseFormat, { type: 'json' }>): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatewayError('upstream_invalid', 'The model did not produce valid JSON for the requested response format', {
      code: 'structured_output_invalid',
      retryable: false,
    });
  }
  if (format.schema) {
    const validate = compileSchema(format.schema);
    if (!validate(value)) {
      const errors = validate.errors ?? [];
      const detail = errors.slice(0, MAX_REPORTED_ERRORS).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ') + (errors.length > MAX_REPORTED_ERRORS ? `; and ${errors.length - MAX_REPORTED_ERRORS} more` : '');
      throw new GatewayError('upstream_invalid', `The model's output does not match the requested JSON schema: ${detail}`, {
        code: 'structured_output_invalid',
        retryable: false,
      });
    }
  } else if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError('upstream_invalid', 'The model did not produce a JSON object', { code: 'structured_output_invalid', retryable: false });
  }
  return value;
}

/** Passes parts through; on a `finish` with reason stop, validates each choice's text. */
export async function* enforceStructuredOutput(
  parts: AsyncIterable<StreamPart>,
  format: Extract<ResponseFormat, { type: 'json' }>,
): AsyncGenerator<StreamPart> {
  const texts = new Map<number, string>();
  // A refusal is the model's answer in place of the JSON (OpenAI's `refusal`): not validated.
  const refusals = new Set<string>();
  const refused = new Set<number>();
  for await (const part of parts) {
    if (part.type === 'text-start' && part.refusal) refusals.add(`${part.choice ?? 0}:${part.id}`);
    if (part.type === 'text-delta') {
      if (refusals.has(`${part.choice ?? 0}:${part.id}`)) refused.add(part.choice ?? 0);
      else texts.set(part.choice ?? 0, (texts.get(part.choice ?? 0) ?? '') + part.delta);
    }
    if (part.type === 'finish' && part.finishReason === 'stop' && !refused.has(part.choice ?? 0)) {
      try {
        validateJsonOutput(texts.get(part.choice ?? 0) ?? '', format);
      } catch (err) {
        // The answer was generated (and billed) in full: its usage goes with the refusal.
        yield { type: 'error', error: err, choice: part.choice, usage: part.usage };
        return;
      }
    }
    yield part;
  }
}
