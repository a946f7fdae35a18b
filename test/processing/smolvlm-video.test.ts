// SmolVLM2 video through the processor, as transformers 5.x SmolVLMVideoProcessor / SmolVLMProcessor do it:
// which config file and fields set the frame sizes, the two resizes, torchvision's normalization order,
// the prompt (SmolVLM video chat template, frame count in words, timestamps), and video parts mixed with
// images, several videos, bare parts and refusals.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Jimp } from 'jimp';
import { loadImage } from '../../src/io/image.ts';
import { convertToRGB } from '../../src/io/bitmap.ts';
import { Resampling, resize } from '../../src/processing/resample.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import {
  SmolVLMVideoProcessor, loadVideoProcessorConfig, parseVideoProcessorConfig,
} from '../../src/processing/smolvlm-video-processor.ts';
import { torchResize } from '../../src/processing/torch-resize.ts';
import { VideoClip } from '../../src/processing/video-clip.ts';
import { fixture, image } from '../helpers/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-smolvlm-video-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A folder of n frames of w×h: frame k is a horizontal gradient offset by 20·k. */
async function frameFolder(name: string, n: number, w: number, h: number): Promise<string> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  for (let k = 0; k < n; k++) {
    const img = new Jimp({ width: w, height: h, color: 0x000000ff });
    for (let x = 0; x < w; x++) for (let y = 0; y < h; y++) {
      const v = (20 * k + Math.floor((255 * x) / w) + y) % 256;
      img.setPixelColor(((v << 24) | (((255 - v) & 255) << 16) | ((v >> 1) << 8) | 0xff) >>> 0, x, y);
    }
    fs.writeFileSync(path.join(dir, `frame${k + 1}.png`), await img.getBuffer('image/png'));
  }
  return dir;
}

function folderWith(name: string, files: Record<string, unknown>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, json] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), JSON.stringify(json));
  return dir;
}

const frameBlock = (seq: number) => `<fake_token_around_image><global-img>${'<image>'.repeat(seq)}<fake_token_around_image>`;

describe('SmolVLM video processor settings', () => {
  it('tiny-smolvlm2: `size` beside video_sampling wins over video_sampling.video_size (SmolVLMVideoProcessor.__init__)', () => {
    const cfg = loadVideoProcessorConfig(fixture('tiny-smolvlm2'));
    assert.deepEqual(cfg.size, { longest_edge: 192 });
    assert.deepEqual(cfg.max_image_size, { longest_edge: 64 });
    assert.deepEqual(cfg.sampling, { fps: 1, max_frames: 64 });
    assert.equal(cfg.resample, Resampling.LANCZOS);
    assert.ok(cfg.source.endsWith('preprocessor_config.json'));
  });

  it('video_sampling.video_size is the size when `size` is absent; SmolVLM defaults otherwise', () => {
    const cfg = parseVideoProcessorConfig({ video_sampling: { fps: 2, max_frames: 8, video_size: { longest_edge: 96 } }, max_image_size: { longest_edge: 32 } });
    assert.deepEqual([cfg.size, cfg.sampling, cfg.max_image_size], [{ longest_edge: 96 }, { fps: 2, max_frames: 8 }, { longest_edge: 32 }]);
    const bare = parseVideoProcessorConfig({});
    assert.deepEqual([bare.size, bare.max_image_size, bare.sampling], [{ longest_edge: 1456 }, { longest_edge: 364 }, { fps: 1, max_frames: 64 }]);
    // A video processor config written by transformers (fps / num_frames at the top level).
    assert.deepEqual(parseVideoProcessorConfig({ video_processor_type: 'SmolVLMVideoProcessor', fps: 3, num_frames: 5 }).sampling, { fps: 3, max_frames: 5 });
  });

  it('file order: processor_config.json video_processor, then video_preprocessor_config.json, then preprocessor_config.json', () => {
    const pre = { image_processor_type: 'SmolVLMImageProcessor', size: { longest_edge: 100 }, video_sampling: { fps: 1, max_frames: 4 } };
    const video = { video_processor_type: 'SmolVLMVideoProcessor', size: { longest_edge: 50 }, max_image_size: { longest_edge: 20 }, fps: 2, num_frames: 6 };
    const dir = folderWith('order', { 'preprocessor_config.json': pre });
    assert.equal(loadVideoProcessorConfig(dir).sampling.max_frames, 4);
    fs.writeFileSync(path.join(dir, 'video_preprocessor_config.json'), JSON.stringify(video));
    assert.deepEqual(loadVideoProcessorConfig(dir).size, { longest_edge: 50 });
    fs.writeFileSync(path.join(dir, 'processor_config.json'), JSON.stringify({ image_seq_len: 4, video_processor: { ...video, num_frames: 9 } }));
    assert.equal(loadVideoProcessorConfig(dir).sampling.max_frames, 9);
  });

  it('bad settings are refused naming the file and field', () => {
    const bad = (json: unknown, pattern: RegExp) => assert.throws(() => parseVideoProcessorConfig(json, 'x/video_preprocessor_config.json'), pattern);
    bad({ video_sampling: { fps: 0 } }, /x\/video_preprocessor_config\.json: field "video_sampling\.fps" must be a positive number/);
    bad({ video_sampling: { max_frames: 2.5 } }, /field "video_sampling\.max_frames" must be a positive integer/);
    bad({ video_sampling: 'fast' }, /field "video_sampling" must be an object/);
    bad({ video_processor_type: 'Qwen2VLVideoProcessor' }, /unsupported video_processor_type "Qwen2VLVideoProcessor"/);
    bad({ max_image_size: { longest_edge: 1e9 } }, /field "max_image_size" must hold sizes of at most 4096/);
    bad({ image_mean: [0.5, 0.5] }, /field "image_mean" and image_std must have 3 entries/);
  });
});

