// The shape of src/ itself: no module needs itself at load time (value-import cycles), no folder
// imports from a folder above it (scripts/import-graph.mjs LAYERS), nothing in src/ reaches into
// bench/, examples/ or test/, and the library exports no benchmark-only kernel or cache.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain-JS script (it also runs on its own: node scripts/import-graph.mjs)
import { importCycles, importGraph, layeringViolations } from '../../scripts/import-graph.mjs';
import * as library from '../../src/index.ts';
import * as layers from '../../src/layers/index.ts';

describe('src/ structure', () => {
  const graph = importGraph();

  it('has no value-import cycle', () => {
    assert.deepEqual(importCycles(graph), []);
  });

  it('imports only downward (LAYERS in scripts/import-graph.mjs) and never from bench/, examples/ or test/', () => {
    assert.deepEqual(layeringViolations(graph), []);
  });

  it('exports no benchmark-only attention kernel or cache', () => {
    const benchOnly = ['ATTENTION_KERNELS', 'batchedAttention', 'flashAttention', 'gqaRepeatAttention', 'gqaGroupedAttention',
      'decodeAttention', 'repeatKV', 'PagedKVCache', 'attendThroughUpdate', 'TensorKVCache'];
    for (const exports of [library, layers]) {
      assert.deepEqual(benchOnly.filter((name) => name in exports), []);
    }
  });
});
