// 10000×10000 inputs: decoded (as a grayscale PNG file) and preprocessed without a 10 GB
// allocation — the processors' first resize bounds every later buffer. The RGB convolution path
// (~1.8 G multiply-adds) and the 100-megapixel PNG decode take several seconds each, so they run
// with TFVLM_SLOW_TESTS=1; the gray bitmap path runs always.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/paths.ts';
import { loadImage } from '../../src/io/image.ts';
import { PixelBudget } from '../../src/io/pixel-budget.ts';
import { loadPreprocessorConfig } from '../../src/processing/preprocessor-config.ts';
import type { Idefics3ImageProcessorConfig } from '../../src/processing/preprocessor-config.ts';
import { Idefics3ImageProcessor } from '../../src/processing/idefics3-image-processor.ts';
import { encodePng } from './encoders.ts';

const N = 10000;
const RSS_BOUND = 2.5e9;
const processor = new Idefics3ImageProcessor(loadPreprocessorConfig(fixture('tiny-smolvlm')) as Idefics3ImageProcessorConfig);

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-huge-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const slow = { skip: process.env.TFVLM_SLOW_TESTS ? false : 'set TFVLM_SLOW_TESTS=1 (several seconds)' };

describe('10000×10000 images', () => {
  it('a gray bitmap goes through Idefics3 (NEAREST downscale first)', () => {
    const data = new Uint8Array(N * N);
    for (let y = 0; y < N; y++) data.fill(y & 255, y * N, (y + 1) * N);
    const out = processor.preprocess({ width: N, height: N, mode: 'L', data });
    assert.deepEqual(out.shape, [1, 10, 3, 64, 64]);
    assert.ok(process.memoryUsage().rss < RSS_BOUND, `rss ${process.memoryUsage().rss}`);
  });

  it('an RGB bitmap goes through Idefics3 (LANCZOS downscale first)', slow, () => {
    const data = new Uint8Array(N * N * 3);
    for (let y = 0; y < N; y++) data.fill(y & 255, y * N * 3, (y + 1) * N * 3);
    const out = processor.preprocess({ width: N, height: N, mode: 'RGB', data });
    assert.deepEqual(out.shape, [1, 10, 3, 64, 64]);
    assert.ok(out.pixel_values.every(Number.isFinite));
    assert.ok(process.memoryUsage().rss < RSS_BOUND, `rss ${process.memoryUsage().rss}`);
  });

  it('a grayscale PNG file decodes (mode L) and preprocesses', slow, async () => {
    const px = new Uint8Array(N * N);
    for (let y = 0; y < N; y++) px.fill((y * 7) & 255, y * N, (y + 1) * N);
    const file = path.join(tmp, 'huge.png');
    fs.writeFileSync(file, encodePng(N, N, 0, px));
    const img = await loadImage(file, undefined, new PixelBudget({ maxImagePixels: N * N }));
    assert.deepEqual([img.width, img.height, img.mode], [N, N, 'L']);
    const out = processor.preprocess(img);
    assert.deepEqual(out.shape, [1, 10, 3, 64, 64]);
    assert.ok(process.memoryUsage().rss < RSS_BOUND, `rss ${process.memoryUsage().rss}`);
  });
});
