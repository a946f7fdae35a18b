// The one place that owns comparison tolerances. Goldens come from transformers in float32;
// tfvlm computes in float32, so differences are summation-order noise. Tests pass an entry of
// TOLERANCE to assertClose instead of writing numbers inline.
import assert from 'node:assert/strict';

type Numeric = ArrayLike<number>;

/** Tolerances by what is compared. `abs` bounds max |Δ|; `rel` scales with the reference's max |x|. */
export const TOLERANCE = {
  /** Exact: ids, masks, shapes, uint8-derived pixels after the same rounding. */
  exact: { abs: 0, rel: 0 },
  /** Preprocessed pixel values: the same uint8 pixels, normalised in float32. */
  pixels: { abs: 1e-6, rel: 0 },
  /** Hidden states / logits of a float32 forward pass vs transformers' float32 forward pass. */
  float32: { abs: 1e-4, rel: 1e-5 },

  // tfvlm against itself or against a closed form (no transformers golden):
  /** A fused wasm kernel (RMSNorm, LayerNorm, SiLU·up) vs the op-by-op layer: float32, another summation order. */
  fusedKernel: { abs: 1e-6, rel: 1e-6 },
  /** Values of order 1 computed in float32 vs a float64 reference: activations, AdamW steps, gradient clipping. */
  float32VsFloat64: { abs: 1e-6, rel: 0 },
  /** Plain float64 arithmetic vs its closed form (the learning-rate schedule). */
  float64: { abs: 1e-12, rel: 0 },
  /** Training losses after resuming from a checkpoint vs the same steps run without a break. */
  resumedLosses: { abs: 1e-5, rel: 0 },
  /** Data-parallel vs single-process training losses: float32 sums in another order, over 3 AdamW steps. */
  dataParallelLosses: { abs: 1e-5, rel: 1e-4 },
  /** Data-parallel vs single-process weights after those steps (small weights drift most, relatively). */
  dataParallelWeights: { abs: 1e-5, rel: 1e-3 },

  // Dot products (assertDotClose): `rel` is per term of the sum, relative to Σ|terms|.
  /**
   * A float32 dot product of K terms (the src/kernels Linear kernels, tf.matMul) vs its float64
   * value, in any summation order: |Δ| ≤ (K + 1)·2^-24·Σ_k |x_k·w_k| (+|b|), the classical bound
   * (each product rounds once, each of at most K additions once).
   */
  float32Dot: { abs: 0, rel: 2 ** -24 },
} as const;

export interface Diff {
  maxAbs: number;
  maxRef: number;
  argmax: number;
}

export function diff(actual: Numeric, expected: Numeric): Diff {
  assert.equal(actual.length, expected.length, `length ${actual.length} != expected ${expected.length}`);
  let maxAbs = 0;
  let maxRef = 0;
  let argmax = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= maxAbs)) {
      maxAbs = Number.isNaN(d) ? Infinity : d;
      argmax = i;
    }
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return { maxAbs, maxRef, argmax };
}

/**
 * Asserts max |actual − expected| ≤ abs + rel · max|expected|. Returns the diff so tests can
 * report a parity table.
 */
export function assertClose(
  actual: Numeric,
  expected: Numeric,
  tol: { abs: number; rel: number } = TOLERANCE.float32,
  what = 'tensor',
): Diff {
  const d = diff(actual, expected);
  const bound = tol.abs + tol.rel * d.maxRef;
  assert.ok(
    d.maxAbs <= bound,
    `${what}: max |Δ| ${d.maxAbs.toExponential(3)} at flat index ${d.argmax} ` +
      `(actual ${actual[d.argmax]}, expected ${expected[d.argmax]}) exceeds ${bound.toExponential(3)}`,
  );
  return d;
}

/**
 * Asserts |actual_i − expected_i| ≤ sums·(abs + (terms + 1)·rel·magnitude_i) for every element:
 * `magnitude` is Σ|terms| of each dot product, `terms` their count (K), `sums` how many float32
 * sums stand between actual and expected (1 against a float64 reference, 2 against another
 * float32 implementation). Returns the largest |Δ| / magnitude.
 */
export function assertDotClose(
  actual: Numeric,
  expected: Numeric,
  magnitude: Numeric,
  terms: number,
  tol: { abs: number; rel: number } = TOLERANCE.float32Dot,
  what = 'dot products',
  sums = 1,
): number {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != expected ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    const m = magnitude[i]!;
    const bound = sums * (tol.abs + (terms + 1) * tol.rel * m);
    assert.ok(
      d <= bound,
      `${what}: |Δ| ${d.toExponential(3)} at flat index ${i} (actual ${actual[i]}, expected ${expected[i]}, ` +
        `Σ|terms| ${m}) exceeds ${bound.toExponential(3)}`,
    );
    if (m > 0) worst = Math.max(worst, d / m);
  }
  return worst;
}
