// Linear-layer kernels over weights kept in their checkpoint precision (f32, bf16, f16, or MLX's
// 4- and 8-bit affine quantization) in shared WebAssembly memories ("arenas"), run on the kernel
// thread pool. The kernels are linear.c (built into linear.wasm); the weight layouts are "panel-8"
// and, for quantized weights, "qpanel-8" (described there, and in packedBytes / quantizedBytes).
//
//   const arena = KernelArena.create(bytes);
//   arena.view(src, bytes).set(rowMajorBytes);          // W [N, K] as read from safetensors
//   arena.pack('bf16', src, w, N, K);                   // → panel-8 at w (packedBytes('bf16', N, K))
//   arena.f32(x, K).set(activations);
//   arena.matvec('bf16', w, x, y, N, K, bias);          // y: ceil(N/8)·8 floats
//   arena.matmul('bf16', w, x2, y2, M, N, K, bias);     // x2 [M, K], y2 [M, N]
//   arena.matvecRows('bf16', w, x2, y3, M, N, K, bias); // y3 [M, ceil(N/8)·8]: each row matvec's bits
//
//   // MLX quantized: codes uint32 [N, K·bits/32], scales and biases widened to f32 [N, K/G]
//   arena.packQuantized(4, 64, codes, scales, biases, q, N, K);   // quantizedBytes(4, 64, N, K)
//   arena.matvecQuantized(4, 64, q, x, y, N, K, bias);
//   arena.matmulQuantized(4, 64, q, x2, y2, M, N, K, bias);
//   arena.matvecRowsQuantized(4, 64, q, x2, y3, M, N, K, bias);
//
//   // Quantizing f32 rows the way MLX does (src/quant/fast-quantize.ts wraps this)
//   arena.quantizeRows(4, 64, src, N, K, codes, scales, biases, 'bf16');   // -1, or the first bad row
//
// Every offset is a byte offset into the arena and must be a multiple of 16. The kernels read and
// write the arena only: inputs are copied in, outputs read out (views share the memory).
import { defaultPool, type KernelPool } from './pool.ts';
import {
  MATMUL_SCRATCH_BYTES, MATVEC_INPUT_BYTES, MATVEC_INPUT_MAX_K, MAX_PAGES, PAGE, matvecInputBytes, type KernelExports,
} from './module.ts';

export type WeightDType = 'f32' | 'bf16' | 'f16';
/** Bits per code of a quantized weight (MLX's affine quantization). */
export type QuantBits = 4 | 8;
/** Consecutive k that share a scale and a bias. */
export type QuantGroupSize = 32 | 64 | 128;
export const QUANT_BITS: readonly QuantBits[] = [4, 8];
export const QUANT_GROUP_SIZES: readonly QuantGroupSize[] = [32, 64, 128];

const ELEMENT_BYTES: Record<WeightDType, number> = { f32: 4, bf16: 2, f16: 2 };
/** What every offset must be a multiple of. */
export const ALIGN = 16;

/** Bytes of a packed [N, K]: ceil(N/8) panels of K × 8 elements (rows ≥ N are zero). */
export function packedBytes(dtype: WeightDType, N: number, K: number): number {
  return Math.ceil(N / 8) * 8 * K * ELEMENT_BYTES[dtype];
}

/**
 * Bytes of a quantized [N, K] in qpanel-8: ceil(N/8) panels of K/G group blocks, each 8 f32 scales,
 * 8 f32 biases and 8·G codes (64 + G·bits bytes): bits/8 + 8/G bytes per weight. Throws a
 * RangeError unless bits is 4 or 8, groupSize 32, 64 or 128, and K a multiple of groupSize.
 */
export function quantizedBytes(bits: QuantBits, groupSize: QuantGroupSize, N: number, K: number): number {
  checkQuantized('quantizedBytes', bits, groupSize, N, K);
  return Math.ceil(N / 8) * (K / groupSize) * (64 + groupSize * bits);
}

/** Bytes of MLX's row-major codes of an [N, K] (uint32 words, K·bits/32 per row). */
export function quantizedCodeBytes(bits: QuantBits, N: number, K: number): number {
  return (N * K * bits) / 8;
}

