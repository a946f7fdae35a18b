// The Linear kernels (src/kernels) against the machine's own limits measured in the same run:
// matvec GB/s (weight bytes / time) per dtype for a 4096×4096 and a 1024×4096 weight, on 1 thread
// and on all, beside tfjs's f32 matvec over a 256 MB matrix on 1 and 2 threads (bench/lib/machine.ts,
// the decode bandwidth rows); matmul GFLOP/s on the shapes prefill and vision run, beside XNNPACK's
// f32 tf.matMul of the same shapes; and the pool's dispatch round trip. Best of N runs.
// Targets: 16-bit matvec on all threads ≥ 80% of the 2-thread bandwidth row; matmul within 1.15×
// of XNNPACK's time.
//   npx tsx bench/kernels.ts [--quick]
import { parseArgs } from 'node:util';
import { backendInfo, initBackend, withComputeThreads } from '../src/backend/index.ts';
import { KernelArena, KernelPool, kernelThreads, packedBytes, paddedColumns, type WeightDType } from '../src/kernels/index.ts';
import { warmUpReport } from '../src/kernels/module.ts';
import { defaultPool } from '../src/kernels/pool.ts';
import { f32ToBf16, f32ToF16 } from '../src/kernels/reference.ts';
import { gemm, matvec as tfMatvec } from './lib/machine.ts';
import { median, time } from './lib/measure.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick!;
const RUNS = quick ? 5 : 9;
const MATVEC_RUNS = quick ? 15 : 40;
const DTYPES: WeightDType[] = ['f32', 'bf16', 'f16'];
const ELEMENT_BYTES: Record<WeightDType, number> = { f32: 4, bf16: 2, f16: 2 };
const MATVEC_SHAPES: [number, number][] = [[4096, 4096], [1024, 4096]];
const MATMUL_SHAPES: [number, number, number][] = [[1024, 3072, 768], [1024, 768, 3072], [81, 1536, 576]];
const BANDWIDTH_TARGET = 0.8;
const MATMUL_TARGET = 1.15;

interface Row {
  name: string;
  shape: string;
  threads: number;
  ms: number;
  value: number;
  unit: 'GB/s' | 'GFLOP/s' | 'µs';
  /** value ÷ the limit it is set against (bandwidth rows) or XNNPACK ms ÷ ms (matmul rows). */
  vs?: number;
  target?: string;
  ok?: boolean;
}
const rows: Row[] = [];

await initBackend();
const info = await backendInfo();

// The machine's limits first, before the kernel pool's workers exist.
const bw2 = tfMatvec(256, RUNS);
const bw1 = withComputeThreads(1, () => tfMatvec(256, RUNS));
rows.push({ name: 'tfjs f32 matvec (bandwidth)', shape: bw2.shape, threads: info.threads, ms: bw2.ms, value: bw2.value, unit: 'GB/s' });
rows.push({ name: 'tfjs f32 matvec (bandwidth)', shape: bw1.shape, threads: 1, ms: bw1.ms, value: bw1.value, unit: 'GB/s' });
const xnn = new Map<string, number>();
for (const [M, N, K] of MATMUL_SHAPES) {
  const r = gemm(M, K, N, RUNS);
  xnn.set(`${M}×${N}×${K}`, r.ms);
  rows.push({ name: 'XNNPACK f32 tf.matMul', shape: `${M}×${N}×${K}`, threads: info.threads, ms: r.ms, value: r.value, unit: 'GFLOP/s' });
}

const pools = { one: new KernelPool({ threads: 1 }), all: defaultPool() };
const ARENA = 160 << 20;
// Regions: row-major source (for pack), packed weights, x, y.
const SRC = 0, W = 64 << 20, X = 128 << 20, Y = 144 << 20;
const arenas = { one: KernelArena.create(ARENA, { pool: pools.one }), all: KernelArena.create(ARENA, { pool: pools.all }) };

/** Gaussian weights of std 0.02 (f16: 0.24% subnormal, as in real checkpoints), in `dtype`. */
function fillWeights(arena: KernelArena, dtype: WeightDType, n: number, seed: number): void {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  if (dtype === 'f32') {
    const v = arena.f32(SRC, n);
    for (let i = 0; i < n; i++) v[i] = 0.02 * gauss();
  } else {
    const v = new Uint16Array(arena.view(SRC, 2 * n).buffer, SRC, n);
    const round = dtype === 'bf16' ? f32ToBf16 : f32ToF16;
    for (let i = 0; i < n; i++) v[i] = round(0.02 * gauss());
  }
}

function fillF32(arena: KernelArena, at: number, n: number): void {
  const v = arena.f32(at, n);
  for (let i = 0; i < n; i++) v[i] = Math.sin(i * 0.7) * 0.5;
}

// matvec
for (const dtype of DTYPES) {
  for (const [N, K] of MATVEC_SHAPES) {
    for (const which of ['one', 'all'] as const) {
      const arena = arenas[which];
      fillWeights(arena, dtype, N * K, N + K);
      arena.pack(dtype, SRC, W, N, K);
      fillF32(arena, X, K);
      const t = time(() => arena.matvec(dtype, W, X, Y, N, K), { warmup: 3, runs: MATVEC_RUNS });
      const gbps = (packedBytes(dtype, N, K) / t.minMs) / 1e6;
      const row: Row = { name: `matvec ${dtype}`, shape: `${N}×${K}`, threads: pools[which].threads, ms: t.minMs, value: gbps, unit: 'GB/s' };
      const limit = which === 'one' ? bw1.value : bw2.value;
      row.vs = gbps / limit;
      if (dtype !== 'f32' && which === 'all') {
        row.target = `≥ ${BANDWIDTH_TARGET} × ${limit.toFixed(1)}`;
        row.ok = row.vs >= BANDWIDTH_TARGET;
      }
      rows.push(row);
    }
  }
}

