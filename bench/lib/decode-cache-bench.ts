// Decode-step attention against a KV cache, per cache strategy: the cost of appending one token's
// keys/values and attending over the whole cache, summed over the text decoder's layers (30 for
// SmolVLM-256M). Each strategy's first step is checked against ConcatKVCache + the reference kernel.
import { tf } from '../../src/backend/index.ts';
import { attendToCache, cachedKeysValues, decodeStepFused, scaledDotProductAttention } from '../../src/layers/attention.ts';
import { ConcatKVCache, type KVCache } from '../../src/layers/kv-cache.ts';
import { PreallocatedKVCache } from '../../src/layers/preallocated-kv-cache.ts';
import { decodeAttention, type AttentionKernel } from './attention-variants.ts';
import { PagedKVCache, type AttendingKVCache } from './paged-kv-cache.ts';
import { agrees, MB, median, withComputeThreads } from './measure.ts';
import type { MachineLimits } from './machine.ts';
import { TEXT } from './attention-bench.ts';

export interface CacheRow {
  strategy: string;
  /** Positions in the cache when the timed steps start. */
  cache_len: number;
  layers: number;
  /** Per generated token, all layers: append + attention. */
  ms_per_token: number | null;
  /** K and V of every layer read once per token. */
  bytes_per_token: number;
  gbps: number | null;
  pct_bandwidth: number | null;
  /** Tensor memory held by the caches after the timed steps. */
  cache_mb: number | null;
  max_abs_diff: number | null;
  threads: number;
  error?: string;
}

interface Strategy {
  name: string;
  make: () => AttendingKVCache;
  /** Also in --quick runs (the others add detail, not a different answer). */
  quick?: boolean;
}

/** A cache (which only stores) and a kernel over its whole keys and values, as one appendAndAttend. */
function throughKernel(cache: KVCache, kernel: AttentionKernel): AttendingKVCache {
  return {
    get offset() {
      return cache.offset;
    },
    update: (k, v) => cache.update(k, v),
    appendAndAttend(q, k, v, mask, scale) {
      cache.update(k, v);
      const all = cachedKeysValues(cache.view());
      try {
        return kernel(q, all.k, all.v, mask, scale);
      } finally {
        tf.dispose([all.k, all.v]);
      }
    },
    dispose: () => cache.dispose(),
  };
}

/** The model's attendToCache over a cache's buffers (prefill, and decode off wasm). */
function overBuffers(cache: KVCache): AttendingKVCache {
  return {
    get offset() {
      return cache.offset;
    },
    update: (k, v) => cache.update(k, v),
    appendAndAttend(q, k, v, mask, scale) {
      cache.update(k, v);
      return attendToCache(q, cache.view(), mask, scale);
    },
    dispose: () => cache.dispose(),
  };
}

/**
 * The model's one-token path on wasm: decodeStepFused (fused softmax over the valid rows, heads merged
 * by a kernel). The query split and the output transpose back to [B, H, 1, D] are the rotary kernel's
 * and o_proj's business in the model; here they are a few extra small ops.
 */
function fusedDecodeStep(): AttendingKVCache {
  const cache = new PreallocatedKVCache({ chunk: 256 });
  return {
    get offset() {
      return cache.offset;
    },
    update: (k, v) => cache.update(k, v),
    appendAndAttend(q, k, v, _mask, scale) {
      const [B, H, , D] = q.shape as [number, number, number, number];
      const Hkv = k.shape[1] as number;
      const qTs = tf.tidy(() => tf.unstack(tf.transpose(tf.reshape(tf.mul(q, scale), [B * Hkv, H / Hkv, D]), [0, 2, 1])));
      try {
        cache.update(k, v);
        const merged = decodeStepFused(qTs, cache.view());
        return tf.tidy(() => tf.transpose(tf.reshape(merged, [B, 1, H, D]), [0, 2, 1, 3]));
      } finally {
        tf.dispose(qTs);
      }
    },
    dispose: () => cache.dispose(),
  };
}

export const CACHE_STRATEGIES: Strategy[] = [
  { name: 'concat + reference', make: () => throughKernel(new ConcatKVCache(), scaledDotProductAttention), quick: true },
  { name: 'concat + decode kernel', make: () => throughKernel(new ConcatKVCache(), decodeAttention), quick: true },
  { name: 'preallocated, copied out + decode kernel', make: () => throughKernel(new PreallocatedKVCache(), decodeAttention) },
  { name: 'preallocated in place, chunk 256 + attendToCache (prefill, and decode off wasm)', make: () => overBuffers(new PreallocatedKVCache({ chunk: 256 })), quick: true },
  { name: 'preallocated in place, chunk 256 + fused decode step (decodeStepFused, used by the model on wasm)', make: fusedDecodeStep, quick: true },
  { name: 'preallocated in place, chunk 64 + attendToCache', make: () => overBuffers(new PreallocatedKVCache({ chunk: 64 })) },
  { name: 'paged 256 (appendAndAttend)', make: () => new PagedKVCache({ pageSize: 256 }) },
  { name: 'paged 1024 (appendAndAttend)', make: () => new PagedKVCache({ pageSize: 1024 }), quick: true },
];

