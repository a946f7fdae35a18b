// LlavaForConditionalGeneration (LLaVA-1.5; transformers modeling_llava.py): CLIP vision tower →
// hidden_states at vision_feature_layer (one, or several concatenated on the feature axis) → CLS
// dropped with strategy 'default' → multi_modal_projector (linear_1 → projector_hidden_act →
// linear_2) → features replace the <image> token embeddings → Llama decoder → lm_head.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { Checkpoint } from '../../io/checkpoint.ts';
import { activation, type Activation } from '../../layers/activations.ts';
import type { KVCache } from '../../layers/kv-cache.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import type { Capture } from '../capture.ts';
import { CLIPVisionTransformer, clipVisionWeightSpec, loadCLIPVisionWeights } from '../clip/vision.ts';
import { mergeImageFeatures } from '../image-merge.ts';
import { LlamaDecoder, llamaWeightSpec, loadLlamaWeights, type HostInts } from '../llama/model.ts';
import { readConfigJson } from '../read-config.ts';
import { WeightLoader, disposeTree, specLinear, type WeightSpec } from '../weights.ts';
import { parseLlavaConfig, type LlavaConfig } from './config.ts';

/**
 * Where the parts live in the checkpoint: llava-hf (`vision_tower.`, `multi_modal_projector.`,
 * `language_model.model.`, `language_model.lm_head`) or the layout transformers ≥ 4.52 saves
 * (`model.vision_tower.`, `model.multi_modal_projector.`, `model.language_model.`, `lm_head`).
 */
export interface LlavaKeyLayout {
  vision: string;
  projector: string;
  text: string;
  lmHead: string;
}

export const LLAVA_HF_LAYOUT: LlavaKeyLayout = {
  vision: 'vision_tower.vision_model', projector: 'multi_modal_projector', text: 'language_model.model', lmHead: 'language_model.lm_head',
};

export const LLAVA_NEW_LAYOUT: LlavaKeyLayout = {
  vision: 'model.vision_tower.vision_model', projector: 'model.multi_modal_projector', text: 'model.language_model', lmHead: 'lm_head',
};

export function llavaKeyLayout(checkpoint: Checkpoint): LlavaKeyLayout {
  return checkpoint.has(`${LLAVA_NEW_LAYOUT.text}.embed_tokens.weight`) ? LLAVA_NEW_LAYOUT : LLAVA_HF_LAYOUT;
}

/** Every checkpoint key (and shape) a LlavaForConditionalGeneration with this config has. */
export function llavaWeightSpec(c: LlavaConfig, layout: LlavaKeyLayout = LLAVA_HF_LAYOUT): WeightSpec {
  const spec: WeightSpec = new Map();
  clipVisionWeightSpec(spec, layout.vision, c.vision_config);
  const Dt = c.text_config.hidden_size;
  const bias = c.multimodal_projector_bias;
  specLinear(spec, `${layout.projector}.linear_1`, c.vision_config.hidden_size * c.feature_layers.length, Dt, bias);
  specLinear(spec, `${layout.projector}.linear_2`, Dt, Dt, bias);
  llamaWeightSpec(spec, layout.text, c.text_config);
  if (!c.tie_word_embeddings) specLinear(spec, layout.lmHead, Dt, c.text_config.vocab_size, false);
  return spec;
}

/** Keys transformers ignores on load (buffers, a stored lm_head when tied). */
function ignoredKey(c: LlavaConfig, layout: LlavaKeyLayout): (key: string) => boolean {
  return (key) => key.endsWith('.rotary_emb.inv_freq') || key.endsWith('.embeddings.position_ids')
    || (c.tie_word_embeddings && key === `${layout.lmHead}.weight`);
}

export interface LlavaProjectorWeights {
  linear_1: Linear;
  act: Activation;
  linear_2: Linear;
}

export interface LlavaInputs {
  /** int32 [B, T] */
  input_ids: tf.Tensor;
  /** [B, cached + T], 1 = attend. */
  attention_mask?: HostInts;
  /** float32 [n_images, C, H, W]: the images of every row, in order. */
  pixel_values?: tf.Tensor;
  /** [B, T] RoPE positions (default: cache offset + 0..T−1). */
  position_ids?: HostInts;
}

export interface LlavaForwardOptions {
  capture?: Capture;
  /** Per-layer KV cache (model.createCache()); image features are merged only when it is empty. */
  cache?: KVCache[];
  /** Logits of the last position only. */
  lastOnly?: boolean;
}

