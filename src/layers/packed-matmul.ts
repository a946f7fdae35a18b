// y = x·Wᵀ (+ b) and row lookups on a PackedMatrix: inputs are copied into the arena's scratch in
// chunks of rows that fit, the kernel runs (matrix–vector for one row, blocked matrix–matrix for
// more; packedMatvecRows: matrix–vector for every row, for batched decode), outputs are copied out.
// Rows are independent and the kernels split only output columns across threads, so the result does
// not depend on the chunking or the thread count.
import { TfvlmError } from '../errors.ts';
import { paddedColumns } from '../kernels/index.ts';
import { matvecInputBytes } from '../kernels/module.ts';
import type { PackedMatrix } from './weight-store.ts';

const ALIGN = 64;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/**
 * The shared frame of both products: checks the shapes, then for each chunk of rows that fits the
 * scratch (`bytesPerRow` each, plus `slackBytes`) copies the chunk's x in at the scratch and calls
 * `run(n, xOffset, yOffset)`, which runs the kernel and returns the chunk's n rows of y (row stride
 * `yStride` ≥ N); the first N values of each row are copied to out.
 */
function inChunks(
  m: PackedMatrix, x: Float32Array, rows: number, out: Float32Array<ArrayBufferLike>,
  layout: { bytesPerRow: number; slackBytes: number; yStride: number },
  run: (n: number, xOffset: number, yOffset: number) => Float32Array,
): Float32Array<ArrayBufferLike> {
  const K = m.cols;
  const N = m.rows;
  if (x.length !== rows * K) throw new TfvlmError(`packed linear: input has ${x.length} values, expected ${rows}×${K}`);
  if (out.length !== rows * N) throw new Error(`internal: packed linear output of ${out.length} values for ${rows}×${N}`);
  const chunk = Math.floor((m.scratch.bytes - layout.slackBytes) / layout.bytesPerRow);
  if (chunk < 1) throw new TfvlmError(`packed linear: a row of ${K} inputs and ${N} outputs does not fit the kernel scratch`);
  const xOffset = m.scratch.offset;
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    m.arena.f32(xOffset, n * K).set(x.subarray(r0 * K, (r0 + n) * K));
    const y = run(n, xOffset, xOffset + align(n * K * 4));
    if (layout.yStride === N) {
      out.set(y, r0 * N);
    } else {
      for (let r = 0; r < n; r++) out.set(y.subarray(r * layout.yStride, r * layout.yStride + N), (r0 + r) * N);
    }
  }
  return out;
}

/** x [rows, cols] (row-major) → [rows, m.rows], into `out` when given (e.g. a view of a tensor's memory). */
export function packedMatmul(m: PackedMatrix, x: Float32Array, rows: number, out: Float32Array<ArrayBufferLike> = new Float32Array(rows * m.rows)): Float32Array<ArrayBufferLike> {
  const [K, N, f, arena] = [m.cols, m.rows, m.format, m.arena];
  return inChunks(m, x, rows, out, { bytesPerRow: align(K * 4) + align(N * 4), slackBytes: 0, yStride: N }, (n, xOffset, yOffset) => {
    if (f.kind === 'quantized') {
      if (n === 1) arena.matvecQuantized(f.bits, f.groupSize, m.offset, xOffset, yOffset, N, K, m.biasOffset);
      else arena.matmulQuantized(f.bits, f.groupSize, m.offset, xOffset, yOffset, n, N, K, m.biasOffset);
    } else if (n === 1) {
      arena.matvec(f.dtype, m.offset, xOffset, yOffset, N, K, m.biasOffset);
    } else {
      arena.matmul(f.dtype, m.offset, xOffset, yOffset, n, N, K, m.biasOffset);
    }
    return arena.f32(yOffset, n * N);
  });
}

/**
 * x [rows, cols] (row-major) → [rows, m.rows] like packedMatmul, but each row computed exactly as
 * the one-row kernel computes it (matvec / matvecQuantized: what packedMatmul gives a single row),
 * bit for bit, whatever else is in x: for continuous batching, where a sequence's greedy tokens
 * must not depend on the rest of the batch. The rows of a chunk go through matvecRows /
 * matvecRowsQuantized, which pass over the weights once for the whole chunk (chunks as
 * packedMatmul's: as many rows as fit the scratch, with their padded outputs and, quantized,
 * their prepared inputs). packedMatmul's blocked matmul is faster per row (prefill) but sums in
 * another order.
 */
export function packedMatvecRows(m: PackedMatrix, x: Float32Array, rows: number, out: Float32Array<ArrayBufferLike> = new Float32Array(rows * m.rows)): Float32Array<ArrayBufferLike> {
  const [K, N, f, arena] = [m.cols, m.rows, m.format, m.arena];
  const padded = paddedColumns(N);
  const input = f.kind === 'quantized' ? matvecInputBytes(K, f.groupSize) : 0;
  // Three regions (x, y, prepared inputs), each aligned: at most 3·ALIGN beyond the rows' bytes.
  const layout = { bytesPerRow: 4 * K + 4 * padded + input, slackBytes: 3 * ALIGN, yStride: padded };
  return inChunks(m, x, rows, out, layout, (n, xOffset, yOffset) => {
    if (f.kind === 'quantized') {
      const xin = yOffset + align(n * padded * 4);
      arena.matvecRowsQuantized(f.bits, f.groupSize, m.offset, xOffset, yOffset, n, N, K, m.biasOffset, { xin });
    } else {
      arena.matvecRows(f.dtype, m.offset, xOffset, yOffset, n, N, K, m.biasOffset);
    }
    return arena.f32(yOffset, n * padded);
  });
}

/** Rows `ids` of the matrix, widened to float32: [ids.length, m.cols]. Ids must be in range. */
export function packedRows(m: PackedMatrix, ids: ArrayLike<number>): Float32Array {
  const K = m.cols;
  const out = new Float32Array(ids.length * K);
  const { arena } = m;
  for (let i = 0; i < ids.length; i++) {
    const f = m.format;
    if (f.kind === 'quantized') arena.gatherRowQuantized(f.bits, f.groupSize, m.offset, m.rows, K, ids[i]!, m.scratch.offset);
    else arena.gatherRow(f.dtype, m.offset, m.rows, K, ids[i]!, m.scratch.offset);
    out.set(arena.f32(m.scratch.offset, K), i * K);
  }
  return out;
}
