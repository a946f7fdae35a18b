// CLIP as a standalone image encoder: the vision tower (and visual_projection when the checkpoint has
// one) of a CLIPModel, CLIPVisionModelWithProjection, CLIPVisionModel or LLaVA folder → L2-normalised
// image embeddings (CLIPModel.forward's image_embeds; without a projection, the normalised pooled CLS).
// It reads towers of several architectures, so it sits beside them rather than inside clip/.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { Checkpoint } from '../io/checkpoint.ts';
import type { Linear } from '../layers/linear.ts';
import type { Capture } from './capture.ts';
import { parseCLIPConfig, parseCLIPVisionConfig, type CLIPVisionConfig } from './clip/config.ts';
import { CLIPVisionTransformer, clipVisionWeights, projectAndNormalize } from './clip/vision.ts';
import { parseLlavaConfig } from './llava/config.ts';
import { llavaKeyLayout } from './llava/model.ts';
import { readConfigJson } from './read-config.ts';
import { loadWeights } from './load-weights.ts';
import { disposeTree } from './weights.ts';

/** Where the vision tower sits in a checkpoint, and its projection (if any). */
interface TowerLocation {
  config: CLIPVisionConfig;
  prefix: string;
  /** visual_projection key prefix and output width. */
  projection?: { prefix: string; dim: number };
}

function locateTower(raw: unknown, source: string, checkpoint: Checkpoint): TowerLocation {
  const modelType = (raw as { model_type?: unknown }).model_type;
  if (modelType === 'clip') {
    const c = parseCLIPConfig(raw, source);
    return { config: c.vision_config, prefix: 'vision_model', projection: { prefix: 'visual_projection', dim: c.projection_dim } };
  }
  if (modelType === 'clip_vision_model') {
    const config = parseCLIPVisionConfig(raw, '', source);
    const projection = checkpoint.has('visual_projection.weight') ? { prefix: 'visual_projection', dim: config.projection_dim } : undefined;
    return { config, prefix: 'vision_model', projection };
  }
  if (modelType === 'llava') {
    return { config: parseLlavaConfig(raw, source).vision_config, prefix: llavaKeyLayout(checkpoint).vision };
  }
  throw new TfvlmError(
    `${source}: model_type ${JSON.stringify(modelType)} has no CLIP image encoder (supported: clip, clip_vision_model, llava)`,
  );
}

export class CLIPImageEncoder {
  constructor(
    readonly config: CLIPVisionConfig,
    readonly vision: CLIPVisionTransformer,
    /** visual_projection [hidden → projection_dim], absent for CLIPVisionModel and LLaVA towers. */
    readonly projection: Linear | undefined,
  ) {}

  static async load(dir: string): Promise<CLIPImageEncoder> {
    const { raw, path } = readConfigJson(dir);
    const checkpoint = Checkpoint.open(dir);
    try {
      const tower = locateTower(raw, path, checkpoint);
      const { weights } = loadWeights(checkpoint, (w) => ({
        vision: clipVisionWeights(w, tower.prefix, tower.config),
        projection: tower.projection ? w.linear(tower.projection.prefix, tower.config.hidden_size, tower.projection.dim, false) : undefined,
      }), {
        // Everything outside the tower (text tower, projector, decoder, logit_scale) is not read.
        ignore: (key) => !key.startsWith(`${tower.prefix}.`) || key.endsWith('.embeddings.position_ids'),
      });
      return new CLIPImageEncoder(tower.config, new CLIPVisionTransformer(tower.config, weights.vision), weights.projection);
    } finally {
      checkpoint.close();
    }
  }

  /** Width of the embeddings: projection_dim, or hidden_size without a projection. */
  get embedDim(): number {
    return this.projection ? this.projection.outFeatures : this.config.hidden_size;
  }

  /**
   * pixel_values [N, C, H, W] → image_embeds [N, embedDim], L2-normalised. Captures vision.embeddings,
   * vision.pre_layrnorm, vision.layers.{i}, vision.pooled, vision.projection, image_embeds.
   */
  embed(pixelValues: tf.Tensor, capture?: Capture): tf.Tensor {
    const { pooled } = this.vision.run(pixelValues, { pooled: true, capture });
    try {
      return projectAndNormalize(this.projection, pooled as tf.Tensor, capture);
    } finally {
      pooled?.dispose();
    }
  }

  dispose(): void {
    this.vision.dispose();
    disposeTree(this.projection);
  }
}