export class LlavaModel {
  constructor(
    readonly config: LlavaConfig,
    readonly vision: CLIPVisionTransformer,
    readonly projector: LlavaProjectorWeights,
    readonly text: LlamaDecoder,
  ) {}

  /** Loads config.json + safetensors (single or sharded) from a model folder. */
  static async load(dir: string): Promise<LlavaModel> {
    const { raw, path } = readConfigJson(dir);
    const config = parseLlavaConfig(raw, path);
    const checkpoint = Checkpoint.open(dir);
    try {
      return LlavaModel.fromCheckpoint(config, checkpoint);
    } finally {
      checkpoint.close();
    }
  }

  static fromCheckpoint(config: LlavaConfig, checkpoint: Checkpoint): LlavaModel {
    const layout = llavaKeyLayout(checkpoint);
    const w = WeightLoader.open(checkpoint, llavaWeightSpec(config, layout), { ignore: ignoredKey(config, layout) });
    const vision = new CLIPVisionTransformer(config.vision_config, loadCLIPVisionWeights(w, layout.vision, config.vision_config));
    const bias = config.multimodal_projector_bias;
    const projector = {
      linear_1: w.linear(`${layout.projector}.linear_1`, bias),
      act: activation(config.projector_hidden_act),
      linear_2: w.linear(`${layout.projector}.linear_2`, bias),
    };
    const textWeights = loadLlamaWeights(w, layout.text, config.text_config);
    const lmHead = config.tie_word_embeddings ? LlamaDecoder.tiedHead(textWeights) : w.linear(layout.lmHead, false);
    return new LlavaModel(config, vision, projector, new LlamaDecoder(config.text_config, textWeights, lmHead));
  }

  createCache(): KVCache[] {
    return this.text.createCache();
  }

  /**
   * pixel_values [N, C, H, W] → image features [N, image_tokens, text_hidden] (get_image_features).
   * Captures projector.input, projector.linear_1, image_features (and the vision tower's names).
   */
  encodeImages(pixelValues: tf.Tensor, capture?: Capture): tf.Tensor {
    const c = this.config;
    const { hiddenStates } = this.vision.run(pixelValues, { hiddenStates: c.feature_layers, capture });
    try {
      return tf.tidy(() => {
        const selected = hiddenStates.map((h) => (c.vision_feature_select_strategy === 'default' ? tf.slice(h, [0, 1, 0], [-1, -1, -1]) : h));
        const input = selected.length === 1 ? selected[0] : tf.concat(selected, -1); // [N, tokens, D·layers]
        capture?.record('projector.input', input);
        const hidden = linear(this.projector.linear_1, input);
        capture?.record('projector.linear_1', hidden);
        const features = linear(this.projector.linear_2, this.projector.act(hidden));
        capture?.record('image_features', features);
        return features;
      });
    } finally {
      for (const h of hiddenStates) h.dispose();
    }
  }

  /** Token embeddings with the image_token_index rows replaced, in order, by the image feature rows. */
  mergeImageFeatures(inputIds: tf.Tensor, inputsEmbeds: tf.Tensor, imageFeatures: tf.Tensor): tf.Tensor {
    return mergeImageFeatures(inputIds, inputsEmbeds, imageFeatures, this.config.image_token_index);
  }

  /** Token embeddings [B, T, hidden], with the image features merged when pixel_values are given. */
  embed(inputIds: tf.Tensor, pixelValues?: tf.Tensor, capture?: Capture): tf.Tensor {
    if (inputIds.rank !== 2) throw new TfvlmError(`input_ids must be [B, T], got [${inputIds.shape}]`);
    const embeds = this.text.embed(inputIds);
    if (!pixelValues) return embeds;
    let features: tf.Tensor | undefined;
    try {
      features = this.encodeImages(pixelValues, capture);
      return this.mergeImageFeatures(inputIds, embeds, features);
    } finally {
      features?.dispose();
      embeds.dispose();
    }
  }

  /** Full forward: logits for every position (or the last with lastOnly). */
  forward(inputs: LlavaInputs, opts: LlavaForwardOptions = {}): { logits: tf.Tensor } {
    const firstCall = !opts.cache || opts.cache[0].offset === 0;
    const embeds = this.embed(inputs.input_ids, firstCall ? inputs.pixel_values : undefined, opts.capture);
    try {
      const { attention_mask, position_ids } = inputs;
      return { logits: this.text.forward({ inputs_embeds: embeds, attention_mask, position_ids }, opts) };
    } finally {
      embeds.dispose();
    }
  }

  dispose(): void {
    this.text.dispose();
    disposeTree(this.projector);
    this.vision.dispose();
  }
}
