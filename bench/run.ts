// The benchmark suite: machine limits, the Linear kernels, attention kernels, QKV projection,
// KV-cache strategies and end to end on a SmolVLM-256M-size random checkpoint (float32 and stored
// weights, each in its own process), every figure beside the limit it chases.
//   npm run bench                      full run
//   npm run bench -- --quick           fewer sizes and runs (a few minutes)
//   npm run bench -- --only machine,kernels,attention,qkv,cache,e2e,serve
//   npm run bench -- --big             also the published sizes (SmolVLM-Instruct 2.2B, LLaVA-1.5-7B),
//                                      their random checkpoints generated on demand (~19 GB of disk)
// Writes bench/results/<timestamp>.json, latest.json and latest.md, and prints the markdown.
// TFVLM_BACKEND / TFVLM_THREADS pick the backend and thread count as everywhere else.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, backendInfo } from '../src/backend/index.ts';
import { measureMachineLimits, type MachineLimits } from './lib/machine.ts';
import { benchAttentionKernels, benchQkvProjection, type KernelRow } from './lib/attention-bench.ts';
import { benchDecodeCaches, type CacheRow } from './lib/decode-cache-bench.ts';
import type { BigResult } from './lib/big.ts';
import type { E2EResult } from './lib/e2e.ts';
import type { ServeResult } from './lib/serve-bench.ts';
import type { KernelsResult } from './lib/result.ts';
import type { WeightsResidence } from '../src/models/weights.ts';
import type { LoadDType } from '../src/models/load-options.ts';
import { markdownReport } from './lib/report.ts';
import { UNITS, type BenchResult } from './lib/result.ts';
import { ensurePublishedCheckpoint } from './lib/published-models.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECTIONS = ['machine', 'kernels', 'attention', 'qkv', 'cache', 'e2e', 'serve'] as const;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    checkpoint: { type: 'string' },
    out: { type: 'string', default: path.join(ROOT, 'bench/results') },
    'decode-threads': { type: 'string', default: '1' },
    big: { type: 'boolean', default: false },
  },
});
const quick = values.quick!;
const only = new Set(values.only ? values.only.split(',').map((s) => s.trim()) : SECTIONS);
for (const s of only) {
  if (!(SECTIONS as readonly string[]).includes(s)) {
    console.error(`--only: unknown section '${s}'; use ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
}
const log = (line: string) => console.error(line);

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** The SmolVLM-256M-Instruct config with random bf16 weights, generated once and kept in the OS temp dir. */
function ensureCheckpoint(): string {
  return values.checkpoint ?? ensurePublishedCheckpoint('smolvlm-256m-instruct');
}

/** Runs `script` (a bench/lib module) in its own process with `args` + --out FILE and returns what it wrote. */
function runChild<T>(script: string, args: string[], what: string): T {
  const out = path.join(os.tmpdir(), `tfvlm-bench-${path.basename(script, '.ts')}-${process.pid}.json`);
  log(`${what} (separate process) …`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args, '--out', out], {
    cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: process.env,
  });
  if (r.status !== 0) throw new Error(`${what}: process exited with ${r.status ?? r.signal}`);
  try {
    return JSON.parse(fs.readFileSync(out, 'utf8')) as T;
  } finally {
    fs.rmSync(out, { force: true });
  }
}

function runE2E(weights: WeightsResidence, dtype: LoadDType = 'auto'): E2EResult {
  return runChild<E2EResult>('bench/lib/e2e.ts', ['--dir', ensureCheckpoint(), '--weights', weights, '--dtype', dtype, ...(quick ? ['--quick'] : [])],
    `end to end, ${weights} weights${dtype === 'auto' ? '' : `, ${dtype} at load`}`);
}

/** bench/kernels.ts in its own process (it prints a table, then one JSON line). */
function runKernels(): KernelsResult {
  log('Linear kernels (separate process) …');
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/kernels.ts'), ...(quick ? ['--quick'] : [])], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: process.env, encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`kernels: process exited with ${r.status ?? r.signal}`);
  const json = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(json) as KernelsResult;
}

/** The published sizes (--big): random checkpoints with their configs, one process per model. */
const BIG_RUNS: { preset: string; args: string[] }[] = [
  { preset: 'smolvlm-instruct', args: ['--tokens', '8'] },
  { preset: 'smolvlm-instruct', args: ['--tokens', '8', '--dtype', 'q4'] },
  { preset: 'llava-1.5-7b-hf', args: ['--tokens', '4', '--question', 'What is in this picture?'] },
  { preset: 'llava-1.5-7b-hf', args: ['--tokens', '8', '--question', 'What is in this picture?', '--dtype', 'q4'] },
];

const started = performance.now();
const timestamp = new Date().toISOString();
const loadAvg = os.loadavg();
await initBackend();
const info = await backendInfo();
log(`backend ${info.backend}, ${info.threads} thread(s)${quick ? ', --quick' : ''}`);

log('machine limits …');
let limits: MachineLimits;
if (only.has('machine') || only.has('attention') || only.has('qkv') || only.has('cache') || only.has('e2e')) {
  limits = measureMachineLimits(quick);
  log(`  matmul peak ${limits.matmulPeakGflops.toFixed(1)} GFLOP/s, bandwidth ${limits.bandwidthGbps.toFixed(2)} GB/s`);
} else {
  limits = { matmulPeakGflops: NaN, bandwidthGbps: NaN, rows: [] };
}

// One-token rows (decode kernels, decode QKV, KV caches) compute on --decode-threads (default 1,
// 'all' = every thread started); everything else on all threads.
const threads = info.threads;
const decodeThreads = values['decode-threads'] === 'all' ? threads : Number(values['decode-threads']);
const attention: KernelRow[] = [];
if (only.has('attention')) attention.push(...(await benchAttentionKernels({ quick, limits, log, threads, decodeThreads })));
if (only.has('qkv')) attention.push(...(await benchQkvProjection({ quick, limits, log, threads, decodeThreads, layers: 30 })));
let decodeCache: CacheRow[] = [];
if (only.has('cache')) decodeCache = await benchDecodeCaches({ quick, layers: 30, limits, log, threads, decodeThreads });

let kernels: KernelsResult | null = null;
if (only.has('kernels')) {
  try {
    kernels = runKernels();
  } catch (e) {
    log(`kernels failed: ${(e as Error).message}`);
  }
}

let e2e: E2EResult | null = null;
let e2eFloat32: E2EResult | null = null;
const e2eQuantized: E2EResult[] = [];
let e2eError: string | undefined;
if (only.has('e2e')) {
  try {
    e2eFloat32 = runE2E('float32');
    e2e = runE2E('stored');
    for (const dtype of ['q8', 'q4'] as const) e2eQuantized.push(runE2E('stored', dtype));
  } catch (e) {
    e2eError = (e as Error).message.split('\n')[0];
    log(`end to end failed: ${e2eError}`);
  }
}

// The HTTP server under 1-16 concurrent streams (continuous batching), on the stored-weights checkpoint.
let serve: ServeResult | null = null;
if (only.has('serve')) {
  try {
    serve = runChild<ServeResult>('bench/lib/serve-bench.ts', ['--dir', ensureCheckpoint(), '--streams', quick ? '1,8' : '1,4,8,16', '--tokens', quick ? '32' : '64'],
      'serve: concurrent streams through the HTTP server');
  } catch (e) {
    log(`serve failed: ${(e as Error).message}`);
  }
}

const big: BigResult[] = [];
if (values.big) {
  for (const run of BIG_RUNS) {
    try {
      big.push(runChild<BigResult>('bench/lib/big.ts', ['--dir', ensurePublishedCheckpoint(run.preset), ...run.args], run.preset));
    } catch (e) {
      log(`${run.preset} failed: ${(e as Error).message}`);
    }
  }
}

const floorMs = e2e ? e2e.decode_weight_bytes / limits.bandwidthGbps / 1e6 : null;
const result: BenchResult = {
  schema: 1,
  timestamp,
  quick,
  duration_s: (performance.now() - started) / 1000,
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    total_mem_gb: os.totalmem() / 2 ** 30,
    platform: `${os.platform()} ${os.arch()} ${os.release()}`,
    node: process.version,
    load_avg: loadAvg,
  },
  backend: info.backend,
  threads: info.threads,
  simd: info.simd,
  threads_fallback: info.threadsFallback,
  tfjs_version: info.tfjsVersion,
  git_commit: git(['rev-parse', '--short', 'HEAD']),
  git_dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
  units: UNITS,
  matmul_peak_gflops: limits.matmulPeakGflops,
  bandwidth_gbps: limits.bandwidthGbps,
  limits: limits.rows,
  attention,
  decode_cache: decodeCache,
  vision_ms_per_tile: e2e?.vision_ms_per_tile ?? null,
  prefill_tok_s: e2e?.prefill_tok_s ?? null,
  decode_tok_s: e2e?.decode[0].tok_s ?? null,
  decode_tok_s_long: e2e?.decode[1].tok_s ?? null,
  decode_ms_per_token: e2e?.decode[0].ms_per_token ?? null,
  decode_floor_ms: floorMs,
  peak_rss_mb: e2e?.peak_rss_mb ?? null,
  load_ms: e2e?.load_ms ?? null,
  time_to_first_token_ms: e2e?.time_to_first_token_ms ?? null,
  e2e,
  e2e_float32: e2eFloat32,
  e2e_quantized: e2eQuantized,
  kernels,
  serve,
  big,
  ...(e2eError ? { e2e_error: e2eError } : {}),
};

const md = markdownReport(result);
fs.mkdirSync(values.out!, { recursive: true });
const stamp = timestamp.replace(/[:.]/g, '-');
const json = JSON.stringify(result, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
fs.writeFileSync(path.join(values.out!, `${stamp}.json`), json);
fs.writeFileSync(path.join(values.out!, 'latest.json'), json);
fs.writeFileSync(path.join(values.out!, 'latest.md'), `${md}\n`);
console.log(md);
log(`wrote ${path.relative(ROOT, path.join(values.out!, `${stamp}.json`))}, latest.json, latest.md (${result.duration_s.toFixed(0)} s)`);
// The wasm backend's thread pool keeps the event loop alive.
process.exit(0);
