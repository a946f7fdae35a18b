// Multi-head / grouped-query self-attention (transformers modeling_llama.py LlamaAttention and
// modeling_siglip.py SiglipAttention, eager path): softmax(q·kᵀ·scale + mask)·v, then the output
// projection. Query head h reads key/value head ⌊h / (H / Hkv)⌋ (repeat_kv order).
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { linear, type Linear } from './linear.ts';
import { applyRotary, type RotaryTables } from './rotary.ts';
import type { KVCache } from './kv-cache.ts';
import { decodeAttention } from './attention-variants.ts';
import { fusedKernelsActive, rotaryFused, rotaryGroupedFused } from '../backend/fused-kernels.ts';

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
   * `output_attentions`), valid inside the call only. Takes the plain path: the fused decode and
   * cache attend paths never materialise them.
   */
  onWeights?: (weights: tf.Tensor) => void;
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
  const [B, H, T, D] = q.shape;
  const [kB, Hkv, S, kD] = k.shape;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4 || kB !== B || kD !== D || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new TfvlmError(`attention: q [B,H,T,D], k/v [B,Hkv,S,D] expected, got q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  }
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
          let scores = tf.matMul(qs[b * H + h], kTs[j]); // [T, S]
          if (masks) scores = tf.add(scores, masks[Math.min(b, masks.length - 1)]);
          const weights = tf.softmax(scores);
          const head = tf.matMul(weights, vs[j]); // [T, D]
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

/** Self-attention over x [B, T, hidden] → [B, T, hidden_out]. */
export function attention(w: AttentionWeights, x: tf.Tensor, opts: AttentionOptions): tf.Tensor {
  const { numHeads: H, numKeyValueHeads: Hkv, headDim: D } = opts;
  if (x.rank !== 3) throw new TfvlmError(`attention: input must be [B, T, hidden], got [${x.shape}]`);
  const [B, T] = x.shape;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  // Rotary straight from the projections' [B, T, n·D] into [B, n, T, D] in one pass (fused kernel).
  const fusedRotary = opts.rotary !== undefined && opts.rotary.cos.shape[3] === D && fusedKernelsActive();
  return tf.tidy(() => {
    const heads = (y: tf.Tensor, n: number) => tf.transpose(tf.reshape(y, [B, T, n, D]), [0, 2, 1, 3]); // [B, n, T, D]
    const qLin = linear(w.q, x);
    const kLin = linear(w.k, x);
    const vLin = linear(w.v, x);
    if (fusedRotary && T === 1 && !opts.mask && opts.cache?.decodeAttend && !opts.onWeights) {
      const groups = H / Hkv;
      // One token: q scaled, per (batch, kv head) as [D, groups]; k, v [B, Hkv, 1, D].
      const qTs = rotaryGroupedFused(qLin, opts.rotary!.cos, opts.rotary!.sin, { heads: H, headDim: D, scale, groups });
      const k = rotaryFused(kLin, opts.rotary!.cos, opts.rotary!.sin, { heads: Hkv, headDim: D });
      const merged = opts.cache.decodeAttend(qTs, k, tf.reshape(vLin, [B, Hkv, 1, D])); // [B, 1, H·D]
      return linear(w.o, merged);
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
    let v = heads(vLin, Hkv);
    let out: tf.Tensor;
    if (opts.onWeights) {
      if (opts.cache) ({ k, v } = opts.cache.update(k, v));
      out = scaledDotProductAttention(q, k, v, opts.mask, scale, opts.onWeights);
    } else if (opts.cache?.appendAndAttend) {
      out = opts.cache.appendAndAttend(q, k, v, opts.mask, scale);
    } else {
      if (opts.cache) ({ k, v } = opts.cache.update(k, v));
      out = (T === 1 ? decodeAttention : scaledDotProductAttention)(q, k, v, opts.mask, scale);
    }
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B, T, H * D]); // [B, T, H·D]
    return linear(w.o, merged);
  });
}
