// One token's attention on the tfjs heap (src/layers/heap-attention.ts): rows_dot_f32 against a
// float64 dot product on ragged sizes and strides, attendOneToken against softmax(q·kᵀ)·v in float64
// over a cache's buffers (grouped heads, a tail past `length` that must be ignored), and
// PreallocatedKVCache.appendOne against update on the same values.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../src/backend/index.ts';
import { mutableView } from '../../src/backend/tensor-memory.ts';
import { attendOneToken, heapKernels } from '../../src/layers/heap-attention.ts';
import { PreallocatedKVCache } from '../../src/layers/preallocated-kv-cache.ts';
import { assertDotClose } from '../helpers/compare.ts';
import { rng } from './util.ts';

function random(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

describe('heap attention', () => {
  before(async () => {
    await initBackend();
  });

  it('runs on the threaded wasm build (its heap is a shared memory)', () => {
    assert.ok(heapKernels(), 'linear.wasm instantiated on the tfjs heap');
  });

  it('rows_dot_f32: out[r] = Σ a[r·lda + i]·b[i] for ragged n, rows and lda, within the f32 dot bound', () => {
    const k = heapKernels()!;
    for (const [rows, n, lda] of [[1, 1, 1], [3, 3, 5], [5, 7, 7], [4, 8, 9], [9, 13, 16], [2, 64, 64], [17, 100, 131]] as const) {
      const a = random(rows * lda, rows + n), b = random(n, n + 1);
      const buf = tf.zeros([rows * lda + n + rows]);
      try {
        const v = mutableView(buf)!;
        v.set(a);
        v.set(b, rows * lda);
        k.rows_dot_f32(v.byteOffset, lda, rows, v.byteOffset + 4 * rows * lda, n, v.byteOffset + 4 * (rows * lda + n));
        const out = mutableView(buf)!.subarray(rows * lda + n);
        const want = new Float64Array(rows), magnitude = new Float64Array(rows);
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < n; i++) {
            want[r]! += a[r * lda + i]! * b[i]!;
            magnitude[r]! += Math.abs(a[r * lda + i]! * b[i]!);
          }
        }
        assertDotClose(out, want, magnitude, n, undefined, `[${rows}, ${n}] lda ${lda}`);
      } finally {
        buf.dispose();
      }
    }
  });

  it('attendOneToken: softmax(q·kᵀ)·v per head over the first `length` positions, kv head ⌊h / groups⌋', () => {
    const k = heapKernels()!;
    const [H, Hkv, D, C, S] = [6, 2, 12, 10, 7];
    const keys = Array.from({ length: Hkv }, (_, j) => tf.tensor2d(random(C * D, 10 + j), [C, D]));
    const valuesT = Array.from({ length: Hkv }, (_, j) => tf.tensor2d(random(D * C, 20 + j), [D, C]));
    const scratch = tf.zeros([2 * H * D + S]);
    try {
      const qs = random(H * D, 3);
      const s = mutableView(scratch)!;
      s.set(qs);
      const out = s.subarray(H * D, 2 * H * D);
      attendOneToken(k, {
        q: s.subarray(0, H * D), out, scores: s.subarray(2 * H * D), length: S, capacity: C, headDim: D,
        keys: keys.map((t) => mutableView(t)!), valuesT: valuesT.map((t) => mutableView(t)!),
      });
      const kv = keys.map((t) => t.dataSync()), vv = valuesT.map((t) => t.dataSync());
      const want = new Float64Array(H * D), magnitude = new Float64Array(H * D);
      for (let h = 0; h < H; h++) {
        const j = Math.floor(h / (H / Hkv));
        const kj = kv[j]!, vj = vv[j]!; // j < Hkv
        const scores = Array.from({ length: S }, (_, c) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qs[h * D + d]! * kj[c * D + d]!;
          return dot;
        });
        const max = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - max));
        const total = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) {
          for (let c = 0; c < S; c++) {
            want[h * D + d]! += (e[c]! / total) * vj[d * C + c]!;
            magnitude[h * D + d]! += Math.abs((e[c]! / total) * vj[d * C + c]!);
          }
        }
      }
      // The scores' own rounding (D terms) moves the probabilities by ~D·2^-24 relative: 2·(S + D) terms.
      assertDotClose(out, want, magnitude, 2 * (S + D), undefined, 'attention');
    } finally {
      tf.dispose([...keys, ...valuesT, scratch]);
    }
  });

  it('PreallocatedKVCache.appendOne writes what update writes, growing by chunks, and refuses what it cannot hold', () => {
    const [Hkv, D] = [3, 4];
    const a = new PreallocatedKVCache({ chunk: 2 });
    const b = new PreallocatedKVCache({ chunk: 2 });
    try {
      for (let t = 0; t < 5; t++) {
        const k = random(Hkv * D, 100 + t), v = random(Hkv * D, 200 + t);
        assert.ok(a.canAppendOne(Hkv, D));
        a.appendOne(Hkv, D, k, v);
        tf.tidy(() => b.update(tf.tensor4d(k, [1, Hkv, 1, D]), tf.tensor4d(v, [1, Hkv, 1, D])));
      }
      const [va, vb] = [a.view(), b.view()];
      assert.deepEqual([va.length, va.capacity], [vb.length, vb.capacity]);
      assert.deepEqual([va.keys.length, va.valuesT.length, vb.keys.length, vb.valuesT.length], [Hkv, Hkv, Hkv, Hkv]);
      for (let j = 0; j < Hkv; j++) {
        assert.deepEqual(mutableView(va.keys[j]!), mutableView(vb.keys[j]!));
        assert.deepEqual(mutableView(va.valuesT[j]!), mutableView(vb.valuesT[j]!));
      }
      assert.equal(a.canAppendOne(Hkv + 1, D), false);
      assert.throws(() => a.appendOne(Hkv, D, new Float32Array(3), new Float32Array(3)), /k and v must hold 3×4 values/);
      assert.throws(() => a.appendOne(2, D, new Float32Array(8), new Float32Array(8)), /needs in-place buffers of batch 1, 2 kv heads of 4/);
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});