// matmul
for (const [M, N, K] of MATMUL_SHAPES) {
  for (const dtype of DTYPES) {
    for (const which of ['one', 'all'] as const) {
      if (which === 'one' && quick) continue;
      const arena = arenas[which];
      fillWeights(arena, dtype, N * K, M + N + K);
      arena.pack(dtype, SRC, W, N, K);
      fillF32(arena, X, M * K);
      const t = time(() => arena.matmul(dtype, W, X, Y, M, N, K, X), { warmup: 2, runs: RUNS });
      const shape = `${M}×${N}×${K}`;
      const row: Row = { name: `matmul ${dtype}`, shape, threads: pools[which].threads, ms: t.minMs, value: (2 * M * N * K) / t.minMs / 1e6, unit: 'GFLOP/s' };
      if (which === 'all') {
        row.vs = xnn.get(shape)! / t.minMs;
        row.target = `≤ ${MATMUL_TARGET} × ${xnn.get(shape)!.toFixed(2)} ms`;
        row.ok = t.minMs <= MATMUL_TARGET * xnn.get(shape)!;
      }
      rows.push(row);
    }
  }
}

// The dispatch round trip: a job every worker acknowledges and that does nothing, with the workers
// spinning (back-to-back calls) and after 2 ms idle (asleep in Atomics.wait); and a small matvec
// (1024×1024 bf16, 2 MB) on all threads both ways, where chunk claiming lets the caller start alone.
const idle = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};
function perCall(fn: () => void, n: number, gapMs: number): number {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    if (gapMs) idle(gapMs);
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return median(times) * 1000;
}
const pool = pools.all;
if (pool.threads > 1) {
  perCall(() => pool.ping(), 1000, 0);
  const hot = perCall(() => pool.ping(), 20_000, 0);
  const cold = perCall(() => pool.ping(), 40, 2);
  rows.push({ name: 'empty call round trip (workers spinning)', shape: '—', threads: pool.threads, ms: hot / 1000, value: hot, unit: 'µs' });
  rows.push({ name: 'empty call round trip (workers asleep)', shape: '—', threads: pool.threads, ms: cold / 1000, value: cold, unit: 'µs' });
  for (const a of [arenas.one, arenas.all]) {
    fillWeights(a, 'bf16', 1024 * 1024, 5);
    a.pack('bf16', SRC, W, 1024, 1024);
  }
  const small = () => arenas.all.matvec('bf16', W, X, Y, 1024, 1024);
  perCall(small, 200, 0);
  const smallHot = perCall(small, 2000, 0);
  const smallCold = perCall(small, 40, 2);
  const single = perCall(() => arenas.one.matvec('bf16', W, X, Y, 1024, 1024), 200, 0);
  rows.push({ name: 'matvec bf16, 1 thread', shape: '1024×1024', threads: 1, ms: single / 1000, value: single, unit: 'µs' });
  rows.push({ name: 'matvec bf16 (workers spinning)', shape: '1024×1024', threads: pool.threads, ms: smallHot / 1000, value: smallHot, unit: 'µs' });
  rows.push({ name: 'matvec bf16 (workers asleep)', shape: '1024×1024', threads: pool.threads, ms: smallCold / 1000, value: smallCold, unit: 'µs' });
}

arenas.one.dispose();
arenas.all.dispose();
pools.one.close();

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
console.log(`tfjs backend ${info.backend}, ${info.threads} threads; kernel pool ${JSON.stringify(kernelThreads())}; kernel warm-up ${warmUpReport.ms.toFixed(1)} ms`);
console.log('vs: matvec GB/s ÷ the bandwidth row of the same thread count; matmul: XNNPACK ms ÷ ms (> 1: faster)\n');
console.log('| row | shape | threads | ms | value | vs | target | ok |\n|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.shape} | ${r.threads} | ${r.ms.toFixed(3)} | ${fmt(r.value)} ${r.unit} | ${r.vs === undefined ? '' : r.vs.toFixed(2)} | ${r.target ?? ''} | ${r.ok === undefined ? '' : r.ok ? 'yes' : 'NO'} |`);
}
const targeted = rows.filter((r) => r.ok !== undefined);
console.log(
  JSON.stringify({
    bench: 'kernels',
    backend: info.backend,
    tfjs_threads: info.threads,
    kernel_threads: kernelThreads(),
    kernel_warm_up_ms: warmUpReport.ms,
    bandwidth_2t_gbps: bw2.value,
    bandwidth_1t_gbps: bw1.value,
    rows: rows.map((r) => ({ name: r.name, shape: r.shape, threads: r.threads, ms: r.ms, value: r.value, unit: r.unit, vs: r.vs, ok: r.ok })),
    targets_met: targeted.filter((r) => r.ok).length,
    targets: targeted.length,
  }),
);
