#!/usr/bin/env node
// The value-import graph of src/ (type-only imports left out): cycles, and imports that cross the
// layering DOWN (a folder importing from a folder above it). `node scripts/import-graph.mjs` prints
// both and exits 1 when there is any; test/architecture.test.ts asserts there is none.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/**
 * What each src/ folder may import (besides itself), lowest first. A module may import from the
 * folders listed for it; anything else is a layering inversion.
 */
export const LAYERS = {
  util: [],
  errors: [],
  kernels: ['errors', 'util'],
  backend: ['errors', 'util'],
  io: ['backend', 'errors', 'util'],
  quant: ['kernels', 'io', 'errors', 'util'],
  tokenizer: ['io', 'backend', 'errors', 'util'],
  layers: ['kernels', 'backend', 'errors', 'util'],
  models: ['layers', 'kernels', 'quant', 'io', 'backend', 'errors', 'util'],
  processing: ['models', 'quant', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  generation: ['processing', 'models', 'quant', 'layers', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  train: ['generation', 'processing', 'models', 'quant', 'layers', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  engine: ['generation', 'processing', 'models', 'quant', 'layers', 'kernels', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  tasks: ['engine', 'generation', 'processing', 'models', 'quant', 'layers', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  serve: ['engine', 'generation', 'processing', 'models', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  batch: ['engine', 'tasks', 'generation', 'processing', 'models', 'quant', 'layers', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  queue: ['batch', 'engine', 'tasks', 'generation', 'processing', 'models', 'quant', 'layers', 'tokenizer', 'io', 'backend', 'errors', 'util'],
  cli: ['engine', 'tasks', 'serve', 'batch', 'queue', 'train', 'generation', 'processing', 'models', 'quant', 'layers', 'tokenizer', 'io', 'backend', 'errors', 'util'],
};

function tsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+['"](\.[^'"]+)['"]/gm;

/** file → the src files it imports values from. */
export function importGraph() {
  const graph = new Map();
  for (const file of tsFiles(SRC)) {
    const deps = new Set();
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const names = m[3];
      const typeOnly = m[2] || (names.startsWith('{') && names.replace(/[{}]/g, '').split(',').map((n) => n.trim()).filter(Boolean).every((n) => n.startsWith('type ')));
      if (typeOnly) continue;
      const target = normalize(join(dirname(file), m[4]));
      const resolved = [target, `${target}.ts`, join(target, 'index.ts')].find((c) => existsSync(c) && statSync(c).isFile());
      deps.add(resolved ?? target);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Pairs of files that reach each other through value imports. */
export function importCycles(graph = importGraph()) {
  const reaches = (from, to) => {
    const seen = new Set();
    const stack = [from];
    while (stack.length) {
      const f = stack.pop();
      if (f === to) return true;
      if (seen.has(f)) continue;
      seen.add(f);
      stack.push(...(graph.get(f) ?? []));
    }
    return false;
  };
  const pairs = new Set();
  for (const [file, deps] of graph) {
    for (const d of deps) if (graph.has(d) && reaches(d, file)) pairs.add([file, d].map((f) => relative(ROOT, f)).sort().join(' <-> '));
  }
  return [...pairs].sort();
}

/** The layer of a src file: its top folder, or its name for top-level files (engine.ts, index.ts, cli.ts). */
function layerOf(file) {
  const rel = relative(SRC, file).split(/[\\/]/);
  if (rel.length > 1) return rel[0];
  const base = rel[0].replace(/\.ts$/, '');
  return base === 'cli' ? 'cli' : base === 'errors' ? 'errors' : 'engine';
}

/** Imports that leave src/, or go from a layer to one it may not use (LAYERS). */
export function layeringViolations(graph = importGraph()) {
  const out = [];
  for (const [file, deps] of graph) {
    const from = layerOf(file);
    for (const d of deps) {
      const rel = relative(ROOT, file);
      if (!d.startsWith(SRC)) {
        out.push(`${rel} imports ${relative(ROOT, d)} (outside src/)`);
        continue;
      }
      const to = layerOf(d);
      if (to === from || from === 'engine' && file === join(SRC, 'index.ts')) continue;
      if (!(LAYERS[from] ?? []).includes(to)) out.push(`${rel} (${from}) imports ${relative(ROOT, d)} (${to})`);
    }
  }
  return out.sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const graph = importGraph();
  const cycles = importCycles(graph);
  const layering = layeringViolations(graph);
  console.log(`${graph.size} modules in src/`);
  console.log(cycles.length ? `value-import cycles:\n  ${cycles.join('\n  ')}` : 'no value-import cycles');
  console.log(layering.length ? `layering violations:\n  ${layering.join('\n  ')}` : 'no layering violations');
  process.exit(cycles.length || layering.length ? 1 : 0);
}
