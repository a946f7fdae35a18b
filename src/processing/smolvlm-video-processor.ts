// SmolVLMVideoProcessor (SmolVLM2 video frames) as transformers 5.x does it
// (models/smolvlm/video_processing_smolvlm.py on the TorchvisionBackend, after
// huggingface/transformers#46496, with torchvision >= 0.27 on CPU): frames sampled at `fps` up to
// `max_frames` (io/video.ts sampleFrameIndices); each frame resized with torchvision's antialiased uint8
// resize (torch-resize.ts), first so the longest edge is `size.longest_edge` (short side rounded up to
// even; this can upscale), then to a `max_image_size.longest_edge` square (videos are never split); then
// rescaled and normalized in float32 by the fused `(x - mean/rescale) / (std/rescale)`.
//
// `size` beside `video_sampling` wins over `video_sampling.video_size`, as SmolVLMVideoProcessor.__init__
// does: published SmolVLM2 folders, which ship only preprocessor_config.json, resize frames to the image
// `size` (e.g. 2048) first and then to the `max_image_size` square.
import { host } from '../io/host.ts';
import { TfvlmError } from '../errors.ts';
import { loadVideo, type LoadVideoOptions, type VideoSampling } from '../io/video.ts';
import type { NormalizeSettings } from './image.ts';
import { type Bitmap, convertToRGB } from '../io/bitmap.ts';
import { resizeOutputSizeRescaleToMaxLen } from './idefics3-image-processor.ts';
import { FieldReader, IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD, type HeightWidth, pickSize } from './preprocessor-config.ts';
import { Resampling, type ResamplingFilter } from './resample.ts';
import { torchResize, torchvisionInterpolation } from './torch-resize.ts';
import { VideoClip } from './video-clip.ts';

/** video_processing_smolvlm.py MAX_IMAGE_SIZE: the first resize's longest edge is capped at 4096. */
const MAX_VIDEO_SIZE = 4096;

/** SmolVLM2's published sampling (fps 1, at most 64 frames) when a folder sets none. */
export const DEFAULT_VIDEO_SAMPLING: VideoSampling = { fps: 1, max_frames: 64 };

export interface SmolVLMVideoProcessorConfig extends NormalizeSettings {
  /** The file the settings were read from (named in errors). */
  source: string;
  do_convert_rgb: boolean;
  do_resize: boolean;
  /** First resize: longest edge (short side rounded up to even) or an exact size. */
  size: { longest_edge: number } | HeightWidth;
  /** Second resize: to a `longest_edge` square. */
  max_image_size: { longest_edge: number };
  resample: ResamplingFilter;
  do_pad: boolean;
  sampling: VideoSampling;
}

type Json = Record<string, unknown>;

function samplingOf(r: FieldReader, json: Json): VideoSampling {
  const vs = json.video_sampling;
  if (vs !== undefined && vs !== null && (typeof vs !== 'object' || Array.isArray(vs))) r.fail('video_sampling', 'must be an object {fps, max_frames, video_size}');
  const v = (vs ?? {}) as Json;
  const fps = v.fps ?? json.fps ?? DEFAULT_VIDEO_SAMPLING.fps;
  const max = v.max_frames ?? json.num_frames ?? DEFAULT_VIDEO_SAMPLING.max_frames;
  const field = (name: string) => (vs ? `video_sampling.${name}` : name);
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0) {
    throw new TfvlmError(`${r.source}: field "${field('fps')}" must be a positive number (got ${JSON.stringify(fps)})`);
  }
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) {
    throw new TfvlmError(`${r.source}: field "${field(vs ? 'max_frames' : 'num_frames')}" must be a positive integer (got ${JSON.stringify(max)})`);
  }
  return { fps, max_frames: max };
}

/** Parses a video_preprocessor_config.json (or a preprocessor_config.json standing in for one). */
export function parseVideoProcessorConfig(raw: unknown, source = 'video_preprocessor_config.json'): SmolVLMVideoProcessorConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new TfvlmError(`${source}: expected a JSON object`);
  const json = raw as Json;
  const type = json.video_processor_type;
  if (type !== undefined && type !== null && type !== 'SmolVLMVideoProcessor') {
    throw new TfvlmError(`${source}: unsupported video_processor_type ${JSON.stringify(type)} (supported: SmolVLMVideoProcessor)`);
  }
  const r = new FieldReader(json, source);
  const sampling = samplingOf(r, json);
  // SmolVLMVideoProcessor.__init__: `size` given beside `video_sampling` replaces video_sampling.video_size.
  const videoSize = (json.video_sampling as Json | undefined)?.video_size;
  const sizeField = json.size !== undefined && json.size !== null ? 'size' : 'video_size';
  const sizeReader = sizeField === 'size' ? r : new FieldReader({ video_size: videoSize }, `${source} video_sampling`);
  const size = sizeReader.size(sizeField, { longest_edge: 4 * 364 }, 'longest_edge', Number.MAX_SAFE_INTEGER);
  const maxImage = r.size('max_image_size', { longest_edge: 364 }, 'longest_edge', MAX_VIDEO_SIZE);
  const config: SmolVLMVideoProcessorConfig = {
    source,
    do_convert_rgb: r.bool('do_convert_rgb', true),
    do_resize: r.bool('do_resize', true),
    size: pickSize(sizeReader, sizeField, size, [['longest_edge'], ['height', 'width']]) as SmolVLMVideoProcessorConfig['size'],
    max_image_size: pickSize(r, 'max_image_size', maxImage, [['longest_edge']]),
    resample: r.resample(Resampling.LANCZOS),
    do_rescale: r.bool('do_rescale', true),
    rescale_factor: r.number('rescale_factor', 1 / 255),
    do_normalize: r.bool('do_normalize', true),
    image_mean: r.floats('image_mean', IMAGENET_STANDARD_MEAN),
    image_std: r.floats('image_std', IMAGENET_STANDARD_STD, true),
    do_pad: r.bool('do_pad', true),
    sampling,
  };
  if (config.do_normalize && (config.image_mean.length !== 3 || config.image_std.length !== 3)) {
    r.fail('image_mean', `and image_std must have 3 entries for RGB frames (got ${config.image_mean.length} and ${config.image_std.length})`);
  }
  if (config.do_rescale && !(config.rescale_factor > 0)) r.fail('rescale_factor', 'must be positive');
  return config;
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = host().readText(file);
  } catch (e) {
    throw new TfvlmError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TfvlmError(`${file}: invalid JSON (${(e as Error).message})`);
  }
}

