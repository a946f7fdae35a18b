import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { inPlaceWritesSupported } from '../../src/backend/tensor-memory.ts';
import { attendToCache, cachedKeysValues, causalMask, ConcatKVCache, scaledDotProductAttention } from '../../src/layers/index.ts';
import { PreallocatedKVCache } from '../../src/layers/preallocated-kv-cache.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomTensor, take } from './util.ts';

const B = 2;
const H = 6;
const Hkv = 2;
const D = 8;
/** A prefill of 5 then single tokens and a 7-token chunk: crosses chunk (4) and page (3) boundaries. */
const STEPS = [5, 1, 1, 7, 1, 1, 1];

/**
 * Runs the same updates through a cache and ConcatKVCache + the reference kernel: attention over the
 * cache's buffers (attendToCache), and the keys and values it stores, compared with both.
 */
function compareWithConcat(make: () => PreallocatedKVCache, withMask: boolean): void {
  const concat = new ConcatKVCache();
  const cache = make();
  const mirror = make(); // checked through the plain KVCache.update path
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
      cache.update(k, v);
      assertClose(take(attendToCache(q, cache.view(), mask, 0.3)), ref, TOLERANCE.float32, `attendToCache after ${offset + T}`);
      mirror.update(k, v);
      const stored = cachedKeysValues(mirror.view());
      assertClose(stored.k.dataSync(), all.k.dataSync(), TOLERANCE.exact, `stored keys after ${offset + T}`);
      assertClose(stored.v.dataSync(), all.v.dataSync(), TOLERANCE.exact, `stored values after ${offset + T}`);
      assert.equal(cache.offset, concat.offset);
      tf.dispose([q, k, v, all.k, all.v, stored.k, stored.v, ...(mask ? [mask] : [])]);
    }
  } finally {
    cache.dispose();
    mirror.dispose();
    concat.dispose();
  }
  assert.ok(tf.memory().numTensors <= before, `tensors leaked: ${tf.memory().numTensors} > ${before}`);
}

describe('PreallocatedKVCache', () => {
  before(async () => {
    await initBackend();
  });

  it('in-place writes are available on the test backend (wasm/cpu)', () => {
    assert.equal(inPlaceWritesSupported(), ['wasm', 'cpu'].includes(tf.getBackend()));
  });

  it('PreallocatedKVCache (chunk 4) attends like concat + reference, causal', () => {
    compareWithConcat(() => new PreallocatedKVCache({ chunk: 4 }), false);
  });

  it('PreallocatedKVCache (chunk 4) with a padding mask', () => {
    compareWithConcat(() => new PreallocatedKVCache({ chunk: 4 }), true);
  });

  it('PreallocatedKVCache without in-place writes falls back to concatenation', () => {
    compareWithConcat(() => new PreallocatedKVCache({ chunk: 4, inPlace: false }), true);
  });

  it('PreallocatedKVCache grows by chunks and keeps what it held', () => {
    const c = new PreallocatedKVCache({ chunk: 4, capacity: 4 });
    const k = randomTensor([1, 1, 3, 2], 1);
    c.update(k, k);
    assert.equal(c.allocated, 4);
    const second = randomTensor([1, 1, 3, 2], 2);
    c.update(second, second);
    const { k: all, v: allV } = cachedKeysValues(c.view());
    assert.equal(c.allocated, 8);
    assert.deepEqual(Array.from(all.dataSync()), [...k.dataSync(), ...second.dataSync()]);
    assert.equal(c.writesInPlace, true);
    tf.dispose([k, second, all, allV]);
    c.dispose();
  });

  it('a given capacity is allocated exactly (not rounded to a chunk); past it, growth is by chunks', () => {
    const c = new PreallocatedKVCache({ chunk: 4, capacity: 7 });
    const k = randomTensor([1, 1, 5, 2], 1);
    c.update(k, k);
    assert.equal(c.allocated, 7);
    const two = randomTensor([1, 1, 2, 2], 2);
    c.update(two, two);
    assert.equal(c.allocated, 7);
    const one = randomTensor([1, 1, 1, 2], 3);
    c.update(one, one);
    assert.equal(c.allocated, 8);
    const { k: all, v: allV } = cachedKeysValues(c.view());
    assert.deepEqual(Array.from(all.dataSync()), [...k.dataSync(), ...two.dataSync(), ...one.dataSync()]);
    tf.dispose([k, two, one, all, allV]);
    c.dispose();
  });

  for (const [name, make] of [
    ['PreallocatedKVCache', () => new PreallocatedKVCache({ chunk: 4 })],
    ['PreallocatedKVCache (concat fallback)', () => new PreallocatedKVCache({ chunk: 4, inPlace: false })],
  ] as const) {
    it(`${name}: truncate then append attends like concat over the kept prefix`, () => {
      const before = tf.memory().numTensors;
      const cache = make();
      const k = randomTensor([1, 2, 8, 4], 1);
      const v = randomTensor([1, 2, 8, 4], 2);
      cache.update(k, v);
      cache.truncate(5);
      assert.equal(cache.offset, 5);
      const k1 = randomTensor([1, 2, 1, 4], 3);
      const q = randomTensor([1, 4, 1, 4], 4);
      cache.update(k1, k1);
      const got = take(attendToCache(q, cache.view(), undefined, 0.5));
      const ref = tf.tidy(() => {
        const keys = tf.concat([tf.slice(k, [0, 0, 0, 0], [1, 2, 5, 4]), k1], 2);
        const values = tf.concat([tf.slice(v, [0, 0, 0, 0], [1, 2, 5, 4]), k1], 2);
        return Float32Array.from(scaledDotProductAttention(q, keys, values, undefined, 0.5).dataSync() as Float32Array);
      });
      assertClose(got, ref, TOLERANCE.float32, `${name} after truncate`);
      cache.truncate(0);
      assert.equal(cache.offset, 0);
      cache.dispose();
      tf.dispose([k, v, k1, q]);
      assert.equal(tf.memory().numTensors, before);
    });
  }

  it('numTensors stays flat over repeated decode steps', () => {
    for (const cache of [new PreallocatedKVCache({ chunk: 8 })]) {
      const k = randomTensor([1, 2, 1, 4], 3);
      const q = randomTensor([1, 4, 1, 4], 4);
      const step = () => {
        cache.update(k, k);
        return take(attendToCache(q, cache.view(), undefined, 1));
      };
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step(); // stays within one chunk
      assert.equal(tf.memory().numTensors, before);
      cache.dispose();
      tf.dispose([k, q]);
    }
  });

  it('rejects mismatched updates and queries', () => {
    const c = new PreallocatedKVCache();
    const k = tf.zeros([1, 2, 1, 4]);
    c.update(k, k);
    tf.tidy(() => {
      assert.throws(() => c.update(tf.zeros([1, 3, 1, 4]), tf.zeros([1, 3, 1, 4])), /cache holds \[1, 2, \*, 4\]/);
      assert.throws(() => attendToCache(tf.zeros([1, 3, 1, 4]), c.view(), undefined, 1), /q must be/);
    });
    assert.throws(() => new PreallocatedKVCache({ chunk: 0 }), /chunk must be a positive integer/);
    c.dispose();
    k.dispose();
  });
});
