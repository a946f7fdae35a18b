// The Linear kernels (src/kernels) against the machine's own limits measured in the same run:
// matvec GB/s (weight bytes / time) per dtype for a 4096×4096 and a 1024×4096 weight, on 1 thread
// and on all, beside tfjs's f32 matvec over a 256 MB matrix on 1 and 2 threads (bench/lib/machine.ts,
// the decode bandwidth rows); matmul GFLOP/s on the shapes prefill and vision run, beside XNNPACK's
// f32 tf.matMul of the same shapes; and the pool's dispatch round trip. Quantized weights (MLX's
// affine groups, q8 and q4 with groups of 64) get the same rows: their GB/s count every byte a call
// reads (codes, and the f32 scales and biases beside them), so a q row's GB/s beside the bandwidth
// row says how close to streaming it runs, and its "f32 path ×" how much sooner than tfjs's f32
// matvec (at the bandwidth row's rate) it is done with the same weight. Beyond-the-cache rows:
// 1 GiB bf16/f16, and q8 / q4 weights of 2^30 / 2^31 values (1.1 / 1.25 GiB).
// Every row is the best of N runs in each of several rounds spread over the run (limits and
// kernels alike), so a burst of load from another process spoils a round, not a row.
// Targets: 16-bit matvec on all threads ≥ 80% of the 2-thread bandwidth row; matmul within 1.15×
// of XNNPACK's time; past the cache, q8 matvec done ≥ 2.5× and q4 ≥ 3.5× sooner than the f32 path
// (the decode targets for SmolVLM-256M, which also count what is not matvec); q8 matmul no slower
// than bf16's on each shape.
// Quantizing (src/quant/fast-quantize.ts): ns per weight to quantize a [2048, 8192] f32 matrix
// the way MLX's GPU quantizer does, q4 and q8 (G 64): the JS reference quantizeRows beside
// quantizeRowsFast (the kernels, copies in and out of 1 MiB arena chunks included) on 1 thread and
// all, and the kernel alone on data already in an arena; "vs" is the reference's time ÷ the row's.
// Batched decode (continuous batching: M sequences decoding together; its own table, after the
// others, or alone with --only rows): for the decode shapes of SmolVLM-256M (hidden 576,
// intermediate 1536, vocab 49280) and of a 2048-hidden model (intermediate 8192), f32, bf16 and
// q4 (G 64), on 1 and 2 threads, M = 1, 4, 8, 16 rows three ways: M separate one-row matvecs,
// one matvecRows (each row the one-row kernel's bits, the weights streamed once), and the
// blocked matmul (faster per row, but another summation order); ms and G row-weights/s
// (M·N·K / time). Weights are filled with normal values straight in their packed layout.
//   npx tsx bench/kernels.ts [--quick] [--rounds N] [--only quantized|quantize|rows]
import { parseArgs } from 'node:util';
import { backendInfo, initBackend, withComputeThreads } from '../src/backend/index.ts';
import {
  KernelArena, KernelPool, kernelThreads, packedBytes, paddedColumns, quantizedBytes, quantizedCodeBytes,
  type QuantBits, type QuantGroupSize, type WeightDType,
} from '../src/kernels/index.ts';
import { warmUpReport } from '../src/kernels/module.ts';
import { quantizeRowsFast } from '../src/quant/fast-quantize.ts';
import { quantizeRows } from '../src/quant/mlx-affine.ts';
import { defaultPool } from '../src/kernels/pool.ts';
import { bf16ToF32, f32ToBf16, f32ToF16 } from '../src/kernels/reference.ts';
import { gemm, matvec as tfMatvec, type LimitRow } from './lib/machine.ts';
import { median, time } from './lib/measure.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' }, only: { type: 'string' } } });
const quick = values.quick!;
/** --only quantized: the limit rows, the bf16 rows the quantized ones are set against, and the quantized rows. */
const onlyQuantized = values.only === 'quantized';
/** --only quantize: the quantizer rows alone. */
const onlyQuantize = values.only === 'quantize';
/** --only rows: the batched-decode table alone. */
const onlyRows = values.only === 'rows';
if (values.only !== undefined && !onlyQuantized && !onlyQuantize && !onlyRows) {
  throw new Error(`--only ${values.only}: the choices are 'quantized', 'quantize' and 'rows'`);
}
const ROUNDS = Number(values.rounds ?? (quick ? 2 : 4));
const RUNS = quick ? 3 : 5;
const MATVEC_RUNS = quick ? 10 : 20;
const DTYPES: WeightDType[] = onlyQuantized ? ['bf16'] : ['f32', 'bf16', 'f16'];
/** Quantized formats: bits, group size (64: mlx_lm's default). */
const QUANT: [QuantBits, QuantGroupSize][] = [[8, 64], [4, 64]];
/** How much sooner than the f32 path a matvec past the cache must be done. */
const DECODE_TARGET: Record<QuantBits, number> = { 8: 2.5, 4: 3.5 };
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
  unit: 'GB/s' | 'GFLOP/s' | 'µs' | 'ns/weight';
  /** value ÷ the limit it is set against (bandwidth rows) or XNNPACK ms ÷ ms (matmul rows). */
  vs?: number;
  target?: string;
  ok?: boolean;
}