describe('SmolVLM video frames: sizes and pixels', () => {
  const proc = (extra: Record<string, unknown> = {}) => new SmolVLMVideoProcessor(parseVideoProcessorConfig({ size: { longest_edge: 2048 }, max_image_size: { longest_edge: 512 }, ...extra }));

  it('first resize: longest edge to size.longest_edge (capped at 4096), the other side truncated then rounded up to even', () => {
    const p = proc();
    assert.deepEqual(p.firstResizeSize(360, 640), [1152, 2048]);
    assert.deepEqual(p.firstResizeSize(640, 360), [2048, 1152]);
    assert.deepEqual(p.firstResizeSize(427, 640), [1366, 2048]); // int(2048 / (640/427)) = 1366
    assert.deepEqual(p.firstResizeSize(33, 100), [676, 2048]); // int(675.84) = 675, odd → 676
    assert.deepEqual(p.firstResizeSize(500, 500), [2048, 2048]);
    assert.deepEqual(proc({ size: { longest_edge: 9000 } }).firstResizeSize(10, 20), [2048, 4096]);
    assert.deepEqual(proc({ size: { height: 30, width: 40 } }).firstResizeSize(360, 640), [30, 40]);
    assert.deepEqual(p.frameSize, [512, 512]);
  });

  it('a frame is resized twice with antialiased Lanczos (torchvision on uint8): the exact chain, and within 2 levels of Pillow', async () => {
    const p = new SmolVLMVideoProcessor(loadVideoProcessorConfig(fixture('tiny-smolvlm2')));
    const frame = convertToRGB(await loadImage(image('rocket.jpg'))); // 640×427
    const out = p.resizeFrame(frame);
    assert.deepEqual([out.width, out.height, out.mode], [64, 64, 'RGB']);
    // int(192 / (640/427)) = 128 (even): 640×427 → 192×128 → 64×64.
    const chain = torchResize(torchResize(frame, 128, 192, 'lanczos'), 64, 64, 'lanczos');
    assert.deepEqual(out.data, chain.data);
    const pillow = resize(resize(frame, 192, 128, Resampling.LANCZOS), 64, 64, Resampling.LANCZOS);
    let max = 0;
    for (let i = 0; i < out.data.length; i++) max = Math.max(max, Math.abs(out.data[i]! - pillow.data[i]!));
    assert.ok(max <= 2, `max |Δ| vs Pillow ${max}`);
    // resample 3 selects bicubic.
    const bicubic = new SmolVLMVideoProcessor(parseVideoProcessorConfig({ size: { longest_edge: 192 }, max_image_size: { longest_edge: 64 }, resample: 3 }));
    assert.deepEqual(bicubic.resizeFrame(frame).data, torchResize(torchResize(frame, 128, 192, 'bicubic'), 64, 64, 'bicubic').data);
  });

  it('normalization is torchvision\'s fused (x − mean/rescale) / (std/rescale) in float32', () => {
    const lut = proc().normalization();
    for (const v of [0, 1, 127, 128, 200, 255]) assert.equal(lut[v], Math.fround((v - 127.5) / 127.5));
    const clip = proc({ image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711] }).normalization();
    const mean = Math.fround(Math.fround(0.48145466) * Math.fround(1 / (1 / 255)));
    const std = Math.fround(Math.fround(0.26862954) * Math.fround(1 / (1 / 255)));
    assert.equal(clip[77], Math.fround(Math.fround(77 - mean) / std));
    const rescaleOnly = proc({ do_normalize: false }).normalization();
    assert.equal(rescaleOnly[255], Math.fround(255 * Math.fround(1 / 255)));
  });
});

