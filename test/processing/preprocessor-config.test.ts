// preprocessor_config.json parsing: HF field names, transformers' defaults, get_size_dict forms, errors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/paths.ts';
import { TfvlmError } from '../../src/errors.ts';
import {
  OPENAI_CLIP_MEAN,
  createImageProcessor,
  loadPreprocessorConfig,
  parsePreprocessorConfig,
} from '../../src/processing/preprocessor-config.ts';
import { CLIPImageProcessor } from '../../src/processing/clip-image-processor.ts';
import { SiglipImageProcessor } from '../../src/processing/siglip-image-processor.ts';
import { Idefics3ImageProcessor } from '../../src/processing/idefics3-image-processor.ts';

describe('parsePreprocessorConfig', () => {
  it('reads the fixture configs with their HF values', () => {
    const smol = loadPreprocessorConfig(fixture('image-preprocessing', 'smolvlm_preprocessor_config.json'));
    assert.equal(smol.image_processor_type, 'Idefics3ImageProcessor');
    if (smol.image_processor_type !== 'Idefics3ImageProcessor') return;
    assert.deepEqual(smol.size, { longest_edge: 2048 });
    assert.deepEqual(smol.max_image_size, { longest_edge: 512 });
    assert.equal(smol.resample, 1);
    const siglip = loadPreprocessorConfig(fixture('tiny-siglip'));
    assert.equal(siglip.do_convert_rgb, null);
    assert.ok(createImageProcessor(siglip) instanceof SiglipImageProcessor);
    assert.ok(createImageProcessor(loadPreprocessorConfig(fixture('tiny-llava'))) instanceof CLIPImageProcessor);
    assert.ok(createImageProcessor(smol) instanceof Idefics3ImageProcessor);
  });

  it('SmolVLM2 folders: SmolVLMImageProcessor is the Idefics3 processor with the same fields and defaults', () => {
    const smol2 = loadPreprocessorConfig(fixture('tiny-smolvlm2'));
    assert.ok(createImageProcessor(smol2) instanceof Idefics3ImageProcessor);
    assert.deepEqual(smol2, loadPreprocessorConfig(fixture('tiny-smolvlm')));
    assert.deepEqual(parsePreprocessorConfig({ image_processor_type: 'SmolVLMImageProcessor' }),
      parsePreprocessorConfig({ image_processor_type: 'Idefics3ImageProcessor' }));
  });

  it('applies transformers defaults for missing fields', () => {
    const idefics = parsePreprocessorConfig({ image_processor_type: 'Idefics3ImageProcessor' });
    assert.deepEqual(idefics, {
      image_processor_type: 'Idefics3ImageProcessor',
      do_resize: true,
      resample: 1,
      do_rescale: true,
      rescale_factor: 1 / 255,
      do_normalize: true,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      do_convert_rgb: true,
      size: { longest_edge: 1456 },
      do_image_splitting: true,
      max_image_size: { longest_edge: 364 },
      do_pad: true,
    });
    const clip = parsePreprocessorConfig({ feature_extractor_type: 'CLIPFeatureExtractor', size: 224, crop_size: 224 });
    assert.equal(clip.image_processor_type, 'CLIPImageProcessor');
    if (clip.image_processor_type !== 'CLIPImageProcessor') return;
    assert.deepEqual(clip.size, { shortest_edge: 224 });
    assert.deepEqual(clip.crop_size, { height: 224, width: 224 });
    assert.deepEqual(clip.image_mean, OPENAI_CLIP_MEAN);
    assert.equal(clip.resample, 3);
    const siglip = parsePreprocessorConfig({ image_processor_type: 'SiglipImageProcessor', size: 384, image_mean: 0.5 });
    assert.deepEqual(siglip.size, { height: 384, width: 384 });
    assert.deepEqual(siglip.image_mean, [0.5, 0.5, 0.5]);
    assert.equal(siglip.do_convert_rgb, null);
  });

  it('rejects bad configs with the file and field named', () => {
    const bad = (json: unknown, pattern: RegExp) =>
      assert.throws(() => parsePreprocessorConfig(json, 'dir/preprocessor_config.json'), (e: unknown) => e instanceof TfvlmError && pattern.test(e.message));
    bad([], /expected a JSON object/);
    bad({ image_processor_type: 'LlamaVisionImageProcessor' }, /dir\/preprocessor_config\.json: unsupported image_processor_type "LlamaVisionImageProcessor"/);
    bad({ image_processor_type: 'SmolVLMImageProcessorFast' }, /unsupported image_processor_type "SmolVLMImageProcessorFast" \(supported: .*SmolVLMImageProcessor/);
    bad({ image_processor_type: 'Idefics3ImageProcessor', size: { longest_edge: -4 } }, /field "size" must hold positive integers/);
    bad({ image_processor_type: 'Idefics3ImageProcessor', size: { shortest_edge: 4 } }, /field "size" must have longest_edge or height \+ width/);
    bad({ image_processor_type: 'CLIPImageProcessor', resample: 7 }, /field "resample"/);
    bad({ image_processor_type: 'CLIPImageProcessor', image_std: [0.2, 0, 0.2] }, /field "image_std" must not contain 0/);
    bad({ image_processor_type: 'CLIPImageProcessor', do_resize: 'yes' }, /field "do_resize" must be true or false/);
    assert.throws(() => loadPreprocessorConfig(fixture('does-not-exist')), /cannot read preprocessor config/);
  });
});
