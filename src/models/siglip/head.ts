// SigLIP's attention-pooling head (transformers 4.47 modeling_siglip.py SiglipMultiheadAttentionPoolingHead):
// one learned query `probe` attends over the tower's rows with torch.nn.MultiheadAttention (in_proj_weight
// = q, k, v weights stacked in that order), then pooled = a + mlp(layernorm(a)), row 0.
import { tf } from '../../backend/index.ts';
import { activation } from '../../layers/activations.ts';
import { scaledDotProductAttention } from '../../layers/attention.ts';
import { layerNorm, type LayerNorm } from '../../layers/layer-norm.ts';
import { linear, linearFromCheckpoint, type Linear } from '../../layers/linear.ts';
import { mlp, type MLP } from '../../layers/mlp.ts';
import type { Capture } from '../capture.ts';
import type { WeightSource } from '../weights.ts';
import type { SiglipVisionConfig } from './config.ts';

export interface SiglipHeadWeights {
  /** [1, 1, hidden] */
  probe: tf.Tensor;
  q: Linear;
  k: Linear;
  v: Linear;
  out_proj: Linear;
  layernorm: LayerNorm;
  mlp: MLP;
}

/** The attention-pooling head under prefix (e.g. `vision_model.head`); its packed in_proj is split into q, k, v. */
export function siglipHeadWeights(w: WeightSource, prefix: string, c: SiglipVisionConfig): SiglipHeadWeights {
  const D = c.hidden_size;
  const probe = w.tensor(`${prefix}.probe`, [1, 1, D]);
  const [q, k, v] = w.packedLinears(`${prefix}.attention.in_proj_weight`, `${prefix}.attention.in_proj_bias`, D, [D, D, D]) as [Linear, Linear, Linear]; // [3D, D]: q; k; v
  return {
    probe, q, k, v,
    out_proj: w.linear(`${prefix}.attention.out_proj`, D, D, true),
    layernorm: w.layerNorm(`${prefix}.layernorm`, D, c.layer_norm_eps),
    mlp: { fc1: w.linear(`${prefix}.mlp.fc1`, D, c.intermediate_size, true), fc2: w.linear(`${prefix}.mlp.fc2`, c.intermediate_size, D, true), act: activation(c.hidden_act) },
  };
}

/** hidden [N, S, D] (post_layernorm output) → pooled [N, D]. Captures vision.head.attention [N, 1, D]. */
export function siglipHead(h: SiglipHeadWeights, c: Pick<SiglipVisionConfig, 'hidden_size' | 'num_attention_heads' | 'head_dim'>,
  hidden: tf.Tensor, capture?: Capture): tf.Tensor {
  return tf.tidy(() => {
    const [N, S, D] = hidden.shape as [number, number, number];
    const H = c.num_attention_heads;
    const hd = c.head_dim;
    const probe = tf.broadcastTo(h.probe, [N, 1, D]);
    const q = tf.transpose(tf.reshape(linear(h.q, probe), [N, 1, H, hd]), [0, 2, 1, 3]); // [N, H, 1, hd]
    const k = tf.transpose(tf.reshape(linear(h.k, hidden), [N, S, H, hd]), [0, 2, 1, 3]); // [N, H, S, hd]
    const v = tf.transpose(tf.reshape(linear(h.v, hidden), [N, S, H, hd]), [0, 2, 1, 3]);
    const out = scaledDotProductAttention(q, k, v, undefined, hd ** -0.5);
    const attended = linear(h.out_proj, tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [N, 1, D])); // [N, 1, D]
    capture?.record('vision.head.attention', attended);
    const pooled = tf.add(attended, mlp(h.mlp, layerNorm(h.layernorm, attended)));
    return tf.reshape(pooled, [N, D]);
  });
}
