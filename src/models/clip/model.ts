// CLIPModel (transformers 4.47 modeling_clip.py CLIPModel.forward): both towers, visual_projection and
// text_projection (no bias), L2-normalised embeddings, logits_per_text = exp(logit_scale) · t · iᵀ.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { Checkpoint } from '../../io/checkpoint.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import type { Capture } from '../capture.ts';
import { readConfigJson } from '../read-config.ts';
import { loadWeights } from '../load-weights.ts';
import { disposeTree, type WeightSource } from '../weights.ts';
import { parseCLIPConfig, type CLIPConfig } from './config.ts';
import { CLIPTextTransformer, clipTextWeights } from './text.ts';
import { CLIPVisionTransformer, clipVisionWeights, projectAndNormalize } from './vision.ts';

/** x / ‖x‖ along the last axis. */
export function l2Normalize(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.div(x, tf.norm(x, 'euclidean', -1, true)));
}

/**
 * logits_per_text [n_texts, n_images] = scale · text_embeds · image_embedsᵀ (+ bias); records
 * logits_per_text and logits_per_image; returns logits_per_image [n_images, n_texts].
 */
export function similarityLogits(imageEmbeds: tf.Tensor, textEmbeds: tf.Tensor, logitScale: tf.Tensor,
  logitBias: tf.Tensor | undefined, capture?: Capture): tf.Tensor {
  return tf.tidy(() => {
    let perText = tf.mul(tf.matMul(textEmbeds, imageEmbeds, false, true), tf.exp(tf.reshape(logitScale, [])));
    if (logitBias) perText = tf.add(perText, tf.reshape(logitBias, []));
    capture?.record('logits_per_text', perText);
    const perImage = tf.transpose(perText);
    capture?.record('logits_per_image', perImage);
    return perImage;
  });
}

/** A CLIPModel: both towers, their projections, and logit_scale. */
export function clipModelWeights(w: WeightSource, c: CLIPConfig) {
  return {
    vision: clipVisionWeights(w, 'vision_model', c.vision_config),
    text: clipTextWeights(w, 'text_model', c.text_config),
    visualProjection: w.linear('visual_projection', c.vision_config.hidden_size, c.projection_dim, false),
    textProjection: w.linear('text_projection', c.text_config.hidden_size, c.projection_dim, false),
    logitScale: w.tensor('logit_scale', []),
  };
}

export class CLIPModel {
  readonly kind = 'clip';

  constructor(
    readonly config: CLIPConfig,
    readonly vision: CLIPVisionTransformer,
    readonly text: CLIPTextTransformer,
    readonly visualProjection: Linear,
    readonly textProjection: Linear,
    /** [] log of the logit scale. */
    readonly logitScale: tf.Tensor,
  ) {}

  static async load(dir: string): Promise<CLIPModel> {
    const { raw, path } = readConfigJson(dir);
    const modelType = (raw as { model_type?: unknown }).model_type;
    if (modelType !== 'clip') throw new TfvlmError(`${path}: model_type ${JSON.stringify(modelType)} is not a CLIPModel ('clip')`);
    const c = parseCLIPConfig(raw, path);
    const checkpoint = Checkpoint.open(dir);
    try {
      const { weights: w } = loadWeights(checkpoint, (source) => clipModelWeights(source, c), { ignore: (k) => k.endsWith('.embeddings.position_ids') });
      return new CLIPModel(
        c,
        new CLIPVisionTransformer(c.vision_config, w.vision),
        new CLIPTextTransformer(c.text_config, w.text),
        w.visualProjection,
        w.textProjection,
        w.logitScale,
      );
    } finally {
      checkpoint.close();
    }
  }

  /** exp(logit_scale). */
  get scale(): number {
    return Math.exp(this.logitScale.dataSync()[0]!);
  }

  /** pixel_values [N, C, H, W] → image_embeds [N, projection_dim] (L2-normalised). */
  embedImages(pixelValues: tf.Tensor, capture?: Capture): tf.Tensor {
    const { pooled } = this.vision.run(pixelValues, { pooled: true, capture });
    try {
      return projectAndNormalize(this.visualProjection, pooled as tf.Tensor, capture);
    } finally {
      pooled?.dispose();
    }
  }

  /** input_ids [B][T] (+ attention_mask) → text_embeds [B, projection_dim] (L2-normalised). */
  embedTexts(inputIds: number[][], attentionMask?: number[][], capture?: Capture): tf.Tensor {
    const pooled = this.text.run(inputIds, attentionMask, capture);
    try {
      return tf.tidy(() => {
        const projected = linear(this.textProjection, pooled);
        capture?.record('text.projection', projected);
        const embeds = l2Normalize(projected);
        capture?.record('text_embeds', embeds);
        return embeds;
      });
    } finally {
      pooled.dispose();
    }
  }

  /** logits_per_image [n_images, n_texts]. */
  logits(imageEmbeds: tf.Tensor, textEmbeds: tf.Tensor, capture?: Capture): tf.Tensor {
    return similarityLogits(imageEmbeds, textEmbeds, this.logitScale, undefined, capture);
  }

  dispose(): void {
    this.vision.dispose();
    this.text.dispose();
    disposeTree([this.visualProjection, this.textProjection, this.logitScale]);
  }
}
