// Attention kernels at the SmolVLM-256M shapes: vision self-attention (12 heads, MHA, no mask),
// text prefill with grouped-query heads (9 query / 3 kv heads, causal), one-query decode kernels,
// and fused QKV vs three projections. Every variant is checked against the reference kernel on the
// same inputs before it is timed; a disagreeing variant gets an error row instead of a time.
import { tf } from '../../src/backend/index.ts';
import { causalMask } from '../../src/layers/masks.ts';
import { ATTENTION_KERNELS, type AttentionKernel } from './attention-variants.ts';
import { agrees, MB, peakTensorBytes, time, withComputeThreads } from './measure.ts';
import type { MachineLimits } from './machine.ts';

export interface KernelRow {
  section: 'vision-prefill' | 'text-prefill-gqa' | 'decode-kernel' | 'qkv-projection';
  variant: string;
  seq_len: number;
  shape: string;
  ms: number | null;
  gflops: number | null;
  pct_peak: number | null;
  bytes_moved: number;
  gbps: number | null;
  pct_bandwidth: number | null;
  peak_tensor_mb: number | null;
  max_abs_diff: number | null;
  /** Threads ops computed on. */
  threads: number;
  error?: string;
}

export interface AttentionShape {
  B: number;
  H: number;
  Hkv: number;
  D: number;
}

/** SmolVLM-256M: vision hidden 768 = 12 × 64 (MHA); text hidden 576 = 9 × 64 query, 3 kv heads. */
export const VISION: AttentionShape = { B: 1, H: 12, Hkv: 12, D: 64 };
export const TEXT: AttentionShape = { B: 1, H: 9, Hkv: 3, D: 64 };

/**
 * Bytes an attention call must move at least (q, k, v read, output written) plus, for kernels that
 * materialise scores, four passes over the B·H·T·S score/probability matrices (matMul writes,
 * softmax reads and writes, matMul reads). An estimate: tfjs runs each op as its own pass.
 */
export function attentionBytes(s: AttentionShape, T: number, S: number, materialisesScores: boolean): number {
  const io = 4 * (2 * s.B * s.H * T * s.D + 2 * s.B * s.Hkv * S * s.D);
  return io + (materialisesScores ? 4 * 4 * s.B * s.H * T * S : 0);
}

interface RunOptions {
  quick: boolean;
  /** Threads for full-size work (prefill, vision) and for one-token work (decode rows). */
  threads: number;
  decodeThreads: number;
  limits: MachineLimits;
  log: (line: string) => void;
}

async function kernelRow(
  section: KernelRow['section'], variant: string, kernel: AttentionKernel, s: AttentionShape, T: number, S: number,
  inputs: { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor; mask?: tf.Tensor }, reference: Float32Array, opts: RunOptions,
): Promise<KernelRow> {
  const flops = 4 * s.B * s.H * T * S * s.D;
  const bytes = attentionBytes(s, T, S, !variant.startsWith('flash'));
  const row: KernelRow = {
    section, variant, seq_len: S, shape: `B${s.B} H${s.H} Hkv${s.Hkv} T${T} S${S} D${s.D}`,
    ms: null, gflops: null, pct_peak: null, bytes_moved: bytes, gbps: null, pct_bandwidth: null, peak_tensor_mb: null, max_abs_diff: null,
    threads: T === 1 ? opts.decodeThreads : opts.threads,
  };
  const scale = 1 / Math.sqrt(s.D);
  const call = () => kernel(inputs.q, inputs.k, inputs.v, inputs.mask, scale);
  try {
    // The checked call is also the warm-up and the memory measurement.
    let output: Float32Array | undefined;
    const peak = await peakTensorBytes(() => {
      const out = call();
      output = Float32Array.from(out.dataSync() as Float32Array);
      return out;
    });
    const check = agrees(output!, reference);
    row.max_abs_diff = check.maxAbs;
    if (!check.ok) throw new Error(`disagrees with the reference: max |Δ| ${check.maxAbs.toExponential(2)} > ${check.bound.toExponential(2)}`);
    row.peak_tensor_mb = peak / MB;
    const t = time(() => call().dispose(), { warmup: T === 1 ? 2 : 0, runs: T === 1 ? 20 : opts.quick ? 3 : 7, budgetMs: opts.quick ? 3000 : 20000 });
    row.ms = t.ms;
    row.gflops = flops / t.ms / 1e6;
    row.pct_peak = (100 * row.gflops) / opts.limits.matmulPeakGflops;
    row.gbps = bytes / t.ms / 1e6;
    row.pct_bandwidth = (100 * row.gbps) / opts.limits.bandwidthGbps;
  } catch (e) {
    row.error = (e as Error).message.split('\n')[0];
  }
  opts.log(`  ${section} ${variant} S=${S}: ${row.error ? `ERROR ${row.error}` : `${row.ms!.toFixed(1)} ms, ${row.gflops!.toFixed(1)} GFLOP/s`}`);
  return row;
}

