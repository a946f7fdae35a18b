// Idefics3ImageProcessor with the real SmolVLM-256M settings on the fixture photos, against
// transformers 4.47.1 (image-preprocessing goldens): tile hashes, crops, sizes, grid.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/paths.ts';
import { TOLERANCE, assertClose } from '../helpers/compare.ts';
import { loadImage } from '../../src/io/image.ts';
import { loadPreprocessorConfig } from '../../src/processing/preprocessor-config.ts';
import { Idefics3ImageProcessor, longestEdgeSize, visionEncoderSize } from '../../src/processing/idefics3-image-processor.ts';
import type { Idefics3ImageProcessorConfig } from '../../src/processing/preprocessor-config.ts';
import { IMAGES_JSON, goldenCrops, photoPath, photoStem, readGolden, sha256F32 } from './goldens.ts';

const config = loadPreprocessorConfig(fixture('image-preprocessing', 'smolvlm_preprocessor_config.json')) as Idefics3ImageProcessorConfig;
const processor = new Idefics3ImageProcessor(config);

describe('Idefics3ImageProcessor on photos (SmolVLM-256M settings)', () => {
  for (const rec of IMAGES_JSON.images) {
    const stem = photoStem(rec);
    for (const setting of ['smolvlm_split', 'smolvlm_nosplit'] as const) {
      it(`${stem} ${setting}`, async () => {
        const golden = readGolden(fixture('image-preprocessing', `${stem}.safetensors`));
        const exp = rec[setting];
        const img = await loadImage(photoPath(rec));
        const split = setting === 'smolvlm_split';
        const resized = longestEdgeSize(img.height, img.width, (config.size as { longest_edge: number }).longest_edge);
        assert.deepEqual(resized, exp.after_resize_hw);
        if (split) assert.deepEqual(visionEncoderSize(...resized, config.max_image_size.longest_edge), exp.after_resize_for_vision_encoder_hw);
        const out = processor.preprocess(img, { do_image_splitting: split });
        assert.deepEqual(out.shape, exp.pixel_values_shape);
        assert.deepEqual([out.rows[0], out.cols[0], out.tiles_per_image[0]], [exp.rows, exp.cols, exp.num_tiles]);
        assert.ok(out.pixel_attention_mask!.every((v) => v === 1));
        const [, N, C, H, W] = out.shape;
        assert.ok(N !== undefined && C !== undefined && H !== undefined && W !== undefined, `5-D pixel_values, got [${out.shape}]`);
        const tileLen = C * H * W;
        const crops = golden.get(`${setting}.crops`)!.data;
        const first = golden.get(`${setting}.first64`)!.data;
        const last = golden.get(`${setting}.last64`)!.data;
        const cropLen = 3 * C * IMAGES_JSON.crop_size ** 2;
        for (let t = 0; t < N; t++) {
          const tile = out.pixel_values.subarray(t * tileLen, (t + 1) * tileLen);
          assertClose(goldenCrops(tile, C, H, W, IMAGES_JSON.crop_size), crops.subarray(t * cropLen, (t + 1) * cropLen), TOLERANCE.pixels, `tile ${t} crops`);
          assertClose(tile.subarray(0, 64), first.subarray(t * 64, (t + 1) * 64), TOLERANCE.pixels, `tile ${t} first64`);
          assertClose(tile.subarray(tileLen - 64), last.subarray(t * 64, (t + 1) * 64), TOLERANCE.pixels, `tile ${t} last64`);
          assert.equal(sha256F32(tile), exp.tiles![t]!.sha256_f32, `tile ${t} sha256 of float32 bytes`);
        }
        const full = golden.get(`${setting}.pixel_values`);
        if (full) assertClose(out.pixel_values, full.data, TOLERANCE.pixels, `${setting}.pixel_values`);
      });
    }
  }
});