function checkQuantized(what: string, bits: number, G: number, N: number, K: number): void {
  if (!QUANT_BITS.includes(bits as QuantBits)) throw new RangeError(`${what}: ${bits}-bit codes are not supported (4 or 8)`);
  if (!QUANT_GROUP_SIZES.includes(G as QuantGroupSize)) throw new RangeError(`${what}: group size ${G} is not supported (32, 64 or 128)`);
  shape(N, K);
  if (K % G !== 0) throw new RangeError(`${what}: [N, K] = [${N}, ${K}]: K must be a multiple of the group size ${G}`);
}

function shape(N: number, K: number): void {
  if (!Number.isSafeInteger(N) || N < 1 || !Number.isSafeInteger(K) || K < 1) {
    throw new RangeError(`[N, K] = [${N}, ${K}]: both must be positive integers`);
  }
}

/** The floats matvec writes to y and reads from bias: N rounded up to a whole panel. */
export function paddedColumns(N: number): number {
  return Math.ceil(N / 8) * 8;
}

// Below these sizes a call runs on the calling thread alone: with the workers spinning a 2-thread
// bf16 matvec broke even with one thread at ~100 KB of weights here (3 µs) and halved the time from
// 256 KB on; a sleeping worker takes 50–350 µs to wake, which chunk claiming hides.
/** matvec and pack: bytes of weights per thread. */
const MIN_BYTES_PER_THREAD = 64 * 1024;
/** matmul: multiply-adds per thread (~16 µs of work at 16 G multiply-adds/s). */
const MIN_MACS_PER_THREAD = 256 * 1024;

/** quantizeRows: values per thread (~16 µs at ~1 ns per value). */
const MIN_QUANTIZE_PER_THREAD = 16 * 1024;
/** matvecRowsQuantized's prepared inputs: values per thread (~20 µs at ~2.5 ns per value). */
const MIN_INPUT_PER_THREAD = 8 * 1024;
/** quantize_q<b>'s `check` argument: which values it accepts. */
const QUANT_CHECK: Record<WeightDType, number> = { f32: 0, bf16: 1, f16: 2 };

/** matmul scratch per thread (16 KB, the widened 16-bit panel block), side by side past `bytes`. */
const SCRATCH_STRIDE = MATMUL_SCRATCH_BYTES;

export class KernelArena {
  /** Usable bytes: offsets run over [0, bytes). */
  readonly bytes: number;
  private memory: WebAssembly.Memory | undefined;
  private buffer: SharedArrayBuffer;
  private readonly pool: KernelPool;
  private readonly id: number;
  /** matmul scratch of thread t at scratchBase + t·SCRATCH_STRIDE (past `bytes`). */
  private readonly scratchBase: number;
  /** The quantized matvec's prepared x (MATVEC_INPUT_BYTES, after the threads' scratch). */
  private readonly matvecInput: number;

  /**
   * Largest `bytes` an arena on `pool` can have: 4 GiB less its threads' matmul scratch and the
   * quantized matvec's input (MATVEC_INPUT_BYTES, 544 KiB).
   */
  static maxBytes(pool: KernelPool = defaultPool()): number {
    return MAX_PAGES * PAGE - scratchPages(pool.threads) * PAGE;
  }