/** A timed case: run once per round; the row keeps the best time of all rounds. */
interface Case {
  row: Omit<Row, 'ms' | 'value'>;
  run: () => number;
  /** ms → value in row.unit. */
  value: (ms: number) => number;
  best: number;
}

await initBackend();
const info = await backendInfo();

/**
 * The quantizer rows: quantizeRows (JS) against quantizeRowsFast and the kernel alone, q4 and q8
 * (G 64) on a [2048, 8192] f32 matrix of ~N(0, 0.02) values; best of ROUNDS rounds each.
 */
function quantizeRowsBench(): Row[] {
  const [N, K, G] = [2048, 8192, 64] as const;
  const n = N * K;
  let s = 12345;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const w = Float32Array.from({ length: n }, () => 0.02 * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
  const qpools = { one: new KernelPool({ threads: 1 }), all: defaultPool() };
  // The kernel alone: the matrix already in an arena, outputs beside it.
  const qarenas = { one: KernelArena.create(4 * n + n + (n / G) * 8, { pool: qpools.one }), all: KernelArena.create(4 * n + n + (n / G) * 8, { pool: qpools.all }) };
  for (const a of Object.values(qarenas)) a.f32(0, n).set(w);
  const out: Row[] = [];
  for (const bits of [4, 8] as const) {
    const options = { bits, groupSize: G, scaleDType: 'F32', mlxBackend: 'gpu' } as const;
    // The reference takes ~0.6 s per run: one run per round.
    const cases: { name: string; threads: number; runs: number; run: () => void; best: number }[] = [
      { name: `quantize q${bits} (G ${G}), JS reference quantizeRows`, threads: 1, runs: 1, run: () => quantizeRows(w, N, K, options), best: Infinity },
    ];
    for (const which of WHICH) {
      cases.push({ name: `quantize q${bits} (G ${G}), quantizeRowsFast`, threads: qpools[which].threads, runs: RUNS,
        run: () => quantizeRowsFast(w, N, K, { ...options, pool: qpools[which] }), best: Infinity });
    }
    for (const which of WHICH) {
      const codes = 4 * n, scales = codes + quantizedCodeBytes(bits, N, K), biases = scales + (n / G) * 4;
      cases.push({ name: `quantize q${bits} (G ${G}), kernel alone (arena.quantizeRows)`, threads: qpools[which].threads, runs: RUNS,
        run: () => qarenas[which].quantizeRows(bits, G, 0, N, K, codes, scales, biases), best: Infinity });
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) c.best = Math.min(c.best, time(c.run, { warmup: round === 0 ? 1 : 0, runs: c.runs }).minMs);
    }
    const js = cases[0]!.best; // the JS reference, always first
    for (const c of cases) {
      out.push({ name: c.name, shape: `${N}×${K}`, threads: c.threads, ms: c.best, value: (c.best * 1e6) / n, unit: 'ns/weight', vs: js / c.best });
    }
  }
  qarenas.one.dispose();
  qarenas.all.dispose();
  qpools.one.close();
  return out;
}
const WHICH: Which[] = ['one', 'all'];

