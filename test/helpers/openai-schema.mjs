// Validates responses against OpenAI's published chat-completions schemas (vendored in
// test/fixtures), reading OpenAPI 3.0's `nullable` as "may be null".
import fs from 'node:fs';
import { Ajv } from 'ajv';

const spec = JSON.parse(fs.readFileSync(new URL('../fixtures/openai-chat-schemas.json', import.meta.url), 'utf8'));

function toJsonSchema(node) {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'nullable' || k.startsWith('x-') || k === 'example' || k === 'deprecated' || k === 'discriminator') continue;
    out[k] = toJsonSchema(v);
  }
  if (node.nullable === true) return { anyOf: [out, { type: 'null' }] };
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ $id: 'openai', components: { schemas: toJsonSchema(spec.components.schemas) } });

export function validateOpenAI(name, value) {
  const validate = ajv.getSchema(`openai#/components/schemas/${name}`);
  if (!validate) throw new Error(`no schema ${name}`);
  const ok = validate(value);
  return { ok, errors: ok ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`) };
}
