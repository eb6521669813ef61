// Structured output is never a silent pass: the finished text is validated against the
// requested schema, and a failure becomes an error instead of a finish.

import { Ajv, type ValidateFunction } from 'ajv';
import { GatewayError, badRequest } from './errors.js';
import type { JsonSchema, ResponseFormat, StreamPart } from './types.js';

const ajv = new Ajv({ strict: false, allErrors: false, validateFormats: false });
const compiled = new WeakMap<object, ValidateFunction>();

export function compileSchema(schema: JsonSchema, param = 'response_format'): ValidateFunction {
  const cached = compiled.get(schema);
  if (cached) return cached;
  try {
    const fn = ajv.compile(schema);
    compiled.set(schema, fn);
    return fn;
  } catch (err) {
    throw badRequest(`Invalid JSON schema: ${(err as Error).message}`, param, 'invalid_schema');
  }
}

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
      const detail = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
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
  for await (const part of parts) {
    if (part.type === 'text-delta') texts.set(part.choice ?? 0, (texts.get(part.choice ?? 0) ?? '') + part.delta);
    if (part.type === 'finish' && part.finishReason === 'stop') {
      try {
        validateJsonOutput(texts.get(part.choice ?? 0) ?? '', format);
      } catch (err) {
        yield { type: 'error', error: err, choice: part.choice };
        return;
      }
    }
    yield part;
  }
}
