// The compiled kernel module (linear.wasm, built from linear.c by scripts/build-kernels.mjs): compiled
// once per process, instantiated once per arena memory on every pool thread. The compiled code is
// shared by every instance and every worker it is posted to.
import { compileKernelModule } from './module-bytes.ts';

/** The exports of linear.wasm; every pointer is a byte offset in the instance's memory. */
export interface KernelExports {
  f16_all_finite(src: number, count: number): number;
  pack_f32(src: number, dst: number, N: number, K: number, pb: number, pe: number): void;
  pack_bf16(src: number, dst: number, N: number, K: number, pb: number, pe: number): void;
  pack_f16(src: number, dst: number, N: number, K: number, pb: number, pe: number): void;
  gather_row_f32(w: number, K: number, n: number, out: number): void;
  gather_row_bf16(w: number, K: number, n: number, out: number): void;
  gather_row_f16(w: number, K: number, n: number, out: number): void;
  matvec_f32(w: number, x: number, y: number, K: number, pb: number, pe: number, bias: number): void;
  matvec_bf16(w: number, x: number, y: number, K: number, pb: number, pe: number, bias: number): void;
  matvec_f16(w: number, x: number, y: number, K: number, pb: number, pe: number, bias: number): void;
  matmul_f32(w: number, x: number, y: number, M: number, N: number, K: number, ldy: number, pb: number, pe: number, bias: number, scratch: number): void;
  matmul_bf16(w: number, x: number, y: number, M: number, N: number, K: number, ldy: number, pb: number, pe: number, bias: number, scratch: number): void;
  matmul_f16(w: number, x: number, y: number, M: number, N: number, K: number, ldy: number, pb: number, pe: number, bias: number, scratch: number): void;
  pack_q8(codes: number, scales: number, biases: number, dst: number, N: number, K: number, G: number, pb: number, pe: number): void;
  pack_q4(codes: number, scales: number, biases: number, dst: number, N: number, K: number, G: number, pb: number, pe: number): void;
  gather_row_q8(w: number, K: number, G: number, n: number, out: number): void;
  gather_row_q4(w: number, K: number, G: number, n: number, out: number): void;
  matvec_input_q8(x: number, K: number, G: number, out: number): void;
  matvec_input_q4(x: number, K: number, G: number, out: number): void;
  matvec_q8(w: number, xin: number, y: number, K: number, pb: number, pe: number, bias: number, G: number): void;
  matvec_q4(w: number, xin: number, y: number, K: number, pb: number, pe: number, bias: number, G: number): void;
  matvec_rows_f32(w: number, x: number, y: number, M: number, K: number, ldx: number, ldy: number, pb: number, pe: number, bias: number): void;
  matvec_rows_bf16(w: number, x: number, y: number, M: number, K: number, ldx: number, ldy: number, pb: number, pe: number, bias: number): void;
  matvec_rows_f16(w: number, x: number, y: number, M: number, K: number, ldx: number, ldy: number, pb: number, pe: number, bias: number): void;
  matvec_input_rows_q8(x: number, ldx: number, K: number, G: number, out: number, rb: number, re: number): void;
  matvec_input_rows_q4(x: number, ldx: number, K: number, G: number, out: number, rb: number, re: number): void;
  matvec_rows_q8(w: number, xin: number, y: number, M: number, K: number, ldy: number, pb: number, pe: number, bias: number, G: number): void;
  matvec_rows_q4(w: number, xin: number, y: number, M: number, K: number, ldy: number, pb: number, pe: number, bias: number, G: number): void;
  matmul_q8(w: number, x: number, y: number, M: number, N: number, K: number, ldy: number, pb: number, pe: number, bias: number, scratch: number, G: number): void;
  matmul_q4(w: number, x: number, y: number, M: number, N: number, K: number, ldy: number, pb: number, pe: number, bias: number, scratch: number, G: number): void;
  rows_dot_f32(a: number, lda: number, rows: number, b: number, n: number, out: number): void;
  quantize_q8(src: number, codes: number, scales: number, biases: number, K: number, G: number, rb: number, re: number, check: number, status: number): void;
  quantize_q4(src: number, codes: number, scales: number, biases: number, K: number, G: number, rb: number, re: number, check: number, status: number): void;
}

/**
 * The kernels a pool call can run, by index (the pool passes indices between threads). The
 * worker (pool-worker.mjs) receives this list, so the order is defined here only.
 */
export const POOL_KERNELS = [
  'matvec_f32', 'matvec_bf16', 'matvec_f16',
  'matmul_f32', 'matmul_bf16', 'matmul_f16',
  'pack_f32', 'pack_bf16', 'pack_f16',
  'matvec_q8', 'matvec_q4', 'matmul_q8', 'matmul_q4', 'pack_q8', 'pack_q4',
  'quantize_q8', 'quantize_q4',
  'matvec_rows_f32', 'matvec_rows_bf16', 'matvec_rows_f16', 'matvec_rows_q8', 'matvec_rows_q4',
  'matvec_input_rows_q8', 'matvec_input_rows_q4',
] as const satisfies readonly (keyof KernelExports)[];
export type PoolKernel = (typeof POOL_KERNELS)[number];

/** matmul's scratch per thread: KC (linear.c) k steps × 8 f32. */
export const MATMUL_SCRATCH_BYTES = 512 * 8 * 4;
/** The longest x a quantized matvec takes: its matvec_input region holds K = 2^17. */
export const MATVEC_INPUT_MAX_K = 131072;
/**
 * Bytes of a quantized matvec's input (matvec_input_q<b> in linear.c: a sum and a scale per group
 * of x, then x as two i16 halves) for K values in groups of G; also the row stride of
 * matvec_input_rows_q<b>'s M prepared rows.
 */
