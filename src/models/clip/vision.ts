// CLIP vision transformer (transformers 4.47 modeling_clip.py: CLIPVisionEmbeddings,
// CLIPVisionTransformer, CLIPVisionModelWithProjection). The blocks are the shared pre-LN encoder
// blocks of siglip/encoder.ts; what is CLIP's own: a class embedding row in front of the patches,
// a patch conv without bias, `pre_layrnorm` before the encoder, and pooling by `post_layernorm` of
// the CLS row only.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { layerNorm, type LayerNorm } from '../../layers/layer-norm.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import type { Capture } from '../capture.ts';
import {
  encoderLayersWeights, patchEmbed, runEncoderLayers, type SiglipEncoderLayer,
} from '../siglip/encoder.ts';
import { disposeTree, type WeightSource } from '../weights.ts';
import type { CLIPVisionConfig } from './config.ts';

export interface CLIPVisionWeights {
  /** [hidden] */
  class_embedding: tf.Tensor1D;
  /** Patch conv (no bias) as a Linear over flattened (C, p, p) patches. */
  patch_embedding: Linear;
  /** [num_patches + 1, hidden] */
  position_embedding: tf.Tensor2D;
  pre_layrnorm: LayerNorm;
  layers: SiglipEncoderLayer[];
  post_layernorm: LayerNorm;
}

/** A CLIPVisionTransformer under prefix (e.g. `vision_model`, `vision_tower.vision_model`). */
export function clipVisionWeights(w: WeightSource, prefix: string, c: CLIPVisionConfig): CLIPVisionWeights {
  const D = c.hidden_size;
  const eps = c.layer_norm_eps;
  return {
    class_embedding: w.tensor(`${prefix}.embeddings.class_embedding`, [D]) as tf.Tensor1D,
    patch_embedding: w.patchConv(`${prefix}.embeddings.patch_embedding`, D, c.num_channels, c.patch_size, false),
    position_embedding: w.tensor(`${prefix}.embeddings.position_embedding.weight`, [c.num_positions, D]) as tf.Tensor2D,
    pre_layrnorm: w.layerNorm(`${prefix}.pre_layrnorm`, D, eps),
    layers: encoderLayersWeights(w, `${prefix}.encoder`, c),
    post_layernorm: w.layerNorm(`${prefix}.post_layernorm`, D, eps),
  };
}

export interface CLIPVisionRun {
  /** hidden_states[k] for each requested k, in the order asked (0 = pre_layrnorm output, k = output of layer k−1). Owned by the caller. */
  hiddenStates: tf.Tensor[];
  /** post_layernorm(last_hidden_state[:, 0]) [N, hidden] when asked for (pooler_output). Owned by the caller. */
  pooled?: tf.Tensor;
}

export class CLIPVisionTransformer {
  constructor(readonly config: CLIPVisionConfig, readonly weights: CLIPVisionWeights) {}

  /** pixel_values [N, C, image_size, image_size] → [CLS; patches] + position embedding [N, 1 + P, hidden]. */
  embeddings(pixelValues: tf.Tensor): tf.Tensor {
    const c = this.config;
    const [N, C, H, W] = pixelValues.shape;
    if (pixelValues.rank !== 4 || C !== c.num_channels || H !== c.image_size || W !== c.image_size) {
      // CLIPVisionEmbeddings refuses other sizes unless interpolate_pos_encoding.
      throw new TfvlmError(
        `pixel_values must be [N, ${c.num_channels}, ${c.image_size}, ${c.image_size}] (vision_config image_size), got [${pixelValues.shape}]`,
      );
    }
    return tf.tidy(() => {
      const patches = patchEmbed(this.weights, c, pixelValues); // [N, P, D]
      const cls = tf.broadcastTo(tf.reshape(this.weights.class_embedding, [1, 1, c.hidden_size]), [N, 1, c.hidden_size]);
      return tf.add(tf.concat([cls, patches], 1), this.weights.position_embedding);
    });
  }

  /**
   * Runs the tower as far as the deepest requested hidden state (all layers with `pooled`), or the
   * deepest layer the capture asks for. Captures vision.embeddings, vision.pre_layrnorm,
   * vision.layers.{i}, vision.pooled.
   */
  run(pixelValues: tf.Tensor, opts: { hiddenStates?: number[]; pooled?: boolean; capture?: Capture } = {}): CLIPVisionRun {
    const c = this.config;
    const L = c.num_hidden_layers;
    const wanted = opts.hiddenStates ?? [];
    for (const k of wanted) {
      if (!Number.isInteger(k) || k < 0 || k > L) throw new TfvlmError(`CLIP hidden state ${k} does not exist (0..${L})`);
    }
    const capture = opts.capture;
    let depth = opts.pooled ? L : Math.max(0, ...wanted);
    for (let i = depth; i < L; i++) if (capture?.wants(`vision.layers.${i}`)) depth = i + 1;
    const embeddings = this.embeddings(pixelValues);
    capture?.record('vision.embeddings', embeddings);
    let input: tf.Tensor | undefined;
    try {
      input = layerNorm(this.weights.pre_layrnorm, embeddings);
      capture?.record('vision.pre_layrnorm', input);
      const { last, kept } = runEncoderLayers(this.weights.layers, c, input, { depth, keep: wanted, capture, name: 'vision' });
      let pooled: tf.Tensor | undefined;
      if (opts.pooled) {
        pooled = tf.tidy(() => layerNorm(this.weights.post_layernorm, tf.squeeze(tf.slice(last, [0, 0, 0], [-1, 1, -1]), [1])));
        capture?.record('vision.pooled', pooled);
      }
      last.dispose();
      return { hiddenStates: wanted.map((k) => kept.get(k) as tf.Tensor), pooled };
    } finally {
      embeddings.dispose();
      input?.dispose();
    }
  }

  dispose(): void {
    disposeTree(this.weights);
  }
}

/** visual_projection of the pooled CLS row, then L2 normalisation (CLIPModel.forward's image_embeds). */
export function projectAndNormalize(projection: Linear | undefined, pooled: tf.Tensor, capture?: Capture): tf.Tensor {
  return tf.tidy(() => {
    const projected = projection ? linear(projection, pooled) : pooled;
    if (projection) capture?.record('vision.projection', projected);
    const embeds = tf.div(projected, tf.norm(projected, 'euclidean', -1, true));
    capture?.record('image_embeds', embeds);
    return embeds;
  });
}
