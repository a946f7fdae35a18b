// Multi-head / grouped-query self-attention (transformers modeling_llama.py LlamaAttention and
// modeling_siglip.py SiglipAttention, eager path): softmax(q·kᵀ·scale + mask)·v, then the output
// projection. Query head h reads key/value head ⌊h / (H / Hkv)⌋ (repeat_kv order).
//
// All attention math is here: the reference kernel (scaledDotProductAttention), the kernels that read
// a KV cache's buffers (attendToCache, and decodeStepFused for one token on the fused wasm kernels),
// and chooseAttentionKernel, the one place that decides which runs. The fast kernels are tested
// against the reference. Why they are shaped as they are: the wasm backend runs a 2-D, untransposed
// matMul through XNNPACK and packs (and caches, by tensor id) its right-hand operand; every other
// matMul shape falls to a naive loop (tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc). So the cache's
// big buffers sit on the left of every matMul and the small query block on the right.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { fusedKernelsActive, mergeGroupedHeadsFused, rotaryFused, rotaryGroupedFused, softmaxColumnsFused } from '../backend/fused-kernels.ts';
import { linear, type Linear } from './linear.ts';
import { applyRotary, type RotaryTables } from './rotary.ts';
import type { KVCache, KVView } from './kv-cache.ts';

export interface AttentionWeights {
  q: Linear;
  k: Linear;
  v: Linear;
  /** Output projection (Llama `o_proj`, SigLIP `out_proj`). */
  o: Linear;
}

export interface AttentionOptions {
  numHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Defaults to 1/√headDim. */
  scale?: number;
  /** RoPE tables for the new positions ([B, 1, T, headDim]). */
  rotary?: RotaryTables;
  /** Additive mask [B, 1, T, S] or [B, 1, 1, S]; see masks.ts. */
  mask?: tf.Tensor;
  /** Keys/values of earlier positions; updated with this call's keys/values. */
  cache?: KVCache;
  /**
   * Receives the attention probabilities softmax(q·kᵀ·scale + mask) [B, H, T, S] (transformers'
   * `output_attentions`), valid inside the call only. Takes the reference kernel: the cache kernels
   * never materialise them.
   */
  onWeights?: (weights: tf.Tensor) => void;
}

/** Whether t is 3-D (narrows its shape to [number, number, number]). */
function isRank3(t: tf.Tensor): t is tf.Tensor3D {
  return t.rank === 3;
}

/** Whether t is 4-D (narrows its shape to [number, number, number, number]). */
function isRank4(t: tf.Tensor): t is tf.Tensor4D {
  return t.rank === 4;
}

/** The sizes of an attention call, checked: q [B, H, T, D], k/v [B, Hkv, S, D], mask [B|1, 1, T|1, S]. */
export interface AttentionDims {
  B: number;
  H: number;
  Hkv: number;
  T: number;
  S: number;
  D: number;
  groups: number;
}

