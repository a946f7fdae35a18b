// SmolVLM2 video frame preprocessing time per frame with the published SmolVLM2-500M-Video-Instruct
// settings (preprocessor_config.json: size.longest_edge 2048, max_image_size 512, LANCZOS), for a
// 640×360 and a 1280×720 frame: the torchvision-exact path tfvlm runs (two antialiased uint8 resizes,
// src/processing/torch-resize.ts) beside the Pillow LANCZOS path it ran before (same two resizes), and
// the normalization. Prints a markdown table and one JSON line (median ms over --runs after a warm-up).
// Usage: npx tsx bench/video-frames.ts [--runs N]
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadImage } from '../src/io/image.ts';
import { writeChannelsFirst } from '../src/processing/image.ts';
import { type Bitmap, convertToRGB } from '../src/io/bitmap.ts';
import { Resampling, resize } from '../src/processing/resample.ts';
import { SmolVLMVideoProcessor, parseVideoProcessorConfig } from '../src/processing/smolvlm-video-processor.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 7;
/** Median of a non-empty list. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// SmolVLM2-500M-Video-Instruct preprocessor_config.json (the only processor file it ships).
const processor = new SmolVLMVideoProcessor(parseVideoProcessorConfig({
  image_processor_type: 'SmolVLMImageProcessor', size: { longest_edge: 2048 }, max_image_size: { longest_edge: 512 }, resample: 1,
  video_sampling: { fps: 1, max_frames: 64, video_size: { longest_edge: 512 } },
}));

function time(fn: () => unknown): number {
  fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

const photo = convertToRGB(await loadImage(path.join(root, 'test/images/rocket.jpg')));
const rows: { frame: string; first_resize: string; torch_ms: number; pillow_ms: number; normalize_ms: number }[] = [];
for (const [w, h] of [[640, 360], [1280, 720]] as const) {
  const frame: Bitmap = resize(photo, w, h, Resampling.BICUBIC);
  const [h1, w1] = processor.firstResizeSize(h, w);
  const lut = processor.normalization();
  const out = new Float32Array(3 * 512 * 512);
  const resized = processor.resizeFrame(frame);
  rows.push({
    frame: `${w}×${h}`,
    first_resize: `${w1}×${h1}`,
    torch_ms: time(() => processor.resizeFrame(frame)),
    pillow_ms: time(() => resize(resize(frame, w1, h1, Resampling.LANCZOS), 512, 512, Resampling.LANCZOS)),
    normalize_ms: time(() => writeChannelsFirst(resized, lut, out, 0)),
  });
}

console.log(`| frame | first resize | torchvision path (tfvlm), ms | Pillow LANCZOS (before), ms | normalize, ms | 64 frames, s |`);
console.log('|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.frame} | ${r.first_resize} | ${r.torch_ms.toFixed(1)} | ${r.pillow_ms.toFixed(1)} | ${r.normalize_ms.toFixed(2)} | ${(64 * (r.torch_ms + r.normalize_ms) / 1000).toFixed(1)} |`);
}
console.log(JSON.stringify({ bench: 'video-frames', runs, rows }));
