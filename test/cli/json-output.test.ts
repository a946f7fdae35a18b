import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { snakeCase, snakeCaseKeys } from '../../src/cli/json-output.ts';

describe('snakeCase', () => {
  it('turns camelCase identifiers into snake_case and leaves everything else', () => {
    const cases: [string, string][] = [
      ['tfjsVersion', 'tfjs_version'], ['rssMB', 'rss_mb'], ['heapUsedMB', 'heap_used_mb'], ['embedMs', 'embed_ms'],
      ['load_ms', 'load_ms'], ['text', 'text'], ['@tensorflow/tfjs-core', '@tensorflow/tfjs-core'],
      ['model.layers.0.mlp', 'model.layers.0.mlp'], ['Capitalised', 'Capitalised'],
    ];
    for (const [from, to] of cases) assert.equal(snakeCase(from), to, from);
  });

  it('recurses through objects and arrays, values untouched', () => {
    assert.deepEqual(snakeCaseKeys({ aB: [{ cD: 'eF' }], x: null, n: 1 }), { a_b: [{ c_d: 'eF' }], x: null, n: 1 });
  });
});
