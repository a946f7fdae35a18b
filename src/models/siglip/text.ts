// SigLIP text transformer (transformers 4.47 modeling_siglip.py SiglipTextTransformer, SiglipTextConfig):
// token + position embedding → pre-LN encoder blocks with no causal mask (and, as the processor makes
// no attention_mask, usually no padding mask) → final_layer_norm → pooled = head(last row).
import { tf } from '../../backend/index.ts';
import { activation } from '../../layers/activations.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import { paddingMask } from '../../layers/masks.ts';
import type { Capture } from '../capture.ts';
import { ConfigReader } from '../config-fields.ts';
import { disposeTree, type WeightSource } from '../weights.ts';
import { checkTextBatch, encodeText, textTowerWeights, type TextTowerWeights } from '../text-tower.ts';

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

export interface SiglipTextWeights extends TextTowerWeights {
  head: Linear;
}

/** A SiglipTextTransformer under prefix (e.g. `text_model`): the text tower and its head. */
export function siglipTextWeights(w: WeightSource, prefix: string, c: SiglipTextConfig): SiglipTextWeights {
  return { ...textTowerWeights(w, prefix, c), head: w.linear(`${prefix}.head`, c.hidden_size, c.projection_size, true) };
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
    const mask = attentionMask ? paddingMask(attentionMask.flat(), B, T) : undefined;
    try {
      const normed = encodeText(this.weights, c, inputIds, mask, capture);
      const pooled = tf.tidy(() => {
        const lastRow = tf.reshape(tf.slice(normed, [0, T - 1, 0], [B, 1, c.hidden_size]), [B, c.hidden_size]);
        return linear(this.weights.head, lastRow);
      });
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
