// The bench's markdown report: headline figures beside the limits they chase, then one table per
// section.
import type { KernelRow } from './attention-bench.ts';
import type { CacheRow } from './decode-cache-bench.ts';
import type { BigResult } from './big.ts';
import type { E2EResult } from './e2e.ts';
import { serveTable } from './serve-bench.ts';
import type { BenchResult, KernelsResult } from './result.ts';

const f = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function kernelTable(rows: KernelRow[]): string {
  return table(
    ['variant', 'seq', 'threads', 'ms', 'GFLOP/s', '% peak', 'MB moved', 'GB/s', '% bw', 'peak tensor MB', 'max |Δ|'],
    rows.map((r) => r.error
      ? [r.variant, String(r.seq_len), String(r.threads), `error: ${r.error}`, '', '', '', '', '', '', f(r.max_abs_diff, 7)]
      : [r.variant, String(r.seq_len), String(r.threads), f(r.ms, r.ms! < 1 ? 3 : 1), f(r.gflops), f(r.pct_peak), f(r.bytes_moved / 1e6), f(r.gbps, 2), f(r.pct_bandwidth), f(r.peak_tensor_mb), r.max_abs_diff === null ? '—' : r.max_abs_diff.toExponential(1)]),
  );
}

function cacheTable(rows: CacheRow[]): string {
  return table(
    ['strategy', 'cache len', 'threads', 'ms / token (all layers)', 'KV MB read', 'GB/s', '% bw', 'cache MB', 'max |Δ|'],
    rows.map((r) => r.error
      ? [r.strategy, String(r.cache_len), String(r.threads), `error: ${r.error}`, '', '', '', '', '']
      : [r.strategy, String(r.cache_len), String(r.threads), f(r.ms_per_token, 2), f(r.bytes_per_token / 1e6), f(r.gbps, 2), f(r.pct_bandwidth), f(r.cache_mb), r.max_abs_diff === null ? '—' : r.max_abs_diff.toExponential(1)]),
  );
}

/**
 * The short-context decode step split into its weight products alone and everything else priced as
 * kernel dispatch: what a step would cost if only the weights streamed, and what the other kernels add.
 */
function decodeBreakdownRow(b: NonNullable<BenchResult['e2e']>['decode_breakdown'], measuredMs: number): string[] {
  const one = b.matmul_ms.find((m) => m.threads === 1) ?? b.matmul_ms[0];
  const pool = b.matmul_ms.filter((m) => m !== one).map((m) => `${f(m.ms)} ms on ${m.threads} threads`).join(', ');
  // Fewer tfjs kernels than products: the packed decode step (models/llama/decode-step.ts) runs the
  // products, and everything else, outside tfjs; the kernels left are the step's set-up.
  const bypassed = b.kernels_per_token < b.matmuls_per_token;
  const others = bypassed ? b.kernels_per_token : b.kernels_per_token - b.matmuls_per_token;
  const dispatchMs = (others * b.dispatch_us) / 1000;
  const kernels = bypassed
    ? `the step runs its products and the rest outside tfjs, and ${f(others, 0)} tfjs kernels`
    : `the step runs ${f(b.kernels_per_token, 0)} kernels, the other ${f(others, 0)}`;
  return [
    'decode step, broken down', `${f(one?.ms)} ms matMuls`,
    `its ${b.matmuls_per_token} weight products alone, one after another, on ${one?.threads ?? '?'} thread(s)${pool ? ` (${pool})` : ''}; ` +
      `${kernels} × ${f(b.dispatch_us)} µs dispatch each (a trivial add) = ${f(dispatchMs)} ms; ` +
      `sum ${f((one?.ms ?? NaN) + dispatchMs)} ms vs ${f(measuredMs)} ms measured`,
  ];
}

