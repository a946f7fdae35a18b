// Idefics3ForConditionalGeneration (SmolVLM; transformers 4.47 modeling_idefics3.py): vision
// transformer → connector → image features replace the <image> token embeddings (inputs_merger) →
// Llama decoder → lm_head (tied to embed_tokens when tie_word_embeddings).
import fs from 'node:fs';
import path from 'node:path';
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { Checkpoint } from '../../io/checkpoint.ts';
import type { KVCache } from '../../layers/kv-cache.ts';
import type { Capture } from '../capture.ts';
import { mergeImageFeatures } from '../image-merge.ts';
import { LlamaDecoder, llamaWeightSpec, loadLlamaWeights, type HostInts } from '../llama/model.ts';
import { loadSiglipVisionWeights, siglipVisionWeightSpec } from '../siglip/encoder.ts';
import { WeightLoader, disposeTree, specLinear, type WeightSpec } from '../weights.ts';
import { parseIdefics3Config, type Idefics3Config } from './config.ts';
import { connectorForward, type Idefics3ConnectorWeights } from './connector.ts';
import { Idefics3VisionTransformer, patchMaskFromPixels } from './vision.ts';

/** Every checkpoint key (and shape) an Idefics3ForConditionalGeneration with this config has. */
export function idefics3WeightSpec(c: Idefics3Config): WeightSpec {
  const spec: WeightSpec = new Map();
  siglipVisionWeightSpec(spec, 'model.vision_model', c.vision_config);
  const s2 = c.scale_factor * c.scale_factor;
  specLinear(spec, 'model.connector.modality_projection.proj', c.vision_config.hidden_size * s2, c.text_config.hidden_size, false);
  llamaWeightSpec(spec, 'model.text_model', c.text_config);
  if (!c.tie_word_embeddings) specLinear(spec, 'lm_head', c.text_config.hidden_size, c.text_config.vocab_size, false);
  return spec;
}

/** Keys transformers ignores on load (non-persistent RoPE buffers, a stored lm_head when tied). */
function ignoredKey(c: Idefics3Config): (key: string) => boolean {
  return (key) => key.endsWith('.rotary_emb.inv_freq') || (c.tie_word_embeddings && key === 'lm_head.weight');
}

export interface Idefics3Inputs {
  /** int32 [B, T] */
  input_ids: tf.Tensor;
  /** [B, cached + T], 1 = attend. */
  attention_mask?: HostInts;
  /** float32 [B, N, C, H, W]; all-zero tiles are padding and dropped. */
  pixel_values?: tf.Tensor;
  /** bool / number [B, N, H, W], 1 = real pixel. */
  pixel_attention_mask?: tf.Tensor;
  /** [B, T] RoPE positions (default: cache offset + 0..T−1). */
  position_ids?: HostInts;
}

export interface Idefics3ForwardOptions {
  capture?: Capture;
  /** Per-layer KV cache (model.createCache()); image features are merged only when it is empty. */
  cache?: KVCache[];
  /** Logits of the last position only. */
  lastOnly?: boolean;
}

export interface Idefics3Output {
  /** [B, T, vocab] (or [B, 1, vocab] with lastOnly). Owned by the caller. */
  logits: tf.Tensor;
}

export class Idefics3Model {
  constructor(
    readonly config: Idefics3Config,
    readonly vision: Idefics3VisionTransformer,
    readonly connector: Idefics3ConnectorWeights,
    readonly text: LlamaDecoder,
  ) {}

  /** Loads config.json + safetensors (single or sharded) from a model folder. */
  static async load(dir: string): Promise<Idefics3Model> {
    const configPath = path.join(dir, 'config.json');
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(configPath, 'utf8'));
    } catch (e) {
      throw new TfvlmError(`${configPath}: cannot read config (${(e as Error).message})`);
    }
    const config = parseIdefics3Config(raw, configPath);
    const checkpoint = Checkpoint.open(dir);
    try {
      return Idefics3Model.fromCheckpoint(config, checkpoint);
    } finally {
      checkpoint.close();
    }
  }

  static fromCheckpoint(config: Idefics3Config, checkpoint: Checkpoint): Idefics3Model {
    const w = WeightLoader.open(checkpoint, idefics3WeightSpec(config), { ignore: ignoredKey(config) });
    const vision = new Idefics3VisionTransformer(config.vision_config, loadSiglipVisionWeights(w, 'model.vision_model', config.vision_config));
    const connector = { proj: w.linear('model.connector.modality_projection.proj', false) };
    const textWeights = loadLlamaWeights(w, 'model.text_model', config.text_config);
    const lmHead = config.tie_word_embeddings ? LlamaDecoder.tiedHead(textWeights) : w.linear('lm_head', false);
    return new Idefics3Model(config, vision, connector, new LlamaDecoder(config.text_config, textWeights, lmHead));
  }

  createCache(): KVCache[] {
    return this.text.createCache();
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
    const [B, N, C, H, W] = pixelValues.shape;
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

  /** Full forward: logits for every position (or the last with lastOnly). */
  forward(inputs: Idefics3Inputs, opts: Idefics3ForwardOptions = {}): Idefics3Output {
    const ids = inputs.input_ids;
    if (ids.rank !== 2) throw new TfvlmError(`input_ids must be [B, T], got [${ids.shape}]`);
    if (inputs.pixel_values && inputs.pixel_values.shape[0] !== ids.shape[0]) {
      throw new TfvlmError(`pixel_values batch ${inputs.pixel_values.shape[0]} differs from input_ids batch ${ids.shape[0]}`);
    }
    const firstCall = !opts.cache || opts.cache[0].offset === 0;
    let embeds = this.text.embed(ids);
    if (inputs.pixel_values && firstCall) {
      let features: tf.Tensor | undefined;
      try {
        features = this.encodeImages(inputs.pixel_values, inputs.pixel_attention_mask, opts.capture);
        const merged = this.mergeImageFeatures(ids, embeds, features);
        embeds.dispose();
        embeds = merged;
      } catch (e) {
        embeds.dispose();
        throw e;
      } finally {
        features?.dispose();
      }
    }
    try {
      const logits = this.text.forward(
        { inputs_embeds: embeds, attention_mask: inputs.attention_mask, position_ids: inputs.position_ids },
        { cache: opts.cache, lastOnly: opts.lastOnly, capture: opts.capture },
      );
      return { logits };
    } finally {
      embeds.dispose();
    }
  }

  dispose(): void {
    this.text.dispose();
    disposeTree(this.connector);
    disposeTree(this.vision.weights);
  }
}
