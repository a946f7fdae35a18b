// Image processor behaviour beyond the goldens: 1×1 inputs, modes (gray, LA, RGBA, palette),
// the splitting override, padding rules and the errors for inputs transformers also refuses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/paths.ts';
import { TfvlmError } from '../../src/errors.ts';
import type { Bitmap } from '../../src/io/bitmap.ts';
import { compositeOverWhite } from '../../src/processing/image.ts';
import { convertToRGB, convertToRGBA } from '../../src/io/bitmap.ts';
import { loadPreprocessorConfig, parsePreprocessorConfig } from '../../src/processing/preprocessor-config.ts';
import type { CLIPImageProcessorConfig, Idefics3ImageProcessorConfig, SiglipImageProcessorConfig } from '../../src/processing/preprocessor-config.ts';
import { Idefics3ImageProcessor, longestEdgeSize, visionEncoderSize } from '../../src/processing/idefics3-image-processor.ts';
import { CLIPImageProcessor, shortestEdgeSize } from '../../src/processing/clip-image-processor.ts';
import { SiglipImageProcessor } from '../../src/processing/siglip-image-processor.ts';

const smolCfg = loadPreprocessorConfig(fixture('tiny-smolvlm')) as Idefics3ImageProcessorConfig;
const smol = new Idefics3ImageProcessor(smolCfg);
const clip = new CLIPImageProcessor(loadPreprocessorConfig(fixture('tiny-clip')) as CLIPImageProcessorConfig);
const siglip = new SiglipImageProcessor(loadPreprocessorConfig(fixture('tiny-siglip')) as SiglipImageProcessorConfig);

const solid = (w: number, h: number, rgb: [number, number, number]): Bitmap => {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(rgb, i * 3);
  return { width: w, height: h, mode: 'RGB', data };
};
const norm = (v: number) => Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5);
const gradient = (w: number, h: number): Bitmap => {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 7)) & 255;
  return { width: w, height: h, mode: 'RGB', data };
};

describe('size rules (transformers integer arithmetic)', () => {
  it('Idefics3 longest edge: short side int(long/aspect) rounded up to even, capped at 4096', () => {
    assert.deepEqual(longestEdgeSize(427, 640, 2048), [1366, 2048]);
    assert.deepEqual(longestEdgeSize(300, 451, 2048), [1362, 2048]);
    assert.deepEqual(longestEdgeSize(150, 40, 192), [192, 52]);
    assert.deepEqual(longestEdgeSize(1, 10000, 2048), [1, 2048]);
    assert.deepEqual(longestEdgeSize(100, 100, 5000), [4096, 4096]);
  });
  it('Idefics3 vision-encoder size: multiples of max_image_size', () => {
    assert.deepEqual(visionEncoderSize(1362, 2048, 512), [1536, 2048]);
    assert.deepEqual(visionEncoderSize(1, 2048, 512), [512, 2048]);
    assert.deepEqual(visionEncoderSize(192, 52, 64), [192, 64]);
  });
  it('CLIP shortest edge: long side int(size * long / short)', () => {
    assert.deepEqual(shortestEdgeSize(427, 640, 336), [336, 503]);
    assert.deepEqual(shortestEdgeSize(70, 40, 32), [56, 32]);
  });
});

describe('1×1 images', () => {
  const px = solid(1, 1, [200, 10, 90]);
  it('Idefics3: upscaled to the longest edge, split into a 3×3 grid + global, every pixel the same', () => {
    const out = smol.preprocess(px);
    assert.deepEqual(out.shape, [1, 10, 3, 64, 64]);
    assert.deepEqual([out.rows, out.cols], [[3], [3]]);
    const plane = 64 * 64;
    for (let t = 0; t < 10; t++) {
      for (let c = 0; c < 3; c++) {
        const v = norm([200, 10, 90][c]!);
        const s = out.pixel_values.subarray((t * 3 + c) * plane, (t * 3 + c + 1) * plane);
        assert.ok(s.every((x) => x === v), `tile ${t} channel ${c}`);
      }
    }
  });
  it('CLIP and SigLIP: one image of the crop / target size', () => {
    assert.deepEqual(clip.preprocess(px).shape, [1, 3, 32, 32]);
    const s = siglip.preprocess(px);
    assert.deepEqual(s.shape, [1, 3, 32, 32]);
    assert.equal(s.pixel_values[0], norm(200));
  });
});