/** Batched decode: the shapes (name, N outputs, K inputs), formats and row counts. */
const ROWS_SHAPES: { name: string; N: number; K: number }[] = [
  { name: 'SmolVLM-256M mlp up/gate', N: 1536, K: 576 },
  { name: 'SmolVLM-256M mlp down', N: 576, K: 1536 },
  { name: 'SmolVLM-256M lm head', N: 49280, K: 576 },
  { name: '2048-hidden mlp up/gate', N: 8192, K: 2048 },
  { name: '2048-hidden mlp down', N: 2048, K: 8192 },
];
type RowsFormat = { kind: 'float'; dtype: WeightDType } | { kind: 'quantized'; bits: QuantBits; G: QuantGroupSize };
const ROWS_FORMATS: RowsFormat[] = [{ kind: 'float', dtype: 'f32' }, { kind: 'float', dtype: 'bf16' }, { kind: 'quantized', bits: 4, G: 64 }];
const ROWS_M = [1, 4, 8, 16];
const ROWS_THREADS = [1, 2] as const;
const ROWS_METHODS = ['separate', 'rows', 'matmul'] as const;

interface RowsRow {
  format: string;
  shape: string;
  N: number;
  K: number;
  threads: number;
  M: number;
  /** Best ms of each method. */
  ms: Record<(typeof ROWS_METHODS)[number], number>;
}

/**
 * The batched-decode table: per format, shape, thread count and M, the best time (over ROUNDS
 * rounds of RUNS runs) of M one-row matvecs, one matvecRows over M rows and one matmul over M rows.
 */
