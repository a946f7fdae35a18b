// Alternative kernels for softmax(q·kᵀ·scale + mask)·v that the model does not run, all with
// scaledDotProductAttention's signature (q [B, H, T, D], k/v [B, Hkv, S, D], additive mask
// [B|1, 1, T|1, S]) so the bench can time them against the model's kernels (src/layers/attention.ts).
// The wasm backend runs a 2-D, untransposed matMul through XNNPACK and packs (and caches, by tensor
// id) its right-hand operand; every other matMul shape falls to a naive loop
// (tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc). Kernels here keep big, changing operands on the
// left where they can.
import { tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { checkAttentionShapes as checkShapes, scaledDotProductAttention } from '../../src/layers/attention.ts';

export type AttentionKernel = (
  q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, scale: number,
) => tf.Tensor;

/** (a) The model's kernel: one matMul → softmax → matMul per (batch, head). */
export const referenceAttention: AttentionKernel = scaledDotProductAttention;


/** transformers repeat_kv: [B, Hkv, S, D] → [B, Hkv·groups, S, D], each kv head repeated in place. */
export function repeatKV(x: tf.Tensor, groups: number): tf.Tensor {
  if (groups === 1) return tf.clone(x);
  const [B, Hkv, S, D] = x.shape as [number, number, number, number];
  return tf.tidy(() => tf.reshape(tf.tile(tf.expandDims(x, 2), [1, 1, groups, 1, 1]), [B, Hkv * groups, S, D]));
}

/** Per-(batch, row) masks [B|1, T|1, S] as a list, or undefined. */
function maskRows(mask: tf.Tensor | undefined, S: number): tf.Tensor[] | undefined {
  return mask ? tf.unstack(tf.reshape(mask, [mask.shape[0], mask.shape[2] as number, S])) : undefined;
}

/** (b) One batched matMul pair over all heads: [B·H, T, D] × [B·H, S, D]ᵀ (K/V repeated for GQA). */
export const batchedAttention: AttentionKernel = (q, k, v, mask, scale) => {
  const { B, H, T, S, D, groups } = checkShapes(q, k, v, mask);
  return tf.tidy(() => {
    const q3 = tf.reshape(tf.mul(q, scale), [B * H, T, D]);
    const k3 = tf.reshape(repeatKV(k, groups), [B * H, S, D]);
    const v3 = tf.reshape(repeatKV(v, groups), [B * H, S, D]);
    let scores = tf.reshape(tf.matMul(q3, k3, false, true), [B, H, T, S]);
    if (mask) scores = tf.add(scores, mask);
    const probs = tf.reshape(tf.softmax(scores), [B * H, T, S]);
    return tf.reshape(tf.matMul(probs, v3), [B, H, T, D]);
  });
};

/**
 * (c) Flash-style: keys in blocks of `blockSize`, a running max and sum per query row (online
 * softmax), so no more than T × blockSize scores exist at once. Each block's exponentials come from
 * tf.softmax (XNNPACK's, ~10× faster here than tf.exp over the block): with p̂ = softmax(s), the
 * block's sum of exp(s − max) is 1 / max(p̂) and exp(s − max) = p̂ · sum, so tf.exp only ever
 * runs on one value per row.
 */
export function flashAttention(blockSize = 256): AttentionKernel {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new TfvlmError(`flash attention: block size must be a positive integer, got ${blockSize}`);
  return (q, k, v, mask, scale) => {
    const { B, H, Hkv, T, S, D, groups } = checkShapes(q, k, v, mask);
    return tf.tidy(() => {
      const qs = tf.unstack(tf.reshape(tf.mul(q, scale), [B * H, T, D]));
      const ks = tf.unstack(tf.reshape(k, [B * Hkv, S, D]));
      const vs = tf.unstack(tf.reshape(v, [B * Hkv, S, D]));
      const masks = maskRows(mask, S);
      // Per kv head: its key blocks as [D, n] (transposed once) and value blocks [n, D].
      const blocks = ks.map((kh, j) => {
        const vh = vs[j]!; // ks, vs: one per kv head
        const out: { kT: tf.Tensor; v: tf.Tensor; start: number; size: number }[] = [];
        for (let start = 0; start < S; start += blockSize) {
          const size = Math.min(blockSize, S - start);
          out.push({
            kT: tf.transpose(size === S ? kh : tf.slice(kh, [start, 0], [size, D])),
            v: size === S ? vh : tf.slice(vh, [start, 0], [size, D]),
            start,
            size,
          });
        }
        return out;
      });
      const outs: tf.Tensor[] = [];
      for (let b = 0; b < B; b++) {
        const maskB = masks?.[Math.min(b, masks.length - 1)];
        for (let h = 0; h < H; h++) {
          const j = b * Hkv + Math.floor(h / groups);
          let m: tf.Tensor | undefined; // [T, 1] running max of the scores
          let l: tf.Tensor | undefined; // [T, 1] running Σ exp(s − m)
          let acc: tf.Tensor | undefined; // [T, D] running Σ exp(s − m) · v
          const qh = qs[b * H + h]!; // b < B, h < H: one of the B·H query heads
          for (const blk of blocks[j]!) {
            const next = tf.tidy(() => {
              let s = tf.matMul(qh, blk.kT); // [T, n]
              if (maskB) s = tf.add(s, blk.size === S ? maskB : tf.slice(maskB, [0, blk.start], [maskB.shape[0], blk.size]));
              const blockMax = tf.max(s, 1, true);
              const probs = tf.softmax(s);
              const blockSum = tf.reciprocal(tf.max(probs, 1, true)); // Σ exp(s − blockMax)
              const blockAcc = tf.mul(tf.matMul(probs, blk.v), blockSum); // Σ exp(s − blockMax) · v
              if (!m || !l || !acc) return { m: blockMax, l: blockSum, acc: blockAcc };
              const mNew = tf.maximum(m, blockMax);
              const keep = tf.exp(tf.sub(m, mNew));
              const add = tf.exp(tf.sub(blockMax, mNew));
              return {
                m: mNew,
                l: tf.add(tf.mul(l, keep), tf.mul(blockSum, add)),
                acc: tf.add(tf.mul(acc, keep), tf.mul(blockAcc, add)),
              };
            });
            tf.dispose([m, l, acc].filter((t): t is tf.Tensor => t !== undefined));
            ({ m, l, acc } = next);
          }
          outs.push(tf.div(acc!, l!));
        }
      }
      return tf.reshape(tf.stack(outs), [B, H, T, D]);
    });
  };
}

/** (d) GQA by materialising repeat_kv (transformers' eager path), then the reference per head. */
export const gqaRepeatAttention: AttentionKernel = (q, k, v, mask, scale) => {
  const { groups } = checkShapes(q, k, v, mask);
  return tf.tidy(() => scaledDotProductAttention(q, repeatKV(k, groups), repeatKV(v, groups), mask, scale));
};

/**
 * (d) GQA by reshape: the `groups` query heads that share a kv head become one [groups·T, D] block
 * (a free reshape of [B, H, T, D]), so each kv head takes one matMul pair instead of `groups`.
 */
export const gqaGroupedAttention: AttentionKernel = (q, k, v, mask, scale) => {
  const { B, Hkv, T, S, D, groups } = checkShapes(q, k, v, mask);
  return tf.tidy(() => {
    const qs = tf.unstack(tf.reshape(tf.mul(q, scale), [B * Hkv, groups * T, D])); // [groups·T, D] each
    const kTs = tf.unstack(tf.reshape(tf.transpose(k, [0, 1, 3, 2]), [B * Hkv, D, S]));
    const vs = tf.unstack(tf.reshape(v, [B * Hkv, S, D]));
    const masks = maskRows(mask, S); // [T|1, S] each
    const outs: tf.Tensor[] = [];
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < Hkv; j++) {
        const i = b * Hkv + j;
        let scores = tf.matMul(qs[i]!, kTs[i]!); // [groups·T, S]
        if (masks) {
          // The same mask rows for every head of the group: broadcast over [groups, T, S], no tiling.
          scores = tf.reshape(tf.add(tf.reshape(scores, [groups, T, S]), masks[Math.min(b, masks.length - 1)]!), [groups * T, S]);
        }
        outs.push(tf.matMul(tf.softmax(scores), vs[i]!));
      }
    }
    return tf.reshape(tf.stack(outs), [B, Hkv * groups, T, D]); // [B·Hkv, groups·T, D] → [B, H, T, D]
  });
};

