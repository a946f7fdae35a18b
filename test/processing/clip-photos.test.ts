// CLIPImageProcessor with the real llava-1.5 336 px settings on the fixture photos, against
// transformers 4.47.1 (image-preprocessing goldens: full pixel_values + sha256).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/paths.ts';
import { TOLERANCE, assertClose } from '../helpers/compare.ts';
import { loadImage } from '../../src/io/image.ts';
import { loadPreprocessorConfig } from '../../src/processing/preprocessor-config.ts';
import { CLIPImageProcessor } from '../../src/processing/clip-image-processor.ts';
import type { CLIPImageProcessorConfig } from '../../src/processing/preprocessor-config.ts';
import { IMAGES_JSON, photoPath, photoStem, readGolden, sha256F32 } from './goldens.ts';

const processor = new CLIPImageProcessor(loadPreprocessorConfig(fixture('image-preprocessing', 'llava_preprocessor_config.json')) as CLIPImageProcessorConfig);

describe('CLIPImageProcessor on photos (llava-1.5 336 px settings)', () => {
  for (const rec of IMAGES_JSON.images) {
    it(photoStem(rec), async () => {
      const out = processor.preprocess(await loadImage(photoPath(rec)));
      const golden = readGolden(fixture('image-preprocessing', `${photoStem(rec)}.safetensors`)).get('clip336.pixel_values')!;
      assert.deepEqual(out.shape, rec.clip336.pixel_values_shape);
      assertClose(out.pixel_values, golden.data, TOLERANCE.pixels, 'clip336.pixel_values');
      assert.equal(sha256F32(out.pixel_values), rec.clip336.sha256_f32);
    });
  }
});