function matvecRowsBench(): RowsRow[] {
  const fname = (f: RowsFormat) => (f.kind === 'float' ? f.dtype : `q${f.bits} (G ${f.G})`);
  const bytesOf = (f: RowsFormat, N: number, K: number) => (f.kind === 'float' ? packedBytes(f.dtype, N, K) : quantizedBytes(f.bits, f.G, N, K));
  const maxM = Math.max(...ROWS_M);
  const maxK = Math.max(...ROWS_SHAPES.map((s) => s.K));
  const maxN = Math.max(...ROWS_SHAPES.map((s) => paddedColumns(s.N)));
  // Weights one after another, then x [maxM, maxK] and y [maxM, maxN].
  const weights: { f: RowsFormat; shape: (typeof ROWS_SHAPES)[number]; at: number }[] = [];
  let end = 0;
  for (const f of ROWS_FORMATS) {
    for (const shape of ROWS_SHAPES) {
      weights.push({ f, shape, at: end });
      end += Math.ceil(bytesOf(f, shape.N, shape.K) / 4096) * 4096;
    }
  }
  const weightBytes = end;
  const x = end;
  const y = x + Math.ceil((4 * maxM * maxK) / 4096) * 4096;
  const total = y + 4 * maxM * maxN;
  const rpools = { 1: new KernelPool({ threads: 1 }), 2: new KernelPool({ threads: 2 }) };
  const rarenas = { 1: KernelArena.create(total, { pool: rpools[1] }), 2: KernelArena.create(total, { pool: rpools[2] }) };
  for (const arena of Object.values(rarenas)) {
    // Normal values everywhere (f32 and bf16 weights in [2^-15, 2), q4 scales and biases as well,
    // codes anything): what is stored does not change the time, as long as nothing is subnormal.
    const chunk = Math.min(weightBytes, 1 << 20);
    const v = new Uint16Array(arena.view(0, chunk).buffer, 0, chunk / 2);
    for (let i = 0; i < v.length; i++) v[i] = 0x3800 | (Math.imul(i, 2654435761) >>> 21);
    const bytes = arena.view(0, weightBytes);
    for (let n = chunk; n < weightBytes; n *= 2) bytes.copyWithin(n, 0, Math.min(n, weightBytes - n));
    const xv = arena.f32(x, maxM * maxK);
    for (let i = 0; i < xv.length; i++) xv[i] = Math.sin(i * 0.7) * 0.5;
  }
  const out: RowsRow[] = [];
  const cases: { row: RowsRow; method: (typeof ROWS_METHODS)[number]; run: () => void }[] = [];
  for (const { f, shape, at: w } of weights) {
    const { N, K } = shape;
    const padded = paddedColumns(N);
    for (const t of ROWS_THREADS) {
      const arena = rarenas[t];
      for (const M of ROWS_M) {
        const row: RowsRow = { format: fname(f), shape: `${shape.name} ${N}×${K}`, N, K, threads: rpools[t].threads, M,
          ms: { separate: Infinity, rows: Infinity, matmul: Infinity } };
        out.push(row);
        if (f.kind === 'float') {
          const { dtype } = f;
          cases.push({ row, method: 'separate', run: () => {
            for (let r = 0; r < M; r++) arena.matvec(dtype, w, x + 4 * r * K, y + 4 * r * padded, N, K);
          } });
          cases.push({ row, method: 'rows', run: () => arena.matvecRows(dtype, w, x, y, M, N, K) });
          cases.push({ row, method: 'matmul', run: () => arena.matmul(dtype, w, x, y, M, N, K) });
        } else {
          const { bits, G } = f;
          cases.push({ row, method: 'separate', run: () => {
            for (let r = 0; r < M; r++) arena.matvecQuantized(bits, G, w, x + 4 * r * K, y + 4 * r * padded, N, K);
          } });
          cases.push({ row, method: 'rows', run: () => arena.matvecRowsQuantized(bits, G, w, x, y, M, N, K) });
          cases.push({ row, method: 'matmul', run: () => arena.matmulQuantized(bits, G, w, x, y, M, N, K) });
        }
      }
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) c.row.ms[c.method] = Math.min(c.row.ms[c.method], time(c.run, { warmup: 1, runs: RUNS }).minMs);
  }
  for (const t of ROWS_THREADS) {
    rarenas[t].dispose();
    rpools[t].close();
  }
  return out;
}

function printRowsTable(rows: RowsRow[]): void {
  const g = (r: RowsRow, ms: number) => ((r.M * r.N * r.K) / ms / 1e6).toFixed(2);
  console.log('\nBatched decode: M rows as M one-row matvecs, one matvecRows (each row the one-row bits), one matmul (M = 1: matvec)');
  console.log('G/s: G row-weights per second (M·N·K / time); rows ×: M × matvec ms ÷ matvecRows ms\n');
  console.log('| format | shape | threads | M | M × matvec ms | matvecRows ms | matmul ms | M × matvec G/s | matvecRows G/s | matmul G/s | rows × |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.format} | ${r.shape} | ${r.threads} | ${r.M} | ${r.ms.separate.toFixed(3)} | ${r.ms.rows.toFixed(3)} | ${r.ms.matmul.toFixed(3)} | ` +
      `${g(r, r.ms.separate)} | ${g(r, r.ms.rows)} | ${g(r, r.ms.matmul)} | ${(r.ms.separate / r.ms.rows).toFixed(2)} |`);
  }
  console.log(JSON.stringify({ bench: 'kernels-matvec-rows', rounds: ROUNDS, rows }));
}

if (onlyRows) {
  printRowsTable(matvecRowsBench());
  process.exit(0);
}
const quantizeRowsRows = quantizeRowsBench();
if (onlyQuantize) {
  printTable(quantizeRowsRows, undefined);
  process.exit(0);
}

