// Video frames for SmolVLM2 video prompts, from three sources:
//  - a video file, decoded by `ffmpeg` (Debian package `ffmpeg`, with ffprobe) in a child process;
//  - an animated GIF (every frame composited with its disposal method; timestamps from the delays);
//  - a folder of frame images (sorted by name; timestamps from an assumed fps).
// Frames are sampled as transformers' SmolVLMVideoProcessor.sample_frames does
// (models/smolvlm/video_processing_smolvlm.py): n = min(round(fps · duration), max_frames) (at least 1),
// indices = unique(linspace(start, end, n).astype(int)), skipping `skip_secs` at both ends when the
// clip is long enough; a frame's timestamp is index / native fps (VideoMetadata.timestamps).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { convertToRGB, createBitmap, type Bitmap } from './bitmap.ts';
import { loadImage, readImageHeader } from './image.ts';
import { PixelBudget } from './pixel-budget.ts';

export interface VideoSampling {
  /** Frames per second to sample (SmolVLM2 `video_sampling.fps`). */
  fps: number;
  /** At most this many frames (`video_sampling.max_frames`). */
  max_frames: number;
  /** Seconds skipped at each end when the clip is long enough (transformers default 1). */
  skip_secs?: number;
}

export interface VideoMetadata {
  totalFrames: number;
  /** Native frames per second. */
  fps: number;
  /** Seconds. */
  duration: number;
  width: number;
  height: number;
  /** 'ffmpeg' | 'gif' | 'frames' */
  decoder: string;
}

export interface SampledVideo {
  /** RGB frames in temporal order. */
  frames: Bitmap[];
  /** Source frame index of each frame. */
  indices: number[];
  /** Seconds from the start of each frame. */
  timestamps: number[];
  metadata: VideoMetadata;
}

export interface LoadVideoOptions {
  /** Frame rate assumed for a folder of frames (default 1). */
  folderFps?: number;
  /**
   * Applied to each sampled RGB frame as soon as it is decoded (e.g. resizing it for the model), so only
   * its result is kept: memory holds one source-size frame at a time, not the whole sample.
   */
  mapFrame?: (frame: Bitmap) => Bitmap;
  /** Stops decoding (ffmpeg is killed) once it fires; the load then rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Each source frame is checked against its per-image limit before it is decoded, and each kept frame
   * (after `mapFrame`) counts against its request limit (default: a budget of this video alone).
   */
  budget?: PixelBudget;
  /** ffmpeg / ffprobe executables (default from PATH). */
  ffmpeg?: string;
  ffprobe?: string;
}

const FRAME_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.gif']);

/** numpy.linspace(start, end, n, dtype=int): evenly spaced, truncated toward zero. */
function linspaceInt(start: number, end: number, n: number): number[] {
  if (n === 1) return [Math.trunc(start)];
  const step = (end - start) / (n - 1);
  return Array.from({ length: n }, (_, i) => Math.trunc(i === n - 1 ? end : start + i * step));
}

/** SmolVLMVideoProcessor.sample_frames: the source frame indices to keep, ascending. */
export function sampleFrameIndices(meta: Pick<VideoMetadata, 'totalFrames' | 'fps' | 'duration'>, s: VideoSampling): number[] {
  if (!(meta.totalFrames > 0)) throw new TfvlmError('video has no frames');
  if (!(s.fps > 0) || !Number.isInteger(s.max_frames) || s.max_frames < 1) {
    throw new TfvlmError(`video_sampling: fps must be > 0 and max_frames a positive integer, got fps ${s.fps}, max_frames ${s.max_frames}`);
  }
  const skip = s.skip_secs ?? 1;
  // Python round() is round-half-to-even.
  const x = s.fps * meta.duration;
  const floor = Math.floor(x);
  const estimated = x - floor === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(x);
  const desired = Math.max(1, Math.min(estimated, s.max_frames));
  let start = 0;
  let end = meta.totalFrames - 1;
  if (skip > 0 && meta.duration - 2 * skip > s.max_frames * s.fps) {
    start = Math.trunc(skip * meta.fps);
    end = Math.trunc(meta.totalFrames - skip * meta.fps);
  }
  start = Math.max(0, start);
  end = Math.min(end, meta.totalFrames - 1);
  if (start >= end) [start, end] = [0, meta.totalFrames - 1];
  // More points than frames in [start, end] keep every frame once: steps below 1 truncate onto each
  // integer. Capping the count gives that set without allocating a point per requested frame.
  return [...new Set(linspaceInt(start, end, Math.min(desired, end - start + 1)))].sort((a, b) => a - b);
}

// ---- folders of frames -------------------------------------------------------------------------

