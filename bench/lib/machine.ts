// The machine's own limits on the active backend, measured in the same run as everything else:
// large-GEMM GFLOP/s and the bandwidth of a matrix-vector product over a matrix far larger than
// any cache (how fast weights stream during decode). A limit is the best run, not the median: it is
// what the machine can do, and other processes only ever slow a run down.
import { tf, withComputeThreads } from '../../src/backend/index.ts';
import { time, type Timing } from './measure.ts';

export interface LimitRow {
  name: string;
  shape: string;
  ms: number;
  value: number;
  unit: 'GFLOP/s' | 'GB/s';
  cpuPerWall: number;
}

export interface MachineLimits {
  matmulPeakGflops: number;
  bandwidthGbps: number;
  rows: LimitRow[];
}

export function gemm(m: number, k: number, n: number, runs: number): LimitRow {
  const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
  try {
    const t: Timing = time(() => tf.matMul(a, b).dispose(), { warmup: 2, runs });
    return { name: 'matmul', shape: `${m}×${k}×${n}`, ms: t.minMs, value: (2 * m * k * n) / t.minMs / 1e6, unit: 'GFLOP/s', cpuPerWall: t.cpuPerWall };
  } finally {
    tf.dispose([a, b]);
  }
}

/** x [1, K] · W [K, N]: W is read once per product, so bytes(W) / time is the streaming rate. */
export function matvec(megabytes: number, runs: number): LimitRow {
  const K = 4096;
  const N = Math.round((megabytes * 2 ** 20) / 4 / K);
  const w = tf.randomUniform([K, N], -1, 1, 'float32', 3);
  const x = tf.randomUniform([1, K], -1, 1, 'float32', 4);
  try {
    const t = time(() => tf.matMul(x, w).dispose(), { warmup: 2, runs });
    return { name: 'matvec', shape: `1×${K}×${N} (${megabytes} MB)`, ms: t.minMs, value: (K * N * 4) / t.minMs / 1e6, unit: 'GB/s', cpuPerWall: t.cpuPerWall };
  } finally {
    tf.dispose([w, x]);
  }
}

/**
 * Writing 256 MB of freshly allocated memory: the kernel maps (and zeroes) every page on first
 * touch. Loading a model touches every weight byte once this way, so this rate bounds load time.
 */
function firstTouch(megabytes: number, runs: number): LimitRow {
  const n = (megabytes * 2 ** 20) / 4;
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    new Float32Array(n).fill(1);
    times.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  const ms = Math.min(...times);
  return { name: 'first touch', shape: `${megabytes} MB fresh buffer`, ms, value: (n * 4) / ms / 1e6, unit: 'GB/s',
    cpuPerWall: (cpu.user + cpu.system) / 1000 / times.reduce((a, b) => a + b, 0) };
}

export function measureMachineLimits(quick: boolean): MachineLimits {
  const runs = quick ? 5 : 9;
  const rows = [gemm(1024, 1024, 1024, runs), gemm(1024, 768, 768, runs)];
  if (!quick) rows.push(gemm(2048, 2048, 2048, 5));
  // 64 MB can still sit partly in a large L3 (EPYC); 256 MB cannot.
  rows.push(matvec(64, runs));
  rows.push(matvec(256, runs));
  // The largest matrix: least helped by caches.
  const bandwidthGbps = rows.at(-1)!.value;
  // Decode steps run on one thread by default (--decode-threads).
  rows.push({ ...withComputeThreads(1, () => matvec(256, runs)), name: 'matvec, 1 thread' });
  rows.push(firstTouch(256, quick ? 2 : 3));
  return {
    matmulPeakGflops: Math.max(...rows.filter((r) => r.unit === 'GFLOP/s').map((r) => r.value)),
    bandwidthGbps,
    rows,
  };
}