const pools = { one: new KernelPool({ threads: 1 }), all: defaultPool() };
type Which = keyof typeof pools;
// Both arenas hold every weight (about 3.8 GB touched each).
const ARENA = KernelArena.maxBytes();
const arenas = { one: KernelArena.create(ARENA, { pool: pools.one }), all: KernelArena.create(ARENA, { pool: pools.all }) };
/** Front-to-back 16-byte aligned regions, the same offsets in both arenas. */
let next = 0;
const take = (bytes: number) => {
  const at = next;
  next += Math.ceil(bytes / 4096) * 4096;
  return at;
};
const SRC = take(64 << 20); // row-major weights before packing
const X = take(16 << 20);
const Y = take(16 << 20);

/** Gaussian weights of std 0.02 (f16: 0.24% subnormal, as in real checkpoints) packed at a new region of both arenas. */
function packedWeights(dtype: WeightDType, N: number, K: number, seed: number): number {
  const w = take(packedBytes(dtype, N, K));
  for (const arena of Object.values(arenas)) {
    let s = seed >>> 0;
    const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
    const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    const n = N * K;
    if (dtype === 'f32') {
      const v = arena.f32(SRC, n);
      for (let i = 0; i < n; i++) v[i] = 0.02 * gauss();
    } else {
      const v = new Uint16Array(arena.view(SRC, 2 * n).buffer, SRC, n);
      const round = dtype === 'bf16' ? f32ToBf16 : f32ToF16;
      for (let i = 0; i < n; i++) v[i] = round(0.02 * gauss());
    }
    arena.pack(dtype, SRC, w, N, K);
  }
  return w;
}
/** MLX-like quantized weights (random codes; bf16 scales, s > 0, b ≈ −s·2^(bits−1)) packed at `w` in both arenas. */
function fillQuantized(bits: QuantBits, G: QuantGroupSize, N: number, K: number, seed: number, w: number): void {
  for (const arena of Object.values(arenas)) {
    let s = seed >>> 0;
    const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    const codeBytes = quantizedCodeBytes(bits, N, K);
    const groups = (N * K) / G;
    const scales = SRC + Math.ceil(codeBytes / 16) * 16;
    const biases = scales + Math.ceil((4 * groups) / 16) * 16;
    const codes = arena.view(SRC, codeBytes);
    for (let i = 0; i < codeBytes; i++) codes[i] = next() >>> 24;
    const sv = arena.f32(scales, groups);
    const bv = arena.f32(biases, groups);
    for (let g = 0; g < groups; g++) {
      sv[g] = bf16ToF32(f32ToBf16(0.002 * (1 + next() / 2 ** 32)));
      bv[g] = bf16ToF32(f32ToBf16(-sv[g]! * 2 ** (bits - 1)));
    }
    arena.packQuantized(bits, G, SRC, scales, biases, w, N, K);
  }
}
function quantizedWeights(bits: QuantBits, G: QuantGroupSize, N: number, K: number, seed: number): number {
  const w = take(quantizedBytes(bits, G, N, K));
  fillQuantized(bits, G, N, K, seed, w);
  return w;
}
for (const arena of Object.values(arenas)) {
  const v = arena.f32(X, (16 << 20) / 4);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 0.7) * 0.5;
}