  /**
   * A new arena of at least `bytes` bytes, registered with `pool` (default: the process's pool).
   * Throws a RangeError above maxBytes() (4 GiB less the pool threads' matmul scratch).
   */
  static create(bytes: number, options: { pool?: KernelPool } = {}): KernelArena {
    const pool = options.pool ?? defaultPool();
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`KernelArena.create(${bytes}): bytes must be a non-negative integer`);
    const max = KernelArena.maxBytes(pool);
    if (bytes > max) {
      throw new RangeError(
        `KernelArena.create(${bytes}): an arena holds at most ${max} bytes (4 GiB, the wasm32 limit, ` +
          `less ${(MAX_PAGES * PAGE - max) / 1024} KiB of kernel scratch); split the weights over several arenas`,
      );
    }
    return new KernelArena(bytes, pool);
  }

  private constructor(bytes: number, pool: KernelPool) {
    const userPages = Math.ceil(bytes / PAGE);
    const pages = userPages + scratchPages(pool.threads);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    this.bytes = bytes;
    this.scratchBase = userPages * PAGE;
    this.matvecInput = this.scratchBase + pool.threads * SCRATCH_STRIDE;
    this.pool = pool;
    this.id = pool.register(this.memory);
  }

  /** Bytes [byteOffset, byteOffset + length) of the arena (a view: writes go to the arena). */
  view(byteOffset: number, length: number): Uint8Array {
    this.check(byteOffset, length, 'view', 1);
    return new Uint8Array(this.buffer, byteOffset, length);
  }

  /** `length` floats at byteOffset (a view). */
  f32(byteOffset: number, length: number): Float32Array {
    this.check(byteOffset, 4 * length, 'f32', 4);
    return new Float32Array(this.buffer, byteOffset, length);
  }

  /**
   * Row-major W [N, K] at srcOffset (as read from safetensors) → panel-8 at dstOffset
   * (packedBytes(dtype, N, K) bytes). Exact copy; the regions must not overlap. All threads.
   */
  pack(dtype: WeightDType, srcOffset: number, dstOffset: number, N: number, K: number): void {
    shape(N, K);
    this.check(srcOffset, N * K * ELEMENT_BYTES[dtype], 'pack source');
    this.check(dstOffset, packedBytes(dtype, N, K), 'pack destination');
    disjoint('pack', [dstOffset, packedBytes(dtype, N, K), 'destination'], [srcOffset, N * K * ELEMENT_BYTES[dtype], 'source']);
    const panels = Math.ceil(N / 8);
    this.pool.call({
      arena: this.id, fn: `pack_${dtype}`, args: [srcOffset, dstOffset, N, K, 0, 0], beginArg: 4, endArg: 5,
      begin: 0, end: panels, threads: this.threadsFor(packedBytes(dtype, N, K), MIN_BYTES_PER_THREAD),
    });
  }

  /**
   * y[n] = Σ_k x[k]·W[n, k] (+ bias[n]) for a packed W at w. x: K floats; y: paddedColumns(N)
   * floats (the padding gets bias's padding, or 0); bias: paddedColumns(N) floats when given.
   * y must not overlap the inputs. All threads.
   */
  matvec(dtype: WeightDType, w: number, x: number, y: number, N: number, K: number, bias?: number): void {
    shape(N, K);
    const padded = paddedColumns(N);
    this.check(w, packedBytes(dtype, N, K), 'matvec weights');
    this.check(x, 4 * K, 'matvec x');
    this.check(y, 4 * padded, 'matvec y');
    if (bias !== undefined) this.check(bias, 4 * padded, 'matvec bias');
    disjoint('matvec', [y, 4 * padded, 'y'], [w, packedBytes(dtype, N, K), 'weights'], [x, 4 * K, 'x'], [bias ?? 0, bias === undefined ? 0 : 4 * padded, 'bias']);
    this.pool.call({
      arena: this.id, fn: `matvec_${dtype}`, args: [w, x, y, K, 0, 0, bias ?? 0], beginArg: 4, endArg: 5,
      begin: 0, end: padded / 8, threads: this.threadsFor(packedBytes(dtype, N, K), MIN_BYTES_PER_THREAD),
    });
  }

  /**
   * M rows of matvec over one W (continuous batching: M sequences decoding together), each row
   * bit for bit what matvec gives for that row alone, whatever M, the strides or the threads, so
   * a sequence's tokens do not depend on the rest of the batch (matmul sums in another order).
   * Row r: y[r·ldy + n] = Σ_k x[r·ldx + k]·W[n, k] (+ bias[n]). x: M rows of K floats at row
   * stride ldx (floats, default K, ≥ K); y: M rows of paddedColumns(N) floats (the padding gets
   * bias's padding, or 0) at row stride ldy (default paddedColumns(N), ≥ that); bias as matvec's.
   * W is read from memory once for all rows (linear.c, matvec_rows_<dt>: the rows run inside the
   * loop over panel pairs, so a pair is in cache for every row after the first); each row still
   * costs an in-cache matvec. y's span must not overlap the inputs. All threads.
   */
  matvecRows(dtype: WeightDType, w: number, x: number, y: number, M: number, N: number, K: number, bias?: number,
    strides: RowStrides = {}): void {
    shape(N, K);
    const padded = paddedColumns(N);
    const { ldx, ldy, xBytes, yBytes } = rowSpans('matvecRows', M, K, padded, strides);
    this.check(w, packedBytes(dtype, N, K), 'matvecRows weights');
    this.check(x, xBytes, 'matvecRows x');
    this.check(y, yBytes, 'matvecRows y');
    if (bias !== undefined) this.check(bias, 4 * padded, 'matvecRows bias');
    disjoint('matvecRows', [y, yBytes, 'y'], [w, packedBytes(dtype, N, K), 'weights'], [x, xBytes, 'x'],
      [bias ?? 0, bias === undefined ? 0 : 4 * padded, 'bias']);
    this.pool.call({
      arena: this.id, fn: `matvec_rows_${dtype}`, args: [w, x, y, M, K, ldx, ldy, 0, 0, bias ?? 0], beginArg: 7, endArg: 8,
      begin: 0, end: padded / 8, threads: this.threadsFor(M * packedBytes(dtype, N, K), MIN_BYTES_PER_THREAD),
    });
  }

  /**
   * Y [M, N] = X [M, K] · Wᵀ (+ bias) for a packed W at w. Writes the M·N floats of y only (row
   * stride N); bias is read as paddedColumns(N) floats (the padding is not used). y must not
   * overlap the inputs. All threads.
   * M = 1 with N a multiple of 8 runs matvec (for M = 1 and a ragged N, prefer matvec into a
   * padded y: the register tile computes 4 rows).
   */
  matmul(dtype: WeightDType, w: number, x: number, y: number, M: number, N: number, K: number, bias?: number): void {
    shape(N, K);
    if (!Number.isSafeInteger(M) || M < 1) throw new RangeError(`matmul: M = ${M} must be a positive integer`);
    this.check(w, packedBytes(dtype, N, K), 'matmul weights');
    this.check(x, 4 * M * K, 'matmul x');
    this.check(y, 4 * M * N, 'matmul y');
    if (bias !== undefined) this.check(bias, 4 * paddedColumns(N), 'matmul bias');
    disjoint('matmul', [y, 4 * M * N, 'y'], [w, packedBytes(dtype, N, K), 'weights'], [x, 4 * M * K, 'x'],
      [bias ?? 0, bias === undefined ? 0 : 4 * paddedColumns(N), 'bias']);
    if (M === 1 && N % 8 === 0) {
      // One row: matvec streams the weights 2.5× faster than a 4-row tile running one real row, and
      // with whole panels it writes exactly y's N floats.
      this.matvec(dtype, w, x, y, N, K, bias);
      return;
    }
    this.pool.call({
      arena: this.id, fn: `matmul_${dtype}`, args: [w, x, y, M, N, K, N, 0, 0, bias ?? 0, 0],
      beginArg: 7, endArg: 8, begin: 0, end: paddedColumns(N) / 8,
      threads: this.threadsFor(M * paddedColumns(N) * K, MIN_MACS_PER_THREAD),
      scratchArg: 10, scratchBase: this.scratchBase, scratchStride: SCRATCH_STRIDE,
    });
  }

  /** out[k] = W[row, k] as f32 (K floats at out) for a packed W at w: an embedding lookup. */
  gatherRow(dtype: WeightDType, w: number, N: number, K: number, row: number, out: number): void {
    shape(N, K);
    if (!Number.isInteger(row) || row < 0 || row >= N) throw new RangeError(`gatherRow: row ${row} is not in [0, ${N})`);
    this.check(w, packedBytes(dtype, N, K), 'gatherRow weights');
    this.check(out, 4 * K, 'gatherRow out');
    this.live()[`gather_row_${dtype}`](w, K, row, out);
  }

  /**
   * MLX's quantized W [N, K] → qpanel-8 at dst (quantizedBytes(bits, groupSize, N, K) bytes):
   * codes at `codes` as in the checkpoint (uint32 [N, K·bits/32], a little-endian bit stream per
   * row: quantizedCodeBytes(bits, N, K) bytes), scales and biases at `scales` / `biases` as f32
   * [N, K/groupSize] (widen bf16/f16 ones first: exact). Exact copy; dst must overlap none of
   * them. N is anything; K must be a multiple of groupSize. All threads.
   * A matrix can be packed a run of whole panels at a time (rows 8p0.. of the sources into
   * dst + p0·quantizedBytes(bits, groupSize, 8, K)), as the loader packs in place.
   */
  packQuantized(
    bits: QuantBits, groupSize: QuantGroupSize, codes: number, scales: number, biases: number, dst: number, N: number, K: number,
  ): void {
    checkQuantized('packQuantized', bits, groupSize, N, K);
    const bytes = quantizedBytes(bits, groupSize, N, K);
    const headers = (N * K) / groupSize * 4;
    this.check(codes, quantizedCodeBytes(bits, N, K), 'packQuantized codes');
    this.check(scales, headers, 'packQuantized scales');
    this.check(biases, headers, 'packQuantized biases');
    this.check(dst, bytes, 'packQuantized destination');
    disjoint('packQuantized', [dst, bytes, 'destination'], [codes, quantizedCodeBytes(bits, N, K), 'codes'],
      [scales, headers, 'scales'], [biases, headers, 'biases']);
    this.pool.call({
      arena: this.id, fn: `pack_q${bits}`, args: [codes, scales, biases, dst, N, K, groupSize, 0, 0], beginArg: 7, endArg: 8,
      begin: 0, end: Math.ceil(N / 8), threads: this.threadsFor(bytes, MIN_BYTES_PER_THREAD),
    });
  }

  /**
   * matvec for a quantized W at w (packQuantized): y[n] = Σ_k x[k]·(s·q + b)[n, k] (+ bias[n]),
   * computed per group as s·Σ x·q + b·Σ x, Σ x·q in integers on x held as 30-bit fixed point per
   * group (linear.c, matvec_input_q<b>: within 2^-29 of each group's largest |x|). Shapes and
   * padding as matvec; K ≤ 131072. All threads.
   */
  matvecQuantized(
    bits: QuantBits, groupSize: QuantGroupSize, w: number, x: number, y: number, N: number, K: number, bias?: number,
  ): void {
    checkQuantized('matvecQuantized', bits, groupSize, N, K);
    if (K > MATVEC_INPUT_MAX_K) {
      throw new RangeError(`matvecQuantized: [N, K] = [${N}, ${K}]: K is more than the ${MATVEC_INPUT_MAX_K} it takes (matmulQuantized takes any)`);
    }
    const padded = paddedColumns(N);
    const bytes = quantizedBytes(bits, groupSize, N, K);
    this.check(w, bytes, 'matvecQuantized weights');
    this.check(x, 4 * K, 'matvecQuantized x');
    this.check(y, 4 * padded, 'matvecQuantized y');
    if (bias !== undefined) this.check(bias, 4 * padded, 'matvecQuantized bias');
    disjoint('matvecQuantized', [y, 4 * padded, 'y'], [w, bytes, 'weights'], [x, 4 * K, 'x'],
      [bias ?? 0, bias === undefined ? 0 : 4 * padded, 'bias']);
    this.live()[`matvec_input_q${bits}`](x, K, groupSize, this.matvecInput);
    this.pool.call({
      arena: this.id, fn: `matvec_q${bits}`, args: [w, this.matvecInput, y, K, 0, 0, bias ?? 0, groupSize], beginArg: 4, endArg: 5,
      // Threads by weights, not bytes (MIN_BYTES_PER_THREAD's measure, bf16).
      begin: 0, end: padded / 8, threads: this.threadsFor(2 * N * K, MIN_BYTES_PER_THREAD),
    });
  }

  /**
   * matvecRows for a quantized W at w (packQuantized): M rows of matvecQuantized, each row bit for
   * bit what matvecQuantized gives for that row alone (linear.c, matvec_rows_q<b>). Shapes,
   * strides and padding as matvecRows. Each row is first prepared as matvecQuantized prepares its
   * x (matvec_input_rows_q<b>, rows split over threads): matvecInputBytes(K, groupSize) bytes a
   * row, row r at xin + r·matvecInputBytes(K, groupSize). `xin`: where (M of them; it must
   * overlap nothing else); by default the arena's own region for it (MATVEC_INPUT_BYTES, 544 KiB:
   * 65 rows at K = 2048, 16 at K = 8192 with G = 32 or 64), the rows then taken that many at a
   * time, each batch a pass over W. All threads.
   */
  matvecRowsQuantized(
    bits: QuantBits, groupSize: QuantGroupSize, w: number, x: number, y: number, M: number, N: number, K: number, bias?: number,
    options: RowStrides & { xin?: number } = {},
  ): void {
    checkQuantized('matvecRowsQuantized', bits, groupSize, N, K);
    const padded = paddedColumns(N);
    const { ldx, ldy, xBytes, yBytes } = rowSpans('matvecRowsQuantized', M, K, padded, options);
    const bytes = quantizedBytes(bits, groupSize, N, K);
    const rowInput = matvecInputBytes(K, groupSize);
    this.check(w, bytes, 'matvecRowsQuantized weights');
    this.check(x, xBytes, 'matvecRowsQuantized x');
    this.check(y, yBytes, 'matvecRowsQuantized y');
    if (bias !== undefined) this.check(bias, 4 * padded, 'matvecRowsQuantized bias');
    const biasRegion: [number, number, string] = [bias ?? 0, bias === undefined ? 0 : 4 * padded, 'bias'];
    disjoint('matvecRowsQuantized', [y, yBytes, 'y'], [w, bytes, 'weights'], [x, xBytes, 'x'], biasRegion);
    let xin = this.matvecInput;
    let perPass = Math.floor(MATVEC_INPUT_BYTES / rowInput);
    if (options.xin !== undefined) {
      xin = options.xin;
      perPass = M;
      this.check(xin, M * rowInput, 'matvecRowsQuantized xin');
      disjoint('matvecRowsQuantized', [xin, M * rowInput, 'xin'], [w, bytes, 'weights'], [x, xBytes, 'x'], [y, yBytes, 'y'], biasRegion);
    } else if (perPass < 1) {
      throw new RangeError(`matvecRowsQuantized: [N, K] = [${N}, ${K}]: a row's prepared input (${rowInput} bytes) does not fit the arena's ${MATVEC_INPUT_BYTES}; pass options.xin`);
    }
    for (let r0 = 0; r0 < M; r0 += perPass) {
      const n = Math.min(perPass, M - r0);
      this.pool.call({
        arena: this.id, fn: `matvec_input_rows_q${bits}`, args: [x + 4 * r0 * ldx, ldx, K, groupSize, xin, 0, 0], beginArg: 5, endArg: 6,
        begin: 0, end: n, threads: this.threadsFor(n * K, MIN_INPUT_PER_THREAD),
      });
      this.pool.call({
        arena: this.id, fn: `matvec_rows_q${bits}`, args: [w, xin, y + 4 * r0 * ldy, n, K, ldy, 0, 0, bias ?? 0, groupSize],
        // Threads by weights, not bytes, as matvecQuantized.
        beginArg: 6, endArg: 7, begin: 0, end: padded / 8, threads: this.threadsFor(n * 2 * N * K, MIN_BYTES_PER_THREAD),
      });
    }
  }

  /**
   * matmul for a quantized W at w (packQuantized): Y [M, N] = X [M, K] · Wᵀ (+ bias), each panel
   * block dequantized once into the thread's scratch (the values gatherRowQuantized gives) and
   * run through the f32 kernel: the result is matmul('f32') on those values, bit for bit. Shapes
   * as matmul; M = 1 with N a multiple of 8 runs matvecQuantized. All threads.
   */
  matmulQuantized(
    bits: QuantBits, groupSize: QuantGroupSize, w: number, x: number, y: number, M: number, N: number, K: number, bias?: number,
  ): void {
    checkQuantized('matmulQuantized', bits, groupSize, N, K);
    if (!Number.isSafeInteger(M) || M < 1) throw new RangeError(`matmulQuantized: M = ${M} must be a positive integer`);
    const bytes = quantizedBytes(bits, groupSize, N, K);
    this.check(w, bytes, 'matmulQuantized weights');
    this.check(x, 4 * M * K, 'matmulQuantized x');
    this.check(y, 4 * M * N, 'matmulQuantized y');
    if (bias !== undefined) this.check(bias, 4 * paddedColumns(N), 'matmulQuantized bias');
    disjoint('matmulQuantized', [y, 4 * M * N, 'y'], [w, bytes, 'weights'], [x, 4 * M * K, 'x'],
      [bias ?? 0, bias === undefined ? 0 : 4 * paddedColumns(N), 'bias']);
    if (M === 1 && N % 8 === 0 && K <= MATVEC_INPUT_MAX_K) {
      this.matvecQuantized(bits, groupSize, w, x, y, N, K, bias);
      return;
    }
    this.pool.call({
      arena: this.id, fn: `matmul_q${bits}`, args: [w, x, y, M, N, K, N, 0, 0, bias ?? 0, 0, groupSize],
      beginArg: 7, endArg: 8, begin: 0, end: paddedColumns(N) / 8,
      threads: this.threadsFor(M * paddedColumns(N) * K, MIN_MACS_PER_THREAD),
      scratchArg: 10, scratchBase: this.scratchBase, scratchStride: SCRATCH_STRIDE,
    });
  }

  /**
   * out[k] = s·q + b of row `row` (K floats at out) for a quantized W at w: the product rounded to
   * f32, then the sum (dequantizeReference's values; exact products when s came from bf16/f16).
   */
  gatherRowQuantized(bits: QuantBits, groupSize: QuantGroupSize, w: number, N: number, K: number, row: number, out: number): void {
    checkQuantized('gatherRowQuantized', bits, groupSize, N, K);
    if (!Number.isInteger(row) || row < 0 || row >= N) throw new RangeError(`gatherRowQuantized: row ${row} is not in [0, ${N})`);
    this.check(w, quantizedBytes(bits, groupSize, N, K), 'gatherRowQuantized weights');
    this.check(out, 4 * K, 'gatherRowQuantized out');
    this.live()[`gather_row_q${bits}`](w, K, groupSize, row, out);
  }

  /**
   * MLX's affine quantizer as its GPU kernels run it, bit for bit (quantizeRows with mlxBackend
   * 'gpu' in src/quant/mlx-affine.ts): `rows` rows of `cols` f32 values at src → codes at `codes`
   * in MLX's layout (uint32 [rows, cols·bits/32], quantizedCodeBytes(bits, rows, cols) bytes),
   * f32 scales and biases [rows, cols/groupSize] at `scales` / `biases`, NOT rounded to the
   * weights' dtype. `values`: the dtype the values must be values of ('bf16': low 16 bits zero;
   * 'f16': exactly representable in f16; 'f32': any finite value).
   * Returns -1, or the first row (0-based, in this call) that holds a NaN, an infinity or a value
   * that is not a `values` value, or a group whose max − min overflows f32: the outputs are then
   * unspecified (rows past it may be undone) and the caller reports the error. The outputs must
   * overlap neither src nor each other. All threads.
   */
  quantizeRows(
    bits: QuantBits, groupSize: QuantGroupSize, src: number, rows: number, cols: number, codes: number, scales: number, biases: number,
    values: WeightDType = 'f32',
  ): number {
    checkQuantized('quantizeRows', bits, groupSize, rows, cols);
    if (!Object.hasOwn(QUANT_CHECK, values)) throw new RangeError(`quantizeRows: values must be 'f32', 'bf16' or 'f16', got ${values}`);
    const n = rows * cols;
    const codeBytes = quantizedCodeBytes(bits, rows, cols);
    const headers = (n / groupSize) * 4;
    this.check(src, 4 * n, 'quantizeRows source');
    this.check(codes, codeBytes, 'quantizeRows codes');
    this.check(scales, headers, 'quantizeRows scales');
    this.check(biases, headers, 'quantizeRows biases');
    disjoint('quantizeRows', [codes, codeBytes, 'codes'], [src, 4 * n, 'source'], [scales, headers, 'scales'], [biases, headers, 'biases']);
    disjoint('quantizeRows', [scales, headers, 'scales'], [src, 4 * n, 'source'], [biases, headers, 'biases']);
    disjoint('quantizeRows', [biases, headers, 'biases'], [src, 4 * n, 'source']);
    // Each thread keeps the first bad row it meets in the first word of its matmul scratch.
    const status = new Uint32Array(this.buffer, this.scratchBase, (this.pool.threads * SCRATCH_STRIDE) / 4);
    for (let t = 0; t < this.pool.threads; t++) status[(t * SCRATCH_STRIDE) / 4] = 0xffffffff;
    this.pool.call({
      arena: this.id, fn: `quantize_q${bits}`, args: [src, codes, scales, biases, cols, groupSize, 0, 0, QUANT_CHECK[values], 0],
      beginArg: 6, endArg: 7, begin: 0, end: rows, threads: this.threadsFor(n, MIN_QUANTIZE_PER_THREAD),
      scratchArg: 9, scratchBase: this.scratchBase, scratchStride: SCRATCH_STRIDE,
    });
    let bad = 0xffffffff;
    for (let t = 0; t < this.pool.threads; t++) bad = Math.min(bad, status[(t * SCRATCH_STRIDE) / 4]!);
    return bad === 0xffffffff ? -1 : bad;
  }

  /** Whether none of the `count` f16 values at offset is inf or NaN (the kernels map those to finite values). */
  allFiniteF16(offset: number, count: number): boolean {
    this.check(offset, 2 * count, 'allFiniteF16');
    return this.live().f16_all_finite(offset, count) === 1;
  }

  /**
   * Unregisters the arena from the pool and drops its memory. The bytes are returned to the system
   * once no view of them is left (views keep the memory alive) and the garbage collector has run.
   */
  dispose(): void {
    if (!this.memory) return;
    this.pool.unregister(this.id);
    this.memory = undefined;
    this.buffer = new SharedArrayBuffer(0);
  }

  get disposed(): boolean {
    return this.memory === undefined;
  }

  private live(): KernelExports {
    if (!this.memory) throw new Error('this KernelArena has been disposed');
    return this.pool.exports(this.id);
  }

  private threadsFor(work: number, minPerThread: number): number {
    return Math.max(1, Math.min(this.pool.threads, Math.floor(work / minPerThread)));
  }


  /** [offset, offset + length) lies in the arena and offset is a multiple of `align`. */
  private check(offset: number, length: number, what: string, align = ALIGN): void {
    this.live();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) {
      throw new RangeError(`${what}: offset ${offset} must be a non-negative multiple of ${align}`);
    }
    if (!(length >= 0) || offset + length > this.bytes) {
      throw new RangeError(`${what}: bytes [${offset}, ${offset + length}) do not fit in the arena's ${this.bytes}`);
    }
  }
}

