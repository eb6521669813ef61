// The size limits OpenAI documents for Structured Outputs, applied to every JSON schema
// Switchboard compiles — into a validator for any provider's structured output, or into a grammar
// for the local model. Compiling costs grow with the schema and hold the event loop: Ajv took
// 1.4 s for 2,000 properties and overflowed its stack at 3,000, and a 1,000-value enum made the
// local model spend a second on each token.

import { badRequest } from './errors.js';

export const SCHEMA_LIMITS = {
  /** Object properties, all objects together. */
  properties: 5000,
  /** Enum values, all enums together. */
  enumValues: 1000,
  /** Characters of property names, enum values and const values together. */
  characters: 120_000,
  /** Characters of one string enum's values, for an enum of more than 250 values. */
  largeEnumCharacters: 15_000,
} as const;
const LARGE_ENUM = 250;

/** Throws a 400 naming the limit a schema passes; the walk has no recursion (bodies nest ≤ 128 levels anyway). */
export function checkSchemaSize(schema: unknown, param: string): void {
  let properties = 0;
  let enumValues = 0;
  let characters = 0;
  const pending: unknown[] = [schema];
  while (pending.length > 0) {
    const node = pending.pop();
    if (Array.isArray(node)) {
      for (const item of node) if (item !== null && typeof item === 'object') pending.push(item);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'properties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const names = Object.keys(value);
        properties += names.length;
        for (const name of names) characters += name.length;
      } else if (key === 'enum' && Array.isArray(value)) {
        enumValues += value.length;
        const strings = value.filter((v): v is string => typeof v === 'string');
        const enumCharacters = strings.reduce((sum, v) => sum + v.length, 0);
        characters += enumCharacters;
        if (strings.length > LARGE_ENUM && enumCharacters > SCHEMA_LIMITS.largeEnumCharacters) {
          refuse(param, `an enum of ${strings.length} string values has ${enumCharacters} characters; an enum of more than ${LARGE_ENUM} values may have at most ${SCHEMA_LIMITS.largeEnumCharacters}`);
        }
        continue;
      } else if (key === 'const' && typeof value === 'string') {
        characters += value.length;
      }
      if (value !== null && typeof value === 'object') pending.push(value);
    }
  }
  if (properties > SCHEMA_LIMITS.properties) refuse(param, `it has ${properties} object properties; at most ${SCHEMA_LIMITS.properties} are allowed`);
  if (enumValues > SCHEMA_LIMITS.enumValues) refuse(param, `its enums have ${enumValues} values; at most ${SCHEMA_LIMITS.enumValues} are allowed`);
  if (characters > SCHEMA_LIMITS.characters) {
    refuse(param, `its property names, enum values and const values have ${characters} characters; at most ${SCHEMA_LIMITS.characters} are allowed`);
  }
}

function refuse(param: string, reason: string): never {
  throw badRequest(`Invalid JSON schema: ${reason} (OpenAI's Structured Outputs limits)`, param, 'invalid_schema');
}