describe('VlmProcessor with video parts (tiny-smolvlm2)', () => {
  let processor: VlmProcessor;
  let six: string;
  let three: string;
  before(async () => {
    processor = await VlmProcessor.load(fixture('tiny-smolvlm2'));
    six = await frameFolder('six', 12, 40, 30);
    three = await frameFolder('three', 3, 30, 40);
  });

  it('the prompt SmolVLMProcessor builds: default video template, frame count in words, H:MM:SS duration, MM:SS per frame', async () => {
    const out = await processor.fromMessages([{ role: 'user', content: [{ type: 'video', video: six }, { type: 'text', text: 'What happens?' }] }],
      { videoFolderFps: 2 });
    // 12 frames at 2 fps = 6 s; round(1 fps · 6 s) = 6 frames: linspace(0, 11, 6) → 0, 2, 4, 6, 8, 11 → 0, 1, 2, 3, 4, 5.5 s.
    const expected = '<|im_start|>User: You are provided the following series of six frames from a 0:00:06 [H:MM:SS] video.\n'
      + ['00:00', '00:01', '00:02', '00:03', '00:04', '00:05'].map((t) => `\nFrame from ${t}:${frameBlock(16)}`).join('')
      + '\n\nWhat happens?<end_of_utterance>\nAssistant:';
    assert.equal(out.prompts[0], '<|im_start|>User: <video>What happens?<end_of_utterance>\nAssistant:');
    assert.equal(out.promptsExpanded[0], expected);
    assert.deepEqual(out.input_ids[0], processor.tokenizer.encode(expected));
    assert.deepEqual(out.videos, [{ timestamps: [0, 1, 2, 3, 4, 5.5], duration: 6 }]);
    assert.deepEqual(out.pixelShape, [1, 6, 3, 64, 64]);
    assert.deepEqual(out.mediaTiles, [[6]]);
    assert.ok(out.pixel_attention_mask!.every((m) => m === 1));
  });

  it('pixel_values hold each frame resized twice and normalized, in order', async () => {
    const out = await processor.fromMessages([{ role: 'user', content: [{ type: 'video', video: six }, { type: 'text', text: 'x' }] }], { videoFolderFps: 2 });
    const video = processor.videoProcessor!;
    const lut = video.normalization();
    const frames = [1, 3, 5, 7, 9, 12].map((k) => path.join(six, `frame${k}.png`));
    for (const [i, file] of frames.entries()) {
      const resized = video.resizeFrame(convertToRGB(await loadImage(file)));
      const plane = 64 * 64;
      for (const at of [0, 1000, 4095]) {
        for (let c = 0; c < 3; c++) assert.equal(out.pixel_values![(i * 3 + c) * plane + at], lut[c * 256 + resized.data[at * 3 + c]!], `frame ${i} channel ${c} pixel ${at}`);
      }
    }
  });

  it('images and videos mixed in any order: tiles in prompt order, images split, frames not; every video says the largest frame count', async () => {
    const img = fixture('tiny-smolvlm2', 'golden', 'inputs', 'wide_150x100.png');
    const out = await processor.fromMessages([
      { role: 'user', content: [{ type: 'video', video: three }, { type: 'text', text: 'and' }, { type: 'image', image: img }] },
      { role: 'assistant', content: [{ type: 'text', text: 'ok' }] },
      { role: 'user', content: [{ type: 'text', text: 'then' }, { type: 'video', video: six }] },
    ], { videoFolderFps: 2 });
    // three: 3 frames at 2 fps = 1.5 s → round(1.5) = 2 frames (half to even); the image: 2×3 tiles + global.
    assert.deepEqual(out.mediaTiles, [[2, 7, 6]]);
    assert.deepEqual([out.rows, out.cols], [[2], [3]]);
    assert.deepEqual(out.pixelShape, [1, 15, 3, 64, 64]);
    const [expanded] = out.promptsExpanded;
    assert.ok(expanded !== undefined, 'an expanded prompt');
    // transformers writes pixel_values.shape[1] (the padded frame count, here 6) for every video of a call.
    assert.equal(expanded.split('You are provided the following series of six frames').length - 1, 2);
    assert.equal(expanded.split('\nFrame from ').length - 1, 2 + 6);
    assert.ok(expanded.includes(`\nFrame from 00:01:${frameBlock(16)}\n\nand<fake_token_around_image><row_1_col_1>`), 'video, text, then the image block');
    assert.ok(expanded.startsWith('<|im_start|>User: You are provided'), 'the SmolVLM video template renders the whole conversation');
    const [ids] = out.input_ids;
    assert.ok(ids, 'input ids');
    const imageTokens = ids.filter((id) => id === processor.imageTokenId).length;
    assert.equal(imageTokens, 15 * 16, 'one image block per tile or frame');
  });

  it('bare {type: "video"} parts take the supplied videos in order; loaded clips are reused as they are', async () => {
    const clip = await processor.loadVideo(three);
    assert.ok(clip instanceof VideoClip);
    assert.deepEqual([clip.frames.length, clip.frames[0]?.width, clip.metadata.width, clip.metadata.height], [3, 64, 30, 40]);
    const bare = await processor.fromMessages([{ role: 'user', content: [{ type: 'video' }, { type: 'text', text: 'x' }] }], { videos: [[clip]] });
    const inline = await processor.fromMessages([{ role: 'user', content: [{ type: 'video', video: clip }, { type: 'text', text: 'x' }] }]);
    const byPath = await processor.fromMessages([{ role: 'user', content: [{ type: 'video', path: three }, { type: 'text', text: 'x' }] }]);
    assert.deepEqual(bare.input_ids, byPath.input_ids);
    assert.deepEqual(inline.pixel_values, byPath.pixel_values);
    await assert.rejects(processor.fromMessages([{ role: 'user', content: [{ type: 'video' }] }]), /more \{"type":"video"\} parts than the 0 video\(s\) supplied/);
    const other = new VideoClip(clip.frames.map((f) => ({ ...f, width: 32, height: 32, data: f.data.subarray(0, 32 * 32 * 3) })), clip.timestamps, clip.indices, clip.metadata);
    await assert.rejects(processor.loadVideo(other), /a VideoClip with 32x32 RGB frames was given to .*tiny-smolvlm2, whose frames are 64x64 RGB/);
    await assert.rejects(processor.fromMessages([{ role: 'user', content: [{ type: 'text', text: 'x' }] }], { videos: [[clip]] }), /1 video\(s\) supplied but only 0 bare/);
  });

  it('a raw prompt takes <video> markers with videos beside it', async () => {
    const out = await processor.fromPrompt('<|im_start|>User:<video>Hi<end_of_utterance>\nAssistant:', [], {}, [three]);
    assert.ok(out.promptsExpanded[0]?.startsWith('<|im_start|>User:You are provided the following series of three frames from a 0:00:03'));
    await assert.rejects(processor.fromPrompt('<video><video>', [], {}, [three]), /2 <video> marker\(s\) but 0 image\(s\) and 1 video\(s\)/);
  });

  it('refusals name the problem: URLs, data: URIs, missing files, models without video', async () => {
    const ask = (video: unknown) => processor.fromMessages([{ role: 'user', content: [{ type: 'video', video }] }]);
    await assert.rejects(ask('https://example.com/v.mp4'), /is a URL; download it first/);
    await assert.rejects(ask('data:video/mp4;base64,AAAA'), /a video must be a file path/);
    await assert.rejects(ask(path.join(tmp, 'missing.mp4')), /no such file or folder/);
    await assert.rejects(ask(42), /expected a file path, URL or data: URI string or a VideoClip, got number 42/);
    const llava = await VlmProcessor.load(fixture('tiny-llava'));
    await assert.rejects(llava.fromMessages([{ role: 'user', content: [{ type: 'video', video: three }, { type: 'text', text: 'x' }] }]),
      /this llava checkpoint takes no video; video parts need a SmolVLM \/ SmolVLM2/);
  });

  it('an Idefics3 (SmolVLM v1) folder takes video the SmolVLM2 way, with its own image sizes', async () => {
    const v1 = await VlmProcessor.load(fixture('tiny-smolvlm'));
    const a = await v1.fromMessages([{ role: 'user', content: [{ type: 'video', video: three }, { type: 'text', text: 'x' }] }]);
    const b = await processor.fromMessages([{ role: 'user', content: [{ type: 'video', video: three }, { type: 'text', text: 'x' }] }]);
    assert.deepEqual(a.input_ids, b.input_ids);
    assert.deepEqual(a.pixel_values, b.pixel_values);
  });
});
