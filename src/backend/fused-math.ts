// The arithmetic of the fused kernels (fused-kernels.ts) on plain float32 arrays, one row at a time,
// so the tfjs kernels and the one-token decode step (models/llama/decode-step.ts) round alike. Every
// elementwise step rounds to float32 after each operation in the reference's order (transformers
// modeling_llama.py); sums of squares and softmax sums run in float64, as the kernels always did.

const f32 = Math.fround;

/** out[oo + d] = w[d] · x[xo + d] / sqrt(mean(x²) + eps) for d < D (LlamaRMSNorm). */
export function rmsNormRow(x: Float32Array, xo: number, w: Float32Array, out: Float32Array, oo: number, D: number, eps: number): void {
  let ss = 0;
  for (let d = 0; d < D; d++) ss += x[xo + d]! * x[xo + d]!;
  const inv = f32(1 / Math.sqrt(f32(f32(ss / D) + eps)));
  for (let d = 0; d < D; d++) out[oo + d] = f32(w[d]! * f32(x[xo + d]! * inv));
}

/** sum = x + delta (row at o), out = rmsNorm(sum): the residual add and the norm after it. */
export function addRmsNormRow(
  x: Float32Array, delta: Float32Array, w: Float32Array, sum: Float32Array, out: Float32Array, o: number, D: number, eps: number,
): void {
  let ss = 0;
  for (let d = 0; d < D; d++) {
    const v = f32(x[o + d]! + delta[o + d]!);
    sum[o + d] = v;
    ss += v * v;
  }
  const inv = f32(1 / Math.sqrt(f32(f32(ss / D) + eps)));
  for (let d = 0; d < D; d++) out[o + d] = f32(w[d]! * f32(sum[o + d]! * inv));
}

/** out[i] = silu(gate[i]) · up[i] for i < n. */
export function siluMulRange(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = f32(f32(g * f32(1 / (1 + Math.exp(-g)))) * up[i]!);
  }
}

/** Element d of a rotated head (rotate_half): x_d·cos_d + rotated·sin_d, then · scale (when ≠ 1). */
export function rotaryValue(xd: number, rotated: number, cos: number, sin: number, scale: number): number {
  const v = f32(f32(xd * cos) + f32(rotated * sin));
  return scale === 1 ? v : f32(v * scale);
}

/**
 * Softmax over the `valid` values src[start + r·stride] (r < valid) into dst at the same places;
 * then zeros at r in [valid, rows).
 */
export function softmaxStrided(
  src: Float32Array, dst: Float32Array, start: number, stride: number, valid: number, rows = valid,
): void {
  let max = -Infinity;
  for (let r = 0; r < valid; r++) max = Math.max(max, src[start + r * stride]!);
  let sum = 0;
  for (let r = 0; r < valid; r++) {
    const e = Math.exp(src[start + r * stride]! - max);
    dst[start + r * stride] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let r = 0; r < valid; r++) dst[start + r * stride] = f32(dst[start + r * stride]! * inv);
  for (let r = valid; r < rows; r++) dst[start + r * stride] = 0;
}
