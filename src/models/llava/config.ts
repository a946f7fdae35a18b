// LLaVA config: HF field names and defaults (transformers configuration_llava.py: LlavaConfig).
// `image_token_index` is the stored name; `image_token_id` is its alias (attribute_map). The
// vision tower is a CLIP vision transformer; the text model is Llama.
import { TfvlmError } from '../../errors.ts';
import { activation } from '../../layers/activations.ts';
import { parseCLIPVisionConfig, type CLIPVisionConfig } from '../clip/config.ts';
import { ConfigReader } from '../config-fields.ts';
import { parseLlamaConfig, type LlamaConfig } from '../llama/config.ts';

export type VisionFeatureSelectStrategy = 'default' | 'full';

export interface LlavaConfig {
  model_type: string;
  architectures: string[];
  image_token_index: number;
  projector_hidden_act: string;
  /** One hidden_states index, or several whose features are concatenated (negative = from the end). */
  vision_feature_layer: number | number[];
  /** 'default' drops the CLS row, 'full' keeps it. */
  vision_feature_select_strategy: VisionFeatureSelectStrategy;
  image_seq_length: number;
  multimodal_projector_bias: boolean;
  /** lm_head shares embed_tokens (top-level or text_config flag, as transformers forwards it). */
  tie_word_embeddings: boolean;
  pad_token_id: number | null;
  vision_config: CLIPVisionConfig;
  text_config: LlamaConfig;
  /** vision_feature_layer as non-negative hidden_states indices (0 = pre_layrnorm output, k = output of layer k−1). */
  feature_layers: number[];
  /** Image tokens per image: patches, plus the CLS row with strategy 'full'. */
  image_tokens: number;
}

// LlavaConfig() without a vision_config: the llava-1.5 CLIP ViT-L/14-336 tower.
const DEFAULT_VISION = {
  intermediate_size: 4096, hidden_size: 1024, patch_size: 14, image_size: 336, num_hidden_layers: 24,
  num_attention_heads: 16, projection_dim: 768,
};

export function parseLlavaConfig(raw: unknown, source = 'config.json'): LlavaConfig {
  const r: ConfigReader = ConfigReader.from(raw, '', source);
  const rawVision = (r.raw.vision_config ?? DEFAULT_VISION) as Record<string, unknown>;
  const visionType = rawVision.model_type ?? 'clip_vision_model';
  if (visionType !== 'clip_vision_model') {
    throw new TfvlmError(`${source}: vision_config.model_type '${String(visionType)}' is not supported (only 'clip_vision_model')`);
  }
  const vision_config = parseCLIPVisionConfig(rawVision, 'vision_config', source);
  const text_config = parseLlamaConfig(r.raw.text_config ?? {}, 'text_config', source);
  if (text_config.model_type !== 'llama') {
    throw new TfvlmError(`${source}: text_config.model_type '${text_config.model_type}' is not supported (only 'llama')`);
  }
  const strategy = r.string('vision_feature_select_strategy', 'default');
  if (strategy !== 'default' && strategy !== 'full') {
    r.fail('vision_feature_select_strategy', "must be 'default' or 'full'", strategy);
  }
  const layerField = r.raw.vision_feature_layer ?? -2;
  const layers = Array.isArray(layerField) ? layerField : [layerField];
  const L = vision_config.num_hidden_layers;
  if (layers.length === 0) r.fail('vision_feature_layer', 'must be an integer or a non-empty list of integers', layerField);
  const feature_layers = layers.map((k) => {
    if (typeof k !== 'number' || !Number.isInteger(k) || k < -(L + 1) || k > L) {
      r.fail('vision_feature_layer', `must index the ${L + 1} hidden states of the vision tower (${-(L + 1)}..${L})`, layerField);
    }
    return k < 0 ? L + 1 + k : k;
  });
  const projector_hidden_act = r.string('projector_hidden_act', 'gelu');
  activation(projector_hidden_act, `${source}: projector_hidden_act`);
  const image_token_index = r.has('image_token_index') ? r.int('image_token_index') : r.int('image_token_id', 32000);
  const given = r.has('image_token_index') || r.has('image_token_id');
  if (given && (image_token_index < 0 || image_token_index >= text_config.vocab_size)) {
    const field = r.has('image_token_index') ? 'image_token_index' : 'image_token_id';
    r.fail(field, `must be a token id below text_config.vocab_size (${text_config.vocab_size})`, image_token_index);
  }
  const architectures = r.raw.architectures ?? [];
  if (!Array.isArray(architectures)) r.fail('architectures', 'must be a list of strings');
  const patches = vision_config.num_patches_per_side ** 2;
  return {
    model_type: r.string('model_type', 'llava'),
    architectures: architectures as string[],
    image_token_index,
    projector_hidden_act,
    vision_feature_layer: layerField as number | number[],
    vision_feature_select_strategy: strategy,
    image_seq_length: r.positiveInt('image_seq_length', 576),
    multimodal_projector_bias: r.bool('multimodal_projector_bias', true),
    tie_word_embeddings: r.bool('tie_word_embeddings', false) || text_config.tie_word_embeddings,
    pad_token_id: r.optionalInt('pad_token_id', null),
    vision_config,
    text_config,
    feature_layers,
    image_tokens: strategy === 'full' ? patches + 1 : patches,
  };
}
