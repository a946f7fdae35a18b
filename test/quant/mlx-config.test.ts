// config.json's quantization block as mlx-lm / mlx-vlm write it (docs/notes/mlx-quantization.md, §6–7).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TfvlmError } from '../../src/errors.ts';
import { parseQuantizationConfig } from '../../src/quant/mlx-config.ts';

const DOWN = 'language_model.layers.0.mlp.down_proj';
const Q_PROJ = 'language_model.layers.0.self_attn.q_proj';

describe('parseQuantizationConfig', () => {
  it('reads the top level: every layer gets it', () => {
    const lookup = parseQuantizationConfig({ model_type: 'idefics3', quantization: { group_size: 64, bits: 4 } });
    assert.deepEqual(lookup(Q_PROJ), { groupSize: 64, bits: 4 });
    assert.deepEqual(lookup('connector.modality_projection.proj'), { groupSize: 64, bits: 4 });
  });

  it('accepts mode "affine" and the duplicate quantization_config mlx-lm writes', () => {
    const block = { group_size: 32, bits: 8, mode: 'affine' };
    const lookup = parseQuantizationConfig({ quantization: block, quantization_config: block });
    assert.deepEqual(lookup(DOWN), { groupSize: 32, bits: 8 });
  });

  it('applies per-layer entries: a dict overrides, false keeps the layer float, true takes the top level', () => {
    const lookup = parseQuantizationConfig({
      quantization: {
        group_size: 64,
        bits: 4,
        mode: 'affine',
        [DOWN]: { group_size: 64, bits: 8, mode: 'affine' },
        'language_model.lm_head': false,
        'language_model.embed_tokens': true,
      },
    });
    assert.deepEqual(lookup(DOWN), { groupSize: 64, bits: 8 });
    assert.equal(lookup('language_model.lm_head'), undefined);
    assert.deepEqual(lookup('language_model.embed_tokens'), { groupSize: 64, bits: 4 });
    assert.deepEqual(lookup(Q_PROJ), { groupSize: 64, bits: 4 });
  });

  it('fills a per-layer dict\'s missing field with mlx.nn\'s defaults (64, 4), not the top level\'s', () => {
    // nn.quantize calls to_quantized(**dict); QuantizedLinear falls back to _defaults_for_mode("affine")
    const lookup = parseQuantizationConfig({ quantization: { group_size: 32, bits: 8, [DOWN]: { bits: 8 }, [Q_PROJ]: { group_size: 128 } } });
    assert.deepEqual(lookup(DOWN), { groupSize: 64, bits: 8 });
    assert.deepEqual(lookup(Q_PROJ), { groupSize: 128, bits: 4 });
  });

  it('reads quantization_config alone when it has MLX\'s shape; a config without either is unquantized', () => {
    assert.deepEqual(parseQuantizationConfig({ quantization_config: { group_size: 128, bits: 4 } })(DOWN), { groupSize: 128, bits: 4 });
    assert.equal(parseQuantizationConfig({ model_type: 'llava' })(DOWN), undefined);
    assert.equal(parseQuantizationConfig({ quantization: null })(DOWN), undefined);
  });

  it('refuses Hugging Face quantization methods and other MLX modes by name', () => {
    assert.throws(() => parseQuantizationConfig({ quantization_config: { quant_method: 'awq', bits: 4, group_size: 128 } }),
      /^TfvlmError: config\.json quantization_config\.quant_method "awq" is not MLX's affine quantization/);
    assert.throws(() => parseQuantizationConfig({ quantization: { group_size: 32, bits: 4, mode: 'mxfp4' } }),
      /^TfvlmError: config\.json quantization\.mode "mxfp4" is not supported/);
    assert.throws(() => parseQuantizationConfig({ quantization: { group_size: 64, bits: 4, [DOWN]: { group_size: 32, bits: 4, mode: 'nvfp4' } } }),
      /config\.json quantization\["language_model\.layers\.0\.mlp\.down_proj"\]\.mode "nvfp4"/);
  });

  it('refuses malformed entries, naming the field', () => {
    const refuses = (config: unknown, re: RegExp) => assert.throws(() => parseQuantizationConfig(config), (e: unknown) => e instanceof TfvlmError && re.test(e.message));
    refuses([], /config\.json must be an object/);
    refuses({ quantization: 4 }, /config\.json quantization must be an object, got 4/);
    refuses({ quantization: { bits: 4 } }, /config\.json quantization\.group_size is missing/);
    refuses({ quantization: { group_size: 64, bits: '4' } }, /config\.json quantization\.bits must be an integer, got "4"/);
    refuses({ quantization: { group_size: 64.5, bits: 4 } }, /quantization\.group_size must be an integer, got 64\.5/);
    refuses({ quantization: { group_size: 64, bits: 3 } }, /config\.json quantization: quantization bits 3 is not supported \(4 or 8\)/);
    refuses({ quantization: { group_size: 16, bits: 4 } }, /quantization group size 16 is not supported/);
    refuses({ quantization: { group_size: 64, bits: 4, [DOWN]: 8 } }, /config\.json quantization\["language_model\.layers\.0\.mlp\.down_proj"\] must be \{"group_size", "bits"\} or false, got 8/);
    refuses({ quantization: { group_size: 64, bits: 4, [DOWN]: { group_size: 64, bits: 6 } } },
      /config\.json quantization\["language_model\.layers\.0\.mlp\.down_proj"\]: quantization bits 6 is not supported/);
  });
});
