// Pixel budgets and media memory: a 12000x12000 PNG and a 230 KB GIF with a 12000x12000 screen and
// 10,000 one-pixel frames are refused from their headers before a pixel is decoded (they took 1.86 GB
// and over 6 GB); a GIF video within the limit holds only its resized frames (a 3000x3000 screen:
// 520 MB peak before, when every sampled frame was kept at screen size); request limits, options and
// environment variables. Peak RSS is measured in a child process (media-memory-child.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { loadImage } from '../../src/io/image.ts';
import { DEFAULT_PIXEL_LIMITS, PixelBudget, resolvePixelLimits } from '../../src/io/pixel-budget.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { fixture } from '../helpers/paths.ts';

const require = createRequire(import.meta.url);
const CHILD = fileURLToPath(new URL('./media-memory-child.ts', import.meta.url));
const MODEL = fixture('tiny-smolvlm2');
const IMG = fixture('tiny-smolvlm2', 'golden', 'inputs', 'wide_150x100.png');
let tmp: string;
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-media-memory-')); });
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function child(kind: 'image' | 'video', file: string, maxImagePixels?: number): { error?: string; frames?: number; maxRssMb: number; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, MODEL, kind, file, ...(maxImagePixels ? [String(maxImagePixels)] : [])], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { ...JSON.parse(r.stdout), ms: performance.now() - t0 };
}

/** A GIF of `frames` one-pixel frames (40 ms each) on a side×side screen. */
function gif(name: string, side: number, frames: number): string {
  const { GifWriter } = require('omggif');
  const buf = Buffer.alloc(64 + frames * 40);
  const gw = new GifWriter(buf, side, side, { palette: [0xff0000, 0x00ff00, 0x0000ff, 0xffffff], loop: 0 });
  for (let k = 0; k < frames; k++) gw.addFrame(k % side, k % side, 1, 1, [k % 4], { delay: 4, disposal: 1 });
  const file = path.join(tmp, name);
  fs.writeFileSync(file, buf.subarray(0, gw.end()));
  return file;
}

/** A real side×side 8-bit gray PNG (all zero: it compresses to a few hundred KB). */
function bigPng(name: string, side: number): string {
  const crc = (b: Buffer) => { let c = ~0; for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); } return ~c >>> 0; };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8;
  const idat = zlib.deflateSync(Buffer.alloc((side + 1) * side));
  const file = path.join(tmp, name);
  fs.writeFileSync(file, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]));
  return file;
}

describe('media memory', () => {
  it('a 12000x12000 PNG is refused from its header, naming the limit and how to raise it', () => {
    const png = bigPng('huge.png', 12000);
    const r = child('image', png);
    assert.match(r.error ?? '', /huge\.png is 12000x12000 = 144000000 pixels, over the 89478485-pixel limit for one image \(maxImagePixels \/ TFVLM_MAX_IMAGE_PIXELS\)/);
    assert.ok(r.maxRssMb < 400, `peak RSS ${r.maxRssMb.toFixed(0)} MB (decoding it took 1.86 GB)`);
  });

  it('the 230 KB GIF with a 12000x12000 screen and 10,000 one-pixel frames is refused from its header as a video', () => {
    const file = gif('bomb.gif', 12000, 10_000);
    assert.ok(fs.statSync(file).size < 300_000);
    const r = child('video', file);
    assert.match(r.error ?? '', /bomb\.gif \(its GIF screen\) is 12000x12000 = 144000000 pixels, over the 89478485-pixel limit/);
    assert.ok(r.maxRssMb < 400 && r.ms < 20_000, `peak RSS ${r.maxRssMb.toFixed(0)} MB in ${r.ms.toFixed(0)} ms (it went past 6 GB)`);
  });

  it('a GIF video within the limit holds only its resized frames: peak RSS ≈ base + 7 bytes per screen pixel', () => {
    // 3000x3000 screen, 300 frames at 40 ms = 12 s → 12 frames at 1 fps; the screen (4 bytes a pixel) and one
    // RGB copy (3) are all a frame costs before it is resized to 64x64. It peaked at 520 MB when every
    // sampled frame was kept at screen size.
    const r = child('video', gif('mid.gif', 3000, 300));
    assert.equal(r.error, undefined);
    assert.equal(r.frames, 12);
    assert.ok(r.maxRssMb < 300, `peak RSS ${r.maxRssMb.toFixed(0)} MB`);
  });
});