/**
 * The video settings of a model folder, found as BaseVideoProcessor.get_video_processor_dict finds them:
 * processor_config.json's "video_processor" object, else video_preprocessor_config.json, else
 * preprocessor_config.json.
 */
export function loadVideoProcessorConfig(dir: string): SmolVLMVideoProcessorConfig {
  const h = host();
  const processorFile = h.join(dir, 'processor_config.json');
  if (h.exists(processorFile)) {
    const processor = readJson(processorFile) as Json | null;
    if (processor && typeof processor === 'object' && processor.video_processor !== undefined) {
      return parseVideoProcessorConfig(processor.video_processor, `${processorFile} video_processor`);
    }
  }
  for (const name of ['video_preprocessor_config.json', 'preprocessor_config.json']) {
    const file = h.join(dir, name);
    if (h.exists(file)) return parseVideoProcessorConfig(readJson(file), file);
  }
  throw new TfvlmError(`${dir}: no video_preprocessor_config.json or preprocessor_config.json`);
}

export class SmolVLMVideoProcessor {
  constructor(readonly config: SmolVLMVideoProcessorConfig) {}

  /** The frame size after both resizes, `[height, width]` (for a `height`/`width` size, that size's square). */
  get frameSize(): [number, number] {
    const m = this.config.max_image_size.longest_edge;
    return [m, m];
  }

  /** Output size of the first resize (video_processing_smolvlm.py get_resize_output_image_size). */
  firstResizeSize(height: number, width: number): [number, number] {
    const size = this.config.size;
    if (!('longest_edge' in size)) return [size.height, size.width];
    return resizeOutputSizeRescaleToMaxLen(height, width, Math.min(MAX_VIDEO_SIZE, size.longest_edge));
  }

  /** One decoded frame → the model's frame (uint8): RGB, resized to the longest edge, then to the square. */
  resizeFrame(frame: Bitmap): Bitmap {
    const cfg = this.config;
    let img = cfg.do_convert_rgb ? convertToRGB(frame) : frame;
    if (img.mode !== 'RGB') throw new TfvlmError(`${cfg.source}: video frames must be RGB (do_convert_rgb is false and a frame is ${img.mode})`);
    if (!cfg.do_resize) return img;
    const mode = torchvisionInterpolation(cfg.resample);
    const [h, w] = this.firstResizeSize(img.height, img.width);
    img = torchResize(img, h, w, mode);
    const [H, W] = this.frameSize;
    return torchResize(img, H, W, mode);
  }

  /** Samples `src` (a video file, an animated GIF or a folder of frames) and resizes each kept frame. */
  async load(src: string, opts: Omit<LoadVideoOptions, 'mapFrame'> = {}): Promise<VideoClip> {
    const video = await loadVideo(src, this.config.sampling, { ...opts, mapFrame: (f) => this.resizeFrame(f) });
    return new VideoClip(video.frames, video.timestamps, video.indices, video.metadata);
  }

  /**
   * `[3 × 256]` table of the float32 each uint8 value becomes, in torchvision's order: with rescale and
   * normalize both on, `(x - mean·(1/rescale)) / (std·(1/rescale))` with float32 mean/std
   * (BaseImageProcessorFast._fuse_mean_std_and_rescale_factor, then tvF.normalize).
   */
  normalization(): Float32Array {
    const cfg = this.config;
    const lut = new Float32Array(3 * 256);
    const inv = Math.fround(1 / cfg.rescale_factor);
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) {
        let x: number = v;
        if (cfg.do_normalize) {
          const mean = cfg.do_rescale ? Math.fround(Math.fround(cfg.image_mean[c]!) * inv) : Math.fround(cfg.image_mean[c]!);
          const std = cfg.do_rescale ? Math.fround(Math.fround(cfg.image_std[c]!) * inv) : Math.fround(cfg.image_std[c]!);
          x = Math.fround(Math.fround(x - mean) / std);
        } else if (cfg.do_rescale) {
          x = Math.fround(x * Math.fround(cfg.rescale_factor));
        }
        lut[c * 256 + v] = x;
      }
    }
    return lut;
  }
}
