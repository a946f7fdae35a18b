// CLIP text transformer (transformers 4.47 modeling_clip.py: CLIPTextEmbeddings, CLIPTextTransformer).
// Token + position embedding → the shared pre-LN encoder blocks (siglip/encoder.ts) with a causal
// mask plus the padding mask → final_layer_norm → pooled = the row at the EOS position.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { embed } from '../../layers/embedding.ts';
import { layerNorm, type LayerNorm } from '../../layers/layer-norm.ts';
import { causalMask } from '../../layers/masks.ts';
import type { Capture } from '../capture.ts';
import { encoderLayersWeightSpec, loadEncoderLayers, runEncoderLayers, type SiglipEncoderLayer } from '../siglip/encoder.ts';
import { disposeTree, specLayerNorm, type WeightLoader, type WeightSpec } from '../weights.ts';
import type { CLIPTextConfig } from './config.ts';
import { checkTextBatch } from '../text-inputs.ts';

export interface CLIPTextWeights {
  /** [vocab_size, hidden] */
  token_embedding: tf.Tensor2D;
  /** [max_position_embeddings, hidden] */
  position_embedding: tf.Tensor2D;
  layers: SiglipEncoderLayer[];
  final_layer_norm: LayerNorm;
}

export function clipTextWeightSpec(spec: WeightSpec, prefix: string, c: CLIPTextConfig): void {
  spec.set(`${prefix}.embeddings.token_embedding.weight`, [c.vocab_size, c.hidden_size]);
  spec.set(`${prefix}.embeddings.position_embedding.weight`, [c.max_position_embeddings, c.hidden_size]);
  encoderLayersWeightSpec(spec, `${prefix}.encoder`, c);
  specLayerNorm(spec, `${prefix}.final_layer_norm`, c.hidden_size);
}

export function loadCLIPTextWeights(w: WeightLoader, prefix: string, c: CLIPTextConfig): CLIPTextWeights {
  return {
    token_embedding: w.tensor(`${prefix}.embeddings.token_embedding.weight`) as tf.Tensor2D,
    position_embedding: w.tensor(`${prefix}.embeddings.position_embedding.weight`) as tf.Tensor2D,
    layers: loadEncoderLayers(w, `${prefix}.encoder`, c),
    final_layer_norm: w.layerNorm(`${prefix}.final_layer_norm`, c.layer_norm_eps),
  };
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
      for (let t = 1; t < row.length; t++) if (row[t] > row[best]) best = t;
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
    const ids = tf.tensor2d(inputIds, [B, T], 'int32');
    const mask = causalMask({ batch: B, queryLen: T, offset: 0, keyMask: attentionMask?.flat() });
    let x: tf.Tensor | undefined;
    let last: tf.Tensor | undefined;
    try {
      x = tf.tidy(() => tf.add(embed(this.weights.token_embedding, ids), tf.slice(this.weights.position_embedding, [0, 0], [T, -1])));
      capture?.record('text.embeddings', x);
      last = runEncoderLayers(this.weights.layers, c, x, { mask, capture, name: 'text' }).last;
      return tf.tidy(() => {
        const normed = layerNorm(this.weights.final_layer_norm, last as tf.Tensor);
        capture?.record('text.final_layer_norm', normed);
        const pooled = gatherRows(normed, positions);
        capture?.record('text.pooled', pooled);
        return pooled;
      });
    } finally {
      tf.dispose([ids, x as tf.Tensor, last as tf.Tensor]);
      mask?.dispose();
    }
  }

  dispose(): void {
    disposeTree(this.weights);
  }
}
