// The bench-only PagedKVCache (bench/lib/paged-kv-cache.ts) against ConcatKVCache + the reference kernel.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { cachedKeysValues, causalMask, ConcatKVCache, scaledDotProductAttention } from '../../src/layers/index.ts';
import { PagedKVCache } from '../../bench/lib/paged-kv-cache.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomTensor, take } from '../layers/util.ts';

const B = 2;
const H = 6;
const Hkv = 2;
const D = 8;
/** A prefill of 5 then single tokens and a 7-token chunk: crosses page (3) boundaries. */
const STEPS = [5, 1, 1, 7, 1, 1, 1];

function compareWithConcat(make: () => PagedKVCache, withMask: boolean): void {
  const concat = new ConcatKVCache();
  const cache = make();
  const mirror = make(); // checked through the plain update path
  const before = tf.memory().numTensors;
  try {
    let seed = 100;
    for (const T of STEPS) {
      const q = randomTensor([B, H, T, D], seed++, 2);
      const k = randomTensor([B, Hkv, T, D], seed++, 2);
      const v = randomTensor([B, Hkv, T, D], seed++);
      const offset = concat.offset;
      const mask = withMask || T > 1
        ? causalMask({ batch: B, queryLen: T, offset, keyMask: withMask ? Array.from({ length: B * (offset + T) }, (_, i) => (i === 1 ? 0 : 1)) : undefined })
        : undefined;
      concat.update(k, v);
      const all = cachedKeysValues(concat.view());
      const ref = take(scaledDotProductAttention(q, all.k, all.v, mask, 0.3));
      assertClose(take(cache.appendAndAttend(q, k, v, mask, 0.3)), ref, TOLERANCE.float32, `appendAndAttend after ${offset + T}`);
      const viaUpdate = mirror.update(k, v);
      assertClose(viaUpdate.k.dataSync(), all.k.dataSync(), TOLERANCE.exact, `update keys after ${offset + T}`);
      assertClose(viaUpdate.v.dataSync(), all.v.dataSync(), TOLERANCE.exact, `update values after ${offset + T}`);
      assert.equal(cache.offset, concat.offset);
      tf.dispose([q, k, v, all.k, all.v, ...(mask ? [mask] : [])]);
    }
  } finally {
    cache.dispose();
    mirror.dispose();
    concat.dispose();
  }
  assert.ok(tf.memory().numTensors <= before, `tensors leaked: ${tf.memory().numTensors} > ${before}`);
}

describe('PagedKVCache (bench only)', () => {
  before(async () => {
    await initBackend();
  });

  it('PagedKVCache (page 3) attends like concat + reference, causal and padded', () => {
    compareWithConcat(() => new PagedKVCache({ pageSize: 3 }), false);
    compareWithConcat(() => new PagedKVCache({ pageSize: 3 }), true);
  });

  it('PagedKVCache keeps full pages and grows only the last', () => {
    const c = new PagedKVCache({ pageSize: 4 });
    const k = randomTensor([1, 1, 6, 2], 1);
    c.update(k, k);
    assert.equal(c.pageCount, 2);
    const one = randomTensor([1, 1, 1, 2], 2);
    c.update(one, one);
    c.update(one, one);
    assert.equal(c.pageCount, 2);
    c.update(one, one);
    assert.equal(c.pageCount, 3);
    tf.dispose([k, one]);
    c.dispose();
  });

  it('truncate then append attends like concat over the kept prefix', () => {
    const before = tf.memory().numTensors;
    const cache = new PagedKVCache({ pageSize: 3 });
    const k = randomTensor([1, 2, 8, 4], 1);
    const v = randomTensor([1, 2, 8, 4], 2);
    cache.update(k, v);
    cache.truncate(5);
    assert.equal(cache.offset, 5);
    const k1 = randomTensor([1, 2, 1, 4], 3);
    const q = randomTensor([1, 4, 1, 4], 4);
    const got = take(cache.appendAndAttend(q, k1, k1, undefined, 0.5));
    const ref = tf.tidy(() => {
      const keys = tf.concat([tf.slice(k, [0, 0, 0, 0], [1, 2, 5, 4]), k1], 2);
      const values = tf.concat([tf.slice(v, [0, 0, 0, 0], [1, 2, 5, 4]), k1], 2);
      return Float32Array.from(scaledDotProductAttention(q, keys, values, undefined, 0.5).dataSync() as Float32Array);
    });
    assertClose(got, ref, TOLERANCE.float32, 'after truncate');
    cache.truncate(0);
    assert.equal(cache.offset, 0);
    cache.dispose();
    tf.dispose([k, v, k1, q]);
    assert.equal(tf.memory().numTensors, before);
  });

  it('numTensors stays flat over repeated decode steps; a bad page size is refused', () => {
    const cache = new PagedKVCache({ pageSize: 8 });
    const k = randomTensor([1, 2, 1, 4], 3);
    const q = randomTensor([1, 4, 1, 4], 4);
    take(cache.appendAndAttend(q, k, k, undefined, 1));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) take(cache.appendAndAttend(q, k, k, undefined, 1)); // stays within one page
    assert.equal(tf.memory().numTensors, before);
    cache.dispose();
    tf.dispose([k, q]);
    assert.throws(() => new PagedKVCache({ pageSize: 0 }), /page size/);
  });
});
