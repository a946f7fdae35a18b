// CLIP text transformer (transformers 4.47 modeling_clip.py: CLIPTextEmbeddings, CLIPTextTransformer).
// Token + position embedding → the shared pre-LN encoder blocks (siglip/encoder.ts) with a causal
// mask plus the padding mask → final_layer_norm → pooled = the row at the EOS position.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { causalMask } from '../../layers/masks.ts';
import type { Capture } from '../capture.ts';
import { disposeTree, type WeightSource } from '../weights.ts';
import type { CLIPTextConfig } from './config.ts';
import { checkTextBatch, encodeText, textTowerWeights, type TextTowerWeights } from '../text-tower.ts';

export type CLIPTextWeights = TextTowerWeights;

/** A CLIPTextTransformer under prefix (e.g. `text_model`). */
export function clipTextWeights(w: WeightSource, prefix: string, c: CLIPTextConfig): CLIPTextWeights {
  return textTowerWeights(w, prefix, c);
}

/**
 * The pooled position per row (modeling_clip.py CLIPTextTransformer.forward): with eos_token_id 2
 * (checkpoints written before transformers PR #24773) the first argmax of the ids; otherwise the
 * first position holding eos_token_id.
 */
export function clipEosPositions(ids: number[][], eosTokenId: number | null): number[] {
  return ids.map((row, b) => {
    if (eosTokenId === 2 || eosTokenId === null) {
      let best = 0;
      for (let t = 1; t < row.length; t++) if (row[t]! > row[best]!) best = t;
      return best;
    }
    const at = row.indexOf(eosTokenId);
    // torch argmax of an all-zero row is 0.
    if (at < 0) throw new TfvlmError(`input_ids row ${b} has no eos_token_id ${eosTokenId} (text_config.eos_token_id) to pool at`);
    return at;
  });
}

/** Gathers row positions[b] of x [B, T, D] → [B, D]. */
export function gatherRows(x: tf.Tensor, positions: number[]): tf.Tensor {
  return tf.tidy(() => {
    const [B, T, D] = x.shape as [number, number, number];
    const flat = tf.reshape(x, [B * T, D]);
    return tf.gather(flat, tf.tensor1d(positions.map((p, b) => b * T + p), 'int32'));
  });
}

export class CLIPTextTransformer {
  constructor(readonly config: CLIPTextConfig, readonly weights: CLIPTextWeights) {}

  /**
   * input_ids [B][T] (+ attention_mask, 1 = attend) → pooled [B, hidden] (pooler_output). Captures
   * text.embeddings, text.layers.{i}, text.final_layer_norm, text.pooled.
   */
  run(inputIds: number[][], attentionMask?: number[][], capture?: Capture): tf.Tensor {
    const c = this.config;
    const { B, T } = checkTextBatch(inputIds, attentionMask, c.max_position_embeddings);
    const positions = clipEosPositions(inputIds, c.eos_token_id);
    const mask = causalMask({ batch: B, queryLen: T, offset: 0, keyMask: attentionMask?.flat() });
    try {
      const normed = encodeText(this.weights, c, inputIds, mask, capture);
      const pooled = gatherRows(normed, positions);
      normed.dispose();
      capture?.record('text.pooled', pooled);
      return pooled;
    } finally {
      mask?.dispose();
    }
  }

  dispose(): void {
    disposeTree(this.weights);
  }
}
