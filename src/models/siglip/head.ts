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
import { specLayerNorm, specLinear, type WeightLoader, type WeightSpec } from '../weights.ts';
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

export function siglipHeadWeightSpec(spec: WeightSpec, prefix: string, c: SiglipVisionConfig): void {
  const D = c.hidden_size;
  spec.set(`${prefix}.probe`, [1, 1, D]);
  spec.set(`${prefix}.attention.in_proj_weight`, [3 * D, D]);
  spec.set(`${prefix}.attention.in_proj_bias`, [3 * D]);
  specLinear(spec, `${prefix}.attention.out_proj`, D, D, true);
  specLayerNorm(spec, `${prefix}.layernorm`, D);
  specLinear(spec, `${prefix}.mlp.fc1`, D, c.intermediate_size, true);
  specLinear(spec, `${prefix}.mlp.fc2`, c.intermediate_size, D, true);
}

export function loadSiglipHead(w: WeightLoader, prefix: string, c: SiglipVisionConfig): SiglipHeadWeights {
  const D = c.hidden_size;
  const inW = w.tensor(`${prefix}.attention.in_proj_weight`); // [3D, D]: q; k; v
  const inB = w.tensor(`${prefix}.attention.in_proj_bias`);
  const [qw, kw, vw] = tf.split(inW, 3, 0);
  const [qb, kb, vb] = tf.split(inB, 3, 0);
  tf.dispose([inW, inB]);
  return {
    probe: w.tensor(`${prefix}.probe`),
    q: linearFromCheckpoint(qw, qb),
    k: linearFromCheckpoint(kw, kb),
    v: linearFromCheckpoint(vw, vb),
    out_proj: w.linear(`${prefix}.attention.out_proj`, true),
    layernorm: w.layerNorm(`${prefix}.layernorm`, c.layer_norm_eps),
    mlp: { fc1: w.linear(`${prefix}.mlp.fc1`, true), fc2: w.linear(`${prefix}.mlp.fc2`, true), act: activation(c.hidden_act) },
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
