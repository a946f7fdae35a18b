// The JSON a bench run writes to bench/results/. Field names carry their unit (_ms, _s, _gflops,
// _gbps, _mb, _tok_s, pct_ = percent, bytes_ = bytes); `units` repeats this for readers.
import type { KernelRow } from './attention-bench.ts';
import type { CacheRow } from './decode-cache-bench.ts';
import type { BigResult } from './big.ts';
import type { E2EResult } from './e2e.ts';
import type { ServeResult } from './serve-bench.ts';
import type { LimitRow } from './machine.ts';

export interface BenchResult {
  schema: 1;
  timestamp: string;
  quick: boolean;
  duration_s: number;
  machine: { cpu: string; cores: number; total_mem_gb: number; platform: string; node: string; load_avg: number[] };
  backend: string;
  threads: number;
  simd: boolean | null;
  threads_fallback: string | null;
  tfjs_version: string;
  git_commit: string;
  git_dirty: boolean;
  units: Record<string, string>;
  matmul_peak_gflops: number;
  bandwidth_gbps: number;
  limits: LimitRow[];
  /** Attention kernel and QKV projection rows (variant, seq_len, ms, gflops, pct_peak, ...). */
  attention: KernelRow[];
  decode_cache: CacheRow[];
  vision_ms_per_tile: number | null;
  prefill_tok_s: number | null;
  /** Short context (~100). */
  decode_tok_s: number | null;
  decode_tok_s_long: number | null;
  decode_ms_per_token: number | null;
  /** f32 weight bytes read per decoded token ÷ bandwidth_gbps. */
  decode_floor_ms: number | null;
  peak_rss_mb: number | null;
  load_ms: number | null;
  time_to_first_token_ms: number | null;
  /** End to end with stored (checkpoint-precision) weights: the default; the headline figures above come from it. */
  e2e: E2EResult | null;
  /** The same with float32 weights in tfjs tensors (XNNPACK), in its own process, for the ratios. */
  e2e_float32: E2EResult | null;
  /** Stored weights quantized at load: q8, then q4 (groups of 64). */
  e2e_quantized?: E2EResult[];
  kernels: KernelsResult | null;
  /** `tfvlm serve` under concurrent streams (serve section). */
  serve?: ServeResult | null;
  /** --big: published sizes end to end. */
  big: BigResult[];
  e2e_error?: string;
}

/** What bench/kernels.ts prints as its last line. */
export interface KernelsResult {
  bench: 'kernels';
  kernel_warm_up_ms: number;
  bandwidth_2t_gbps: number;
  bandwidth_1t_gbps: number;
  rows: { name: string; shape: string; threads: number; ms: number; value: number; unit: string; vs?: number; ok?: boolean }[];
  targets_met: number;
  targets: number;
}

export const UNITS: Record<string, string> = {
  _ms: 'milliseconds (median of the timed runs after warm-up)',
  _s: 'seconds',
  _gflops: 'GFLOP/s (1e9 floating-point operations per second)',
  _gbps: 'GB/s (1e9 bytes per second)',
  _mb: 'MiB (2^20 bytes)',
  _tok_s: 'tokens per second',
  pct_: 'percent of the limit measured in the same run',
  bytes_: 'bytes',
  seq_len: 'positions (keys; queries too for prefill rows)',
  cache_len: 'positions in the KV cache',
};
