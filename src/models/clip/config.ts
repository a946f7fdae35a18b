// CLIP configs: HF field names and transformers 4.47 defaults (configuration_clip.py: CLIPVisionConfig,
// CLIPTextConfig, CLIPConfig). The vision tower has the SigLIP tower's fields plus projection_dim, so
// it is parsed by the same function with CLIP's defaults.
import { activation } from '../../layers/activations.ts';
import { ConfigReader } from '../config-fields.ts';
import { parseSiglipVisionConfig, type SiglipVisionConfig, type SiglipVisionDefaults } from '../siglip/config.ts';

export interface CLIPVisionConfig extends SiglipVisionConfig {
  /** Output width of visual_projection (CLIPVisionModelWithProjection). */
  projection_dim: number;
  /** (image_size / patch_size)² patches + the class embedding. */
  num_positions: number;
}

export const CLIP_VISION_DEFAULTS: SiglipVisionDefaults & { projection_dim: number } = {
  model_type: 'clip_vision_model', hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12,
  num_attention_heads: 12, num_channels: 3, image_size: 224, patch_size: 32, hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5, projection_dim: 512,
};

export function parseCLIPVisionConfig(raw: unknown, where = 'vision_config', source = 'config.json'): CLIPVisionConfig {
  const base = parseSiglipVisionConfig(raw ?? {}, CLIP_VISION_DEFAULTS, where, source);
  const r = ConfigReader.from(raw ?? {}, where, source);
  return {
    ...base,
    projection_dim: r.positiveInt('projection_dim', CLIP_VISION_DEFAULTS.projection_dim),
    num_positions: base.num_patches_per_side ** 2 + 1,
  };
}

export interface CLIPTextConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  projection_dim: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: string;
  layer_norm_eps: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  /** 2 (the value in checkpoints written before transformers PR #24773) selects the argmax pooling rule. */
  eos_token_id: number | null;
  /** hidden_size / num_attention_heads */
  head_dim: number;
}

export function parseCLIPTextConfig(raw: unknown, where = 'text_config', source = 'config.json'): CLIPTextConfig {
  const r = ConfigReader.from(raw ?? {}, where, source);
  const hidden_size = r.positiveInt('hidden_size', 512);
  const num_attention_heads = r.positiveInt('num_attention_heads', 8);
  if (hidden_size % num_attention_heads !== 0) {
    r.fail('num_attention_heads', `must divide hidden_size (${hidden_size})`, num_attention_heads);
  }
  const hidden_act = r.string('hidden_act', 'quick_gelu');
  activation(hidden_act, `${source}: ${r.path('hidden_act')}`);
  return {
    model_type: r.string('model_type', 'clip_text_model'),
    vocab_size: r.positiveInt('vocab_size', 49408),
    hidden_size,
    intermediate_size: r.positiveInt('intermediate_size', 2048),
    projection_dim: r.positiveInt('projection_dim', 512),
    num_hidden_layers: r.positiveInt('num_hidden_layers', 12),
    num_attention_heads,
    max_position_embeddings: r.positiveInt('max_position_embeddings', 77),
    hidden_act,
    layer_norm_eps: r.positiveNumber('layer_norm_eps', 1e-5),
    pad_token_id: r.optionalInt('pad_token_id', 1),
    bos_token_id: r.optionalInt('bos_token_id', 49406),
    eos_token_id: r.optionalInt('eos_token_id', 49407),
    head_dim: hidden_size / num_attention_heads,
  };
}

export interface CLIPConfig {
  model_type: string;
  architectures: string[];
  /** Width of visual_projection and text_projection in CLIPModel. */
  projection_dim: number;
  /** Only the initial value; the model uses the stored `logit_scale` weight. */
  logit_scale_init_value: number;
  text_config: CLIPTextConfig;
  vision_config: CLIPVisionConfig;
}

export function parseCLIPConfig(raw: unknown, source = 'config.json'): CLIPConfig {
  const r: ConfigReader = ConfigReader.from(raw, '', source);
  const architectures = r.raw.architectures ?? [];
  if (!Array.isArray(architectures)) r.fail('architectures', 'must be a list of strings');
  const init = r.raw.logit_scale_init_value ?? 2.6592;
  if (typeof init !== 'number' || !Number.isFinite(init)) r.fail('logit_scale_init_value', 'must be a number');
  return {
    model_type: r.string('model_type', 'clip'),
    architectures: architectures as string[],
    projection_dim: r.positiveInt('projection_dim', 512),
    logit_scale_init_value: init,
    text_config: parseCLIPTextConfig(r.raw.text_config ?? {}, 'text_config', source),
    vision_config: parseCLIPVisionConfig(r.raw.vision_config ?? {}, 'vision_config', source),
  };
}
