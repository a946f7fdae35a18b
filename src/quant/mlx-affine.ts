// MLX's affine group quantization (`mx.quantize` / `mx.dequantize`, mode "affine"), bit for bit, as
// a plain reference for the fast kernels and the checkpoint writer to be tested against.
// docs/notes/mlx-quantization.md derives every step from MLX's source; the short version:
//
//   per group of `groupSize` values along a row, in float32:
//     scale = max((max − min) / (2^bits − 1), 1e-7), negated unless |min| > |max|
//     edge  = the endpoint of larger magnitude;  q0 = round(edge / scale)
//     q0 ≠ 0:  scale = edge / q0, bias = edge   (edge dequantizes exactly)   else bias = 0
//     code  = clamp(round((w − bias) / scale), 0, 2^bits − 1)
//   scales and biases are rounded to the weights' dtype only when stored.
//
// MLX's CPU and GPU quantizers differ in the range and the rounding (notes, section 2), so the
// caller says which one to reproduce.
import { TfvlmError } from '../errors.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../io/dtypes.ts';
import { packCodes, unpackCodes } from './mlx-pack.ts';

export type MlxFloatDType = 'F32' | 'BF16' | 'F16';

/** 'gpu': the Metal/CUDA kernel (what converts a checkpoint on a Mac); 'cpu': mlx/backend/cpu/quantized.cpp. */
export type MlxBackend = 'gpu' | 'cpu';

export interface MlxQuantization {
  bits: number;
  groupSize: number;
}

export const MLX_SUPPORTED_BITS: readonly number[] = [4, 8];
export const MLX_SUPPORTED_GROUP_SIZES: readonly number[] = [32, 64, 128];

/** Refuses bits other than 4 and 8 and group sizes other than 32, 64 and 128; `where` names the key or field. */
export function checkQuantizationParams({ bits, groupSize }: MlxQuantization, where: string): void {
  if (!MLX_SUPPORTED_BITS.includes(bits)) {
    throw new TfvlmError(`${where}: quantization bits ${bits} is not supported (4 or 8)`);
  }
  if (!MLX_SUPPORTED_GROUP_SIZES.includes(groupSize)) {
    throw new TfvlmError(`${where}: quantization group size ${groupSize} is not supported (32, 64 or 128)`);
  }
}

/** As checkQuantizationParams, and also refuses a row of `cols` values that is not a whole number of groups. */
export function checkQuantization(q: MlxQuantization, cols: number, where: string): void {
  checkQuantizationParams(q, where);
  if (!Number.isInteger(cols) || cols <= 0 || cols % q.groupSize !== 0) {
    throw new TfvlmError(`${where}: a row of ${cols} values is not a whole number of groups of ${q.groupSize}`);
  }
}

export interface QuantizeOptions extends MlxQuantization {
  /** The weights' dtype: MLX quantizes values of this dtype and stores scales and biases in it. */
  scaleDType: MlxFloatDType;
  /** Which of MLX's two quantizers to reproduce. */
  mlxBackend: MlxBackend;
  /** The checkpoint key, for errors. */
  where?: string;
}

export interface QuantizedRows {
  /** [rows, cols · bits / 32], each row a little-endian bit stream of codes (mlx-pack.ts). */
  codes: Uint32Array;
  /** [rows, cols / groupSize], already rounded to scaleDType. */
  scales: Float32Array;
  /** [rows, cols / groupSize], already rounded to scaleDType. */
  biases: Float32Array;
}

const f32 = Math.fround;
const EPS = f32(1e-7);

