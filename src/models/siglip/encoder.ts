// SigLIP vision tower pieces (transformers modeling_siglip.py: SiglipVisionEmbeddings patch conv,
// SiglipEncoderLayer, post_layernorm), shared by SigLIP and Idefics3. The pre-LN encoder block and
// its weight loading take only the sizes they use (EncoderDims), so CLIP's vision and text towers
// (modeling_clip.py: CLIPEncoderLayer, the same block with quick_gelu) run on them too. The patch
// conv (kernel = stride = patch_size, no padding) is computed as one matMul over unfolded patches: the OIHW conv
// weight [D, C, p, p] becomes a Linear [D, C·p·p] whose input is each patch flattened (C, y, x).
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { activation } from '../../layers/activations.ts';
import { attention, type AttentionWeights } from '../../layers/attention.ts';
import { layerNorm, type LayerNorm } from '../../layers/layer-norm.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import { mlp, type MLP } from '../../layers/mlp.ts';
import { attentionRecorder, type Capture } from '../capture.ts';
import type { WeightSource } from '../weights.ts';
import type { SiglipVisionConfig } from './config.ts';
import { reportProgress } from '../../util/progress.ts';

/** The sizes a stack of pre-LN encoder blocks reads from its tower's config. */
export type EncoderDims = Pick<SiglipVisionConfig,
  'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' | 'head_dim' | 'hidden_act' | 'layer_norm_eps'>;

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

/** Encoder blocks `prefix.layers.{i}` (e.g. prefix `model.vision_model.encoder`). */
export function encoderLayersWeights(w: WeightSource, prefix: string, c: EncoderDims): SiglipEncoderLayer[] {
  const act = activation(c.hidden_act);
  const D = c.hidden_size;
  const eps = c.layer_norm_eps;
  return Array.from({ length: c.num_hidden_layers }, (_, i) => {
    const p = `${prefix}.layers.${i}`;
    return {
      layer_norm1: w.layerNorm(`${p}.layer_norm1`, D, eps),
      self_attn: {
        q: w.linear(`${p}.self_attn.q_proj`, D, D, true),
        k: w.linear(`${p}.self_attn.k_proj`, D, D, true),
        v: w.linear(`${p}.self_attn.v_proj`, D, D, true),
        o: w.linear(`${p}.self_attn.out_proj`, D, D, true),
      },
      layer_norm2: w.layerNorm(`${p}.layer_norm2`, D, eps),
      mlp: { fc1: w.linear(`${p}.mlp.fc1`, D, c.intermediate_size, true), fc2: w.linear(`${p}.mlp.fc2`, c.intermediate_size, D, true), act },
    };
  });
}

/** A SigLIP-style vision transformer under prefix (e.g. `model.vision_model`). */
export function siglipVisionWeights(w: WeightSource, prefix: string, c: SiglipVisionConfig): SiglipVisionWeights {
  const D = c.hidden_size;
  return {
    patch_embedding: w.patchConv(`${prefix}.embeddings.patch_embedding`, D, c.num_channels, c.patch_size, true),
    position_embedding: w.tensor(`${prefix}.embeddings.position_embedding.weight`, [c.num_patches_per_side ** 2, D]) as tf.Tensor2D,
    layers: encoderLayersWeights(w, `${prefix}.encoder`, c),
    post_layernorm: w.layerNorm(`${prefix}.post_layernorm`, D, c.layer_norm_eps),
  };
}

/** pixel_values [N, C, H, W] → patch embeddings [N, (H/p)·(W/p), D], patches row-major (conv2d + flatten(2).transpose(1, 2)). */
export function patchEmbed(weights: { patch_embedding: Linear }, c: Pick<SiglipVisionConfig, 'num_channels' | 'patch_size'>,
  pixelValues: tf.Tensor): tf.Tensor {
  const [N, C, H, W] = pixelValues.shape as [number, number, number, number]; // rank checked below
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

/** One pre-LN encoder block: x + attn(ln1(x)); then + mlp(ln2(·)). mask: additive [N, 1, 1 or T, S] (padding, causal) or undefined. */
export function siglipEncoderLayer(layer: SiglipEncoderLayer, c: Pick<EncoderDims, 'num_attention_heads' | 'head_dim'>,
  x: tf.Tensor, mask?: tf.Tensor, onWeights?: (weights: tf.Tensor) => void): tf.Tensor {
  return tf.tidy(() => {
    const attn = attention(layer.self_attn, layerNorm(layer.layer_norm1, x), {
      numHeads: c.num_attention_heads, numKeyValueHeads: c.num_attention_heads, headDim: c.head_dim,
      scale: c.head_dim ** -0.5, mask, onWeights,
    });
    const mid = tf.add(x, attn);
    return tf.add(mid, mlp(layer.mlp, layerNorm(layer.layer_norm2, mid)));
  });
}

export interface EncoderRunOptions {
  /** Additive attention mask (see siglipEncoderLayer). */
  mask?: tf.Tensor;
  /** Blocks to run (default all). */
  depth?: number;
  /** hidden_states indices to return (0 = x, k = output of block k−1); each ≤ depth. */
  keep?: number[];
  /** Records `${name}.layers.{i}` (and, if asked for by name, `${name}.layers.{i}.attn_weights`). */
  capture?: Capture;
  name?: string;
}

/**
 * Runs the first `depth` blocks over x (not disposed). Returns the last output and the kept hidden
 * states; all are owned by the caller (`last` may also appear in `kept`, as its own copy).
 */
export function runEncoderLayers(layers: SiglipEncoderLayer[], c: Pick<EncoderDims, 'num_attention_heads' | 'head_dim'>,
  x: tf.Tensor, opts: EncoderRunOptions = {}): { last: tf.Tensor; kept: Map<number, tf.Tensor> } {
  const depth = opts.depth ?? layers.length;
  const keep = new Set(opts.keep ?? []);
  const kept = new Map<number, tf.Tensor>();
  const name = opts.name ?? 'vision';
  if (keep.has(0)) kept.set(0, tf.clone(x));
  let h = x;
  try {
    for (let i = 0; i < depth; i++) {
      const next = siglipEncoderLayer(layers[i]!, c, h, opts.mask, attentionRecorder(opts.capture, `${name}.layers.${i}`));
      if (h !== x) h.dispose();
      h = next;
      opts.capture?.record(`${name}.layers.${i}`, h);
      if (keep.has(i + 1)) kept.set(i + 1, tf.clone(h));
      if (name === 'vision') reportProgress('vision', i + 1, depth, 'layers');
    }
  } catch (e) {
    if (h !== x) h.dispose();
    for (const t of kept.values()) t.dispose();
    throw e;
  }
  return { last: h === x ? tf.clone(x) : h, kept };
}

/** Encoder layers then post_layernorm; captures `${name}.layers.{i}` and `${name}.post_layernorm`. Does not dispose x. */
export function siglipEncode(weights: SiglipVisionWeights, c: SiglipVisionConfig, x: tf.Tensor, mask: tf.Tensor | undefined,
  capture?: Capture, name = 'vision'): tf.Tensor {
  const { last } = runEncoderLayers(weights.layers, c, x, { mask, capture, name });
  const out = layerNorm(weights.post_layernorm, last);
  last.dispose();
  capture?.record(`${name}.post_layernorm`, out);
  return out;
}