export function checkAttentionShapes(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined): AttentionDims {
  if (!isRank4(q) || !isRank4(k) || !isRank4(v) || k.shape[0] !== q.shape[0] || k.shape[3] !== q.shape[3]
    || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new TfvlmError(`attention: q [B,H,T,D], k/v [B,Hkv,S,D] expected, got q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  }
  const [B, H, T, D] = q.shape;
  const [, Hkv, S] = k.shape;
  if (H % Hkv !== 0) throw new TfvlmError(`attention: ${H} query heads are not a multiple of ${Hkv} key/value heads`);
  if (mask && (mask.rank !== 4 || (mask.shape[0] !== B && mask.shape[0] !== 1) || mask.shape[1] !== 1
    || (mask.shape[2] !== T && mask.shape[2] !== 1) || mask.shape[3] !== S)) {
    throw new TfvlmError(`attention: mask must be [${B}, 1, ${T} or 1, ${S}], got [${mask.shape}]`);
  }
  return { B, H, Hkv, T, S, D, groups: H / Hkv };
}

/**
 * softmax(q·kᵀ·scale + mask)·v for q [B, H, T, D], k/v [B, Hkv, S, D] → [B, H, T, D]; with
 * onWeights, also hands it the probabilities [B, H, T, S].
 * Runs one 2-D matMul pair per (batch, head): the wasm backend's batched matMul has no fast path
 * (≈10× slower here), and a 2-D matMul with transposeB is ≈3× slower than transposing k once.
 */
export function scaledDotProductAttention(
  q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, scale: number, onWeights?: (weights: tf.Tensor) => void,
): tf.Tensor {
  const { B, H, Hkv, T, S, D, groups } = checkAttentionShapes(q, k, v, mask);
  return tf.tidy(() => {
    // Scaling q instead of the scores is exact for power-of-two scales (head_dim 16, 64, 256) and
    // within an ulp otherwise; it touches T·D instead of T·S values.
    const qs = tf.unstack(tf.reshape(tf.mul(q, scale), [B * H, T, D]));
    const kTs = tf.unstack(tf.reshape(tf.transpose(k, [0, 1, 3, 2]), [B * Hkv, D, S])); // [D, S] each
    const vs = tf.unstack(tf.reshape(v, [B * Hkv, S, D]));
    const masks = mask ? tf.unstack(tf.reshape(mask, [mask.shape[0], mask.shape[2] as number, S])) : undefined;
    const outs: tf.Tensor[] = [];
    const probs: tf.Tensor[] = [];
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const j = b * Hkv + Math.floor(h / groups);
        // Each head's T × S scores are freed before the next head (peak memory of one, not B·H),
        // unless onWeights wants them all.
        const [out, p] = tf.tidy(() => {
          let scores = tf.matMul(qs[b * H + h]!, kTs[j]!); // [T, S]
          if (masks) scores = tf.add(scores, masks[Math.min(b, masks.length - 1)]!);
          const weights = tf.softmax(scores);
          const head = tf.matMul(weights, vs[j]!); // [T, D]
          return onWeights ? [head, weights] : [head];
        });
        outs.push(out);
        if (p) probs.push(p);
      }
    }
    if (onWeights) onWeights(tf.reshape(tf.stack(probs), [B, H, T, S]));
    return tf.reshape(tf.stack(outs), [B, H, T, D]);
  });
}

/** The valid keys and values of a cache as [B, Hkv, length, D] (new tensors), for the reference kernel. */
export function cachedKeysValues(view: KVView): { k: tf.Tensor; v: tf.Tensor } {
  const { batch: B, kvHeads: Hkv, headDim: D, length: S } = view;
  return tf.tidy(() => ({
    k: tf.reshape(tf.stack(view.keys.map((x) => tf.slice(x, [0, 0], [S, D]))), [B, Hkv, S, D]),
    v: tf.reshape(tf.stack(view.valuesT.map((x) => tf.transpose(tf.slice(x, [0, 0], [D, S])))), [B, Hkv, S, D]),
  }));
}

/**
 * softmax(q·kᵀ·scale + mask)·v of q [B, H, T, D] over the positions a cache stores (mask [B|1, 1, T|1,
 * length] or none) → [B, H, T, D]. Per (batch, kv head), the `groups` query heads that share it are
 * one [D, groups·T] block on the right of the keys [C, D]; the unused tail of the buffers is masked
 * with −∞ (not finfo.min: a query row whose real keys are all masked must still spread its weight
 * over those keys only, as the reference does).
 */
export function attendToCache(q: tf.Tensor, view: KVView, mask: tf.Tensor | undefined, scale: number): tf.Tensor {
  const { batch: B, kvHeads: Hkv, headDim: D, length: S, capacity: C } = view;
  if (!isRank4(q) || q.shape[0] !== B || q.shape[3] !== D || q.shape[1] % Hkv !== 0) {
    throw new TfvlmError(`attention over a KV cache: q must be [${B}, k·${Hkv}, T, ${D}], got [${q.shape}]`);
  }
  const [, H, T] = q.shape;
  if (mask && (mask.rank !== 4 || (mask.shape[0] !== B && mask.shape[0] !== 1) || mask.shape[1] !== 1
    || (mask.shape[2] !== T && mask.shape[2] !== 1) || mask.shape[3] !== S)) {
    throw new TfvlmError(`attention over a KV cache: mask must be [${B}, 1, ${T} or 1, ${S}], got [${mask.shape}]`);
  }
  const groups = H / Hkv;
  return tf.tidy(() => {
    const qTs = tf.unstack(tf.transpose(tf.reshape(tf.mul(q, scale), [B * Hkv, groups * T, D]), [0, 2, 1])); // [D, groups·T] each
    let rows: tf.Tensor[] | undefined; // per batch row [T|1, C]
    if (mask) {
      let m = tf.reshape(mask, [mask.shape[0], mask.shape[2] as number, S]);
      if (C > S) m = tf.pad(m, [[0, 0], [0, 0], [0, C - S]], -Infinity);
      rows = tf.unstack(m);
    } else if (C > S) {
      rows = [tf.tensor2d(new Float32Array(C).fill(-Infinity, S), [1, C])];
    }
    const outs: tf.Tensor[] = [];
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < Hkv; j++) {
        const i = b * Hkv + j;
        let scores = tf.transpose(tf.matMul(view.keys[i]!, qTs[i]!)); // [C, groups·T] → [groups·T, C]
        if (rows) {
          // The same mask rows for every head of the group: broadcast over [groups, T, C], no tiling.
          scores = tf.reshape(tf.add(tf.reshape(scores, [groups, T, C]), rows[Math.min(b, rows.length - 1)]!), [groups * T, C]);
        }
        const probsT = tf.transpose(tf.softmax(scores)); // [C, groups·T]
        outs.push(tf.transpose(tf.matMul(view.valuesT[i]!, probsT))); // [D, groups·T] → [groups·T, D]
      }
    }
    return tf.reshape(tf.stack(outs), [B, H, T, D]); // [B·Hkv, groups·T, D] → [B, H, T, D]
  });
}

/**
 * One new token per row, on the fused wasm kernels: queries already rotated, scaled and grouped per
 * (batch, kv head) as [D, groups]; scores [C, groups] = keys · q, a softmax down the first `length`
 * rows (the tail comes out 0, so no mask is uploaded), values [D, C] · probs, heads merged → [B, 1, H·D].
 */
export function decodeStepFused(qTs: tf.Tensor[], view: KVView): tf.Tensor {
  if (qTs.length !== view.batch * view.kvHeads || qTs.some((q) => q.rank !== 2 || q.shape[0] !== view.headDim)) {
    throw new TfvlmError(`fused decode step: ${view.batch * view.kvHeads} queries [${view.headDim}, groups] expected, got ${qTs.length} [${qTs[0]?.shape}]`);
  }
  return tf.tidy(() => {
    const scores = qTs.map((q, i) => tf.matMul(view.keys[i]!, q)); // [C, groups]
    const probs = softmaxColumnsFused(scores, view.length);
    return mergeGroupedHeadsFused(probs.map((p, i) => tf.matMul(view.valuesT[i]!, p)), view.batch); // [D, groups] each → [B, 1, H·D]
  });
}

export type AttentionKernelName = 'reference' | 'reference-over-cache' | 'cache' | 'fused-decode-step';

/**
 * Which kernel an attention call runs:
 * - no cache: the reference kernel over this call's keys and values;
 * - onWeights: the reference kernel (over the cache's keys and values, if any), the only one that
 *   builds the probabilities;
 * - one new token, no mask, fused kernels active and RoPE over whole heads: the fused decode step;
 * - otherwise: attendToCache over the cache's buffers.
 */
export function chooseAttentionKernel(opts: Pick<AttentionOptions, 'cache' | 'onWeights' | 'mask' | 'rotary' | 'headDim'>, T: number): AttentionKernelName {
  if (!opts.cache) return 'reference';
  if (opts.onWeights) return 'reference-over-cache';
  if (T === 1 && !opts.mask && opts.rotary?.cos.shape[3] === opts.headDim && fusedKernelsActive()) return 'fused-decode-step';
  return 'cache';
}

/** Self-attention over x [B, T, hidden] → [B, T, hidden_out]; new keys and values go into opts.cache. */
export function attention(w: AttentionWeights, x: tf.Tensor, opts: AttentionOptions): tf.Tensor {
  if (!isRank3(x)) throw new TfvlmError(`attention: input must be [B, T, hidden], got [${x.shape}]`);
  return tf.tidy(() => linear(w.o, attendProjected(linear(w.q, x), linear(w.k, x), linear(w.v, x), opts)));
}

/**
 * One new token for each of N sequences, x [N, 1, hidden], row r over its own cache caches[r] with
 * its own RoPE row (opts.rotary [N, 1, 1, D]): the four projections take the N rows in one pass over
 * their weights (continuous batching); between them each row attends as attention() attends one.
 */
export function attentionRows(
  w: AttentionWeights, x: tf.Tensor, opts: Omit<AttentionOptions, 'cache' | 'mask' | 'onWeights'> & { caches: KVCache[] },
): tf.Tensor {
  const N = opts.caches.length;
  if (!isRank3(x) || x.shape[0] !== N || x.shape[1] !== 1) throw new TfvlmError(`attention rows: input must be [${N}, 1, hidden], got [${x.shape}]`);
  const { caches, rotary, ...rest } = opts;
  return tf.tidy(() => {
    const [qLin, kLin, vLin] = [linear(w.q, x), linear(w.k, x), linear(w.v, x)];
    const row = (t: tf.Tensor, r: number) => tf.slice(t, [r, 0, 0], [1, 1, -1]);
    const rowRotary = (r: number): RotaryTables | undefined =>
      rotary && { cos: tf.slice(rotary.cos, [r, 0, 0, 0], [1, -1, -1, -1]), sin: tf.slice(rotary.sin, [r, 0, 0, 0], [1, -1, -1, -1]) };
    const merged = caches.map((cache, r) =>
      attendProjected(row(qLin, r), row(kLin, r), row(vLin, r), { ...rest, rotary: rowRotary(r), cache }));
    return linear(w.o, tf.concat(merged, 0));
  });
}

/**
 * Attention from the projections qLin [B, T, H·D], kLin / vLin [B, T, Hkv·D] to the merged heads
 * [B, T, H·D] (before the output projection); new keys and values go into opts.cache.
 */
function attendProjected(qLin: tf.Tensor, kLin: tf.Tensor, vLin: tf.Tensor, opts: AttentionOptions): tf.Tensor {
  const { numHeads: H, numKeyValueHeads: Hkv, headDim: D } = opts;
  const [B, T] = qLin.shape as [number, number, number];
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const kernel = chooseAttentionKernel(opts, T);
  // Rotary straight from the projections' [B, T, n·D] into [B, n, T, D] in one pass (fused kernel).
  const fusedRotary = opts.rotary !== undefined && opts.rotary.cos.shape[3] === D && fusedKernelsActive();
  const heads = (y: tf.Tensor, n: number) => tf.transpose(tf.reshape(y, [B, T, n, D]), [0, 2, 1, 3]); // [B, n, T, D]
  if (kernel === 'fused-decode-step') {
    const { cos, sin } = opts.rotary!;
    const qTs = rotaryGroupedFused(qLin, cos, sin, { heads: H, headDim: D, scale, groups: H / Hkv }); // [D, groups] per (b, kv head)
    opts.cache!.update(rotaryFused(kLin, cos, sin, { heads: Hkv, headDim: D }), tf.reshape(vLin, [B, Hkv, 1, D]));
    return decodeStepFused(qTs, opts.cache!.view()); // [B, 1, H·D]
  }
  let q: tf.Tensor;
  let k: tf.Tensor;
  if (fusedRotary) {
    q = rotaryFused(qLin, opts.rotary!.cos, opts.rotary!.sin, { heads: H, headDim: D });
    k = rotaryFused(kLin, opts.rotary!.cos, opts.rotary!.sin, { heads: Hkv, headDim: D });
  } else {
    q = heads(qLin, H);
    k = heads(kLin, Hkv);
    if (opts.rotary) {
      q = applyRotary(q, opts.rotary);
      k = applyRotary(k, opts.rotary);
    }
  }
  const v = heads(vLin, Hkv);
  let out: tf.Tensor;
  if (kernel === 'reference') {
    out = scaledDotProductAttention(q, k, v, opts.mask, scale, opts.onWeights);
  } else {
    opts.cache!.update(k, v);
    if (kernel === 'cache') {
      out = attendToCache(q, opts.cache!.view(), opts.mask, scale);
    } else {
      const all = cachedKeysValues(opts.cache!.view());
      out = scaledDotProductAttention(q, all.k, all.v, opts.mask, scale, opts.onWeights);
    }
  }
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B, T, H * D]); // [B, T, H·D]
}
