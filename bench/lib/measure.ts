// Timing and memory helpers shared by the bench sections.
import { tf, setComputeThreads } from '../../src/backend/index.ts';

export interface Timing {
  /** Median wall time of the timed runs. */
  ms: number;
  minMs: number;
  runs: number;
  /** Process CPU time ÷ wall time over the timed runs (≈ threads busy). */
  cpuPerWall: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/**
 * Runs `fn` `warmup` times, then `runs` times, and returns the median. `fn` must finish its work
 * before returning (read a value or dispose its outputs: wasm ops run synchronously).
 * Stops early once `budgetMs` of timed work has been spent (at least 3 runs).
 */
export function time(fn: () => void, opts: { warmup?: number; runs?: number; budgetMs?: number } = {}): Timing {
  const { warmup = 1, runs = 5, budgetMs = Infinity } = opts;
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
    if (i >= 2 && performance.now() - wall0 > budgetMs) break;
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    ms: median(times),
    minMs: Math.min(...times),
    runs: times.length,
    cpuPerWall: (cpu.user + cpu.system) / 1000 / (performance.now() - wall0),
  };
}

/** Peak bytes of tensor memory `fn` holds at once above what existed before it (engine high-water). */
export async function peakTensorBytes(fn: () => tf.Tensor | tf.Tensor[] | void): Promise<number> {
  const before = tf.memory().numBytes;
  const info = await tf.profile(() => {
    const out = fn();
    if (out) tf.dispose(out);
  });
  return Math.max(0, info.peakBytes - before);
}

/** Largest |a − b| and the largest |b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { maxAbs: number; maxRef: number } {
  if (a.length !== b.length) return { maxAbs: Infinity, maxRef: 0 };
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    maxRef = Math.max(maxRef, Math.abs(b[i]!));
  }
  return { maxAbs, maxRef };
}

/** The bench's agreement rule: max |Δ| ≤ 1e-4 · max(1, max |reference|). */
export function agrees(a: ArrayLike<number>, ref: ArrayLike<number>): { ok: boolean; maxAbs: number; bound: number } {
  const { maxAbs, maxRef } = maxAbsDiff(a, ref);
  const bound = 1e-4 * Math.max(1, maxRef);
  return { ok: maxAbs <= bound, maxAbs, bound };
}

export const MB = 2 ** 20;

/**
 * Runs `fn` with ops computing on `threads` threads (wasm: 1 or all started; other backends keep
 * theirs), then restores `restore`. Decode-sized ops are faster on one thread: waking a second
 * one costs more than the op (bench/threads.ts), badly so on a busy machine.
 */
export async function withComputeThreads<T>(threads: number, restore: number, fn: (inEffect: number) => Promise<T> | T): Promise<T> {
  const inEffect = setComputeThreads(threads);
  try {
    return await fn(inEffect);
  } finally {
    setComputeThreads(restore);
  }
}