function randomInputs(s: AttentionShape, T: number, S: number, seed: number, causal: boolean) {
  return {
    q: tf.randomNormal([s.B, s.H, T, s.D], 0, 1, 'float32', seed),
    k: tf.randomNormal([s.B, s.Hkv, S, s.D], 0, 1, 'float32', seed + 1),
    v: tf.randomNormal([s.B, s.Hkv, S, s.D], 0, 1, 'float32', seed + 2),
    mask: causal ? causalMask({ batch: s.B, queryLen: T, offset: S - T }) : undefined,
  };
}

type KernelName = keyof typeof ATTENTION_KERNELS;

/** Runs `variants` on one input set, the reference first (its output is what the others must match). */
async function section(
  name: KernelRow['section'], s: AttentionShape, T: number, S: number, causal: boolean, variants: KernelName[], opts: RunOptions,
): Promise<KernelRow[]> {
  const inputs = randomInputs(s, T, S, 7 + S, causal);
  try {
    const ref = ATTENTION_KERNELS.reference.kernel(inputs.q, inputs.k, inputs.v, inputs.mask, 1 / Math.sqrt(s.D));
    const reference = Float32Array.from(ref.dataSync() as Float32Array);
    ref.dispose();
    const rows: KernelRow[] = [];
    await withComputeThreads(T === 1 ? opts.decodeThreads : opts.threads, opts.threads, async () => {
      for (const v of variants) rows.push(await kernelRow(name, v, ATTENTION_KERNELS[v].kernel, s, T, S, inputs, reference, opts));
    });
    return rows;
  } finally {
    tf.dispose([inputs.q, inputs.k, inputs.v, ...(inputs.mask ? [inputs.mask] : [])]);
  }
}

export async function benchAttentionKernels(opts: RunOptions): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  const seqs = opts.quick ? [64, 256, 1024] : [64, 256, 1024, 2048, 4096];
  opts.log('vision self-attention (12 heads, no mask):');
  for (const S of seqs) {
    // The naive batched path costs minutes at 2048+; its trend is clear by 1024.
    const variants: KernelName[] = ['reference', 'flash', ...(S <= (opts.quick ? 256 : 1024) ? ['batched' as const] : [])];
    rows.push(...(await section('vision-prefill', VISION, S, S, false, variants, opts)));
  }
  opts.log('text prefill, grouped-query (9 / 3 heads, causal):');
  for (const S of opts.quick ? [256, 1024] : [64, 256, 1024, 4096]) {
    // Causal flash over 16+ key blocks takes minutes at 4096 here; its trend is clear by 1024.
    rows.push(...(await section('text-prefill-gqa', TEXT, S, S, true, ['reference', 'gqa-repeat', 'gqa-grouped', ...(S <= 1024 ? ['flash' as const] : [])], opts)));
  }
  opts.log('decode attention, one query (9 / 3 heads):');
  for (const S of opts.quick ? [256, 4096] : [64, 256, 1024, 4096]) {
    rows.push(...(await section('decode-kernel', TEXT, 1, S, false, ['reference', 'gqa-repeat', 'gqa-grouped', 'decode', 'batched'], opts)));
  }
  return rows;
}

