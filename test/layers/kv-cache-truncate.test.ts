import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../src/backend/index.ts';
import { cachedKeysValues } from '../../src/layers/attention.ts';
import { ConcatKVCache } from '../../src/layers/kv-cache.ts';

describe('ConcatKVCache.truncate', () => {
  before(async () => { await initBackend(); });

  it('keeps the first positions, then appends after them', () => {
    const start = tf.memory().numTensors;
    const cache = new ConcatKVCache();
    const step = (v: number, T: number) => tf.fill([1, 2, T, 3], v);
    for (const [v, T] of [[1, 4], [2, 1], [3, 2]] as const) {
      const k = step(v, T);
      cache.update(k, k);
      k.dispose();
    }
    cache.truncate(5);
    assert.equal(cache.offset, 5);
    const k = step(9, 1);
    cache.update(k, k);
    const { k: all, v: allV } = cachedKeysValues(cache.view());
    k.dispose();
    assert.deepEqual(Array.from(all.dataSync()).filter((_, i) => i % 3 === 0).slice(0, 6), [1, 1, 1, 1, 2, 9]);
    tf.dispose([all, allV]);
    assert.throws(() => cache.truncate(-1), /bad length/);
    cache.truncate(0);
    assert.equal(cache.offset, 0);
    cache.dispose();
    assert.equal(tf.memory().numTensors, start);
  });
});
