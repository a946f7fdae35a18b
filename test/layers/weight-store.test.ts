// Weights in their checkpoint precision (weight-store.ts): a packed Linear equals the reference
// Linear (tfjs matMul on the same weights widened to float32) on random shapes that are not
// multiples of the panel width, for f32 / bf16 / f16, one row (matrix–vector) and many (matrix–matrix,
// chunked through a small scratch); embedding rows come back exactly; matrices spread over several
// arenas; f16 inf/NaN are refused by name; nothing is left in the tfjs heap.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/io/dtypes.ts';
import { embed } from '../../src/layers/embedding.ts';
import { linear, linearFromCheckpoint, disposeLinear, type Linear } from '../../src/layers/linear.ts';
import { WeightStore, type MatrixPlan } from '../../src/layers/weight-store.ts';
import { packedMatmul } from '../../src/layers/packed-matmul.ts';
import { packedLinearKernelActive, packedLinearOnHeap } from '../../src/layers/packed-linear-kernel.ts';
import { gaussianSource } from '../../src/models/random-weights.ts';
import type { WeightDType } from '../../src/kernels/index.ts';
import { assertClose, assertDotClose, TOLERANCE } from '../helpers/compare.ts';

/** Row-major [rows, cols] bytes in `dtype`, and the same values widened to float32. */
function randomMatrix(dtype: WeightDType, rows: number, cols: number, seed: number): { bytes: Uint8Array; values: Float32Array } {
  const normal = gaussianSource(seed);
  const wide = Float32Array.from({ length: rows * cols }, () => normal());
  if (dtype === 'f32') return { bytes: new Uint8Array(wide.buffer), values: wide };
  const narrow = dtype === 'bf16' ? f32ToBf16(wide) : f32ToF16(wide);
  return { bytes: new Uint8Array(narrow.buffer), values: dtype === 'bf16' ? bf16ToF32(narrow) : f16ToF32(narrow) };
}

const reader = (bytes: Uint8Array) => (dst: Uint8Array, start: number) => dst.set(bytes.subarray(start, start + dst.length));

describe('weight store: packed linears and embeddings', () => {
  before(() => initBackend());

  const SHAPES: [number, number][] = [[1, 1], [7, 5], [8, 16], [13, 37], [40, 3], [65, 129], [17, 300]];
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    it(`${dtype}: packed = reference on ${SHAPES.length} shapes, 1 / 3 / 70 rows, with and without bias`, () => {
      const before = tf.memory().numTensors;
      SHAPES.forEach(([N, K], i) => {
        const { bytes, values } = randomMatrix(dtype, N, K, 10 + i);
        const bias = i % 2 === 0 ? Float32Array.from({ length: N }, (_, j) => j / N - 0.5) : undefined;
        const plan: MatrixPlan = { format: { kind: 'float', dtype }, rows: N, cols: K, bias: bias !== undefined };
        // A scratch of 4 KiB makes the 70-row inputs run in several chunks.
        const store = WeightStore.create([plan], { scratchBytes: Math.max(4096, 8 * K * 4 + 1024) });
        const packed: Linear = { packed: store.place(plan, 'w', reader(bytes), bias), inFeatures: K, outFeatures: N };
        const reference = linearFromCheckpoint(tf.tensor2d(values, [N, K]), bias && tf.tensor1d(bias));
        for (const M of [1, 3, 70]) {
          const x = tf.randomNormal([M, K], 0, 1, 'float32', i * 7 + M);
          const [a, b] = [linear(packed, x), linear(reference, x)];
          assert.deepEqual(a.shape, [M, N]);
          // Σ_k |x_k·w_k| + |b|: the scale of each output's rounding error.
          const magnitude = tf.tidy(() => {
            const m = tf.matMul(tf.abs(x), tf.abs(reference.weightT!));
            return bias ? tf.add(m, tf.abs(tf.tensor1d(bias))) : m;
          });
          assertDotClose(a.dataSync(), b.dataSync(), magnitude.dataSync(), K, TOLERANCE.float32Dot, `${dtype} [${N}, ${K}] × ${M} rows`, 2);
          tf.dispose([x, a, b, magnitude]);
        }
        disposeLinear(reference);
        store.dispose();
      });
      assert.equal(tf.memory().numTensors, before);
    });
  }

  it('the heap-view kernel (wasm) gives packedMatmul\'s values exactly, for 1 / 3 / 70 rows of a 3-d input', () => {
    const before = tf.memory().numTensors;
    const [N, K] = [37, 65];
    const { bytes } = randomMatrix('bf16', N, K, 77);
    const plan: MatrixPlan = { format: { kind: 'float', dtype: 'bf16' }, rows: N, cols: K, bias: true };
    const store = WeightStore.create([plan], { scratchBytes: 8 * K * 4 + 4096 });
    try {
      const m = store.place(plan, 'w', reader(bytes), Float32Array.from({ length: N }, (_, j) => j / 10));
      assert.ok(packedLinearKernelActive(), 'the tests run on wasm');
      for (const M of [1, 3, 70]) {
        const x = tf.randomNormal([1, M, K], 0, 1, 'float32', M);
        const y = packedLinearOnHeap(m, x);
        assert.deepEqual(y.shape, [1, M, N]);
        assert.deepEqual(y.dataSync(), packedMatmul(m, x.dataSync() as Float32Array, M));
        tf.dispose([x, y]);
      }
    } finally {
      store.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });

  it('embedding rows come back exactly, across several arenas', () => {
    const plans = ([['bf16', 50, 24], ['f16', 33, 40], ['f32', 9, 12]] as const).map(([dtype, rows, cols]) => ({
      format: { kind: 'float', dtype }, rows, cols, bias: false,
    }) satisfies MatrixPlan);
    const store = WeightStore.create(plans, { maxArenaBytes: 8192 + 4096, scratchBytes: 4096 });
    try {
      plans.forEach((plan, i) => {
        const { bytes, values } = randomMatrix(plan.format.dtype, plan.rows, plan.cols, 40 + i);
        const packed = store.place(plan, `e${i}`, reader(bytes));
        const ids = [plan.rows - 1, 0, 3, 3];
        const y = embed({ packed, numEmbeddings: plan.rows, embeddingDim: plan.cols }, tf.tensor2d(ids, [2, 2], 'int32'));
        assert.deepEqual(y.shape, [2, 2, plan.cols]);
        const expected = Float32Array.from(ids.flatMap((id) => [...values.subarray(id * plan.cols, (id + 1) * plan.cols)]));
        assertClose(y.dataSync() as Float32Array, expected, TOLERANCE.exact, `${plan.format.dtype} rows`);
        y.dispose();
      });
      assert.ok(store.bytes > 2 * 4096, 'more than one arena');
    } finally {
      store.dispose();
    }
  });

  it('f16 weights holding inf or NaN are refused by name', () => {
    const plan: MatrixPlan = { format: { kind: 'float', dtype: 'f16' }, rows: 9, cols: 8, bias: false };
    const values = new Float32Array(72).fill(0.5);
    values[40] = Infinity;
    const store = WeightStore.create([plan], { scratchBytes: 4096 });
    try {
      assert.throws(() => store.place(plan, 'model.layers.0.mlp.up_proj.weight', reader(new Uint8Array(f32ToF16(values).buffer))),
        (e: unknown) => e instanceof TfvlmError && /model\.layers\.0\.mlp\.up_proj\.weight' \(f16\) holds inf or NaN/.test(e.message));
    } finally {
      store.dispose();
    }
  });
});