const cases: Case[] = [];
const limitCase = (row: Case['row'], measure: () => LimitRow) => {
  let last: LimitRow | undefined;
  const c: Case = { row, run: () => (last = measure()).ms, value: (ms) => (last!.value * last!.ms) / ms, best: Infinity };
  cases.push(c);
  return c;
};
// The machine's limits: tfjs's f32 matvec over 256 MB (2 threads, 1 thread) and XNNPACK's GEMM.
const bw2 = limitCase({ name: 'tfjs f32 matvec (bandwidth)', shape: '1×4096×16384 (256 MB)', threads: info.threads, unit: 'GB/s' }, () => tfMatvec(256, RUNS));
const bw1 = limitCase({ name: 'tfjs f32 matvec (bandwidth)', shape: '1×4096×16384 (256 MB)', threads: 1, unit: 'GB/s' }, () => withComputeThreads(1, () => tfMatvec(256, RUNS)));
const xnn = new Map<string, Case>();
for (const [M, N, K] of MATMUL_SHAPES) {
  xnn.set(`${M}×${N}×${K}`, limitCase({ name: 'XNNPACK f32 tf.matMul', shape: `${M}×${N}×${K}`, threads: info.threads, unit: 'GFLOP/s' }, () => gemm(M, K, N, RUNS)));
}

/**
 * target: the row the 80%-of-bandwidth target applies to (16-bit, all threads, the two named shapes);
 * f32Bytes: a quantized row's weight as f32 (the f32 path's bytes); decodeTarget: its target.
 */
