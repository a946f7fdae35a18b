// Image preprocessing time: JPEG decode + Idefics3ImageProcessor with the real SmolVLM-256M
// settings (longest_edge 2048, 512 px tiles, LANCZOS, splitting on) on a 2048×1536 JPEG (rocket.jpg
// upscaled with the BICUBIC resampler, written to os.tmpdir()) and on rocket.jpg itself (640×427,
// upscaled inside the pipeline). Prints median ms per stage over several runs after a warm-up.
// Usage: npx tsx bench/preprocess.ts [--json] [--runs N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { encodeJpeg, loadImage } from '../src/io/image.ts';
import { crop, flattenOnWhite, normalizationTable, writeChannelsFirst } from '../src/processing/image.ts';
import type { Bitmap } from '../src/io/bitmap.ts';
import { Resampling, resize } from '../src/processing/resample.ts';
import { Idefics3ImageProcessor, longestEdgeSize, visionEncoderSize } from '../src/processing/idefics3-image-processor.ts';
import { loadPreprocessorConfig, type Idefics3ImageProcessorConfig } from '../src/processing/preprocessor-config.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const runs = Number(args[args.indexOf('--runs') + 1]) || 5;
const config = loadPreprocessorConfig(path.join(root, 'test/fixtures/image-preprocessing/smolvlm_preprocessor_config.json')) as Idefics3ImageProcessorConfig;
const processor = new Idefics3ImageProcessor(config);

/** Median of a non-empty list. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The processor's steps one by one (same calls as Idefics3ImageProcessor.processImage) so each can be timed. */
async function timeOne(file: string): Promise<Record<string, number>> {
  const t: Record<string, number> = {};
  let t0 = performance.now();
  const mark = (name: string) => {
    const now = performance.now();
    t[name] = (t[name] ?? 0) + (now - t0);
    t0 = now;
  };
  let img: Bitmap = await loadImage(file);
  mark('decode');
  const [h1, w1] = longestEdgeSize(img.height, img.width, (config.size as { longest_edge: number }).longest_edge);
  img = resize(img, w1, h1, config.resample);
  mark('resize_longest_edge');
  const max = config.max_image_size.longest_edge;
  const [h2, w2] = visionEncoderSize(img.height, img.width, max);
  img = resize(img, w2, h2, config.resample);
  mark('resize_for_vision_encoder');
  const rows = Math.ceil(h2 / max);
  const cols = Math.ceil(w2 / max);
  const tiles: Bitmap[] = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) tiles.push(crop(img, c * max, r * max, (c + 1) * max, (r + 1) * max));
  mark('split');
  tiles.push(resize(img, max, max, config.resample));
  mark('global_resize');
  const rgb = tiles.map(flattenOnWhite);
  mark('convert_rgb');
  const lut = normalizationTable(3, config, 'bench');
  const tileLen = 3 * max * max;
  const out = new Float32Array(rgb.length * tileLen);
  rgb.forEach((tile, i) => writeChannelsFirst(tile, lut, out, i * tileLen));
  mark('rescale_normalize');
  t.stages_total = Object.values(t).reduce((a, b) => a + b, 0);
  const e0 = performance.now();
  const decoded = await loadImage(file);
  const res = processor.preprocess(decoded);
  t.end_to_end = performance.now() - e0;
  t.tiles = res.shape[1]!; // Idefics3: [batch, max_tiles, C, H, W]
  return t;
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-bench-'));
  try {
    const rocket = await loadImage(path.join(root, 'test/images/rocket.jpg'));
    const big = resize(rocket, 2048, 1536, Resampling.BICUBIC);
    const bigFile = path.join(tmp, 'rocket_2048x1536.jpg');
    fs.writeFileSync(bigFile, await encodeJpeg(big, 90));
    const inputs = [
      { name: '2048x1536 JPEG', file: bigFile },
      { name: 'rocket.jpg 640x427', file: path.join(root, 'test/images/rocket.jpg') },
    ];
    const results: Record<string, Record<string, number>> = {};
    for (const { name, file } of inputs) {
      await timeOne(file); // warm-up (wasm compile, JIT)
      const samples: Record<string, number>[] = [];
      for (let i = 0; i < runs; i++) samples.push(await timeOne(file));
      const [first] = samples;
      if (!first) throw new Error(`--runs ${runs}: need at least one run`);
      // Every run times the same stages.
      results[name] = Object.fromEntries(Object.keys(first).map((k) => [k, median(samples.map((s) => s[k]!))]));
    }
    if (json) {
      console.log(JSON.stringify({ bench: 'preprocess', runs, results }, null, 2));
      return;
    }
    const columns = inputs.map((i) => results[i.name]!); // filled above, one per input
    const keys = Object.keys(columns[0] ?? {});
    console.log(`Idefics3 preprocessing, SmolVLM-256M settings, median of ${runs} runs (ms)`);
    console.log(['stage'.padEnd(28), ...inputs.map((i) => i.name.padStart(20))].join(''));
    for (const k of keys) console.log([k.padEnd(28), ...columns.map((c) => c[k]!.toFixed(k === 'tiles' ? 0 : 1).padStart(20))].join(''));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