/** float32 (XNNPACK) and stored (tfvlm's kernels) side by side: the end-to-end rows of the report. */
function residenceTable(s: E2EResult, x: E2EResult | null): string {
  const ratio = (a: number | undefined, b: number | undefined, digits = 2) => (a === undefined || b === undefined ? '—' : `${f(a / b, digits)}×`);
  const rows: string[][] = [
    ['load', `${f(x ? x.load_ms / 1000 : NaN, 2)} s`, `${f(s.load_ms / 1000, 2)} s`, ratio(s.load_ms, x?.load_ms),
      `${f(s.checkpoint_mb, 0)} MB checkpoint`],
    ['vision encoder + connector, one 512×512 tile', `${f(x?.vision_ms_per_tile, 0)} ms`, `${f(s.vision_ms_per_tile, 0)} ms`,
      ratio(s.vision_ms_per_tile, x?.vision_ms_per_tile), 'warm; target ≤ 1.15× float32'],
    [`prefill, ${s.prompt_tokens}-token one-image prompt (decoder only)`, `${f(x?.prefill_ms, 0)} ms`, `${f(s.prefill_ms, 0)} ms`,
      ratio(s.prefill_ms, x?.prefill_ms), `warm, median; first use after load: ${f(x?.prefill_cold_ms, 0)} ms float32 (XNNPACK packs every weight) vs ${f(s.prefill_cold_ms, 0)} ms stored; target ≤ 1.15× float32`],
    ['time to first token', `${f(x?.time_to_first_token_ms, 0)} ms`, `${f(s.time_to_first_token_ms, 0)} ms`,
      ratio(s.time_to_first_token_ms, x?.time_to_first_token_ms), `warm; first prompt after load ${f(x?.time_to_first_token_cold_ms, 0)} vs ${f(s.time_to_first_token_cold_ms, 0)} ms`],
    ...s.decode.map((d, i) => {
      const xd = x?.decode[i];
      return [`decode at context ~${d.context}`, `${f(xd?.tok_s)} tok/s (${f(xd?.ms_per_token)} ms)`, `${f(d.tok_s)} tok/s (${f(d.ms_per_token)} ms)`,
        ratio(d.tok_s, xd?.tok_s), i === 0 ? `weights read per token: ${f((x?.decode_weight_bytes ?? NaN) / 1e6, 0)} MB float32 vs ${f(s.decode_weight_bytes / 1e6, 0)} MB stored; target ≥ 1.8× (the ratio is of tok/s)` : ''];
    }),
    ['peak RSS', `${f(x?.peak_rss_mb, 0)} MB`, `${f(s.peak_rss_mb, 0)} MB`, ratio(s.peak_rss_mb, x?.peak_rss_mb),
      `target ≤ 1.0 GB stored; float32: wasm heap ${f(x?.wasm_heap_mb_after_warmup, 0)} MB once every weight was used (XNNPACK's packed copies)`],
  ];
  return table(['end to end (SmolVLM-256M shape, bf16 checkpoint)', 'float32 (XNNPACK)', 'stored (bf16)', 'stored ÷ float32', 'beside'], rows);
}

/** Quantized at load (q8, q4) beside float32 and the stored bf16 weights: decode, vision, memory. */
function quantizedTable(x: E2EResult | null, s: E2EResult, qs: E2EResult[]): string {
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '—' : `${f(a / b, 2)}×`);
  const rows = [...(x ? [x] : []), s, ...qs].map((r) => {
    const name = r.dtype === 'auto' || r.dtype === undefined ? (r.weights === 'float32' ? 'float32 (XNNPACK)' : 'stored bf16') : `${r.dtype} (groups of 64)`;
    const d = r.decode[0];
    return [name, `${f(r.load_ms / 1000, 2)} s`, `${f(r.decode_weight_bytes / 1e6, 0)} MB`, `${f(d.tok_s)} tok/s (${f(d.ms_per_token)} ms)`,
      ratio(d.tok_s, x?.decode[0].tok_s), ratio(d.tok_s, s.decode[0].tok_s), `${f(r.decode[1].tok_s)} tok/s`,
      `${f(r.prefill_ms, 0)} ms`, `${f(r.vision_ms_per_tile, 0)} ms`, `${f(r.peak_rss_mb, 0)} MB`];
  });
  return table(['SmolVLM-256M shape', 'load', 'weights read per token', `decode (context ~${s.decode[0].context})`, '÷ float32', '÷ bf16',
    `decode (context ~${s.decode[1].context})`, `prefill (${s.prompt_tokens} tokens)`, 'vision, one tile', 'peak RSS'], rows);
}

