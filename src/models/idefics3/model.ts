// Idefics3ForConditionalGeneration (SmolVLM; transformers 4.47 modeling_idefics3.py): vision
// transformer → connector → image features replace the <image> token embeddings (inputs_merger) →
// Llama decoder → lm_head (tied to embed_tokens when tie_word_embeddings).
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { Checkpoint } from '../../io/checkpoint.ts';
import type { Capture } from '../capture.ts';
import { mergeImageFeatures } from '../image-merge.ts';
import { LlamaDecoder, llamaWeights } from '../llama/model.ts';
import { readConfigJson } from '../read-config.ts';
import { siglipVisionWeights } from '../siglip/encoder.ts';
import { DecoderModel, type LoadedParts, type PromptTensors } from '../decoder-model.ts';
import { checkModelFits } from '../fit.ts';
import { weightLoadOptions, type ModelLoadOptions } from '../load-options.ts';
import { IDEFICS3_MLX_NAMES } from './mlx-names.ts';
import { loadWeights, type LoadWeightsOptions } from '../load-weights.ts';
import { disposeTree, weightSpec, type WeightSource, type WeightSpec } from '../weights.ts';
import { parseIdefics3Config, type Idefics3Config } from './config.ts';
import { connectorForward, type Idefics3ConnectorWeights } from './connector.ts';
import { Idefics3VisionTransformer, patchMaskFromPixels } from './vision.ts';

/** An Idefics3ForConditionalGeneration's weights, every key as transformers saves them. */
export function idefics3Weights(w: WeightSource, c: Idefics3Config) {
  const s2 = c.scale_factor * c.scale_factor;
  const Dt = c.text_config.hidden_size;
  return {
    vision: siglipVisionWeights(w, 'model.vision_model', c.vision_config),
    connector: { proj: w.linear('model.connector.modality_projection.proj', c.vision_config.hidden_size * s2, Dt, false) },
    text: llamaWeights(w, 'model.text_model', c.text_config),
    lmHead: c.tie_word_embeddings ? undefined : w.linear('lm_head', Dt, c.text_config.vocab_size, false),
  };
}

/** Every checkpoint key (and shape) an Idefics3ForConditionalGeneration with this config has. */
export function idefics3WeightSpec(c: Idefics3Config): WeightSpec {
  return weightSpec((w) => idefics3Weights(w, c));
}

/** Keys transformers ignores on load (non-persistent RoPE buffers, a stored lm_head when tied). */
function ignoredKey(c: Idefics3Config): (key: string) => boolean {
  // MLX's idefics3 always stores an lm_head, quantized like any linear.
  return (key) => key.endsWith('.rotary_emb.inv_freq') || (c.tie_word_embeddings && /^lm_head\.(weight|scales|biases)$/.test(key));
}

export class Idefics3Model extends DecoderModel {
  constructor(
    readonly config: Idefics3Config,
    readonly vision: Idefics3VisionTransformer,
    readonly connector: Idefics3ConnectorWeights,
    text: LlamaDecoder,
    parts?: LoadedParts,
  ) {
    super(text, parts);
  }

  /** Loads config.json + safetensors (single or sharded) from a model folder. */
  static async load(dir: string, options: ModelLoadOptions = {}): Promise<Idefics3Model> {
    const { raw, path } = readConfigJson(dir);
    const config = parseIdefics3Config(raw, path);
    const checkpoint = Checkpoint.open(dir);
    try {
      return Idefics3Model.fromCheckpoint(config, checkpoint, weightLoadOptions(options, raw, IDEFICS3_MLX_NAMES));
    } finally {
      checkpoint.close();
    }
  }

  static fromCheckpoint(config: Idefics3Config, checkpoint: Checkpoint, load: LoadWeightsOptions = {}): Idefics3Model {
    const build = (source: WeightSource) => idefics3Weights(source, config);
    checkModelFits(checkpoint, build, load, config.text_config);
    const { weights: w, slots, store } = loadWeights(checkpoint, build, { ...load, ignore: ignoredKey(config) });
    const lmHead = w.lmHead ?? LlamaDecoder.tiedHead(w.text);
    const text = new LlamaDecoder(config.text_config, w.text, lmHead);
    return new Idefics3Model(config, new Idefics3VisionTransformer(config.vision_config, w.vision), w.connector, text, { slots, store });
  }

