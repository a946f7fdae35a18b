// Llama text config: HF field names and transformers 4.47 LlamaConfig defaults
// (configuration_llama.py); derived values (head_dim, num_key_value_heads) filled once here.
import { ConfigReader } from '../config-fields.ts';
import { activation } from '../../layers/activations.ts';
import { ropeScalingFactor, type RopeScaling } from '../../layers/rotary.ts';

export interface LlamaConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  attention_bias: boolean;
  mlp_bias: boolean;
  tie_word_embeddings: boolean;
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
}

export function parseLlamaConfig(raw: unknown, where = '', source = 'config.json'): LlamaConfig {
  const r = ConfigReader.from(raw, where, source);
  const hidden_size = r.positiveInt('hidden_size', 4096);
  const num_attention_heads = r.positiveInt('num_attention_heads', 32);
  const num_key_value_heads = r.positiveInt('num_key_value_heads', num_attention_heads);
  if (num_attention_heads % num_key_value_heads !== 0) {
    r.fail('num_key_value_heads', `must divide num_attention_heads (${num_attention_heads})`);
  }
  if (!r.has('head_dim') && hidden_size % num_attention_heads !== 0) {
    r.fail('num_attention_heads', `must divide hidden_size (${hidden_size}) when head_dim is not given`);
  }
  const head_dim = r.positiveInt('head_dim', hidden_size / num_attention_heads);
  if (head_dim % 2 !== 0) r.fail('head_dim', 'must be even for rotary embeddings', head_dim);
  const hidden_act = r.string('hidden_act', 'silu');
  activation(hidden_act, `${source}: ${r.path('hidden_act')}`);
  const rope_scaling = (r.raw.rope_scaling ?? null) as RopeScaling | null;
  if (rope_scaling !== null && (typeof rope_scaling !== 'object' || Array.isArray(rope_scaling))) {
    r.fail('rope_scaling', 'must be null or an object');
  }
  ropeScalingFactor(rope_scaling, `${source}: ${r.path('rope_scaling')}`);
  const eos = r.raw.eos_token_id;
  if (Array.isArray(eos) && !eos.every((id) => Number.isSafeInteger(id))) r.fail('eos_token_id', 'must be an integer, a list of integers or null');
  return {
    model_type: r.string('model_type', 'llama'),
    vocab_size: r.positiveInt('vocab_size', 32000),
    hidden_size,
    intermediate_size: r.positiveInt('intermediate_size', 11008),
    num_hidden_layers: r.positiveInt('num_hidden_layers', 32),
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    hidden_act,
    max_position_embeddings: r.positiveInt('max_position_embeddings', 2048),
    rms_norm_eps: r.positiveNumber('rms_norm_eps', 1e-6),
    rope_theta: r.positiveNumber('rope_theta', 10000),
    rope_scaling,
    attention_bias: r.bool('attention_bias', false),
    mlp_bias: r.bool('mlp_bias', false),
    tie_word_embeddings: r.bool('tie_word_embeddings', false),
    pad_token_id: r.optionalInt('pad_token_id', null),
    bos_token_id: r.optionalInt('bos_token_id', 1),
    eos_token_id: Array.isArray(eos) ? (eos as number[]) : r.optionalInt('eos_token_id', 2),
  };
}
