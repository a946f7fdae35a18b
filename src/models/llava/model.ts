// LlavaForConditionalGeneration (LLaVA-1.5; transformers modeling_llava.py): CLIP vision tower →
// hidden_states at vision_feature_layer (one, or several concatenated on the feature axis) → CLS
// dropped with strategy 'default' → multi_modal_projector (linear_1 → projector_hidden_act →
// linear_2) → features replace the <image> token embeddings → Llama decoder → lm_head.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { Checkpoint } from '../../io/checkpoint.ts';
import { activation, type Activation } from '../../layers/activations.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import type { Capture } from '../capture.ts';
import { CLIPVisionTransformer, clipVisionWeights } from '../clip/vision.ts';
import { mergeImageFeatures } from '../image-merge.ts';
import { LlamaDecoder, llamaWeights } from '../llama/model.ts';
import { readConfigJson } from '../read-config.ts';
import { DecoderModel, type LoadedParts, type PromptTensors } from '../decoder-model.ts';
import { checkModelFits } from '../fit.ts';
import { weightLoadOptions, type ModelLoadOptions } from '../load-options.ts';
import { loadWeights, type LoadWeightsOptions } from '../load-weights.ts';
import { disposeTree, weightSpec, type WeightSource, type WeightSpec } from '../weights.ts';
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

/** A LlavaForConditionalGeneration's weights under a key layout. */
export function llavaWeights(w: WeightSource, c: LlavaConfig, layout: LlavaKeyLayout = LLAVA_HF_LAYOUT) {
  const Dt = c.text_config.hidden_size;
  const bias = c.multimodal_projector_bias;
  return {
    vision: clipVisionWeights(w, layout.vision, c.vision_config),
    projector: {
      linear_1: w.linear(`${layout.projector}.linear_1`, c.vision_config.hidden_size * c.feature_layers.length, Dt, bias),
      act: activation(c.projector_hidden_act),
      linear_2: w.linear(`${layout.projector}.linear_2`, Dt, Dt, bias),
    },
    text: llamaWeights(w, layout.text, c.text_config),
    lmHead: c.tie_word_embeddings ? undefined : w.linear(layout.lmHead, Dt, c.text_config.vocab_size, false),
  };
}

/** Every checkpoint key (and shape) a LlavaForConditionalGeneration with this config has. */
export function llavaWeightSpec(c: LlavaConfig, layout: LlavaKeyLayout = LLAVA_HF_LAYOUT): WeightSpec {
  return weightSpec((w) => llavaWeights(w, c, layout));
}

/** Keys transformers ignores on load (buffers, a stored lm_head when tied). */
function ignoredKey(c: LlavaConfig, layout: LlavaKeyLayout): (key: string) => boolean {
  return (key) => key.endsWith('.rotary_emb.inv_freq') || key.endsWith('.embeddings.position_ids')
    || (c.tie_word_embeddings && [`${layout.lmHead}.weight`, `${layout.lmHead}.scales`, `${layout.lmHead}.biases`].includes(key));
}

export interface LlavaProjectorWeights {
  linear_1: Linear;
  act: Activation;
  linear_2: Linear;
}

export class LlavaModel extends DecoderModel {
  constructor(
    readonly config: LlavaConfig,
    readonly vision: CLIPVisionTransformer,
    readonly projector: LlavaProjectorWeights,
    text: LlamaDecoder,
    parts?: LoadedParts,
  ) {
    super(text, parts);
  }

  /** Loads config.json + safetensors (single or sharded) from a model folder. */
  static async load(dir: string, options: ModelLoadOptions = {}): Promise<LlavaModel> {
    const { raw, path } = readConfigJson(dir);
    const config = parseLlavaConfig(raw, path);
    const checkpoint = Checkpoint.open(dir);
    try {
      return LlavaModel.fromCheckpoint(config, checkpoint, weightLoadOptions(options, raw));
    } finally {
      checkpoint.close();
    }
  }

  static fromCheckpoint(config: LlavaConfig, checkpoint: Checkpoint, load: LoadWeightsOptions = {}): LlavaModel {
    const layout = llavaKeyLayout(checkpoint);
    const build = (source: WeightSource) => llavaWeights(source, config, layout);
    checkModelFits(checkpoint, build, load, config.text_config);
    const { weights: w, slots, store } = loadWeights(checkpoint, build, { ...load, ignore: ignoredKey(config, layout) });
    const text = new LlamaDecoder(config.text_config, w.text, w.lmHead ?? LlamaDecoder.tiedHead(w.text));
    return new LlavaModel(config, new CLIPVisionTransformer(config.vision_config, w.vision), w.projector, text, { slots, store });
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
        const input = selected.length === 1 ? selected[0]! : tf.concat(selected, -1); // [N, tokens, D·layers]
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

  /** Token embeddings [B, T, hidden], with the image features merged when pixel_values ([n_images, C, H, W]) are given. */
  embed(inputs: PromptTensors, capture?: Capture): tf.Tensor {
    const inputIds = inputs.input_ids;
    if (inputIds.rank !== 2) throw new TfvlmError(`input_ids must be [B, T], got [${inputIds.shape}]`);
    const embeds = this.text.embed(inputIds);
    if (!inputs.pixel_values) return embeds;
    let features: tf.Tensor | undefined;
    try {
      features = this.encodeImages(inputs.pixel_values, capture);
      return this.mergeImageFeatures(inputIds, embeds, features);
    } finally {
      features?.dispose();
      embeds.dispose();
    }
  }

  protected disposeTensors(): void {
    this.text.dispose();
    disposeTree(this.projector);
    this.vision.dispose();
  }
}