const matvecCases: { c: Case; which: Which; target: boolean; f32Bytes?: number; decodeTarget?: number }[] = [];
for (const dtype of DTYPES) {
  for (const [N, K] of MATVEC_SHAPES) {
    const w = packedWeights(dtype, N, K, N + K);
    for (const which of WHICH) {
      const arena = arenas[which];
      const c: Case = {
        row: { name: `matvec ${dtype}`, shape: `${N}×${K}`, threads: pools[which].threads, unit: 'GB/s' },
        run: () => time(() => arena.matvec(dtype, w, X, Y, N, K), { warmup: 2, runs: MATVEC_RUNS }).minMs,
        value: (ms) => packedBytes(dtype, N, K) / ms / 1e6,
        best: Infinity,
      };
      cases.push(c);
      matvecCases.push({ c, which, target: dtype !== 'f32' && which === 'all' });
    }
  }
}
// Decode streams weights far larger than any cache (L3 here is 480 MB, so the 4096×4096 rows may
// be served from it): a 1 GiB weight, filled with normal bf16 and f16 values directly in panel
// layout (the values do not matter, only that none is subnormal in either dtype).
for (const [bits, G] of QUANT) {
  for (const [N, K] of MATVEC_SHAPES) {
    const w = quantizedWeights(bits, G, N, K, N + K + bits);
    for (const which of WHICH) {
      const arena = arenas[which];
      const c: Case = {
        row: { name: `matvec q${bits} (G ${G})`, shape: `${N}×${K}`, threads: pools[which].threads, unit: 'GB/s' },
        run: () => time(() => arena.matvecQuantized(bits, G, w, X, Y, N, K), { warmup: 2, runs: MATVEC_RUNS }).minMs,
        value: (ms) => quantizedBytes(bits, G, N, K) / ms / 1e6,
        best: Infinity,
      };
      cases.push(c);
      matvecCases.push({ c, which, target: false, f32Bytes: 4 * N * K });
    }
  }
}
const BIG = { N: 131072, K: 4096 };
const big = take(packedBytes('bf16', BIG.N, BIG.K));
for (const arena of Object.values(arenas)) {
  const v = new Uint16Array(arena.view(big, 1 << 20).buffer, big, 1 << 19);
  for (let i = 0; i < v.length; i++) v[i] = 0x3800 | (Math.imul(i, 2654435761) >>> 21);
  const bytes = arena.view(big, packedBytes('bf16', BIG.N, BIG.K));
  for (let n = 1 << 20; n < bytes.length; n *= 2) bytes.copyWithin(n, 0, Math.min(n, bytes.length - n));
}
for (const dtype of onlyQuantized ? (['bf16'] as const) : (['bf16', 'f16'] as const)) {
  for (const which of WHICH) {
    const arena = arenas[which];
    const c: Case = {
      row: { name: `matvec ${dtype}, 1 GiB (past L3)`, shape: `${BIG.N}×${BIG.K}`, threads: pools[which].threads, unit: 'GB/s' },
      run: () => time(() => arena.matvec(dtype, big, X, Y, BIG.N, BIG.K), { warmup: 1, runs: RUNS }).minMs,
      value: (ms) => packedBytes(dtype, BIG.N, BIG.K) / ms / 1e6,
      best: Infinity,
    };
    cases.push(c);
    matvecCases.push({ c, which, target: false });
  }
}
// Quantized weights past the cache: 2^30 values at q8 (1.1 GiB), 2^31 at q4 (1.25 GiB). One panel is
// packed from random codes, then copied over the rest (the region is whole panels).
for (const [bits, G] of QUANT) {
  const K = 4096, N = (bits === 8 ? 2 ** 30 : 2 ** 31) / K;
  const bytes = quantizedBytes(bits, G, N, K);
  const w = take(bytes);
  fillQuantized(bits, G, 8, K, bits, w);
  for (const arena of Object.values(arenas)) {
    const v = arena.view(w, bytes);
    for (let n = quantizedBytes(bits, G, 8, K); n < bytes; n *= 2) v.copyWithin(n, 0, Math.min(n, bytes - n));
  }
  for (const which of WHICH) {
    const arena = arenas[which];
    const c: Case = {
      row: { name: `matvec q${bits} (G ${G}), ${(bytes / 2 ** 30).toFixed(2)} GiB (past L3)`, shape: `${N}×${K}`, threads: pools[which].threads, unit: 'GB/s' },
      run: () => time(() => arena.matvecQuantized(bits, G, w, X, Y, N, K), { warmup: 1, runs: RUNS }).minMs,
      value: (ms) => bytes / ms / 1e6,
      best: Infinity,
    };
    cases.push(c);
    matvecCases.push({ c, which, target: false, f32Bytes: 4 * N * K, decodeTarget: which === 'all' ? DECODE_TARGET[bits] : undefined });
  }
}
/** dtype: a WeightDType or 'q8' / 'q4'. */
const matmulCases: { c: Case; shape: string; which: Which; dtype: string }[] = [];
for (const [M, N, K] of MATMUL_SHAPES) {
  for (const dtype of DTYPES) {
    const w = packedWeights(dtype, N, K, M + N + K);
    for (const which of WHICH) {
      if (which === 'one' && quick) continue;
      const arena = arenas[which];
      const c: Case = {
        row: { name: `matmul ${dtype}`, shape: `${M}×${N}×${K}`, threads: pools[which].threads, unit: 'GFLOP/s' },
        run: () => time(() => arena.matmul(dtype, w, X, Y, M, N, K, X), { warmup: 1, runs: RUNS }).minMs,
        value: (ms) => (2 * M * N * K) / ms / 1e6,
        best: Infinity,
      };
      cases.push(c);
      matmulCases.push({ c, shape: `${M}×${N}×${K}`, which, dtype });
    }
  }
  for (const [bits, G] of QUANT) {
    const w = quantizedWeights(bits, G, N, K, M + N + K + bits);
    for (const which of WHICH) {
      if (which === 'one' && quick) continue;
      const arena = arenas[which];
      const c: Case = {
        row: { name: `matmul q${bits} (G ${G})`, shape: `${M}×${N}×${K}`, threads: pools[which].threads, unit: 'GFLOP/s' },
        run: () => time(() => arena.matmulQuantized(bits, G, w, X, Y, M, N, K, X), { warmup: 1, runs: RUNS }).minMs,
        value: (ms) => (2 * M * N * K) / ms / 1e6,
        best: Infinity,
      };
      cases.push(c);
      matmulCases.push({ c, shape: `${M}×${N}×${K}`, which, dtype: `q${bits}` });
    }
  }
}

for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) c.best = Math.min(c.best, c.run());
}