describe('pixel limits', () => {
  it('defaults: Pillow\'s warning size per image, four of those per request; options, then environment, then defaults', () => {
    assert.deepEqual(DEFAULT_PIXEL_LIMITS, { maxImagePixels: 89_478_485, maxRequestPixels: 357_913_940 });
    assert.deepEqual(resolvePixelLimits(), DEFAULT_PIXEL_LIMITS);
    process.env.TFVLM_MAX_IMAGE_PIXELS = '1000';
    try {
      assert.equal(resolvePixelLimits().maxImagePixels, 1000);
      assert.equal(resolvePixelLimits({ maxImagePixels: 50 }).maxImagePixels, 50);
      process.env.TFVLM_MAX_IMAGE_PIXELS = 'lots';
      assert.throws(() => resolvePixelLimits(), /TFVLM_MAX_IMAGE_PIXELS must be a positive whole number of pixels, got lots/);
    } finally {
      delete process.env.TFVLM_MAX_IMAGE_PIXELS;
    }
    assert.throws(() => resolvePixelLimits({ maxImagePixels: 2e8 }), /above 178956970 pixels \(Pillow's decompression-bomb limit/);
    assert.throws(() => resolvePixelLimits({ maxRequestPixels: 0 }), /option maxRequestPixels must be a positive whole number/);
  });

  it('a request over its limit is refused before the image that crosses it is decoded', async () => {
    const processor = await VlmProcessor.load(MODEL);
    const two = [{ role: 'user', content: [{ type: 'image', image: IMG }, { type: 'image', image: IMG }, { type: 'text', text: 'x' }] }];
    await processor.fromMessages(two, { maxRequestPixels: 2 * 150 * 100 });
    await assert.rejects(processor.fromMessages(two, { maxRequestPixels: 2 * 150 * 100 - 1 }),
      /image .*wide_150x100\.png would bring this request to 30000 pixels, over its 29999-pixel limit \(maxRequestPixels \/ TFVLM_MAX_REQUEST_PIXELS\)/);
    await assert.rejects(processor.fromMessages(two, { maxImagePixels: 100 }), /wide_150x100\.png is 150x100 = 15000 pixels, over the 100-pixel limit/);
    await assert.rejects(loadImage(IMG, undefined, new PixelBudget({ maxImagePixels: 14_999 })), /over the 14999-pixel limit/);
    // Decoded bitmaps handed over are held to the same limits.
    const bitmap = { width: 200, height: 200, data: new Uint8Array(200 * 200 * 3) };
    await assert.rejects(processor.fromMessages([{ role: 'user', content: [{ type: 'image', image: bitmap }] }], { maxImagePixels: 1000 }),
      /image decoded image is 200x200 = 40000 pixels, over the 1000-pixel limit/);
  });

  it('video frames count at their resized size: a long video of large frames fits a small request limit', async () => {
    const processor = await VlmProcessor.load(MODEL);
    const file = gif('frames.gif', 400, 40);
    const video = [{ role: 'user', content: [{ type: 'video', video: file }, { type: 'text', text: 'x' }] }];
    // 2 frames at 1 fps (1.6 s), held at 64x64 = 4096 pixels each, although each decodes at 400x400.
    const out = await processor.fromMessages(video, { maxRequestPixels: 2 * 4096 });
    assert.equal(out.videos[0]?.timestamps.length, 2);
    await assert.rejects(processor.fromMessages(video, { maxRequestPixels: 2 * 4096 - 1 }), /a frame of video .*frames\.gif would bring this request to 8192 pixels/);
    await assert.rejects(processor.fromMessages(video, { maxImagePixels: 400 * 400 - 1 }), /frames\.gif \(its GIF screen\) is 400x400/);
  });
});
