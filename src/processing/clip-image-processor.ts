/**
 * CLIPImageProcessor (CLIP, LLaVA-1.5) — transformers 4.47 models/clip/image_processing_clip.py.
 *
 * Per image: `convert("RGB")` first (alpha dropped, not composited), resize so the shortest edge is
 * `size.shortest_edge` (long side `int(size * long / short)`, image_transforms
 * get_resize_output_image_size with default_to_square=False) or to `size.height × size.width`,
 * center crop (zero-padded when the crop is larger), rescale, normalize.
 */
import { TfvlmError } from '../errors.ts';
import { type ImageProcessorOutput, type NormalizeSettings, centerCrop, normalizationTable, writeChannelsFirst } from './image.ts';
import { type Bitmap, MODE_CHANNELS, convertToRGB } from '../io/bitmap.ts';
import type { CLIPImageProcessorConfig } from './preprocessor-config.ts';
import { resize } from './resample.ts';

/** `get_resize_output_image_size(size=shortest_edge, default_to_square=False)` → `[height, width]`. */
export function shortestEdgeSize(height: number, width: number, shortestEdge: number): [number, number] {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.trunc((shortestEdge * long) / short);
  return width <= height ? [newLong, shortestEdge] : [shortestEdge, newLong];
}

/** CLIP / SigLIP output: `shape` is always `[N, C, H, W]`. */
export interface StackedImages extends ImageProcessorOutput {
  shape: [number, number, number, number];
}

/** Stacks same-shaped uint8 images channels-first after rescale/normalize: `[N, C, H, W]`. */
export function stackImages(images: Bitmap[], settings: NormalizeSettings, what: string): StackedImages {
  const [first] = images;
  if (first === undefined) throw new TfvlmError(`${what}: no images given`);
  const C = MODE_CHANNELS[first.mode];
  for (const img of images) {
    if (img.width !== first.width || img.height !== first.height || MODE_CHANNELS[img.mode] !== C) {
      throw new TfvlmError(
        `${what}: processed images differ in shape (${C}x${first.height}x${first.width} vs ` +
          `${MODE_CHANNELS[img.mode]}x${img.height}x${img.width}) and cannot be stacked`,
      );
    }
  }
  const lut = normalizationTable(C, settings, what);
  const len = C * first.height * first.width;
  const out = new Float32Array(images.length * len);
  images.forEach((img, i) => writeChannelsFirst(img, lut, out, i * len));
  return { pixel_values: out, shape: [images.length, C, first.height, first.width], rows: images.map(() => 0), cols: images.map(() => 0) };
}

export function checkImageList(images: Bitmap | Bitmap[], what: string): Bitmap[] {
  const list = Array.isArray(images) ? images : [images];
  if (list.length === 0) throw new TfvlmError(`${what}: no images given`);
  return list;
}

export class CLIPImageProcessor {
  constructor(readonly config: CLIPImageProcessorConfig) {}

  /** One image through convert → resize → center crop (uint8, before rescale/normalize). */
  processImage(image: Bitmap): Bitmap {
    const cfg = this.config;
    let img = cfg.do_convert_rgb ? convertToRGB(image) : image;
    if (img.mode === 'L' || img.mode === 'LA') {
      throw new TfvlmError(`CLIPImageProcessor: a ${img.mode} image needs do_convert_rgb, which this config turns off (transformers cannot infer its channels either): pass --convert-rgb (convertRgb: true)`);
    }
    if (cfg.do_resize) {
      const [h, w] = 'shortest_edge' in cfg.size ? shortestEdgeSize(img.height, img.width, cfg.size.shortest_edge) : [cfg.size.height, cfg.size.width];
      img = resize(img, w, h, cfg.resample);
    }
    if (cfg.do_center_crop) img = centerCrop(img, cfg.crop_size.height, cfg.crop_size.width);
    return img;
  }

  /** `pixel_values` `[N, 3, crop_h, crop_w]` for a list of images. */
  preprocess(images: Bitmap | Bitmap[]): StackedImages {
    const list = checkImageList(images, 'CLIPImageProcessor');
    return stackImages(list.map((img) => this.processImage(img)), this.config, 'CLIPImageProcessor');
  }
}
