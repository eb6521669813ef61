// What the local provider hands node-llama-cpp's grammar builder for a client's JSON schema
// (src/providers/local/grammar-schema.ts): each rewrite keeps the set of valid values, in a form
// the builder reads. The generation side is tested in local-server.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grammarSchema } from '../dist/providers/local/grammar-schema.js';

const inObject = (schema) => grammarSchema({ type: 'object', properties: { a: schema }, required: ['a'] }).properties.a;

test('anyOf becomes oneOf; allOf is folded into its parent', () => {
  assert.deepEqual(inObject({ anyOf: [{ type: 'string' }, { type: 'null' }] }), { oneOf: [{ type: 'string' }, { type: 'null' }] });
  assert.deepEqual(
    inObject({ allOf: [{ type: 'object', properties: { x: { type: 'boolean' } }, required: ['x'] }, { properties: { y: { type: 'string' } }, required: ['y', 'x'] }] }),
    { type: 'object', properties: { x: { type: 'boolean' } , y: { type: 'string' } }, required: ['x', 'y'] },
  );
});

test('a node that constrains nothing ({}, a description, true) is any value, objects and arrays included', () => {
  for (const free of [{}, { description: 'anything' }, true]) {
    const rewritten = inObject(free);
    const types = rewritten.oneOf.flatMap((s) => [s.type].flat());
    for (const type of ['string', 'number', 'boolean', 'null', 'array', 'object']) assert.ok(types.includes(type), `${type} in ${JSON.stringify(rewritten)}`);
  }
  assert.deepEqual(inObject({ type: 'object' }), { type: 'object', additionalProperties: true });
  assert.deepEqual(inObject({ type: 'object', additionalProperties: false }), { type: 'object', additionalProperties: false });
});

test('#/definitions references are moved to #/$defs, nested ones too', () => {
  const out = grammarSchema({ type: 'object', properties: { c: { $ref: '#/definitions/Color' }, l: { type: 'array', items: { $ref: '#/definitions/Color' } } }, definitions: { Color: { enum: ['red'] } } });
  assert.equal(out.properties.c.$ref, '#/$defs/Color');
  assert.equal(out.properties.l.items.$ref, '#/$defs/Color');
  assert.deepEqual(out.$defs, { Color: { enum: ['red'] } });
  assert.equal(out.definitions, undefined);
});

test('a small integer range is the enum of its values; wide or non-integer ranges are left alone', () => {
  assert.deepEqual(inObject({ type: 'integer', minimum: 0, maximum: 3, description: 'h' }), { description: 'h', enum: [0, 1, 2, 3] });
  assert.deepEqual(inObject({ type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 7, multipleOf: 2 }), { enum: [2, 4, 6] });
  assert.deepEqual(inObject({ type: 'integer', minimum: -2.5, maximum: 1.5 }).enum, [-2, -1, 0, 1]);
  const wide = { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 };
  assert.deepEqual(inObject(wide), wide);
  assert.deepEqual(inObject({ type: 'number', minimum: 0, maximum: 3 }), { type: 'number', minimum: 0, maximum: 3 });
  assert.deepEqual(inObject({ type: 'integer', minimum: 5, maximum: 1 }), { type: 'integer', minimum: 5, maximum: 1 });
});

test('string formats the builder has no grammar for are dropped (it would allow only ""); date, time and date-time stay', () => {
  for (const format of ['email', 'uuid', 'uri', 'hostname']) assert.deepEqual(inObject({ type: 'string', format, maxLength: 40 }), { type: 'string', maxLength: 40 });
  for (const format of ['date', 'time', 'date-time']) assert.deepEqual(inObject({ type: 'string', format }), { type: 'string', format });
});

test('a list of types becomes one alternative per type, each keeping the keywords (maxLength on ["string", "null"])', () => {
  assert.deepEqual(inObject({ type: ['string', 'null'], maxLength: 4 }), { oneOf: [{ type: 'string', maxLength: 4 }, { type: 'null', maxLength: 4 }] });
  assert.deepEqual(inObject({ type: ['integer', 'null'], minimum: 1, maximum: 2 }).oneOf[0], { enum: [1, 2] });
});

test('allOf parts that define the same property: the property must satisfy both', () => {
  const merged = inObject({ allOf: [{ type: 'object', properties: { p: { type: 'string' }, q: { type: 'boolean' } } }, { properties: { p: { maxLength: 3 } } }] });
  assert.deepEqual(merged, { type: 'object', properties: { p: { type: 'string', maxLength: 3 }, q: { type: 'boolean' } } });
});

test('a schema that refers to its root (`$ref: "#"`, as zod writes recursion) is moved under $defs and referred to there', () => {
  const tree = { type: 'object', properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } }, required: ['name'], $defs: { Other: { type: 'null' } } };
  assert.deepEqual(grammarSchema(tree), {
    $ref: '#/$defs/__root',
    $defs: {
      Other: { type: 'null' },
      __root: { type: 'object', properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#/$defs/__root' } } }, required: ['name'] },
    },
  });
  const flat = { type: 'object', properties: { a: { type: 'string' } } };
  assert.deepEqual(grammarSchema(flat), flat, 'a schema without root references is left as it is');
});

test('a $ref to a definition the schema does not have is refused (the builder read it as any value); present ones pass', () => {
  assert.throws(() => grammarSchema({ type: 'object', properties: { a: { $ref: '#/$defs/nope' } } }), /\$ref '#\/\$defs\/nope' points to no definition/);
  assert.throws(() => grammarSchema({ type: 'object', properties: { a: { items: { $ref: '#/definitions/Gone' } } }, definitions: { Here: { type: 'string' } } }), /#\/\$defs\/Gone/);
  const ok = grammarSchema({ type: 'object', properties: { a: { $ref: '#/$defs/a~1b' } }, $defs: { 'a/b': { type: 'string' } } });
  assert.equal(ok.properties.a.$ref, '#/$defs/a~1b');
  // A `$ref` key inside a value (const, enum, default, examples) is data, not a reference.
  assert.doesNotThrow(() => grammarSchema({ type: 'object', default: { $ref: '#/$defs/x' }, properties: { a: { const: { $ref: '#/$defs/y' } } } }));
});