export async function benchDecodeCaches(opts: {
  quick: boolean; layers: number; limits: MachineLimits; threads: number; decodeThreads: number; log: (line: string) => void;
}): Promise<CacheRow[]> {
  return withComputeThreads(opts.decodeThreads, opts.threads, (inEffect) => decodeCaches(opts, inEffect));
}

function decodeCaches(opts: { quick: boolean; layers: number; limits: MachineLimits; log: (line: string) => void }, threads: number): CacheRow[] {
  const { B, H, Hkv, D } = TEXT;
  const scale = 1 / Math.sqrt(D);
  const rows: CacheRow[] = [];
  opts.log(`decode step against a KV cache, ${opts.layers} layers, ${threads} thread(s):`);
  for (const S of opts.quick ? [64, 1024, 4096] : [64, 256, 1024, 2048, 4096]) {
    // One prefix shared by every layer (the values do not change the cost), new k/v per step.
    const steps = opts.quick ? (S >= 4096 ? 3 : 5) : 10;
    const prefix = { k: tf.randomNormal([B, Hkv, S, D], 0, 1, 'float32', 1), v: tf.randomNormal([B, Hkv, S, D], 0, 1, 'float32', 2) };
    const q = tf.randomNormal([B, H, 1, D], 0, 1, 'float32', 3);
    const step = { k: tf.randomNormal([B, Hkv, 1, D], 0, 1, 'float32', 4), v: tf.randomNormal([B, Hkv, 1, D], 0, 1, 'float32', 5) };
    const reference = tf.tidy(() => {
      const k = tf.concat([prefix.k, step.k], 2);
      const v = tf.concat([prefix.v, step.v], 2);
      return Float32Array.from(scaledDotProductAttention(q, k, v, undefined, scale).dataSync() as Float32Array);
    });
    for (const strategy of CACHE_STRATEGIES.filter((x) => x.quick || !opts.quick)) {
      const bytes = opts.layers * 2 * B * Hkv * S * D * 4;
      const row: CacheRow = {
        strategy: strategy.name, cache_len: S, layers: opts.layers, ms_per_token: null, bytes_per_token: bytes,
        gbps: null, pct_bandwidth: null, cache_mb: null, max_abs_diff: null, threads,
      };
      const caches = Array.from({ length: opts.layers }, () => strategy.make());
      try {
        const bytesBefore = tf.memory().numBytes;
        for (const c of caches) c.update(prefix.k, prefix.v);
        const first = caches[0]!.appendAndAttend(q, step.k, step.v, undefined, scale); // opts.layers ≥ 1
        const check = agrees(first.dataSync() as Float32Array, reference);
        first.dispose();
        row.max_abs_diff = check.maxAbs;
        if (!check.ok) throw new Error(`disagrees with concat + reference: max |Δ| ${check.maxAbs.toExponential(2)}`);
        for (const c of caches.slice(1)) c.appendAndAttend(q, step.k, step.v, undefined, scale).dispose();
        const times: number[] = [];
        for (let i = 0; i < steps + 1; i++) {
          const t0 = performance.now();
          for (const c of caches) c.appendAndAttend(q, step.k, step.v, undefined, scale).dispose();
          if (i > 0) times.push(performance.now() - t0); // the first step is warm-up
        }
        row.cache_mb = (tf.memory().numBytes - bytesBefore) / MB;
        row.ms_per_token = median(times);
        row.gbps = bytes / row.ms_per_token / 1e6;
        row.pct_bandwidth = (100 * row.gbps) / opts.limits.bandwidthGbps;
      } catch (e) {
        row.error = (e as Error).message.split('\n')[0];
      } finally {
        for (const c of caches) c.dispose();
      }
      opts.log(`  S=${S} ${strategy.name}: ${row.error ? `ERROR ${row.error}` : `${row.ms_per_token!.toFixed(1)} ms/token`}`);
      rows.push(row);
    }
    tf.dispose([prefix.k, prefix.v, q, step.k, step.v]);
  }
  return rows;
}