describe('Idefics3 modes and options', () => {
  it('processImage reports the sizes each step produced', () => {
    const steps = smol.processImage(gradient(150, 100));
    assert.deepEqual(steps.after_resize_hw, [128, 192]);
    assert.deepEqual(steps.after_resize_for_vision_encoder_hw, [128, 192]);
    assert.deepEqual([steps.rows, steps.cols, steps.tiles.length], [2, 3, 7]);
    assert.ok(steps.tiles.every((t) => t.width === 64 && t.height === 64 && t.mode === 'RGB'));
  });

  it('--image-splitting off gives one max×max tile with rows = cols = 0', () => {
    const out = smol.preprocess(gradient(150, 100), { do_image_splitting: false });
    assert.deepEqual(out.shape, [1, 1, 3, 64, 64]);
    assert.deepEqual([out.rows, out.cols, out.tiles_per_image], [[0], [0], [1]]);
  });

  it('LA is processed as RGBA; RGBA is composited over white after resizing', () => {
    const la: Bitmap = { width: 5, height: 3, mode: 'LA', data: Uint8Array.from({ length: 30 }, (_, i) => (i * 53) & 255) };
    const a = smol.preprocess(la);
    const b = smol.preprocess(convertToRGBA(la));
    assert.deepEqual(a.pixel_values, b.pixel_values);
    assert.equal(compositeOverWhite(0, 0), 255);
    assert.equal(compositeOverWhite(0, 255), 0);
    assert.equal(compositeOverWhite(100, 128), 177); // 100·128/255 + 255·127/255 = 177.2
  });

  it('gray is resized with NEAREST (as a PIL "P" image), then replicated to RGB', () => {
    const gray: Bitmap = { width: 2, height: 1, mode: 'L', data: Uint8Array.from([0, 255]) };
    const out = smol.preprocess(gray, { do_image_splitting: false });
    const values = new Set(out.pixel_values);
    assert.deepEqual([...values].sort(), [-1, 1]);
  });

  it('a batch pads every sample to the largest tile count with zero tiles and mask 0', () => {
    const out = smol.preprocess([[gradient(150, 100)], [gradient(40, 40), gradient(64, 64)]]);
    // sample 0: 2×3 + 1 = 7 tiles; sample 1: 3×3 + 1 and 3×3 + 1 = 20 tiles
    assert.deepEqual(out.shape, [2, 20, 3, 64, 64]);
    assert.deepEqual(out.tiles_per_image, [7, 10, 10]);
    assert.deepEqual(out.images_per_sample, [1, 2]);
    const tileLen = 3 * 64 * 64;
    const mask = out.pixel_attention_mask!;
    for (let t = 0; t < 20; t++) {
      const real = t < 7;
      assert.equal(mask[t * 4096], real ? 1 : 0);
      if (!real) assert.ok(out.pixel_values.subarray(t * tileLen, (t + 1) * tileLen).every((v) => v === 0));
    }
    assert.ok(mask.subarray(20 * 4096).every((v) => v === 1));
  });

  it('do_pad false stacks equal batches and refuses uneven ones', () => {
    const noPad = new Idefics3ImageProcessor({ ...smolCfg, do_pad: false });
    const even = noPad.preprocess([[gradient(150, 100)], [gradient(150, 100)]]);
    assert.deepEqual(even.shape, [2, 7, 3, 64, 64]);
    assert.equal(even.pixel_attention_mask, undefined);
    assert.throws(() => noPad.preprocess([[gradient(150, 100)], [gradient(64, 64)]]), (e: unknown) => e instanceof TfvlmError && /do_pad is false/.test(e.message));
  });

  it('without do_convert_rgb an RGBA image keeps 4 channels and 3-entry mean/std are refused', () => {
    const keep = new Idefics3ImageProcessor({ ...smolCfg, do_convert_rgb: false });
    const rgba = convertToRGBA(gradient(10, 10));
    assert.throws(() => keep.preprocess(rgba), /4 channel\(s\) but image_mean\/image_std have 3\/3/);
    const raw = new Idefics3ImageProcessor({ ...smolCfg, do_convert_rgb: false, do_normalize: false, do_rescale: false });
    const out = raw.preprocess(rgba, { do_image_splitting: false });
    assert.deepEqual(out.shape, [1, 1, 4, 64, 64]);
  });

  it('a sample without images is all padding; no images at all is an error', () => {
    const out = smol.preprocess([[], [gradient(64, 64)]]);
    assert.deepEqual(out.shape, [2, 10, 3, 64, 64]);
    assert.deepEqual(out.images_per_sample, [0, 1]);
    assert.ok(out.pixel_attention_mask!.subarray(0, 10 * 4096).every((v) => v === 0));
    assert.throws(() => smol.preprocess([[]]), /no images given/);
  });
});

