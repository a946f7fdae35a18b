// The bench's markdown report: headline figures beside the limits they chase, then one table per
// section.
import type { KernelRow } from './attention-bench.ts';
import type { CacheRow } from './decode-cache-bench.ts';
import type { BenchResult } from './result.ts';

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
  const one = b.matmul_ms.find((m) => m.threads === 1);
  const pool = b.matmul_ms.filter((m) => m.threads > 1).map((m) => `${f(m.ms)} ms on ${m.threads} threads`).join(', ');
  const others = b.kernels_per_token - b.matmuls_per_token;
  const dispatchMs = (others * b.dispatch_us) / 1000;
  return [
    'decode step, broken down', `${f(one?.ms)} ms matMuls`,
    `its ${b.matmuls_per_token} weight products alone, one after another, on 1 thread${pool ? ` (${pool})` : ''}; ` +
      `the step runs ${f(b.kernels_per_token, 0)} kernels, the other ${f(others, 0)} × ${f(b.dispatch_us)} µs dispatch each (a trivial add) = ${f(dispatchMs)} ms; ` +
      `sum ${f((one?.ms ?? NaN) + dispatchMs)} ms vs ${f(measuredMs)} ms measured`,
  ];
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
  const touch = r.limits.find((l) => l.name === 'first touch');
  const oneThread = r.limits.find((l) => l.name === 'matvec, 1 thread');
  if (e) {
    headline.push(
      ['load (random 256M checkpoint)', `${f(e.load_ms / 1000, 2)} s`,
        `${f(e.checkpoint_mb, 0)} MB file → ${f(e.tensors_mb_after_load, 0)} MB of f32 tensors${touch ? `; first touch of fresh memory runs at ${f(touch.value, 2)} GB/s here, ${f(e.tensors_mb_after_load / 1024 / touch.value, 1)} s for those bytes alone` : ''}`],
      ['vision encoder + connector, one 512×512 tile', `${f(r.vision_ms_per_tile, 0)} ms`,
        `warm; the first tile after load ${f(e.vision_cold_ms, 0)} ms (includes the embedding and merge, and XNNPACK packing every vision weight)`],
      [`prefill, ${e.prompt_tokens}-token one-image prompt (decoder only)`, `${f(r.prefill_tok_s)} tok/s`,
        `${f(e.prefill_ms, 0)} ms warm; first use after load ${f(e.prefill_cold_ms, 0)} ms (XNNPACK packs every decoder weight)`],
      ['time to first token', `${f(e.time_to_first_token_ms, 0)} ms`, `warm (vision + prefill + first token); first prompt after load ${f(e.time_to_first_token_cold_ms, 0)} ms`],
      ...e.decode.map((d) => [
        `decode at context ~${d.context}`, `${f(d.tok_s)} tok/s`,
        `${f(d.ms_per_token)} ms/token vs floor ${f(r.decode_floor_ms)} ms (${f(e.decode_weight_bytes / 1e6, 0)} MB f32 weights ÷ bandwidth) = ${f(d.ms_per_token / r.decode_floor_ms!, 2)}× floor` +
          (oneThread ? `; ${f(d.ms_per_token / (e.decode_weight_bytes / oneThread.value / 1e6), 2)}× the one-thread floor ${f(e.decode_weight_bytes / oneThread.value / 1e6)} ms` : ''),
      ]),
      ...(e.decode_breakdown ? [decodeBreakdownRow(e.decode_breakdown, e.decode[0].ms_per_token)] : []),
      ['peak RSS (end-to-end process)', `${f(r.peak_rss_mb, 0)} MB`, e.wasm_heap_mb_after_load !== null && e.wasm_heap_mb_after_warmup !== null
        ? `wasm heap ${f(e.wasm_heap_mb_after_load, 0)} MB after load (${f(e.tensors_mb_after_load, 0)} MB tensors) → ${f(e.wasm_heap_mb_after_warmup, 0)} MB once every weight was used: XNNPACK keeps a packed copy of each matMul's right-hand operand`
        : ''],
    );
  } else if (r.e2e_error) {
    headline.push(['end to end', 'error', r.e2e_error]);
  }
  out.push(table(['figure', 'value', 'beside'], headline));
  out.push('');
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
  if (r.decode_cache.length) {
    out.push(`### Decode step per KV-cache strategy (append + attend, ${r.decode_cache[0].layers} layers, 9 / 3 heads × 64)`);
    out.push(cacheTable(r.decode_cache));
    out.push('');
  }
  out.push('GFLOP/s counts the two attention matMuls (4·H·T·S·D); "MB moved" is q, k, v, output plus four passes over materialised score matrices (an estimate); % bw is against the matvec bandwidth above (machine limits are best runs, everything else medians). One-token rows run on `--decode-threads` (default 1). Every row was checked against the reference (max |Δ| ≤ 1e-4 · max(1, |ref|)) before timing; times are medians after warm-up.');
  out.push('');
  out.push('Reproduce: `npm run bench` (full) or `npm run bench -- --quick`; `--only machine,attention,qkv,cache,e2e` picks sections; TFVLM_BACKEND / TFVLM_THREADS pick the backend and threads.');
  return out.join('\n');
}