const byName = new Intl.Collator('en', { numeric: true }).compare;

export function listFrameFiles(dir: string): string[] {
  const files = fs.readdirSync(dir).filter((f) => FRAME_EXTENSIONS.has(path.extname(f).toLowerCase())).sort(byName);
  if (files.length === 0) throw new TfvlmError(`${dir}: no frame images (${[...FRAME_EXTENSIONS].join(', ')}) in the folder`);
  return files.map((f) => path.join(dir, f));
}

const identity = (frame: Bitmap) => frame;

async function loadFrameFolder(dir: string, sampling: VideoSampling, opts: LoadVideoOptions, budget: PixelBudget): Promise<SampledVideo> {
  const fps = opts.folderFps ?? 1;
  if (!(fps > 0)) throw new TfvlmError(`folder of frames: the assumed fps must be > 0, got ${fps}`);
  const files = listFrameFiles(dir);
  const meta = { totalFrames: files.length, fps, duration: files.length / fps };
  const indices = sampleFrameIndices(meta, sampling);
  const frames: Bitmap[] = [];
  let size = { width: 0, height: 0 };
  const keep = heldFrame(opts, budget, dir);
  for (const i of indices) {
    opts.signal?.throwIfAborted();
    // Within the per-image limit; only the kept (mapped) frame counts against the request.
    // (sampleFrameIndices keeps every index inside [0, totalFrames - 1].)
    const frame = convertToRGB(await loadImage(files[i]!, undefined, budget.perImageOnly()));
    if (frames.length === 0) size = { width: frame.width, height: frame.height };
    frames.push(keep(frame));
  }
  return { frames, indices, timestamps: indices.map((i) => i / fps), metadata: { ...meta, ...size, decoder: 'frames' } };
}

// ---- animated GIF ------------------------------------------------------------------------------

interface OmgGifReader {
  width: number;
  height: number;
  numFrames(): number;
  frameInfo(i: number): { x: number; y: number; width: number; height: number; delay: number; disposal: number };
  decodeAndBlitFrameRGBA(i: number, pixels: Uint8Array): void;
}

const require = createRequire(import.meta.url);

function openGif(bytes: Uint8Array, what: string): OmgGifReader {
  const { GifReader } = require('omggif') as { GifReader: new (b: Uint8Array) => OmgGifReader };
  try {
    return new GifReader(bytes);
  } catch (e) {
    throw new TfvlmError(`${what}: cannot decode GIF (${(e as Error).message})`);
  }
}

/** Frame start times (seconds, from the delays in centiseconds) and total duration, without decoding pixels. */
export function gifTiming(bytes: Uint8Array, what = 'GIF'): { starts: number[]; duration: number } {
  const reader = openGif(bytes, what);
  const starts: number[] = [];
  let t = 0;
  for (let i = 0; i < reader.numFrames(); i++) {
    starts.push(t);
    t += reader.frameInfo(i).delay / 100;
  }
  if (starts.length === 0) throw new TfvlmError(`${what}: no frames`);
  return { starts, duration: t };
}

/**
 * Frames `indices` (ascending; default all) of an animated GIF, composited onto the logical screen in
 * order (each frame's disposal applied before the next is drawn); only the asked frames are kept, each
 * as RGB (alpha dropped, as Pillow's convert("RGB")) passed through `mapFrame` at once. Memory: the
 * screen (4 bytes a pixel), one RGB copy (3) and what a disposal-3 frame covers.
 * Callers validate the bytes first (readImageHeader refuses the corrupt LZW data omggif would loop on).
 */
