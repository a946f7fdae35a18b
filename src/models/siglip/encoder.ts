// SigLIP vision tower pieces (transformers modeling_siglip.py: SiglipVisionEmbeddings patch conv,
// SiglipEncoderLayer, post_layernorm), shared by SigLIP and Idefics3. The patch conv (kernel =
// stride = patch_size, no padding) is computed as one matMul over unfolded patches: the OIHW conv
// weight [D, C, p, p] becomes a Linear [D, C·p·p] whose input is each patch flattened (C, y, x).
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { activation } from '../../layers/activations.ts';
import { attention, type AttentionWeights } from '../../layers/attention.ts';
import { layerNorm, type LayerNorm } from '../../layers/layer-norm.ts';
import { linear, linearFromCheckpoint, type Linear } from '../../layers/linear.ts';
import { mlp, type MLP } from '../../layers/mlp.ts';
import type { Capture } from '../capture.ts';
import { specLayerNorm, specLinear, type WeightLoader, type WeightSpec } from '../weights.ts';
import type { SiglipVisionConfig } from './config.ts';

export interface SiglipEncoderLayer {
  layer_norm1: LayerNorm;
  self_attn: AttentionWeights;
  layer_norm2: LayerNorm;
  mlp: MLP;
}

export interface SiglipVisionWeights {
  /** Patch conv as a Linear over flattened (C, p, p) patches. */
  patch_embedding: Linear;
  /** [num_positions, hidden] */
  position_embedding: tf.Tensor2D;
  layers: SiglipEncoderLayer[];
  post_layernorm: LayerNorm;
}

/** Keys of a SigLIP-style vision transformer under prefix (e.g. `model.vision_model`). */
export function siglipVisionWeightSpec(spec: WeightSpec, prefix: string, c: SiglipVisionConfig): void {
  const D = c.hidden_size;
  spec.set(`${prefix}.embeddings.patch_embedding.weight`, [D, c.num_channels, c.patch_size, c.patch_size]);
  spec.set(`${prefix}.embeddings.patch_embedding.bias`, [D]);
  spec.set(`${prefix}.embeddings.position_embedding.weight`, [c.num_patches_per_side ** 2, D]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `${prefix}.encoder.layers.${i}`;
    specLayerNorm(spec, `${p}.layer_norm1`, D);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) specLinear(spec, `${p}.self_attn.${proj}`, D, D, true);
    specLayerNorm(spec, `${p}.layer_norm2`, D);
    specLinear(spec, `${p}.mlp.fc1`, D, c.intermediate_size, true);
    specLinear(spec, `${p}.mlp.fc2`, c.intermediate_size, D, true);
  }
  specLayerNorm(spec, `${prefix}.post_layernorm`, D);
}

export function loadSiglipVisionWeights(w: WeightLoader, prefix: string, c: SiglipVisionConfig): SiglipVisionWeights {
  const act = activation(c.hidden_act);
  const eps = c.layer_norm_eps;
  const conv = w.tensor(`${prefix}.embeddings.patch_embedding.weight`); // [D, C, p, p]
  const convAsLinear = tf.reshape(conv, [c.hidden_size, c.num_channels * c.patch_size * c.patch_size]);
  conv.dispose();
  const layers: SiglipEncoderLayer[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `${prefix}.encoder.layers.${i}`;
    layers.push({
      layer_norm1: w.layerNorm(`${p}.layer_norm1`, eps),
      self_attn: {
        q: w.linear(`${p}.self_attn.q_proj`, true),
        k: w.linear(`${p}.self_attn.k_proj`, true),
        v: w.linear(`${p}.self_attn.v_proj`, true),
        o: w.linear(`${p}.self_attn.out_proj`, true),
      },
      layer_norm2: w.layerNorm(`${p}.layer_norm2`, eps),
      mlp: { fc1: w.linear(`${p}.mlp.fc1`, true), fc2: w.linear(`${p}.mlp.fc2`, true), act },
    });
  }
  return {
    patch_embedding: linearFromCheckpoint(convAsLinear, w.tensor(`${prefix}.embeddings.patch_embedding.bias`)),
    position_embedding: w.tensor(`${prefix}.embeddings.position_embedding.weight`) as tf.Tensor2D,
    layers,
    post_layernorm: w.layerNorm(`${prefix}.post_layernorm`, eps),
  };
}

/** pixel_values [N, C, H, W] → patch embeddings [N, (H/p)·(W/p), D], patches row-major (conv2d + flatten(2).transpose(1, 2)). */
export function patchEmbed(weights: SiglipVisionWeights, c: SiglipVisionConfig, pixelValues: tf.Tensor): tf.Tensor {
  const [N, C, H, W] = pixelValues.shape;
  const p = c.patch_size;
  if (pixelValues.rank !== 4 || C !== c.num_channels) {
    throw new TfvlmError(`pixel_values must be [N, ${c.num_channels}, H, W], got [${pixelValues.shape}]`);
  }
  const nh = Math.floor(H / p);
  const nw = Math.floor(W / p);
  if (nh === 0 || nw === 0) throw new TfvlmError(`pixel_values [${pixelValues.shape}] is smaller than one ${p}×${p} patch`);
  return tf.tidy(() => {
    // A valid conv ignores rows/columns beyond the last whole patch.
    const x = H === nh * p && W === nw * p ? pixelValues : tf.slice(pixelValues, [0, 0, 0, 0], [N, C, nh * p, nw * p]);
    const grid = tf.reshape(x, [N * C, nh, p, nw, p]); // [N·C, nh, p, nw, p]
    const perPatch = tf.transpose(grid, [1, 3, 0, 2, 4]); // [nh, nw, N·C, p, p]
    const byImage = tf.reshape(perPatch, [nh * nw, N, C * p * p]);
    const patches = tf.transpose(byImage, [1, 0, 2]); // [N, nh·nw, C·p·p]
    return linear(weights.patch_embedding, patches);
  });
}

/** One pre-LN encoder block: x + attn(ln1(x)); then + mlp(ln2(·)). mask: additive [N, 1, 1, S] or undefined. */
export function siglipEncoderLayer(layer: SiglipEncoderLayer, c: SiglipVisionConfig, x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const attn = attention(layer.self_attn, layerNorm(layer.layer_norm1, x), {
      numHeads: c.num_attention_heads, numKeyValueHeads: c.num_attention_heads, headDim: c.head_dim,
      scale: c.head_dim ** -0.5, mask,
    });
    const mid = tf.add(x, attn);
    return tf.add(mid, mlp(layer.mlp, layerNorm(layer.layer_norm2, mid)));
  });
}

/** Encoder layers then post_layernorm; captures `${name}.layers.{i}` and `${name}.post_layernorm`. Does not dispose x. */
export function siglipEncode(weights: SiglipVisionWeights, c: SiglipVisionConfig, x: tf.Tensor, mask: tf.Tensor | undefined,
  capture?: Capture, name = 'vision'): tf.Tensor {
  let h = x;
  for (let i = 0; i < weights.layers.length; i++) {
    const next = siglipEncoderLayer(weights.layers[i], c, h, mask);
    if (h !== x) h.dispose();
    h = next;
    capture?.record(`${name}.layers.${i}`, h);
  }
  const out = layerNorm(weights.post_layernorm, h);
  if (h !== x) h.dispose();
  capture?.record(`${name}.post_layernorm`, out);
  return out;
}
