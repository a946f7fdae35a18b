import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { fusedKernelsActive } from '../../src/backend/fused-kernels.ts';
import {
  attention, causalMask, createKVCaches, ConcatKVCache, disposeKVCaches, disposeLinear, inverseFrequencies, linearFromCheckpoint,
  chooseAttentionKernel, paddingMask, rotaryTables, scaledDotProductAttention, type AttentionWeights, type KVCache,
} from '../../src/layers/index.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomArray, randomTensor, take } from './util.ts';

/** Naive attention loop: q [B,H,T,D], k/v [B,Hkv,S,D]; allowed(b, t, s) says which keys a query sees. */
function naiveAttention(q: Float32Array, k: Float32Array, v: Float32Array, B: number, H: number, Hkv: number,
  T: number, S: number, D: number, allowed: (b: number, t: number, s: number) => boolean): number[] {
  const out = new Array<number>(B * H * T * D).fill(0);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const kh = Math.floor(h / (H / Hkv));
    const scores: number[] = [];
    for (let s = 0; s < S; s++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[((b * H + h) * T + t) * D + d]! * k[((b * Hkv + kh) * S + s) * D + d]!;
      scores.push(allowed(b, t, s) ? dot / Math.sqrt(D) : -Infinity);
    }
    const anyAllowed = scores.some((x) => x > -Infinity);
    const m = Math.max(...scores);
    // A row with no visible key gets uniform weights (transformers' finfo.min mask behaviour).
    const e = scores.map((x) => (anyAllowed ? Math.exp(x - m) : 1));
    const z = e.reduce((a, c) => a + c, 0);
    for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) {
      out[((b * H + h) * T + t) * D + d]! += (e[s]! / z) * v[((b * Hkv + kh) * S + s) * D + d]!;
    }
  }
  return out;
}

/** The one cache of createKVCaches(1). */
function oneCache(caches: KVCache[]): KVCache {
  const [cache] = caches;
  assert.ok(cache && caches.length === 1, `createKVCaches(1) gave ${caches.length} caches`);
  return cache;
}

function randomAttentionWeights(hidden: number, H: number, Hkv: number, D: number, seed: number, bias: boolean): AttentionWeights {
  const lin = (out: number, inn: number, s: number) =>
    linearFromCheckpoint(randomTensor([out, inn], s, 0.3), bias ? randomTensor([out], s + 1, 0.1) : undefined);
  return { q: lin(H * D, hidden, seed), k: lin(Hkv * D, hidden, seed + 2), v: lin(Hkv * D, hidden, seed + 4), o: lin(hidden, H * D, seed + 6) };
}

