// The source layout's promises, read from the imports themselves: dialects and providers meet only
// in the canonical types (src/core), a provider is one folder plus one line of registration, and the
// core depends on no surface above it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));

/** 'dialects/openai', 'providers/local', 'core', 'server', … — or 'dialects' / 'providers' for their index files. */
function areaOf(file) {
  const parts = path.relative(src, file).split(path.sep);
  const grouped = parts[0] === 'dialects' || parts[0] === 'providers';
  return grouped && parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0];
}

/** Every relative import (static, dynamic, re-export) in src, as [from area, to area, file]. */
function importEdges() {
  const edges = [];
  for (const name of fs.readdirSync(src, { recursive: true })) {
    if (!name.endsWith('.ts')) continue;
    const file = path.join(src, name);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.normalize(path.join(path.dirname(file), m[1]));
      edges.push([areaOf(file), areaOf(target), path.relative(src, file)]);
    }
  }
  return edges;
}

const edges = importEdges();
const crossing = (rule) => edges.filter(([from, to]) => from !== to && rule(from, to)).map(([from, to, file]) => `${file}: ${from} -> ${to}`);

test('the import scan sees the registrations it must see (so the rules below read real edges)', () => {
  const seen = new Set(edges.map(([from, to]) => `${from} -> ${to}`));
  for (const edge of ['providers -> providers/local', 'dialects -> dialects/openai', 'providers/openai -> core', 'dialects/openai -> core']) {
    assert.ok(seen.has(edge), `expected the scan to find ${edge}`);
  }
});

test('a dialect never imports a provider, nor a provider a dialect', () => {
  assert.deepEqual(crossing((from, to) => from.startsWith('dialects') && to.startsWith('providers')), []);
  assert.deepEqual(crossing((from, to) => from.startsWith('providers') && to.startsWith('dialects')), []);
});

test('a provider folder imports only the core (no other provider), and a dialect no other dialect', () => {
  assert.deepEqual(crossing((from, to) => from.startsWith('providers/') && to !== 'core'), []);
  assert.deepEqual(crossing((from, to) => from.startsWith('dialects/') && to.startsWith('dialects')), []);
});

test('the core imports no dialect, provider, server or CLI code', () => {
  assert.deepEqual(crossing((from, to) => from === 'core' && /^(dialects|providers|server|cli)/.test(to)), []);
});

test('every provider folder is registered by one line in src/providers/index.ts', () => {
  const index = fs.readFileSync(path.join(src, 'providers/index.ts'), 'utf8');
  const folders = fs.readdirSync(path.join(src, 'providers'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  assert.ok(folders.length >= 4);
  for (const folder of folders) {
    const imports = index.split('\n').filter((line) => line.includes(`from './${folder}/index.js'`));
    assert.equal(imports.length, 1, `${folder}: one import line`);
    const factory = /import \{ (\w+) \}/.exec(imports[0])?.[1];
    assert.ok(factory, `${folder}: the import names its factory`);
    assert.equal(index.split('\n').filter((line) => new RegExp(`^\\s+[\\w'-]+: ${factory},$`).test(line)).length, 1, `${folder}: one registration line`);
  }
});