export function matvecInputBytes(K: number, G: number): number {
  return 8 * (K / G) + 4 * K;
}
/** The region of one arena for it: K up to MATVEC_INPUT_MAX_K in groups of 32 or more. */
export const MATVEC_INPUT_BYTES = matvecInputBytes(MATVEC_INPUT_MAX_K, 32);

/** 64 KiB, the wasm page. */
export const PAGE = 65536;
/** 65536 pages: a wasm32 memory's limit, and the `--max-memory` linear.wasm declares. */
export const MAX_PAGES = 65536;

let compiled: WebAssembly.Module | undefined;

/** linear.wasm, compiled on first use (about 22 KB: synchronous compilation is fine). */
export function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    compiled = compileKernelModule();
    warmUp(compiled);
  }
  return compiled;
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
}

/**
 * V8 first runs wasm through its baseline compiler (Liftoff, 3–8× slower on these loops) and moves a
 * function to its optimising compiler (TurboFan) once it has run enough, compiling in the
 * background. Without this the first real matvecs and matmuls of a process would run slow. So every
 * kernel runs on a small problem, round after round, until rounds take half the time of the first
 * (the optimised code is in: the module's code is shared by all its instances, workers included)
 * or WARM_UP_LIMIT_MS have passed. warmUpReport says how long it took (a few ms).
 */
const WARM_UP_LIMIT_MS = 200;
export const warmUpReport = { rounds: 0, ms: 0 };

function warmUp(module: WebAssembly.Module): void {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
  const k = instantiate(module, memory);
  // [0, 64K) weights, [64K, 128K) row-major source, [128K, 256K) x, [256K, 512K) y, [512K, 1M)
  // scratch (matmul's, then the quantized matvec's input at 768K).
  const W = 0, SRC = 65536, X = 131072, Y = 262144, S = 524288, XIN = 786432;
  const N = 64, K = 128, G = 32; // 16 KB of f32 weights, 8 panels; 4 groups
  const round = () => {
    const t = performance.now();
    for (let i = 0; i < 20; i++) {
      k.matvec_f32(W, X, Y, K, 0, N / 8, X);
      k.matvec_bf16(W, X, Y, K, 0, N / 8, X);
      k.matvec_f16(W, X, Y, K, 0, N / 8, X);
      k.matvec_f16(W, X, Y, K, 0, 1, X); // the odd-panel path
      k.matvec_input_q8(X, K, G, XIN);
      k.matvec_q8(W, XIN, Y, K, 0, N / 8, X, G);
      k.matvec_input_q4(X, K, G, XIN);
      k.matvec_q4(W, XIN, Y, K, 0, N / 8, X, G);
      k.matvec_rows_f32(W, X, Y, 2, K, K, N, 0, N / 8, X);
      k.matvec_rows_bf16(W, X, Y, 2, K, K, N, 0, N / 8, X);
      k.matvec_rows_f16(W, X, Y, 2, K, K, N, 0, N / 8, X);
      k.matvec_rows_f16(W, X, Y, 2, K, K, N, 0, 1, X);
      k.matvec_input_rows_q8(X, K, K, G, XIN, 0, 2);
      k.matvec_rows_q8(W, XIN, Y, 2, K, N, 0, N / 8, X, G);
      k.matvec_input_rows_q4(X, K, K, G, XIN, 0, 2);
      k.matvec_rows_q4(W, XIN, Y, 2, K, N, 0, N / 8, X, G);
      k.rows_dot_f32(W, 60, 16, X, 60, Y);
    }
    for (let i = 0; i < 4; i++) {
      k.matmul_f32(W, X, Y, 8, N, K, N, 0, N / 8, X, S);
      k.matmul_bf16(W, X, Y, 8, N, K, N, 0, N / 8, X, S);
      k.matmul_f16(W, X, Y, 8, N, K, N, 0, N / 8, X, S);
      k.matmul_q8(W, X, Y, 8, N, K, N, 0, N / 8, X, S, G);
      k.matmul_q4(W, X, Y, 8, N, K, N, 0, N / 8, X, S, G);
      k.pack_f32(SRC, W, N, K, 0, N / 8);
      k.pack_bf16(SRC, W, N, K, 0, N / 8);
      k.pack_f16(SRC, W, N, K, 0, N / 8);
      k.pack_q8(SRC, SRC + 16384, SRC + 32768, W, N, K, G, 0, N / 8);
      k.pack_q4(SRC, SRC + 16384, SRC + 32768, W, N, K, G, 0, N / 8);
      k.f16_all_finite(SRC, 4096);
      // Two rows of 128 f32 from SRC (tier-up is per function: one check mode warms all three).
      k.quantize_q8(SRC, W, W + 16384, W + 20480, K, G, 0, 2, 0, S);
      k.quantize_q4(SRC, W, W + 16384, W + 20480, K, G, 0, 2, 0, S);
    }
    return performance.now() - t;
  };
  const t0 = performance.now();
  const first = Math.min(round(), round());
  let rounds = 2;
  // Optimised code runs this mix ~2.8× faster; three fast rounds in a row: every kernel is in.
  for (let fast = 0; fast < 3 && performance.now() - t0 < WARM_UP_LIMIT_MS; rounds++) {
    fast = round() < first / 2 ? fast + 1 : 0;
  }
  warmUpReport.rounds = rounds;
  warmUpReport.ms = performance.now() - t0;
}