export function decodeGifFrames(bytes: Uint8Array, what = 'GIF', indices?: number[], mapFrame = identity, signal?: AbortSignal): Bitmap[] {
  const reader = openGif(bytes, what);
  const { width, height } = reader;
  const wanted = indices ?? Array.from({ length: reader.numFrames() }, (_, i) => i);
  const keep = new Set(wanted);
  const last = Math.max(-1, ...wanted);
  const canvas = new Uint8Array(width * height * 4);
  const frames: Bitmap[] = [];
  type Rect = { x: number; y: number; width: number; height: number };
  const rows = (r: Rect, each: (start: number, end: number, row: number) => void) => {
    for (let y = r.y; y < Math.min(height, r.y + r.height); y++) each((y * width + r.x) * 4, (y * width + Math.min(width, r.x + r.width)) * 4, y - r.y);
  };
  let under: Uint8Array | undefined;
  let previous: ReturnType<OmgGifReader['frameInfo']> | undefined;
  for (let i = 0; i <= last && i < reader.numFrames(); i++) {
    signal?.throwIfAborted();
    // The previous frame's disposal: 2 = clear its rectangle, 3 = restore what was under it.
    if (previous?.disposal === 2) rows(previous, (a, b) => canvas.fill(0, a, b));
    else if (previous?.disposal === 3 && under) {
      const rowLen = Math.min(width, previous.x + previous.width) * 4 - previous.x * 4;
      rows(previous, (a, _b, r) => canvas.set(under!.subarray(r * rowLen, (r + 1) * rowLen), a));
    }
    const info = reader.frameInfo(i);
    under = undefined;
    if (info.disposal === 3) {
      const rowLen = Math.min(width, info.x + info.width) * 4 - info.x * 4;
      const saved = new Uint8Array(rowLen * Math.max(0, Math.min(height, info.y + info.height) - info.y));
      rows(info, (a, b, r) => saved.set(canvas.subarray(a, b), r * rowLen));
      under = saved;
    }
    try {
      reader.decodeAndBlitFrameRGBA(i, canvas);
    } catch (e) {
      throw new TfvlmError(`${what}: frame ${i} cannot be decoded (${(e as Error).message})`);
    }
    if (keep.has(i)) {
      const rgb = new Uint8Array(width * height * 3);
      for (let p = 0, q = 0; p < canvas.length; p += 4, q += 3) {
        rgb[q] = canvas[p]!;
        rgb[q + 1] = canvas[p + 1]!;
        rgb[q + 2] = canvas[p + 2]!;
      }
      frames.push(mapFrame(createBitmap(width, height, 'RGB', rgb, `${what} frame ${i}`)));
    }
    previous = info;
  }
  return frames;
}

async function loadGif(file: string, sampling: VideoSampling, opts: LoadVideoOptions, budget: PixelBudget): Promise<SampledVideo> {
  const bytes = new Uint8Array(fs.readFileSync(file));
  // Every frame's geometry and LZW data are checked before omggif decodes them; the screen against the budget.
  const { width, height } = readImageHeader(bytes, file);
  budget.checkImage(width, height, `video ${file} (its GIF screen)`);
  const { starts, duration } = gifTiming(bytes, file);
  const total = starts.length;
  // A GIF without delays: 10 frames per second, as browsers show it.
  const seconds = duration > 0 ? duration : total / 10;
  const fps = total / seconds;
  const indices = sampleFrameIndices({ totalFrames: total, fps, duration: seconds }, sampling);
  const frames = decodeGifFrames(bytes, file, indices, heldFrame(opts, budget, file), opts.signal);
  return {
    frames, indices, timestamps: indices.map((i) => (duration > 0 ? starts[i]! : i / fps)),
    metadata: { totalFrames: total, fps, duration: seconds, width, height, decoder: 'gif' },
  };
}

/** `mapFrame`, then the kept frame counted against the request's pixel budget. */
function heldFrame(opts: LoadVideoOptions, budget: PixelBudget, what: string): (frame: Bitmap) => Bitmap {
  const map = opts.mapFrame ?? identity;
  return (frame) => {
    const kept = map(frame);
    budget.spend(kept.width * kept.height, `a frame of video ${what}`);
    return kept;
  };
}

// ---- video files through ffmpeg ------------------------------------------------------------------

const FFMPEG_MISSING = 'decoding video files needs ffmpeg: install the Debian package `ffmpeg` (apt-get install ffmpeg), '
  + 'or pass an animated GIF or a folder of frames instead';

function ratio(s: unknown): number {
  if (typeof s !== 'string') return NaN;
  const [a = NaN, b] = s.split('/').map(Number);
  return b ? a / b : a;
}