const rows: Row[] = [];
const rowOf = (c: Case): Row => ({ ...c.row, ms: c.best, value: c.value(c.best) });
const bandwidth = { one: bw1.value(bw1.best), all: bw2.value(bw2.best) };
for (const c of [bw2, bw1, ...xnn.values()]) rows.push(rowOf(c));
for (const { c, which, target, f32Bytes, decodeTarget } of matvecCases) {
  const row = rowOf(c);
  row.vs = row.value / bandwidth[which];
  if (target) {
    row.target = `≥ ${BANDWIDTH_TARGET} × ${bandwidth.all.toFixed(1)}`;
    row.ok = row.vs >= BANDWIDTH_TARGET;
  }
  if (f32Bytes !== undefined) {
    // The f32 path: the same weight as f32 at this thread count's bandwidth row.
    const speedup = f32Bytes / 1e6 / bandwidth[which] / row.ms;
    row.target = `f32 path × ${speedup.toFixed(2)}${decodeTarget ? ` ≥ ${decodeTarget}` : ''}`;
    if (decodeTarget) row.ok = speedup >= decodeTarget;
  }
  rows.push(row);
}
const bf16Matmul = new Map(matmulCases.filter((m) => m.dtype === 'bf16').map((m) => [`${m.shape} ${m.which}`, m.c]));
for (const { c, shape, which, dtype } of matmulCases) {
  const row = rowOf(c);
  if (dtype === 'q8' || dtype === 'q4') {
    row.vs = xnn.get(shape)!.best / row.ms;
    const bf16 = bf16Matmul.get(`${shape} ${which}`)!.best;
    row.target = `bf16 × ${(bf16 / row.ms).toFixed(2)}${dtype === 'q8' && which === 'all' ? ' ≥ 1' : ''}`;
    if (dtype === 'q8' && which === 'all') row.ok = row.ms <= bf16;
  } else if (which === 'all') {
    const ref = xnn.get(shape)!.best;
    row.vs = ref / row.ms;
    row.target = `≤ ${MATMUL_TARGET} × ${ref.toFixed(2)} ms`;
    row.ok = row.ms <= MATMUL_TARGET * ref;
  }
  rows.push(row);
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
if (pool.threads > 1 && !onlyQuantized) {
  perCall(() => pool.ping(), 1000, 0);
  const hot = perCall(() => pool.ping(), 20_000, 0);
  const cold = perCall(() => pool.ping(), 40, 2);
  rows.push({ name: 'empty call round trip (workers spinning)', shape: '—', threads: pool.threads, ms: hot / 1000, value: hot, unit: 'µs' });
  rows.push({ name: 'empty call round trip (workers asleep)', shape: '—', threads: pool.threads, ms: cold / 1000, value: cold, unit: 'µs' });
  const W = packedWeights('bf16', 1024, 1024, 5);
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

const batchedRows = onlyQuantized ? [] : matvecRowsBench();
rows.push(...quantizeRowsRows);
printTable(rows, bandwidth);
if (batchedRows.length) printRowsTable(batchedRows);

function printTable(rows: Row[], bandwidth: { one: number; all: number } | undefined): void {
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  console.log(`tfjs backend ${info.backend}, ${info.threads} threads; kernel pool ${JSON.stringify(kernelThreads())}; kernel warm-up ${warmUpReport.ms.toFixed(1)} ms`);
  console.log('vs: matvec GB/s ÷ the bandwidth row of the same thread count; matmul: XNNPACK ms ÷ ms; quantize: JS reference ms ÷ ms (> 1: faster)\n');
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
      bandwidth_2t_gbps: bandwidth?.all,
      bandwidth_1t_gbps: bandwidth?.one,
      rounds: ROUNDS,
      rows: rows.map((r) => ({ name: r.name, shape: r.shape, threads: r.threads, ms: r.ms, value: r.value, unit: r.unit, vs: r.vs, ok: r.ok })),
      targets_met: targeted.filter((r) => r.ok).length,
      targets: targeted.length,
    }),
  );
}