function kernelsTable(k: KernelsResult): string {
  return table(['row', 'shape', 'threads', 'ms', 'value', 'vs', 'ok'],
    k.rows.map((r) => [r.name, r.shape, String(r.threads), f(r.ms, 3), `${f(r.value, r.value >= 100 ? 0 : 1)} ${r.unit}`, r.vs === undefined ? '' : f(r.vs, 2),
      r.ok === undefined ? '' : r.ok ? 'yes' : 'NO']));
}

function bigTable(rows: BigResult[]): string {
  return table(['model (random weights, published config)', 'checkpoint', 'load', 'RSS after load', 'prompt', 'vision (1 image)', 'prefill', 'time to first token', 'decode', 'peak RSS'],
    rows.map((b) => [
      `${b.model} (${b.architecture}, ${b.weights}${b.dtype && b.dtype !== 'auto' ? `, ${b.dtype} at load` : ''})`, `${f(b.parameters_b, 2)} B params, ${f(b.checkpoint_gb, 2)} GB`, `${f(b.load_ms / 1000, 1)} s`,
      `${f(b.rss_mb_after_load / 1024, 2)} GB`, `${b.prompt_tokens} tokens`, `${f(b.vision_ms / 1000, 1)} s`, `${f(b.prefill_ms / 1000, 1)} s`,
      `${f(b.time_to_first_token_ms / 1000, 1)} s`, `${f(b.decode_tok_s, 2)} tok/s (${f(b.decode_ms_per_token, 0)} ms)`, `${f(b.peak_rss_mb / 1024, 2)} GB`,
    ]));
}