/** Stream facts from ffprobe; the frame count is counted when the container does not store it. */
export function probeVideo(file: string, opts: LoadVideoOptions = {}): VideoMetadata {
  const ffprobe = opts.ffprobe ?? 'ffprobe';
  const run = (args: string[]) => spawnSync(ffprobe, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  const base = ['-v', 'error', '-select_streams', 'v:0', '-of', 'json'];
  const r = run([...base, '-show_entries', 'stream=width,height,avg_frame_rate,r_frame_rate,nb_frames,duration:stream_side_data=rotation:format=duration', file]);
  if (r.error) throw new TfvlmError(`${file}: ${FFMPEG_MISSING} (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`);
  if (r.status !== 0) throw new TfvlmError(`${file}: ffprobe cannot read it (${r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`})`);
  const info = JSON.parse(r.stdout) as { streams?: Array<Record<string, unknown>>; format?: { duration?: string } };
  const s = info.streams?.[0];
  if (!s) throw new TfvlmError(`${file}: no video stream`);
  let fps = ratio(s.avg_frame_rate);
  if (!(fps > 0)) fps = ratio(s.r_frame_rate);
  if (!(fps > 0)) throw new TfvlmError(`${file}: ffprobe reports no frame rate`);
  let total = Number(s.nb_frames);
  if (!(total > 0)) {
    const c = run([...base, '-count_frames', '-show_entries', 'stream=nb_read_frames', file]);
    total = Number((JSON.parse(c.stdout || '{}') as { streams?: Array<{ nb_read_frames?: string }> }).streams?.[0]?.nb_read_frames);
  }
  if (!(total > 0)) throw new TfvlmError(`${file}: cannot count its frames`);
  const rotation = Math.abs(Number((s.side_data_list as Array<{ rotation?: number }> | undefined)?.[0]?.rotation ?? 0));
  const [w, h] = [Number(s.width), Number(s.height)];
  // transformers' video loaders (decord, torchvision, PyAV) give duration = frames / fps.
  return { totalFrames: total, fps, duration: total / fps, width: rotation % 180 === 90 ? h : w, height: rotation % 180 === 90 ? w : h, decoder: 'ffmpeg' };
}

/** Decodes the frames at `indices` (ascending) as RGB24 through one ffmpeg process. */
function ffmpegFrames(file: string, meta: VideoMetadata, indices: number[], opts: LoadVideoOptions, budget: PixelBudget): Promise<Bitmap[]> {
  const mapFrame = heldFrame(opts, budget, file);
  const select = indices.map((i) => `eq(n\\,${i})`).join('+');
  const args = ['-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0', '-vf', `select='${select}'`, '-vsync', '0',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  const size = meta.width * meta.height * 3;
  return new Promise((resolve, reject) => {
    const child = spawn(opts.ffmpeg ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
    // Frames are cut from the stream as it arrives (never the whole stream in one buffer).
    const frames: Bitmap[] = [];
    let current = new Uint8Array(size);
    let filled = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      for (let at = 0; at < chunk.length;) {
        const n = Math.min(size - filled, chunk.length - at);
        current.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === size) {
          if (frames.length < indices.length) {
            const index = indices[frames.length];
            frames.push(mapFrame(createBitmap(meta.width, meta.height, 'RGB', current, `${file} frame ${index}`)));
          }
          current = new Uint8Array(size);
          filled = 0;
        }
      }
    });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      reject(new TfvlmError(`${file}: ${FFMPEG_MISSING} (${e.code ?? e.message})`));
    });
    child.on('close', (code) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      if (code !== 0) return reject(new TfvlmError(`${file}: ffmpeg failed (${stderr.trim().split('\n').pop() ?? `exit ${code}`})`));
      if (frames.length === 0 || filled !== 0) {
        return reject(new TfvlmError(`${file}: ffmpeg did not return whole ${meta.width}x${meta.height} RGB frames (${frames.length} frames + ${filled} bytes)`));
      }
      resolve(frames);
    });
  });
}

async function loadVideoFile(file: string, sampling: VideoSampling, opts: LoadVideoOptions, budget: PixelBudget): Promise<SampledVideo> {
  const metadata = probeVideo(file, opts);
  budget.checkImage(metadata.width, metadata.height, `video ${file} (its frames)`);
  let indices = sampleFrameIndices(metadata, sampling);
  const frames = await ffmpegFrames(file, metadata, indices, opts, budget);
  // A stored frame count can exceed what decodes (a truncated last GOP): keep the frames that came.
  indices = indices.slice(0, frames.length);
  return { frames, indices, timestamps: indices.map((i) => i / metadata.fps), metadata };
}

/** True when `ffmpeg -version` runs. */
export function ffmpegAvailable(ffmpeg = 'ffmpeg'): boolean {
  const r = spawnSync(ffmpeg, ['-version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** Frames of a video file, animated GIF or folder of frames, sampled uniformly at `sampling`. */
export async function loadVideo(src: string, sampling: VideoSampling, opts: LoadVideoOptions = {}): Promise<SampledVideo> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(src);
  } catch {
    throw new TfvlmError(`video ${src}: no such file or folder`);
  }
  opts.signal?.throwIfAborted();
  const budget = opts.budget ?? new PixelBudget();
  if (stat.isDirectory()) return loadFrameFolder(src, sampling, opts, budget);
  const head = Buffer.alloc(6);
  const fd = fs.openSync(src, 'r');
  try {
    fs.readSync(fd, head, 0, 6, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString('latin1').startsWith('GIF8')) return loadGif(src, sampling, opts, budget);
  return loadVideoFile(src, sampling, opts, budget);
}
