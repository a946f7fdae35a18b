import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { causalMask, ConcatKVCache, scaledDotProductAttention } from '../../src/layers/index.ts';
import {
  PagedKVCache, PreallocatedKVCache, type AttendingKVCache,
} from '../../src/layers/kv-cache-strategies.ts';
import { inPlaceWritesSupported } from '../../src/layers/attention/tensor-memory.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomTensor, take } from './util.ts';

const B = 2;
const H = 6;
const Hkv = 2;
const D = 8;
/** A prefill of 5 then single tokens and a 7-token chunk: crosses chunk (4) and page (3) boundaries. */
const STEPS = [5, 1, 1, 7, 1, 1, 1];

/** Runs the same updates through a strategy and ConcatKVCache + the reference kernel; compares both paths. */
function compareWithConcat(make: () => AttendingKVCache, withMask: boolean): void {
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
      const all = concat.update(k, v);
      const ref = take(scaledDotProductAttention(q, all.k, all.v, mask, 0.3));
      assertClose(take(cache.appendAndAttend(q, k, v, mask, 0.3)), ref, TOLERANCE.float32, `appendAndAttend after ${offset + T}`);
      const viaUpdate = mirror.update(k, v);
      assertClose(viaUpdate.k.dataSync(), all.k.dataSync(), TOLERANCE.exact, `update keys after ${offset + T}`);
      assertClose(viaUpdate.v.dataSync(), all.v.dataSync(), TOLERANCE.exact, `update values after ${offset + T}`);
      assert.equal(cache.offset, concat.offset);
      tf.dispose([q, k, v, ...(mask ? [mask] : [])]);
    }
  } finally {
    cache.dispose();
    mirror.dispose();
    concat.dispose();
  }
  assert.ok(tf.memory().numTensors <= before, `tensors leaked: ${tf.memory().numTensors} > ${before}`);
}

describe('KV cache strategies', () => {
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
    const { k: all } = c.update(second, second);
    assert.equal(c.allocated, 8);
    assert.deepEqual(Array.from(all.dataSync()), [...k.dataSync(), ...second.dataSync()]);
    assert.equal(c.writesInPlace, true);
    tf.dispose([k, second]);
    c.dispose();
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

  for (const [name, make] of [
    ['PreallocatedKVCache', () => new PreallocatedKVCache({ chunk: 4 })],
    ['PreallocatedKVCache (concat fallback)', () => new PreallocatedKVCache({ chunk: 4, inPlace: false })],
    ['PagedKVCache', () => new PagedKVCache({ pageSize: 3 })],
  ] as const) {
    it(`${name}: truncate then append attends like concat over the kept prefix`, () => {
      const before = tf.memory().numTensors;
      const cache: AttendingKVCache & { truncate(n: number): void } = make();
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
      assertClose(got, ref, TOLERANCE.float32, `${name} after truncate`);
      cache.truncate(0);
      assert.equal(cache.offset, 0);
      cache.dispose();
      tf.dispose([k, v, k1, q]);
      assert.equal(tf.memory().numTensors, before);
    });
  }

  it('numTensors stays flat over repeated decode steps', () => {
    for (const cache of [new PreallocatedKVCache({ chunk: 8 }), new PagedKVCache({ pageSize: 8 })]) {
      const k = randomTensor([1, 2, 1, 4], 3);
      const q = randomTensor([1, 4, 1, 4], 4);
      take(cache.appendAndAttend(q, k, k, undefined, 1));
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) take(cache.appendAndAttend(q, k, k, undefined, 1)); // stays within one chunk/page
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
      assert.throws(() => c.appendAndAttend(tf.zeros([1, 3, 1, 4]), k, k, undefined, 1), /q must be/);
    });
    assert.throws(() => new PagedKVCache({ pageSize: 0 }), /page size/);
    c.dispose();
    k.dispose();
  });
});
