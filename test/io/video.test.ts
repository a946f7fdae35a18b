// Video frames: SmolVLMVideoProcessor.sample_frames indices, animated GIF frames (composited, delays →
// timestamps), folders of frames (numeric name order, assumed fps), video files through ffmpeg (when
// installed; a clear error naming the Debian package when not), temporal order everywhere; frames mapped
// as they are decoded.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Jimp } from 'jimp';
import { TfvlmError } from '../../src/errors.ts';
import { decodeGifFrames, ffmpegAvailable, loadVideo, sampleFrameIndices } from '../../src/io/video.ts';
import { isVideoInput } from '../../src/tasks/prompts.ts';
import { fixture } from '../helpers/paths.ts';

const require = createRequire(import.meta.url);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-video-'));
/** Gray level of frame k (distinct, increasing). */
const level = (k: number) => 10 + 20 * k;

async function writeFrameFolder(dir: string, n: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (let k = 0; k < n; k++) {
    const v = level(k);
    const img = new Jimp({ width: 16, height: 12, color: ((v << 24) | (v << 16) | (v << 8) | 0xff) >>> 0 });
    // frame1 … frameN: a numeric sort puts frame10 after frame9.
    fs.writeFileSync(path.join(dir, `frame${k + 1}.png`), await img.getBuffer('image/png'));
  }
}

function writeGif(file: string, delays: number[]): void {
  const { GifWriter } = require('omggif');
  const W = 8;
  const H = 6;
  const buf = Buffer.alloc(1024 * 16);
  const palette = delays.map((_, k) => (level(k) << 16) | (level(k) << 8) | level(k)).concat([0, 0, 0, 0]).slice(0, 4);
  const gw = new GifWriter(buf, W, H, { palette, loop: 0 });
  delays.forEach((d, k) => gw.addFrame(0, 0, W, H, new Array(W * H).fill(k), { delay: d, disposal: 1 }));
  fs.writeFileSync(file, buf.subarray(0, gw.end()));
}

describe('sampleFrameIndices (SmolVLMVideoProcessor.sample_frames)', () => {
  it('uniform indices: round(fps·duration) frames capped at max_frames, linspace truncated, unique', () => {
    assert.deepEqual(sampleFrameIndices({ totalFrames: 300, fps: 30, duration: 10 }, { fps: 1, max_frames: 64 }),
      [0, 33, 66, 99, 132, 166, 199, 232, 265, 299]);
    // Long clip: skip 1 s at each end (100 − 2 > 8 · 0.5), 8 frames between 30 and 2970.
    assert.deepEqual(sampleFrameIndices({ totalFrames: 3000, fps: 30, duration: 100 }, { fps: 0.5, max_frames: 8 }),
      [30, 450, 870, 1290, 1710, 2130, 2550, 2970]);
    // round(0.5) = 0 (half to even) → at least one frame.
    assert.deepEqual(sampleFrameIndices({ totalFrames: 5, fps: 10, duration: 0.5 }, { fps: 1, max_frames: 64 }), [0]);
    // More frames wanted than exist: duplicates collapse.
    assert.deepEqual(sampleFrameIndices({ totalFrames: 3, fps: 5, duration: 0.6 }, { fps: 10, max_frames: 64 }), [0, 1, 2]);
    assert.throws(() => sampleFrameIndices({ totalFrames: 3, fps: 5, duration: 1 }, { fps: 0, max_frames: 4 }), TfvlmError);
    // A huge fps or max_frames asks for more points than frames: every frame once, without a point per request.
    assert.deepEqual(sampleFrameIndices({ totalFrames: 4, fps: 2, duration: 2 }, { fps: 1e12, max_frames: 2 ** 40 }), [0, 1, 2, 3]);
    for (const n of [5, 7, 30]) {
      const capped = sampleFrameIndices({ totalFrames: 5, fps: 1, duration: 5 }, { fps: n / 5, max_frames: 64 });
      assert.deepEqual(capped, [0, 1, 2, 3, 4], `${n} points on 5 frames`);
    }
  });
});