export function markdownReport(r: BenchResult): string {
  const out: string[] = [];
  out.push(`## tfvlm bench — ${r.timestamp}${r.quick ? ' (--quick)' : ''}`);
  out.push('');
  out.push(`${r.machine.cpu} × ${r.machine.cores} cores, ${f(r.machine.total_mem_gb, 0)} GB; load average at start ${r.machine.load_avg.map((x) => x.toFixed(1)).join(' / ')}; ` +
    `backend **${r.backend}** (SIMD ${r.simd ?? 'n/a'}, ${r.threads} thread${r.threads === 1 ? '' : 's'}), tfjs ${r.tfjs_version}, node ${r.machine.node}, commit ${r.git_commit}${r.git_dirty ? ' (dirty)' : ''}; ${f(r.duration_s, 0)} s.`);
  out.push('');
  const e = r.e2e;
  const headline: string[][] = [
    ['matmul peak (large GEMM)', `${f(r.matmul_peak_gflops)} GFLOP/s`, ''],
    ['weight-streaming bandwidth (matvec)', `${f(r.bandwidth_gbps, 2)} GB/s`, ''],
  ];
  const oneThread = r.limits.find((l) => l.name === 'matvec, 1 thread');
  if (e) {
    headline.push(
      ...e.decode.slice(0, 1).map((d) => [
        `decode floor at context ~${d.context} (stored)`, `${f(r.decode_floor_ms)} ms`,
        `${f(e.decode_weight_bytes / 1e6, 0)} MB of weights ÷ bandwidth; measured ${f(d.ms_per_token)} ms = ${f(d.ms_per_token / r.decode_floor_ms!, 2)}× floor` +
          (oneThread ? `; one-thread floor ${f(e.decode_weight_bytes / oneThread.value / 1e6)} ms` : ''),
      ]),
      ...(e.decode_breakdown ? [decodeBreakdownRow(e.decode_breakdown, e.decode[0].ms_per_token)] : []),
    );
  } else if (r.e2e_error) {
    headline.push(['end to end', 'error', r.e2e_error]);
  }
  out.push(table(['figure', 'value', 'beside'], headline));
  out.push('');
  if (e) {
    out.push(residenceTable(e, r.e2e_float32));
    out.push('');
  }
  if (e && r.e2e_quantized?.length) {
    out.push('### Quantized at load (`--dtype q8|q4`: the language model at 8 / 4 bits, the vision tower\'s linears at 8)');
    out.push(quantizedTable(r.e2e_float32, e, r.e2e_quantized));
    out.push('targets: decode q8 ≥ 2.5× and q4 ≥ 3.5× float32 tok/s; q4 peak RSS ≤ 0.6 GB; vision at q8 no slower than bf16.');
    out.push('');
  }
  if (r.serve) {
    out.push(`### \`tfvlm serve\`: concurrent streams (continuous batching), ${r.serve.tokens_per_request} tokens each, temperature 0`);
    out.push(serveTable(r.serve));
    out.push('');
    out.push('decode tok/s (clients): every stream\'s tokens after its first, over the window from the first first token to the last end; decode steps: the batcher\'s own tokens per step time; TTFT under load includes waiting for the other requests\' prefills (one per step). target: 8 streams ≥ 4× 1 stream.');
    out.push('');
  }
  if (r.big.length) {
    out.push('### Published sizes (`--big`)');
    out.push(bigTable(r.big));
    out.push('');
  }
  if (r.kernels) {
    out.push(`### Linear kernels (src/kernels): ${r.kernels.targets_met} of ${r.kernels.targets} targets met`);
    out.push(kernelsTable(r.kernels));
    out.push('');
    out.push('vs: matvec GB/s ÷ the tfjs f32 matvec bandwidth row of the same thread count (target ≥ 0.8 on all threads); matmul: XNNPACK f32 ms ÷ kernel ms (target ≥ 1/1.15).');
    out.push('');
  }
  if (r.limits.length) {
    out.push('### Machine limits');
    out.push(table(['op', 'shape', 'ms', 'value', 'cpu/wall'], r.limits.map((l) => [l.name, l.shape, f(l.ms, 2), `${f(l.value, 2)} ${l.unit}`, f(l.cpuPerWall, 2)])));
    out.push('');
  }
  const sections: [KernelRow['section'], string][] = [
    ['vision-prefill', 'Vision self-attention (12 heads × 64, no mask, T = S)'],
    ['text-prefill-gqa', 'Text prefill attention, grouped-query (9 query / 3 kv heads × 64, causal, T = S)'],
    ['decode-kernel', 'Decode attention kernels (one query, 9 / 3 heads, cache of S)'],
    ['qkv-projection', 'QKV projection: fused vs three matMuls (seq = rows)'],
  ];
  for (const [key, title] of sections) {
    const rows = r.attention.filter((x) => x.section === key);
    if (!rows.length) continue;
    out.push(`### ${title}`);
    out.push(kernelTable(rows));
    out.push('');
  }
  const [firstCacheRow] = r.decode_cache;
  if (firstCacheRow) {
    out.push(`### Decode step per KV-cache strategy (append + attend, ${firstCacheRow.layers} layers, 9 / 3 heads × 64)`);
    out.push(cacheTable(r.decode_cache));
    out.push('');
  }
  out.push('GFLOP/s counts the two attention matMuls (4·H·T·S·D); "MB moved" is q, k, v, output plus four passes over materialised score matrices (an estimate); % bw is against the matvec bandwidth above (machine limits are best runs, everything else medians). One-token rows run on `--decode-threads` (default 1). Every row was checked against the reference (max |Δ| ≤ 1e-4 · max(1, |ref|)) before timing; times are medians after warm-up.');
  out.push('');
  out.push('Reproduce: `npm run bench` (full) or `npm run bench -- --quick`; `--only machine,kernels,attention,qkv,cache,e2e,serve` picks sections; `--big` adds the published sizes; TFVLM_BACKEND / TFVLM_THREADS / TFVLM_KERNEL_THREADS pick the backend and threads.');
  return out.join('\n');
}
