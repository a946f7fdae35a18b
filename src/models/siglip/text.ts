// SigLIP text transformer (transformers 4.47 modeling_siglip.py SiglipTextTransformer, SiglipTextConfig):
// token + position embedding → pre-LN encoder blocks with no causal mask (and, as the processor makes
// no attention_mask, usually no padding mask) → final_layer_norm → pooled = head(last row).
import { tf } from '../../backend/index.ts';
import { activation } from '../../layers/activations.ts';
import { embed } from '../../layers/embedding.ts';
import { layerNorm, type LayerNorm } from '../../layers/layer-norm.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import { paddingMask } from '../../layers/masks.ts';
import type { Capture } from '../capture.ts';
import { ConfigReader } from '../config-fields.ts';
import { disposeTree, specLayerNorm, specLinear, type WeightLoader, type WeightSpec } from '../weights.ts';
import { encoderLayersWeightSpec, loadEncoderLayers, runEncoderLayers, type SiglipEncoderLayer } from './encoder.ts';
import { checkTextBatch } from '../text-inputs.ts';

export interface SiglipTextConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: string;
  layer_norm_eps: number;
  pad_token_id: number | null;
  eos_token_id: number | null;
  /** Output width of `head` (later transformers; hidden_size when absent). */
  projection_size: number;
  head_dim: number;
}

export function parseSiglipTextConfig(raw: unknown, where = 'text_config', source = 'config.json'): SiglipTextConfig {
  const r = ConfigReader.from(raw ?? {}, where, source);
  const hidden_size = r.positiveInt('hidden_size', 768);
  const num_attention_heads = r.positiveInt('num_attention_heads', 12);
  if (hidden_size % num_attention_heads !== 0) r.fail('num_attention_heads', `must divide hidden_size (${hidden_size})`, num_attention_heads);
  const hidden_act = r.string('hidden_act', 'gelu_pytorch_tanh');
  activation(hidden_act, `${source}: ${r.path('hidden_act')}`);
  return {
    model_type: r.string('model_type', 'siglip_text_model'),
    vocab_size: r.positiveInt('vocab_size', 32000),
    hidden_size,
    intermediate_size: r.positiveInt('intermediate_size', 3072),
    num_hidden_layers: r.positiveInt('num_hidden_layers', 12),
    num_attention_heads,
    max_position_embeddings: r.positiveInt('max_position_embeddings', 64),
    hidden_act,
    layer_norm_eps: r.positiveNumber('layer_norm_eps', 1e-6),
    pad_token_id: r.optionalInt('pad_token_id', 1),
    eos_token_id: r.optionalInt('eos_token_id', 49407),
    projection_size: r.positiveInt('projection_size', hidden_size),
    head_dim: hidden_size / num_attention_heads,
  };
}

export interface SiglipTextWeights {
  token_embedding: tf.Tensor2D;
  position_embedding: tf.Tensor2D;
  layers: SiglipEncoderLayer[];
  final_layer_norm: LayerNorm;
  head: Linear;
}

export function siglipTextWeightSpec(spec: WeightSpec, prefix: string, c: SiglipTextConfig): void {
  spec.set(`${prefix}.embeddings.token_embedding.weight`, [c.vocab_size, c.hidden_size]);
  spec.set(`${prefix}.embeddings.position_embedding.weight`, [c.max_position_embeddings, c.hidden_size]);
  encoderLayersWeightSpec(spec, `${prefix}.encoder`, c);
  specLayerNorm(spec, `${prefix}.final_layer_norm`, c.hidden_size);
  specLinear(spec, `${prefix}.head`, c.hidden_size, c.projection_size, true);
}

export function loadSiglipTextWeights(w: WeightLoader, prefix: string, c: SiglipTextConfig): SiglipTextWeights {
  return {
    token_embedding: w.tensor(`${prefix}.embeddings.token_embedding.weight`) as tf.Tensor2D,
    position_embedding: w.tensor(`${prefix}.embeddings.position_embedding.weight`) as tf.Tensor2D,
    layers: loadEncoderLayers(w, `${prefix}.encoder`, c),
    final_layer_norm: w.layerNorm(`${prefix}.final_layer_norm`, c.layer_norm_eps),
    head: w.linear(`${prefix}.head`, true),
  };
}

export class SiglipTextTransformer {
  constructor(readonly config: SiglipTextConfig, readonly weights: SiglipTextWeights) {}

  /**
   * input_ids [B][T] → pooled [B, projection_size] = head(last_hidden_state[:, -1]). An attention_mask
   * (1 = attend) only masks keys, as SiglipTextTransformer does; the processor gives none. Captures
   * text.embeddings, text.layers.{i}, text.final_layer_norm, text.pooled.
   */
  run(inputIds: number[][], attentionMask?: number[][], capture?: Capture): tf.Tensor {
    const c = this.config;
    const { B, T } = checkTextBatch(inputIds, attentionMask, c.max_position_embeddings);
    const ids = tf.tensor2d(inputIds, [B, T], 'int32');
    const mask = attentionMask ? paddingMask(attentionMask.flat(), B, T) : undefined;
    let x: tf.Tensor | undefined;
    let last: tf.Tensor | undefined;
    try {
      x = tf.tidy(() => tf.add(embed(this.weights.token_embedding, ids), tf.slice(this.weights.position_embedding, [0, 0], [T, -1])));
      capture?.record('text.embeddings', x);
      last = runEncoderLayers(this.weights.layers, c, x, { mask, capture, name: 'text' }).last;
      return tf.tidy(() => {
        const normed = layerNorm(this.weights.final_layer_norm, last as tf.Tensor);
        capture?.record('text.final_layer_norm', normed);
        const lastRow = tf.reshape(tf.slice(normed, [0, T - 1, 0], [B, 1, c.hidden_size]), [B, c.hidden_size]);
        const pooled = linear(this.weights.head, lastRow);
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
