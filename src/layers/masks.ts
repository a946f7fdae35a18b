// Additive attention masks, built on the host. Masked entries hold float32's lowest value, as
// transformers does (modeling_attn_mask_utils.py; LlamaModel._update_causal_mask): a row whose keys
// are all masked then gets uniform weights instead of NaN, exactly like the reference.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

/** torch.finfo(torch.float32).min */
export const MASK_VALUE = -3.4028234663852886e38;

/**
 * Causal mask for queries at positions offset..offset+T−1 over keys 0..offset+T−1, combined with an
 * optional key padding mask [B, offset+T] (1 = attend). Returns [B, 1, T, S] or undefined when
 * nothing is masked (one query and no padding).
 */
export function causalMask(opts: {
  batch: number;
  queryLen: number;
  offset: number;
  keyMask?: ArrayLike<number>;
}): tf.Tensor4D | undefined {
  const { batch, queryLen, offset, keyMask } = opts;
  const S = offset + queryLen;
  if (keyMask && keyMask.length !== batch * S) {
    throw new TfvlmError(
      `attention_mask: expected [${batch}, ${S}] (${offset} cached + ${queryLen} new positions), got ${keyMask.length} values`,
    );
  }
  if (queryLen === 1 && (!keyMask || Array.prototype.every.call(keyMask, (m: number) => m !== 0))) return undefined;
  const out = new Float32Array(batch * queryLen * S);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < queryLen; t++) {
      const row = (b * queryLen + t) * S;
      for (let s = 0; s < S; s++) {
        const future = s > offset + t;
        const padded = keyMask !== undefined && keyMask[b * S + s] === 0;
        if (future || padded) out[row + s] = MASK_VALUE;
      }
    }
  }
  return tf.tensor4d(out, [batch, 1, queryLen, S]);
}

/** Bidirectional key padding mask from keyMask [B, S] (1 = attend) → [B, 1, 1, S], or undefined if all attend. */
export function paddingMask(keyMask: ArrayLike<number>, batch: number, keyLen: number): tf.Tensor4D | undefined {
  if (keyMask.length !== batch * keyLen) {
    throw new TfvlmError(`padding mask: expected [${batch}, ${keyLen}], got ${keyMask.length} values`);
  }
  let any = false;
  const out = new Float32Array(batch * keyLen);
  for (let i = 0; i < out.length; i++) {
    if (keyMask[i] === 0) {
      out[i] = MASK_VALUE;
      any = true;
    }
  }
  return any ? tf.tensor4d(out, [batch, 1, 1, keyLen]) : undefined;
}
