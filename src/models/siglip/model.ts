// SiglipModel (transformers 4.47 modeling_siglip.py SiglipModel.forward): vision tower (patch conv with
// bias + position embedding, encoder, post_layernorm, attention-pooling head), text tower (text.ts),
// L2-normalised pooled outputs, logits_per_text = exp(logit_scale) · t · iᵀ + logit_bias.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { Checkpoint } from '../../io/checkpoint.ts';
import type { Capture } from '../capture.ts';
import { l2Normalize, similarityLogits } from '../clip/model.ts';
import { ConfigReader } from '../config-fields.ts';
import { readConfigJson } from '../read-config.ts';
import { loadWeights } from '../load-weights.ts';
import { disposeTree, type WeightSource } from '../weights.ts';
import { parseSiglipVisionConfig, SIGLIP_VISION_DEFAULTS, type SiglipVisionConfig } from './config.ts';
import { patchEmbed, siglipEncode, siglipVisionWeights, type SiglipVisionWeights } from './encoder.ts';
import { siglipHead, siglipHeadWeights, type SiglipHeadWeights } from './head.ts';
import { parseSiglipTextConfig, SiglipTextTransformer, siglipTextWeights, type SiglipTextConfig } from './text.ts';

export interface SiglipConfig {
  model_type: string;
  text_config: SiglipTextConfig;
  vision_config: SiglipVisionConfig;
}

export function parseSiglipConfig(raw: unknown, source = 'config.json'): SiglipConfig {
  const r = ConfigReader.from(raw, '', source);
  const config = {
    model_type: r.string('model_type', 'siglip'),
    text_config: parseSiglipTextConfig(r.raw.text_config ?? {}, 'text_config', source),
    vision_config: parseSiglipVisionConfig(r.raw.vision_config ?? {}, SIGLIP_VISION_DEFAULTS, 'vision_config', source),
  };
  if (config.text_config.projection_size !== config.vision_config.hidden_size) {
    throw new TfvlmError(`${source}: text_config projection_size (${config.text_config.projection_size}) must equal vision_config.hidden_size (${config.vision_config.hidden_size}) to compare embeddings`);
  }
  return config;
}

/** A SiglipModel: the vision tower and its pooling head, the text tower, logit_scale and logit_bias. */
export function siglipModelWeights(w: WeightSource, c: SiglipConfig) {
  return {
    vision: siglipVisionWeights(w, 'vision_model', c.vision_config),
    head: siglipHeadWeights(w, 'vision_model.head', c.vision_config),
    text: siglipTextWeights(w, 'text_model', c.text_config),
    logitScale: w.tensor('logit_scale', [1]),
    logitBias: w.tensor('logit_bias', [1]),
  };
}

export class SiglipModel {
  readonly kind = 'siglip';

  constructor(
    readonly config: SiglipConfig,
    readonly visionWeights: SiglipVisionWeights,
    readonly head: SiglipHeadWeights,
    readonly text: SiglipTextTransformer,
    readonly logitScale: tf.Tensor,
    readonly logitBias: tf.Tensor,
  ) {}

  static async load(dir: string): Promise<SiglipModel> {
    const { raw, path } = readConfigJson(dir);
    const modelType = (raw as { model_type?: unknown }).model_type;
    if (modelType !== 'siglip') throw new TfvlmError(`${path}: model_type ${JSON.stringify(modelType)} is not a SiglipModel ('siglip')`);
    const c = parseSiglipConfig(raw, path);
    const checkpoint = Checkpoint.open(dir);
    try {
      const { weights: w } = loadWeights(checkpoint, (source) => siglipModelWeights(source, c), { ignore: (k) => k.endsWith('.embeddings.position_ids') });
      return new SiglipModel(c, w.vision, w.head, new SiglipTextTransformer(c.text_config, w.text), w.logitScale, w.logitBias);
    } finally {
      checkpoint.close();
    }
  }

  get scale(): number {
    return Math.exp(this.logitScale.dataSync()[0]!);
  }

  get bias(): number {
    return this.logitBias.dataSync()[0]!;
  }

  /**
   * pixel_values [N, C, image_size, image_size] → pooled [N, hidden] (pooler_output). Captures
   * vision.embeddings, vision.layers.{i}, vision.post_layernorm, vision.head.attention, vision.pooled.
   */
  visionPooled(pixelValues: tf.Tensor, capture?: Capture): tf.Tensor {
    const c = this.config.vision_config;
    const [, C, H, W] = pixelValues.shape;
    if (pixelValues.rank !== 4 || C !== c.num_channels || H !== c.image_size || W !== c.image_size) {
      throw new TfvlmError(
        `pixel_values must be [N, ${c.num_channels}, ${c.image_size}, ${c.image_size}] (vision_config image_size), got [${pixelValues.shape}]`,
      );
    }
    const x = tf.tidy(() => tf.add(patchEmbed(this.visionWeights, c, pixelValues), this.visionWeights.position_embedding));
    capture?.record('vision.embeddings', x);
    let hidden: tf.Tensor | undefined;
    try {
      hidden = siglipEncode(this.visionWeights, c, x, undefined, capture, 'vision');
      const pooled = siglipHead(this.head, c, hidden, capture);
      capture?.record('vision.pooled', pooled);
      return pooled;
    } finally {
      x.dispose();
      hidden?.dispose();
    }
  }

  /** pixel_values → image_embeds [N, hidden] (L2-normalised). */
  embedImages(pixelValues: tf.Tensor, capture?: Capture): tf.Tensor {
    const pooled = this.visionPooled(pixelValues, capture);
    const embeds = l2Normalize(pooled);
    pooled.dispose();
    capture?.record('image_embeds', embeds);
    return embeds;
  }

  /** input_ids [B][T] → text_embeds [B, projection_size] (L2-normalised). */
  embedTexts(inputIds: number[][], attentionMask?: number[][], capture?: Capture): tf.Tensor {
    const pooled = this.text.run(inputIds, attentionMask, capture);
    const embeds = l2Normalize(pooled);
    pooled.dispose();
    capture?.record('text_embeds', embeds);
    return embeds;
  }

  /** logits_per_image [n_images, n_texts]; probabilities are sigmoid(logits). */
  logits(imageEmbeds: tf.Tensor, textEmbeds: tf.Tensor, capture?: Capture): tf.Tensor {
    return similarityLogits(imageEmbeds, textEmbeds, this.logitScale, this.logitBias, capture);
  }

  dispose(): void {
    disposeTree([this.visionWeights, this.head, this.logitScale, this.logitBias]);
    this.text.dispose();
  }
}