describe('video sources', () => {
  const folder = path.join(tmp, 'frames');
  const gif = path.join(tmp, 'clip.gif');
  before(async () => {
    await writeFrameFolder(folder, 12);
    writeGif(gif, [10, 20, 30]);
  });

  it('folder of frames: numeric name order, timestamps from the assumed fps, frames in temporal order', async () => {
    const v = await loadVideo(folder, { fps: 1, max_frames: 64 }, { folderFps: 2 });
    assert.deepEqual(v.indices, [0, 2, 4, 6, 8, 11]);
    assert.deepEqual(v.timestamps, [0, 1, 2, 3, 4, 5.5]);
    assert.deepEqual(v.frames.map((f) => f.data[0]), v.indices.map(level));
    assert.equal(v.metadata.duration, 6);
    assert.equal(v.frames[0]!.mode, 'RGB');
  });

  it('mapFrame sees each kept frame once, in order, and only its results are kept (folder, GIF)', async () => {
    const seen: number[] = [];
    const half = (f: { width: number; height: number; data: Uint8Array }) => {
      seen.push(f.data[0]!);
      return { width: 1, height: 1, mode: 'RGB' as const, data: f.data.slice(0, 3) };
    };
    const v = await loadVideo(folder, { fps: 1, max_frames: 64 }, { folderFps: 2, mapFrame: half });
    assert.deepEqual(seen, v.indices.map(level));
    assert.deepEqual(v.frames.map((f) => [f.width, f.data[0]]), v.indices.map((i) => [1, level(i)]));
    assert.deepEqual([v.metadata.width, v.metadata.height], [16, 12], 'metadata keeps the source size');
    seen.length = 0;
    const g = await loadVideo(gif, { fps: 10, max_frames: 64 }, { mapFrame: half });
    assert.deepEqual(seen, [0, 1, 2].map(level));
    const [g0] = g.frames;
    assert.ok(g0, 'GIF frame 0');
    assert.deepEqual([g.metadata.width, g.metadata.height, g0.width], [8, 6, 1]);
  });

  it('animated GIF: every frame, start times from the delays, order kept', async () => {
    const v = await loadVideo(gif, { fps: 10, max_frames: 64 });
    assert.deepEqual(v.indices, [0, 1, 2]);
    assert.deepEqual(v.timestamps.map((t) => Math.round(t * 100)), [0, 10, 30]);
    assert.deepEqual(v.frames.map((f) => f.data[0]), [0, 1, 2].map(level));
    assert.ok(Math.abs(v.metadata.duration - 0.6) < 1e-9);
    assert.equal(isVideoInput(gif), true);
    assert.equal(isVideoInput(folder), true);
    assert.equal(isVideoInput(fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png')), false);
  });

  it('GIF disposals 1, 2 and 3 composite as a whole-screen snapshot reference does', () => {
    const { GifWriter, GifReader } = require('omggif');
    const W = 9;
    const H = 7;
    const buf = Buffer.alloc(4096);
    const gw = new GifWriter(buf, W, H, { palette: [0x000000, 0xff0000, 0x00ff00, 0x0000ff], loop: 0 });
    const frames: [number, number, number, number, number, number][] = [ // x, y, w, h, colour, disposal
      [0, 0, 9, 7, 1, 1], [2, 1, 4, 3, 2, 3], [1, 2, 5, 4, 3, 2], [3, 3, 6, 4, 2, 3], [0, 0, 2, 2, 3, 1], [4, 0, 5, 5, 1, 2], [2, 2, 2, 2, 2, 1],
    ];
    for (const [x, y, w, h, c, disposal] of frames) gw.addFrame(x, y, w, h, new Array(w * h).fill(c), { delay: 10, disposal });
    const bytes = new Uint8Array(buf.subarray(0, gw.end()));
    const reader = new GifReader(bytes);
    const canvas = new Uint8Array(W * H * 4);
    const expected: number[][] = [];
    let snapshot: Uint8Array | undefined;
    for (let i = 0; i < frames.length; i++) {
      const prev = i > 0 ? reader.frameInfo(i - 1) : undefined;
      if (prev?.disposal === 2) for (let y = prev.y; y < prev.y + prev.height; y++) canvas.fill(0, (y * W + prev.x) * 4, (y * W + prev.x + prev.width) * 4);
      else if (prev?.disposal === 3 && snapshot) canvas.set(snapshot);
      snapshot = reader.frameInfo(i).disposal === 3 ? canvas.slice() : undefined;
      reader.decodeAndBlitFrameRGBA(i, canvas);
      expected.push(Array.from(canvas).filter((_, k) => k % 4 !== 3));
    }
    const got = decodeGifFrames(bytes, 'test.gif');
    assert.deepEqual(got.map((f) => Array.from(f.data)), expected);
    assert.deepEqual(decodeGifFrames(bytes, 'test.gif', [2, 5]).map((f) => Array.from(f.data)), [expected[2], expected[5]]);
  });

  it('a corrupt GIF (an LZW code naming no table entry, on which omggif would loop) is refused', { timeout: 10_000 }, async () => {
    const file = path.join(tmp, 'corrupt.gif');
    // 2×2, 2-colour global table; frame data: clear (4), 7 (no such entry yet), end (5) in 3-bit codes.
    fs.writeFileSync(file, Buffer.from([
      ...Buffer.from('GIF89a'), 2, 0, 2, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255,
      0x2c, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2, 2, 0x7c, 0x01, 0, 0x3b,
    ]));
    await assert.rejects(loadVideo(file, { fps: 1, max_frames: 4 }), (e: Error) => e instanceof TfvlmError && /corrupt GIF/.test(e.message));
  });

  it('video file without ffmpeg: the error names the Debian package', async () => {
    const file = path.join(tmp, 'x.mp4');
    fs.writeFileSync(file, 'not really a video');
    await assert.rejects(loadVideo(file, { fps: 1, max_frames: 4 }, { ffprobe: path.join(tmp, 'no-ffprobe'), ffmpeg: path.join(tmp, 'no-ffmpeg') }),
      (e: Error) => e instanceof TfvlmError && /Debian package `ffmpeg`/.test(e.message) && e.message.includes(file));
    await assert.rejects(loadVideo(path.join(tmp, 'missing.mp4'), { fps: 1, max_frames: 4 }), /no such file/);
  });

  it('video file through ffmpeg: sampled frames in temporal order', { skip: ffmpegAvailable() ? false : 'ffmpeg is not installed (Debian package ffmpeg)' }, async () => {
    const file = path.join(tmp, 'clip.mkv');
    // Lossless (ffv1) 10 fps clip of the 12 gray frames: frame k keeps level(k).
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-framerate', '10', '-i', path.join(folder, 'frame%d.png'), '-c:v', 'ffv1', '-pix_fmt', 'bgr0', file]);
    assert.equal(r.status, 0, String(r.stderr));
    const v = await loadVideo(file, { fps: 5, max_frames: 4 });
    assert.equal(v.metadata.totalFrames, 12);
    assert.equal(v.metadata.fps, 10);
    // round(5 · 1.2) = 6 → capped at 4: linspace(0, 11, 4) = 0, 3.67, 7.33, 11.
    assert.deepEqual(v.indices, [0, 3, 7, 11]);
    assert.deepEqual(v.timestamps, [0, 0.3, 0.7, 1.1]);
    assert.deepEqual(v.frames.map((f) => f.data[0]), v.indices.map(level));
    assert.deepEqual([v.frames[0]!.width, v.frames[0]!.height], [16, 12]);
  });
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));