/**
 * (e) One query per row (decode). Keys stay on the left of the matMul ([S, D] · [D, groups]), so
 * the cache is never transposed and XNNPACK packs only the small query block; the query heads of
 * a kv head share that matMul.
 */
export const decodeAttention: AttentionKernel = (q, k, v, mask, scale) => {
  const { B, Hkv, T, S, D, groups } = checkShapes(q, k, v, mask);
  if (T !== 1) throw new TfvlmError(`decode attention: one query position expected, got ${T}`);
  return tf.tidy(() => {
    const qTs = tf.unstack(tf.transpose(tf.reshape(tf.mul(q, scale), [B * Hkv, groups, D]), [0, 2, 1])); // [D, groups] each
    const ks = tf.unstack(tf.reshape(k, [B * Hkv, S, D]));
    const vs = tf.unstack(tf.reshape(v, [B * Hkv, S, D]));
    const masks = mask ? tf.unstack(tf.reshape(mask, [mask.shape[0], 1, S])) : undefined;
    const outs: tf.Tensor[] = [];
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < Hkv; j++) {
        const i = b * Hkv + j;
        let scores = tf.transpose(tf.matMul(ks[i]!, qTs[i]!)); // [S, groups] → [groups, S]
        if (masks) scores = tf.add(scores, masks[Math.min(b, masks.length - 1)]!);
        outs.push(tf.matMul(tf.softmax(scores), vs[i]!)); // [groups, D]
      }
    }
    return tf.reshape(tf.stack(outs), [B, Hkv * groups, 1, D]);
  });
};

/** Every kernel by name, for the bench and tests. decode applies to T = 1 only. */
export const ATTENTION_KERNELS = {
  reference: { kernel: referenceAttention },
  batched: { kernel: batchedAttention },
  flash: { kernel: flashAttention(256) },
  'gqa-repeat': { kernel: gqaRepeatAttention },
  'gqa-grouped': { kernel: gqaGroupedAttention },
  decode: { kernel: decodeAttention, decodeOnly: true },
} satisfies Record<string, { kernel: AttentionKernel; decodeOnly?: boolean }>;
