// Plain references for the kernels of linear.c: the same results, computed the obvious way in
// float64 (tests compare the kernels against these on ragged sizes), the 16-bit conversions, and
// MLX's affine quantization (codes, dequantization, the qpanel-8 layout).
import type { QuantBits, QuantGroupSize, WeightDType } from './index.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits → value (exact). */
export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
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
  const bits = u32[0]!;
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
  return dtype === 'f32' ? raw[e]! : dtype === 'bf16' ? bf16ToF32(raw[e]!) : f16ToF32(raw[e]!);
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
    for (let k = 0; k < K; k++) out[(p * K + k) * 8 + j] = w[n * K + k]!;
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
      let s = bias ? bias[n]! : 0;
      let a = bias ? Math.abs(bias[n]!) : 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k]! * wv[n * K + k]!;
        s += p;
        a += Math.abs(p);
      }
      y[m * N + n] = s;
      magnitude[m * N + n] = a;
    }
  }
  return { y, magnitude };
}

// ---------------------------------------------------------------------------------------------
// Quantized weights (MLX's affine groups): W [N, K] as codes q in [0, 2^bits − 1], row-major
// uint32 words [N, K·bits/32] (each row a little-endian bit stream: code k of a row in bits
// bits·(k mod 32/bits) of word k / (32/bits)), and per group of G consecutive k a scale and a
// bias, [N, K/G]; w = s·q + b.

/** A quantized W as the kernels take it: codes as in the checkpoint, scales and biases as f32. */
export interface QuantizedMatrix {
  bits: QuantBits;
  groupSize: QuantGroupSize;
  N: number;
  K: number;
  codes: Uint32Array;
  scales: Float32Array;
  biases: Float32Array;
}

/** Code k of row n. */
export function quantizedCode(m: QuantizedMatrix, n: number, k: number): number {
  const perWord = 32 / m.bits;
  const word = m.codes[n * (m.K / perWord) + Math.floor(k / perWord)]!;
  return (word >>> (m.bits * (k % perWord))) & ((1 << m.bits) - 1);
}

/**
 * W as float32: fl(fl(s·q) + b), the product rounded to float32 and then the sum (what the
 * kernels' dequantization gives, bit for bit; with s from bf16 or f16 the product is exact).
 */
export function dequantizeReference(m: QuantizedMatrix): Float32Array {
  const { N, K, groupSize: G } = m;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const g = n * (K / G) + Math.floor(k / G);
      out[n * K + k] = Math.fround(Math.fround(m.scales[g]! * quantizedCode(m, n, k)) + m.biases[g]!);
    }
  }
  return out;
}

/**
 * The qpanel-8 bytes of m (linear.c's header): per panel of 8 rows and group, 8 f32 scales, 8 f32
 * biases, then the codes 16 bytes at a time, rows L and L + 4 in 32-bit lane L; rows ≥ N zero.
 */
export function packQuantizedReference(m: QuantizedMatrix): Uint8Array {
  const { bits, N, K, groupSize: G } = m;
  const groups = K / G;
  const block = 64 + G * bits;
  const out = new Uint8Array(Math.ceil(N / 8) * groups * block);
  const f32 = new Float32Array(out.buffer);
  for (let n = 0; n < N; n++) {
    const p = n >> 3, j = n & 7, L = j & 3, h = j >> 2;
    for (let g = 0; g < groups; g++) {
      const at = (p * groups + g) * block;
      f32[at / 4 + j] = m.scales[n * groups + g]!;
      f32[at / 4 + 8 + j] = m.biases[n * groups + g]!;
      for (let t = 0; t < G; t++) {
        const q = quantizedCode(m, n, g * G + t);
        if (bits === 8) {
          // vector t/2, lane L, byte h + 2·(t mod 2)
          out[at + 64 + 16 * (t >> 1) + 4 * L + h + 2 * (t & 1)] = q;
        } else {
          // vector t/4, lane L, byte t mod 4, the low nibble for rows 0-3, the high one for 4-7
          out[at + 64 + 16 * (t >> 2) + 4 * L + (t & 3)]! |= q << (4 * h);
        }
      }
    }
  }
  return out;
}

/**
 * Y [M, N] = X [M, K] · Wᵀ (+ bias) in float64 with w = s·q + b exactly, and per element
 * M = Σ_k |x_k|·(|s|·q_k + |b|) (+ |bias|): the scale of the float32 rounding in the kernels,
 * which sum s·Σ x·q and b·Σ x per group (≥ Σ_k |x_k·w_k|, which cancellation inside s·q + b can
 * make smaller than what is actually summed). inputRounding: per element
 * Σ_g 2^-28·max_g|x|·|s_g|·Σ_{k in g} q_k, what the quantized matvec adds by holding x as 30-bit
 * fixed point per group (linear.c, matvec_input_q<b>).
 */
export function quantizedLinearReference(
  m: QuantizedMatrix, x: ArrayLike<number>, M: number, bias?: ArrayLike<number>,
): { y: Float64Array; magnitude: Float64Array; inputRounding: Float64Array } {
  const { N, K, groupSize: G } = m;
  const y = new Float64Array(M * N);
  const magnitude = new Float64Array(M * N);
  const inputRounding = new Float64Array(M * N);
  const q = new Float64Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) q[n * K + k] = quantizedCode(m, n, k);
  for (let r = 0; r < M; r++) {
    for (let n = 0; n < N; n++) {
      let sum = bias ? bias[n]! : 0;
      let mag = bias ? Math.abs(bias[n]!) : 0;
      let rounding = 0;
      for (let g = 0; g < K / G; g++) {
        const s = m.scales[n * (K / G) + g]!, b = m.biases[n * (K / G) + g]!;
        let largest = 0, codes = 0;
        for (let k = g * G; k < (g + 1) * G; k++) {
          const xk = x[r * K + k]!, qk = q[n * K + k]!;
          sum += xk * (s * qk + b);
          mag += Math.abs(xk) * (Math.abs(s) * qk + Math.abs(b));
          largest = Math.max(largest, Math.abs(xk));
          codes += qk;
        }
        rounding += 2 ** -28 * largest * Math.abs(s) * codes;
      }
      y[r * N + n] = sum;
      magnitude[r * N + n] = mag;
      inputRounding[r * N + n] = rounding;
    }
  }
  return { y, magnitude, inputRounding };
}
