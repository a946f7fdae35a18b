// Idefics3 / SmolVLM config: HF field names, transformers 4.47 defaults (configuration_idefics3.py:
// Idefics3Config, Idefics3VisionConfig; text_config dicts go through LlamaConfig defaults).
import { TfvlmError } from '../../errors.ts';
import { ConfigReader } from '../config-fields.ts';
import { parseLlamaConfig, type LlamaConfig } from '../llama/config.ts';
import { parseSiglipVisionConfig, type SiglipVisionConfig, type SiglipVisionDefaults } from '../siglip/config.ts';

export const IDEFICS3_VISION_DEFAULTS: SiglipVisionDefaults = {
  model_type: 'idefics3_vision', hidden_size: 1152, intermediate_size: 3072, num_hidden_layers: 12,
  num_attention_heads: 16, num_channels: 3, image_size: 224, patch_size: 32, hidden_act: 'gelu_pytorch_tanh',
  layer_norm_eps: 1e-6,
};

export interface Idefics3Config {
  model_type: string;
  architectures: string[];
  image_token_id: number;
  scale_factor: number;
  tie_word_embeddings: boolean;
  pad_token_id: number | null;
  use_cache: boolean;
  vision_config: SiglipVisionConfig;
  text_config: LlamaConfig;
  /** Image tokens per tile: (image_size / patch_size)² / scale_factor² (Idefics3Model.image_seq_len). */
  image_seq_len: number;
}

export function parseIdefics3Config(raw: unknown, source = 'config.json'): Idefics3Config {
  const r = ConfigReader.from(raw, '', source);
  const vision_config = parseSiglipVisionConfig(r.raw.vision_config ?? {}, IDEFICS3_VISION_DEFAULTS, 'vision_config', source);
  const rawText = r.raw.text_config;
  const text_config = parseLlamaConfig(
    rawText ?? { rms_norm_eps: 1e-5, pad_token_id: r.raw.pad_token_id ?? 128002, tie_word_embeddings: false },
    'text_config', source,
  );
  if (text_config.model_type !== 'llama') {
    throw new TfvlmError(`${source}: text_config.model_type '${text_config.model_type}' is not supported (only 'llama')`);
  }
  const scale_factor = r.positiveInt('scale_factor', 2);
  const side = vision_config.num_patches_per_side;
  if (side % scale_factor !== 0) {
    r.fail('scale_factor', `must divide the patches per side (image_size / patch_size = ${side})`, scale_factor);
  }
  const image_token_id = r.int('image_token_id', 128257);
  // Only a given id is checked: transformers' own defaults (128257 vs LlamaConfig's 32000 vocab) disagree.
  if (r.has('image_token_id') && (image_token_id < 0 || image_token_id >= text_config.vocab_size)) {
    r.fail('image_token_id', `must be a token id below text_config.vocab_size (${text_config.vocab_size})`, image_token_id);
  }
  const architectures = r.raw.architectures ?? [];
  if (!Array.isArray(architectures)) r.fail('architectures', 'must be a list of strings');
  return {
    model_type: r.string('model_type', 'idefics3'),
    architectures: architectures as string[],
    image_token_id,
    scale_factor,
    tie_word_embeddings: r.bool('tie_word_embeddings', false),
    pad_token_id: r.optionalInt('pad_token_id', 128002),
    use_cache: r.bool('use_cache', true),
    vision_config,
    text_config,
    image_seq_len: (side * side) / (scale_factor * scale_factor),
  };
}