describe('attention', () => {
  before(async () => { await initBackend(); });

  for (const [H, Hkv] of [[4, 4], [4, 2], [6, 1]] as const) {
    it(`scaled dot-product attention matches a naive loop (H=${H}, Hkv=${Hkv}, causal + padding)`, () => {
      const B = 2, T = 5, D = 8;
      const q = randomArray(B * H * T * D, 1), k = randomArray(B * Hkv * T * D, 2), v = randomArray(B * Hkv * T * D, 3);
      const keyMask = [1, 1, 1, 1, 0, 0, 0, 1, 1, 1]; // row 0 right-padded, row 1 left-padded
      const mask = causalMask({ batch: B, queryLen: T, offset: 0, keyMask })!;
      const y = scaledDotProductAttention(tf.tensor4d(q, [B, H, T, D]), tf.tensor4d(k, [B, Hkv, T, D]),
        tf.tensor4d(v, [B, Hkv, T, D]), mask, 1 / Math.sqrt(D));
      const expected = naiveAttention(q, k, v, B, H, Hkv, T, T, D, (b, t, s) => s <= t && keyMask[b * T + s] === 1);
      assertClose(take(y), expected, TOLERANCE.float32);
      mask.dispose();
    });
  }

  it('grouped-query attention equals multi-head attention with explicitly repeated k/v heads', () => {
    const B = 1, H = 6, Hkv = 2, T = 4, D = 4;
    const q = randomTensor([B, H, T, D], 5), k = randomTensor([B, Hkv, T, D], 6), v = randomTensor([B, Hkv, T, D], 7);
    const repeat = (x: tf.Tensor) => tf.reshape(tf.tile(tf.expandDims(x, 2), [1, 1, H / Hkv, 1, 1]), [B, H, T, D]);
    const gqa = take(scaledDotProductAttention(q, k, v, undefined, 0.5));
    const mha = take(scaledDotProductAttention(q, repeat(k), repeat(v), undefined, 0.5));
    assertClose(gqa, mha, TOLERANCE.float32);
  });

  it('bidirectional padding mask hides padded keys only', () => {
    const B = 2, H = 2, T = 3, D = 4;
    const q = randomArray(B * H * T * D, 8), k = randomArray(B * H * T * D, 9), v = randomArray(B * H * T * D, 10);
    const keyMask = [1, 1, 1, 1, 0, 1];
    const mask = paddingMask(keyMask, B, T)!;
    const y = scaledDotProductAttention(tf.tensor4d(q, [B, H, T, D]), tf.tensor4d(k, [B, H, T, D]), tf.tensor4d(v, [B, H, T, D]), mask, 0.5);
    assertClose(take(y), naiveAttention(q, k, v, B, H, H, T, T, D, (b, _t, s) => keyMask[b * T + s] === 1), TOLERANCE.float32);
    assert.equal(paddingMask([1, 1], 1, 2), undefined);
    mask.dispose();
  });

  for (const [name, makeCache] of [['concat', () => new ConcatKVCache()], ['the default (preallocated)', () => oneCache(createKVCaches(1))]] as const) {
  it(`cached step-by-step decoding equals one full causal pass (RoPE, GQA, bias): ${name} cache`, () => {
    const B = 2, T = 6, hidden = 12, H = 4, Hkv = 2, D = 6;
    const w = randomAttentionWeights(hidden, H, Hkv, D, 20, true);
    const x = randomTensor([B, T, hidden], 30);
    const inv = inverseFrequencies({ dim: D, rope_theta: 10000 });
    const pos = (start: number, n: number) => Array.from({ length: B * n }, (_, i) => start + (i % n));
    const fullTables = rotaryTables(inv, pos(0, T), B, T);
    const fullMask = causalMask({ batch: B, queryLen: T, offset: 0 })!;
    const full = take(attention(w, x, { numHeads: H, numKeyValueHeads: Hkv, headDim: D, rotary: fullTables, mask: fullMask }));

    const cache = makeCache();
    const before = tf.memory().numTensors;
    const pieces: Float32Array[] = [];
    // prefill 4 positions, then two single-token steps
    for (const [start, n] of [[0, 4], [4, 1], [5, 1]] as const) {
      const xs = tf.slice(x, [0, start, 0], [B, n, hidden]);
      const tables = rotaryTables(inv, pos(cache.offset, n), B, n);
      const mask = causalMask({ batch: B, queryLen: n, offset: cache.offset });
      const y = attention(w, xs, { numHeads: H, numKeyValueHeads: Hkv, headDim: D, rotary: tables, mask, cache });
      pieces.push(take(y));
      [xs, tables.cos, tables.sin, mask].forEach((t) => t?.dispose());
    }
    assert.equal(cache.offset, T);
    if (cache instanceof ConcatKVCache) {
      const stored = cache.view();
      assert.equal(tf.memory().numTensors, before + stored.keys.length + stored.valuesT.length, 'only the cached k and v remain');
    }
    disposeKVCaches([cache]);
    assert.equal(tf.memory().numTensors, before);
    // reassemble [B, T, hidden] from [B, n, hidden] pieces
    const stitched = new Float32Array(B * T * hidden);
    let start = 0;
    for (const [i, n] of [4, 1, 1].entries()) {
      for (let b = 0; b < B; b++) stitched.set(pieces[i]!.subarray(b * n * hidden, (b + 1) * n * hidden), (b * T + start) * hidden);
      start += n;
    }
    assertClose(stitched, full, TOLERANCE.float32);
    [fullTables.cos, fullTables.sin, fullMask, x].forEach((t) => t.dispose());
    Object.values(w).forEach(disposeLinear);
  });
  }

  it('onWeights reports the probabilities the output was computed from (RoPE, GQA, causal + padding, cached decode)', () => {
    const B = 2, T = 5, hidden = 12, H = 4, Hkv = 2, D = 6;
    const w = randomAttentionWeights(hidden, H, Hkv, D, 40, true);
    const x = randomTensor([B, T, hidden], 41);
    const inv = inverseFrequencies({ dim: D, rope_theta: 10000 });
    const keyMask = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1]; // row 1 left-padded
    const tables = rotaryTables(inv, Array.from({ length: B * T }, (_, i) => i % T), B, T);
    const mask = causalMask({ batch: B, queryLen: T, offset: 0, keyMask })!;
    const opts = { numHeads: H, numKeyValueHeads: Hkv, headDim: D, rotary: tables, mask };
    const plain = take(attention(w, x, opts));
    let reported: Float32Array | undefined;
    let shape: number[] = [];
    const before = tf.memory().numTensors;
    const withWeights = take(attention(w, x, { ...opts, onWeights: (p) => { shape = p.shape; reported = p.dataSync() as Float32Array; } }));
    assert.equal(tf.memory().numTensors, before);
    assertClose(withWeights, plain, TOLERANCE.float32);
    assert.deepEqual(shape, [B, H, T, T]);
    const p = reported!;
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
      const row = p.subarray(((b * H + h) * T + t) * T, ((b * H + h) * T + t + 1) * T);
      assert.ok(Math.abs(row.reduce((a, c) => a + c, 0) - 1) < 1e-5, `row ${b},${h},${t} sums to 1`);
      // A padded query sees no key and gets uniform weights (see the fully masked row test below).
      if (keyMask[b * T + t] === 1) row.forEach((v, s) => { if (s > t || keyMask[b * T + s] === 0) assert.equal(v, 0, `hidden key ${s} of row ${b},${h},${t}`); });
    }
    // The last position decoded against a cache of the first T−1 sees the same probabilities.
    const cache = new ConcatKVCache();
    const prefix = tf.slice(x, [0, 0, 0], [B, T - 1, hidden]);
    const t0 = rotaryTables(inv, Array.from({ length: B * (T - 1) }, (_, i) => i % (T - 1)), B, T - 1);
    const m0 = causalMask({ batch: B, queryLen: T - 1, offset: 0, keyMask: keyMask.filter((_, i) => i % T < T - 1) });
    attention(w, prefix, { ...opts, rotary: t0, mask: m0, cache }).dispose();
    const last = tf.slice(x, [0, T - 1, 0], [B, 1, hidden]);
    const t1 = rotaryTables(inv, Array.from({ length: B }, () => T - 1), B, 1);
    const m1 = causalMask({ batch: B, queryLen: 1, offset: T - 1, keyMask });
    let step: Float32Array | undefined;
    attention(w, last, { ...opts, rotary: t1, mask: m1, cache, onWeights: (q) => { step = q.dataSync() as Float32Array; } }).dispose();
    const lastRows = Array.from({ length: B * H }, (_, bh) => [...p.subarray((bh * T + T - 1) * T, (bh * T + T) * T)]).flat();
    assertClose(step!, lastRows, TOLERANCE.float32);
    disposeKVCaches([cache]);
    [x, prefix, last, tables.cos, tables.sin, t0.cos, t0.sin, t1.cos, t1.sin, mask, m0, m1].forEach((t) => t?.dispose());
    Object.values(w).forEach(disposeLinear);
  });

  it('a fully masked query row gets uniform weights, not NaN', () => {
    const keyMask = [0, 0, 1];
    const mask = causalMask({ batch: 1, queryLen: 3, offset: 0, keyMask })!;
    const v = tf.tensor4d([1, 2, 3], [1, 1, 3, 1]);
    const y = take(scaledDotProductAttention(tf.zeros([1, 1, 3, 1]), tf.zeros([1, 1, 3, 1]), v, mask, 1));
    assertClose(y, [2, 2, 3], TOLERANCE.float32); // rows 0, 1 see nothing → mean of v; row 2 sees key 2
    mask.dispose();
  });

  it('chooseAttentionKernel: reference without a cache or with onWeights, the fused step for one unmasked token on wasm, else the cache kernel', () => {
    const cache = new ConcatKVCache();
    const rotary = { cos: tf.zeros([1, 1, 1, 8]) as tf.Tensor4D, sin: tf.zeros([1, 1, 1, 8]) as tf.Tensor4D };
    const mask = tf.zeros([1, 1, 1, 1]);
    const base = { headDim: 8, rotary };
    assert.equal(chooseAttentionKernel(base, 1), 'reference');
    assert.equal(chooseAttentionKernel({ ...base, cache, onWeights: () => {} }, 1), 'reference-over-cache');
    assert.equal(chooseAttentionKernel({ ...base, cache }, 1), fusedKernelsActive() ? 'fused-decode-step' : 'cache');
    assert.equal(chooseAttentionKernel({ ...base, cache }, 2), 'cache');
    assert.equal(chooseAttentionKernel({ ...base, cache, mask }, 1), 'cache');
    assert.equal(chooseAttentionKernel({ headDim: 8, cache }, 1), 'cache', 'no RoPE: the fused step needs the rotary kernel');
    tf.dispose([rotary.cos, rotary.sin, mask]);
  });
});
