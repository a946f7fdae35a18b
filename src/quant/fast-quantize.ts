// quantizeRows (mlx-affine.ts) on the kernel pool: MLX's GPU quantizer, bit for bit, in linear.c's
// quantize_q4 / quantize_q8 (about 1 ns per weight on one thread where the reference takes ~40).
// The rows go through a kernel arena a chunk at a time, so a matrix of any size needs at most
// `maxArenaBytes` (1 MiB by default) of arena, disposed before returning or throwing, or works in
// the caller's `arena`.
// The kernel refuses the same inputs as the reference (non-finite values, values that are not
// scaleDType values, groups whose range overflows float32) and stops at the first bad row; the
// reference's own checks then run from that row on, so the error is the reference's, word for word.
// mlxBackend 'cpu' (round half to even, the true max) has no kernel: it runs the reference.
import { TfvlmError } from '../errors.ts';
import { KernelArena, quantizedCodeBytes, type KernelPool, type QuantBits, type QuantGroupSize, type WeightDType } from '../kernels/index.ts';
import {
  checkQuantization, quantizeError, quantizeRows, roundToDType, type MlxFloatDType, type QuantizedRows, type QuantizeOptions,
} from './mlx-affine.ts';

export interface FastQuantizeOptions extends QuantizeOptions {
  /** The kernel pool to run on (default: the process's). */
  pool?: KernelPool;
  /** The most arena one call uses at once (default 1 MiB; at least one row's worth is used). */
  maxArenaBytes?: number;
  /**
   * An arena to work in (from byte 0, up to its size), kept by the caller across calls: a load
   * quantizing hundreds of matrices then creates one arena instead of one per matrix.
   */
  arena?: KernelArena;
}

const DEFAULT_MAX_ARENA_BYTES = 1 << 20;
const VALUES: Record<MlxFloatDType, WeightDType> = { F32: 'f32', BF16: 'bf16', F16: 'f16' };
const align = (bytes: number) => Math.ceil(bytes / 16) * 16;

/** quantizeRows, the same results and errors; mlxBackend 'gpu' runs on the kernels. */
export function quantizeRowsFast(values: Float32Array, rows: number, cols: number, options: FastQuantizeOptions): QuantizedRows {
  if (options.mlxBackend !== 'gpu') return quantizeRows(values, rows, cols, options);
  const { bits, groupSize, scaleDType } = options;
  const where = options.where ?? 'quantizeRows';
  checkQuantization(options, cols, where);
  if (!Number.isInteger(rows) || rows < 0 || values.length !== rows * cols) {
    throw new TfvlmError(`${where}: ${values.length} values do not make ${rows} rows of ${cols}`);
  }
  if (rows === 0) return quantizeRows(values, rows, cols, options);
  const q = bits as QuantBits;
  const G = groupSize as QuantGroupSize;
  const groups = cols / G;
  const codeRowBytes = quantizedCodeBytes(q, 1, cols);
  // Per row: the values, the codes, a scale and a bias per group (+ each region's alignment).
  const rowBytes = 4 * cols + codeRowBytes + 8 * groups;
  const budget = options.arena ? options.arena.bytes : options.maxArenaBytes ?? DEFAULT_MAX_ARENA_BYTES;
  const chunkRows = Math.max(1, Math.min(rows, Math.floor((budget - 48) / rowBytes)));
  const SRC = 0;
  const CODES = align(SRC + 4 * chunkRows * cols);
  const SCALES = align(CODES + chunkRows * codeRowBytes);
  const BIASES = align(SCALES + 4 * chunkRows * groups);
  const needed = align(BIASES + 4 * chunkRows * groups);
  const arena = options.arena && options.arena.bytes >= needed
    ? options.arena
    : KernelArena.create(needed, options.pool ? { pool: options.pool } : {});
  const codes = new Uint32Array((rows * cols * bits) / 32);
  const codeBytes = new Uint8Array(codes.buffer);
  const scales = new Float32Array(rows * groups);
  const biases = new Float32Array(rows * groups);
  try {
    for (let r0 = 0; r0 < rows; r0 += chunkRows) {
      const n = Math.min(chunkRows, rows - r0);
      arena.f32(SRC, n * cols).set(values.subarray(r0 * cols, (r0 + n) * cols));
      const bad = arena.quantizeRows(q, G, SRC, n, cols, CODES, SCALES, BIASES, VALUES[scaleDType]);
      if (bad >= 0) {
        throw quantizeError(values, cols, options, r0 + bad) ??
          new TfvlmError(`${where}: the quantize kernel refused row ${r0 + bad}, which the reference accepts (a kernel bug)`);
      }
      codeBytes.set(arena.view(CODES, n * codeRowBytes), r0 * codeRowBytes);
      scales.set(arena.f32(SCALES, n * groups), r0 * groups);
      biases.set(arena.f32(BIASES, n * groups), r0 * groups);
    }
  } finally {
    if (arena !== options.arena) arena.dispose();
  }
  return { codes, scales: roundToDType(scales, scaleDType), biases: roundToDType(biases, scaleDType) };
}