/** C's rint in the default rounding mode: to nearest, ties to even (the CPU quantizer's std::rint). */
function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  if (x - floor !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Metal's and CUDA's round: to nearest, ties away from zero. */
function roundHalfAwayFromZero(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Rounds float32 values to the nearest `dtype` value (ties to even), in place. */
export function roundToDType(values: Float32Array, dtype: MlxFloatDType): Float32Array {
  if (dtype === 'BF16') bf16ToF32(f32ToBf16(values), values);
  else if (dtype === 'F16') f16ToF32(f32ToF16(values), values);
  return values;
}

/** The first non-finite value at or after `start`, else the first that is not a `dtype` value, as an error. */
function unquantizableValue(values: Float32Array, dtype: MlxFloatDType, where: string, start = 0): TfvlmError | undefined {
  for (let i = start; i < values.length; i++) {
    if (!Number.isFinite(values[i])) return new TfvlmError(`${where}: value ${values[i]} at index ${i} is not finite`);
  }
  if (dtype === 'F32') return undefined;
  const rounded = roundToDType(values.slice(start), dtype);
  for (let i = start; i < values.length; i++) {
    if (!Object.is(rounded[i - start], values[i])) {
      return new TfvlmError(`${where}: value ${values[i]} at index ${i} is not a ${dtype} value; MLX quantizes weights in their own dtype, so round them to ${dtype} first`);
    }
  }
  return undefined;
}

function rangeOverflow(where: string, start: number, cols: number, groupSize: number): TfvlmError {
  return new TfvlmError(`${where}: row ${Math.floor(start / cols)}, group ${(start % cols) / groupSize}: max − min overflows float32`);
}

interface GroupParams {
  scale: number;
  bias: number;
}

/** Scale and bias of one group, in float32 (every operation rounded by f32, as C++ float arithmetic is). */
function groupParams(group: Float32Array, nBins: number, backend: MlxBackend, round: (x: number) => number): GroupParams {
  // The GPU kernels start w_max at 0 (metal/kernels/quantized.h, cuda/quantized/affine_quantize.cu),
  // so an all-negative group spans [min, 0]; their w_min starts at Limits<T>::max, which any finite
  // T value undercuts, so it is the true minimum, as on the CPU.
  let wMin = Infinity;
  let wMax = backend === 'cpu' ? -Infinity : 0;
  for (const w of group) {
    if (w < wMin) wMin = w;
    if (w > wMax) wMax = w;
  }
  const range = f32(wMax - wMin);
  if (!Number.isFinite(range)) return { scale: Infinity, bias: 0 };
  const side = Math.abs(wMin) > Math.abs(wMax);
  const magnitude = Math.max(f32(range / nBins), EPS);
  const scale = side ? magnitude : -magnitude;
  const edge = side ? wMin : wMax;
  const q0 = round(f32(edge / scale));
  if (q0 === 0) return { scale, bias: 0 };
  return { scale: f32(edge / q0), bias: edge };
}

/**
 * Quantizes a row-major [rows, cols] matrix the way MLX does, bit for bit. The values must already
 * be `scaleDType` values (MLX quantizes the weights in their own dtype).
 */
export function quantizeRows(values: Float32Array, rows: number, cols: number, options: QuantizeOptions): QuantizedRows {
  const { bits, groupSize, scaleDType, mlxBackend } = options;
  const where = options.where ?? 'quantizeRows';
  checkQuantization(options, cols, where);
  if (!Number.isInteger(rows) || rows < 0 || values.length !== rows * cols) {
    throw new TfvlmError(`${where}: ${values.length} values do not make ${rows} rows of ${cols}`);
  }
  const bad = unquantizableValue(values, scaleDType, where);
  if (bad) throw bad;

  const nBins = 2 ** bits - 1;
  const round = mlxBackend === 'cpu' ? roundHalfToEven : roundHalfAwayFromZero;
  const groupCount = values.length / groupSize;
  const codes = new Uint8Array(values.length);
  const scales = new Float32Array(groupCount);
  const biases = new Float32Array(groupCount);
  for (let g = 0; g < groupCount; g++) {
    const start = g * groupSize;
    const group = values.subarray(start, start + groupSize);
    const { scale, bias } = groupParams(group, nBins, mlxBackend, round);
    if (!Number.isFinite(scale)) throw rangeOverflow(where, start, cols, groupSize);
    // Codes come from the float32 scale and bias, before they are rounded to scaleDType.
    for (let i = 0; i < groupSize; i++) {
      const q = round(f32(f32(group[i]! - bias) / scale));
      // The GPU kernels clamp only above; q is never negative there (w − bias has the sign of scale).
      codes[start + i] = Math.min(Math.max(q, 0), nBins);
    }
    scales[g] = scale;
    biases[g] = bias;
  }
  return {
    codes: packCodes(codes, bits),
    scales: roundToDType(scales, scaleDType),
    biases: roundToDType(biases, scaleDType),
  };
}

/**
 * The error quantizeRows throws for these values, looking at rows ≥ fromRow only (the caller knows
 * the rows before are fine), or undefined: for a fast quantizer that has found a bad row and must
 * report what the reference reports. Assumes the shape checks passed.
 */
export function quantizeError(values: Float32Array, cols: number, options: QuantizeOptions, fromRow = 0): TfvlmError | undefined {
  const { bits, groupSize, scaleDType, mlxBackend } = options;
  const where = options.where ?? 'quantizeRows';
  const bad = unquantizableValue(values, scaleDType, where, fromRow * cols);
  if (bad) return bad;
  const nBins = 2 ** bits - 1;
  const round = mlxBackend === 'cpu' ? roundHalfToEven : roundHalfAwayFromZero;
  for (let start = fromRow * cols; start < values.length; start += groupSize) {
    const { scale } = groupParams(values.subarray(start, start + groupSize), nBins, mlxBackend, round);
    if (!Number.isFinite(scale)) return rangeOverflow(where, start, cols, groupSize);
  }
  return undefined;
}

export interface DequantizeOptions extends MlxQuantization {
  /** The dtype MLX computes in, which is the scales' dtype; default F32. */
  dtype?: MlxFloatDType;
  /** The checkpoint key, for errors. */
  where?: string;
}

/**
 * w = scale · q + bias for a row-major [rows, cols] matrix, as MLX's dequantize computes it: the
 * product, then the sum, each rounded to `dtype` (mlx/ops.cpp affine_dequantize: multiply, then add).
 */
export function dequantizeRows(
  codes: Uint32Array,
  scales: Float32Array,
  biases: Float32Array,
  rows: number,
  cols: number,
  options: DequantizeOptions,
): Float32Array {
  const { bits, groupSize } = options;
  const dtype = options.dtype ?? 'F32';
  const where = options.where ?? 'dequantizeRows';
  checkQuantization(options, cols, where);
  const count = rows * cols;
  if (!Number.isInteger(rows) || rows < 0 || codes.length * 32 !== count * bits) {
    throw new TfvlmError(`${where}: ${codes.length} words of ${bits}-bit codes do not make ${rows} rows of ${cols}`);
  }
  const groupCount = count / groupSize;
  if (scales.length !== groupCount || biases.length !== groupCount) {
    throw new TfvlmError(`${where}: ${scales.length} scales and ${biases.length} biases for ${groupCount} groups`);
  }
  const q = unpackCodes(codes, bits);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = f32(scales[Math.floor(i / groupSize)]! * q[i]!);
  roundToDType(out, dtype);
  for (let i = 0; i < count; i++) out[i] = f32(out[i]! + biases[Math.floor(i / groupSize)]!);
  return roundToDType(out, dtype);
}