  /**
   * pixel_values [B, N, C, H, W] → image features [n_real, image_seq_len, text_hidden] for the tiles
   * that are not all zero (real_images_inds), in row-major (b, n) order.
   */
  encodeImages(pixelValues: tf.Tensor, pixelAttentionMask?: tf.Tensor, capture?: Capture): tf.Tensor {
    const vc = this.config.vision_config;
    if (pixelValues.rank !== 5 || pixelValues.shape[2] !== vc.num_channels) {
      throw new TfvlmError(`pixel_values must be [B, N, ${vc.num_channels}, H, W], got [${pixelValues.shape}]`);
    }
    const [B, N, C, H, W] = pixelValues.shape as [number, number, number, number, number];
    const tiles = B * N;
    const perTile = C * H * W;
    const pixels = pixelValues.dataSync() as Float32Array;
    const real: number[] = [];
    for (let i = 0; i < tiles; i++) {
      const tile = pixels.subarray(i * perTile, (i + 1) * perTile);
      if (tile.some((v) => v !== 0)) real.push(i);
    }
    if (real.length === 0) throw new TfvlmError('pixel_values holds only all-zero (padding) tiles');
    let pixelMask: Uint8Array;
    if (pixelAttentionMask) {
      const [mB, mN, mH, mW] = pixelAttentionMask.shape;
      if (pixelAttentionMask.rank !== 4 || mB !== B || mN !== N || mH !== H || mW !== W) {
        throw new TfvlmError(`pixel_attention_mask must be [${B}, ${N}, ${H}, ${W}], got [${pixelAttentionMask.shape}]`);
      }
      const m = pixelAttentionMask.dataSync();
      pixelMask = new Uint8Array(real.length * H * W);
      real.forEach((t, k) => {
        for (let j = 0; j < H * W; j++) pixelMask[k * H * W + j] = m[t * H * W + j] ? 1 : 0;
      });
    } else {
      pixelMask = new Uint8Array(real.length * H * W).fill(1);
    }
    const patchMask = patchMaskFromPixels(pixelMask, real.length, H, W, vc.patch_size);
    const realPixels = tf.tidy(() => {
      const flat = tf.reshape(pixelValues, [tiles, C, H, W]);
      return real.length === tiles ? tf.clone(flat) : tf.gather(flat, tf.tensor1d(real, 'int32'));
    });
    try {
      const hidden = this.vision.forward(realPixels, patchMask, capture);
      try {
        return connectorForward(this.connector, this.config.scale_factor, hidden, capture);
      } finally {
        hidden.dispose();
      }
    } finally {
      realPixels.dispose();
    }
  }

  /** Token embeddings with the image_token_id rows replaced, in order, by the image feature rows (inputs_merger). */
  mergeImageFeatures(inputIds: tf.Tensor, inputsEmbeds: tf.Tensor, imageFeatures: tf.Tensor): tf.Tensor {
    return mergeImageFeatures(inputIds, inputsEmbeds, imageFeatures, this.config.image_token_id, 'tiles');
  }

  /** Token embeddings [B, T, hidden] with the image features merged at the image tokens (inputs_merger). */
  embed(inputs: PromptTensors, capture?: Capture): tf.Tensor {
    const ids = inputs.input_ids;
    if (ids.rank !== 2) throw new TfvlmError(`input_ids must be [B, T], got [${ids.shape}]`);
    const embeds = this.text.embed(ids);
    if (!inputs.pixel_values) return embeds;
    if (inputs.pixel_values.shape[0] !== ids.shape[0]) {
      embeds.dispose();
      throw new TfvlmError(`pixel_values batch ${inputs.pixel_values.shape[0]} differs from input_ids batch ${ids.shape[0]}`);
    }
    let features: tf.Tensor | undefined;
    try {
      features = this.encodeImages(inputs.pixel_values, inputs.pixel_attention_mask, capture);
      return this.mergeImageFeatures(ids, embeds, features);
    } finally {
      features?.dispose();
      embeds.dispose();
    }
  }

  protected disposeTensors(): void {
    this.text.dispose();
    disposeTree(this.connector);
    disposeTree(this.vision.weights);
  }
}