/** Row strides of matvecRows / matvecRowsQuantized, in floats. */
export interface RowStrides {
  /** x's row stride (default K, at least K). */
  ldx?: number;
  /** y's row stride (default paddedColumns(N), at least that: each row gets a padded y). */
  ldy?: number;
}

/** Checks M and the strides; the bytes x and y span. */
function rowSpans(what: string, M: number, K: number, padded: number, strides: RowStrides) {
  if (!Number.isSafeInteger(M) || M < 1) throw new RangeError(`${what}: M = ${M} must be a positive integer`);
  const { ldx = K, ldy = padded } = strides;
  if (!Number.isSafeInteger(ldx) || ldx < K) throw new RangeError(`${what}: ldx = ${ldx} must be an integer at least ${K} (K)`);
  if (!Number.isSafeInteger(ldy) || ldy < padded) {
    throw new RangeError(`${what}: ldy = ${ldy} must be an integer at least ${padded} (N rounded up to a whole panel)`);
  }
  return { ldx, ldy, xBytes: 4 * ((M - 1) * ldx + K), yBytes: 4 * ((M - 1) * ldy + padded) };
}

/** Throws unless the output region [offset, offset + bytes) overlaps none of the input regions. */
function disjoint(what: string, out: [number, number, string], ...inputs: [number, number, string][]): void {
  const [o, ob, oname] = out;
  for (const [i, ib, iname] of inputs) {
    if (ib > 0 && o < i + ib && i < o + ob) throw new RangeError(`${what}: ${oname} [${o}, ${o + ob}) overlaps ${iname} [${i}, ${i + ib})`);
  }
}

/** Pages of kernel scratch past the arena's bytes: a matmul block per thread, then the quantized matvec's input. */
function scratchPages(threads: number): number {
  return Math.ceil((threads * SCRATCH_STRIDE + MATVEC_INPUT_BYTES) / PAGE);
}

/** The kernel pool's threads (the caller's included), and why fewer than asked for, if so. */
export function kernelThreads(): { threads: number; reason?: string } {
  const pool = defaultPool();
  return pool.reason ? { threads: pool.threads, reason: pool.reason } : { threads: pool.threads };
}

export { KernelPool } from './pool.ts';
