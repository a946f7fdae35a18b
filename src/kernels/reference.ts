// Plain references for the kernels of linear.c: the same results, computed the obvious way in
// float64 (tests compare the kernels against these on ragged sizes), and the 16-bit conversions.
import type { WeightDType } from './index.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits → value (exact). */
export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** f16 bits → value (exact; inf and NaN as such). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** float → bf16 bits, rounding to nearest even (NaN stays NaN). */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float → f16 bits, rounding to nearest even; overflow gives ±inf. */
export function f32ToF16(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  let a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // rounds to inf
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24); // subnormal (or 0; 1024 rounds up to the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // guard log2 rounding
  if (2 ** (e + 1) <= a) e++;
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  a = e + 15;
  return sign | (a << 10) | m;
}

function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Element e of a [*] array of `dtype` (f32: value, bf16/f16: bits) as a number. */
export function decode(dtype: WeightDType, raw: ArrayLike<number>, e: number): number {
  return dtype === 'f32' ? raw[e] : dtype === 'bf16' ? bf16ToF32(raw[e]) : f16ToF32(raw[e]);
}

/**
 * The panel-8 layout of a row-major [N, K] (as elements: f32 values or 16-bit bits): ceil(N/8)
 * panels, panel p holding W[8p + j, k] at ((p·K + k)·8 + j), rows ≥ N zero.
 */
export function packReference(w: ArrayLike<number>, N: number, K: number): number[] {
  const panels = Math.ceil(N / 8);
  const out = new Array<number>(panels * 8 * K).fill(0);
  for (let n = 0; n < N; n++) {
    const p = n >> 3;
    const j = n & 7;
    for (let k = 0; k < K; k++) out[(p * K + k) * 8 + j] = w[n * K + k];
  }
  return out;
}

/**
 * Y [M, N] = X [M, K] · Wᵀ (+ bias) in float64, for a row-major W [N, K] of `dtype`; also returns
 * Σ_k |X[m,k]·W[n,k]| (+ |bias[n]|) per element, the scale of float32 rounding in a sum.
 */
export function linearReference(
  dtype: WeightDType, w: ArrayLike<number>, x: ArrayLike<number>, M: number, N: number, K: number, bias?: ArrayLike<number>,
): { y: Float64Array; magnitude: Float64Array } {
  const y = new Float64Array(M * N);
  const magnitude = new Float64Array(M * N);
  const wv = Float64Array.from({ length: N * K }, (_, e) => decode(dtype, w, e));
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      let a = bias ? Math.abs(bias[n]) : 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k] * wv[n * K + k];
        s += p;
        a += Math.abs(p);
      }
      y[m * N + n] = s;
      magnitude[m * N + n] = a;
    }
  }
  return { y, magnitude };
}