/**
 * Three projections x·Wq, x·Wk, x·Wv vs one x·[Wq|Wk|Wv] split in three. The one-token case cycles
 * through `layers` distinct weight sets, as a decode step does, so weights stream from memory
 * instead of sitting in cache; its ms is per layer.
 */
export async function benchQkvProjection(opts: RunOptions & { layers: number }): Promise<KernelRow[]> {
  const cases = [
    { name: 'vision tile', T: 1024, hidden: 768, q: 768, kv: 768, sets: 1 },
    { name: 'text prefill', T: 81, hidden: 576, q: 576, kv: 192, sets: 1 },
    { name: `text decode (${opts.layers} layers' weights)`, T: 1, hidden: 576, q: 576, kv: 192, sets: opts.layers },
  ];
  const rows: KernelRow[] = [];
  opts.log('QKV projection, fused vs three:');
  for (const c of cases) {
    const x = tf.randomNormal([c.T, c.hidden], 0, 1, 'float32', 1);
    const sets = Array.from({ length: c.sets }, (_, i) => {
      const wq = tf.randomNormal([c.hidden, c.q], 0, 0.05, 'float32', 2 + 3 * i);
      const wk = tf.randomNormal([c.hidden, c.kv], 0, 0.05, 'float32', 3 + 3 * i);
      const wv = tf.randomNormal([c.hidden, c.kv], 0, 0.05, 'float32', 4 + 3 * i);
      return { wq, wk, wv, fused: tf.concat([wq, wk, wv], 1) };
    });
    const three = (w: (typeof sets)[number]) => [tf.matMul(x, w.wq), tf.matMul(x, w.wk), tf.matMul(x, w.wv)];
    const one = (w: (typeof sets)[number]) => tf.split(tf.matMul(x, w.fused), [c.q, c.kv, c.kv], 1);
    const first = sets[0]!; // every case has c.sets ≥ 1
    const reference = Float32Array.from(three(first).flatMap((t) => { const d = Array.from(t.dataSync()); t.dispose(); return d; }));
    const flops = 2 * c.T * c.hidden * (c.q + 2 * c.kv);
    const bytes = 4 * (c.T * c.hidden + c.hidden * (c.q + 2 * c.kv) + c.T * (c.q + 2 * c.kv));
    for (const [variant, fn] of [['three projections', three], ['fused qkv', one]] as const) {
      const row: KernelRow = {
        section: 'qkv-projection', variant, seq_len: c.T, shape: `${c.name}: [${c.T}, ${c.hidden}] · [${c.hidden}, ${c.q}+${c.kv}+${c.kv}]`,
        ms: null, gflops: null, pct_peak: null, bytes_moved: bytes, gbps: null, pct_bandwidth: null, peak_tensor_mb: null, max_abs_diff: null,
        threads: c.T === 1 ? opts.decodeThreads : opts.threads,
      };
      const out = fn(first);
      const got = Float32Array.from(out.flatMap((t) => Array.from(t.dataSync())));
      tf.dispose(out);
      const check = agrees(got, reference);
      row.max_abs_diff = check.maxAbs;
      if (!check.ok) {
        row.error = `disagrees with three projections: max |Δ| ${check.maxAbs.toExponential(2)}`;
      } else {
        const pass = () => { for (const w of sets) tf.dispose(fn(w)); };
        const t = await withComputeThreads(row.threads, opts.threads, () => time(pass, { warmup: 2, runs: c.T === 1 ? 15 : opts.quick ? 5 : 9 }));
        row.ms = t.ms / c.sets;
        row.gflops = flops / row.ms / 1e6;
        row.pct_peak = (100 * row.gflops) / opts.limits.matmulPeakGflops;
        row.gbps = bytes / row.ms / 1e6;
        row.pct_bandwidth = (100 * row.gbps) / opts.limits.bandwidthGbps;
      }
      opts.log(`  ${c.name} ${variant}: ${row.error ?? `${row.ms!.toFixed(3)} ms`}`);
      rows.push(row);
    }
    tf.dispose([x, ...sets.flatMap((w) => [w.wq, w.wk, w.wv, w.fused])]);
  }
  return rows;
}