describe('CLIP / SigLIP modes', () => {
  it('CLIP converts first: gray is replicated, RGBA alpha dropped (not composited)', () => {
    const gray: Bitmap = { width: 40, height: 30, mode: 'L', data: Uint8Array.from({ length: 1200 }, (_, i) => i & 255) };
    assert.deepEqual(clip.preprocess(gray).pixel_values, clip.preprocess(convertToRGB(gray)).pixel_values);
    const rgba = convertToRGBA(gradient(40, 30));
    rgba.data.forEach((_, i) => i % 4 === 3 && (rgba.data[i] = 0));
    assert.deepEqual(clip.preprocess(rgba).pixel_values, clip.preprocess(convertToRGB(rgba)).pixel_values);
  });

  it('CLIP center crop zero-pads when the crop is larger than the resized image', () => {
    const small = new CLIPImageProcessor(parsePreprocessorConfig({ image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 8 }, crop_size: 12, do_normalize: false }) as CLIPImageProcessorConfig);
    const out = small.preprocess(solid(16, 8, [255, 255, 255]));
    assert.deepEqual(out.shape, [1, 3, 12, 12]);
    // 16×8 stays 16×8; padded to 16×12 (2 rows on top, 2 at the bottom), cropped to columns 2..13
    const row = (y: number) => Array.from(out.pixel_values.subarray(y * 12, y * 12 + 12));
    assert.deepEqual(row(0), new Array(12).fill(0));
    assert.deepEqual(row(2), new Array(12).fill(1));
    assert.deepEqual(row(11), new Array(12).fill(0));
  });

  it('SigLIP without do_convert_rgb refuses gray (transformers cannot infer its channels)', () => {
    const gray: Bitmap = { width: 4, height: 4, mode: 'L', data: new Uint8Array(16) };
    assert.throws(() => siglip.preprocess(gray), (e: unknown) => e instanceof TfvlmError && /needs do_convert_rgb/.test(e.message));
    const conv = new SiglipImageProcessor({ ...siglip.config, do_convert_rgb: true });
    assert.deepEqual(conv.preprocess(gray).shape, [1, 3, 32, 32]);
  });

  it('CLIP refuses to stack images of different sizes when center crop is off', () => {
    const noCrop = new CLIPImageProcessor({ ...clip.config, do_center_crop: false });
    assert.throws(() => noCrop.preprocess([gradient(40, 30), gradient(30, 40)]), /cannot be stacked/);
  });
});
