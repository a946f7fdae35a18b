// The text tower CLIP and SigLIP share (modeling_clip.py CLIPTextTransformer, modeling_siglip.py
// SiglipTextTransformer): token + position embedding → pre-LN encoder blocks → final_layer_norm.
// They differ only in the mask (CLIP causal + padding, SigLIP padding only) and in pooling, which
// the towers do themselves.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { embed, type Embedding } from '../layers/embedding.ts';
import { layerNorm, type LayerNorm } from '../layers/layer-norm.ts';
import type { Capture } from './capture.ts';
import { encoderLayersWeights, runEncoderLayers, type EncoderDims, type SiglipEncoderLayer } from './siglip/encoder.ts';
import type { WeightSource } from './weights.ts';

export type TextTowerDims = EncoderDims & { vocab_size: number; max_position_embeddings: number };

export interface TextTowerWeights {
  /** [vocab_size, hidden] */
  token_embedding: Embedding;
  /** [max_position_embeddings, hidden] */
  position_embedding: tf.Tensor2D;
  layers: SiglipEncoderLayer[];
  final_layer_norm: LayerNorm;
}

/** A CLIP-style text tower under prefix (e.g. `text_model`). */
export function textTowerWeights(w: WeightSource, prefix: string, c: TextTowerDims): TextTowerWeights {
  return {
    token_embedding: w.embedding(`${prefix}.embeddings.token_embedding.weight`, c.vocab_size, c.hidden_size),
    position_embedding: w.tensor(`${prefix}.embeddings.position_embedding.weight`, [c.max_position_embeddings, c.hidden_size]) as tf.Tensor2D,
    layers: encoderLayersWeights(w, `${prefix}.encoder`, c),
    final_layer_norm: w.layerNorm(`${prefix}.final_layer_norm`, c.hidden_size, c.layer_norm_eps),
  };
}

/** Checks a text tower's batch: input_ids [B][T] (same T, ≤ maxPositions) and a matching attention_mask. */
export function checkTextBatch(inputIds: number[][], attentionMask: number[][] | undefined, maxPositions: number): { B: number; T: number } {
  const B = inputIds.length;
  const T = inputIds[0]?.length ?? 0;
  if (B === 0 || T === 0) throw new TfvlmError('input_ids: need at least one non-empty row');
  if (inputIds.some((r) => r.length !== T)) throw new TfvlmError('input_ids: rows must have the same length (pad them)');
  if (T > maxPositions) {
    throw new TfvlmError(`input_ids: ${T} tokens exceed text_config.max_position_embeddings ${maxPositions}`);
  }
  if (attentionMask && (attentionMask.length !== B || attentionMask.some((r) => r.length !== T))) {
    throw new TfvlmError(`attention_mask must be [${B}, ${T}] like input_ids`);
  }
  return { B, T };
}

/**
 * input_ids [B][T] → final_layer_norm output [B, T, hidden] (the caller pools and disposes it).
 * `mask` is the additive attention mask (owned by the caller). Captures text.embeddings,
 * text.layers.{i}, text.final_layer_norm.
 */
export function encodeText(
  w: TextTowerWeights, c: TextTowerDims, inputIds: number[][], mask: tf.Tensor | undefined, capture?: Capture,
): tf.Tensor {
  const B = inputIds.length;
  const T = inputIds[0]?.length ?? 0; // checked by checkTextBatch
  const ids = tf.tensor2d(inputIds, [B, T], 'int32');
  let x: tf.Tensor | undefined;
  let last: tf.Tensor | undefined;
  try {
    x = tf.tidy(() => tf.add(embed(w.token_embedding, ids), tf.slice(w.position_embedding, [0, 0], [T, -1])));
    capture?.record('text.embeddings', x);
    last = runEncoderLayers(w.layers, c, x, { mask, capture, name: 'text' }).last;
    const normed = tf.tidy(() => layerNorm(w.final_layer_norm, last as tf.Tensor));
    capture?.record('text.final_layer_norm', normed);
    return normed;
  } finally {
    tf.dispose([ids, x as tf.Tensor, last as tf.Tensor]);
  }
}
