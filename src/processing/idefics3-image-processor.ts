/**
 * Idefics3ImageProcessor (SmolVLM) — transformers 4.47 models/idefics3/image_processing_idefics3.py.
 *
 * Per image: resize so the longest edge is `size.longest_edge` (short side `int(long / aspect)`
 * rounded up to even, capped at 4096), then either resize to multiples of
 * `max_image_size.longest_edge` and cut row-major tiles plus a global image resized to
 * max×max (splitting), or resize straight to max×max. Then convert to RGB (alpha composited over
 * white), rescale, normalize, and pad the batch to the largest tile count with zero tiles
 * (`pixel_attention_mask` 0 there).
 *
 * Modes as transformers handles them: a 1-channel image becomes a PIL "P" image for every resize,
 * so gray is resized with NEAREST; RGBA stays RGBA through every resize (Pillow premultiplies) and
 * is composited over white only after splitting. Deviations (transformers raises instead): LA is
 * treated as RGBA; images 1, 3 or 4 pixels high are read channels-last (transformers' channel
 * inference mistakes them for channels-first).
 */
import { TfvlmError } from '../errors.ts';
import { type ImageProcessorOutput, crop, flattenOnWhite, normalizationTable, writeChannelsFirst } from './image.ts';
import { type Bitmap, MODE_CHANNELS, convertToRGBA } from '../io/bitmap.ts';
import type { Idefics3ImageProcessorConfig } from './preprocessor-config.ts';
import { type ResamplingFilter, Resampling, resize } from './resample.ts';

/** transformers image_processing_idefics3.py MAX_IMAGE_SIZE: 4k as the absolute maximum side. */
export const MAX_IMAGE_SIZE = 4096;

export interface Idefics3Output extends ImageProcessorOutput {
  /** Per image: number of tiles it produced (rows × cols + 1, or 1). */
  tiles_per_image: number[];
  /** Per sample: number of images. */
  images_per_sample: number[];
}

/** The processed tiles of one image plus the sizes it went through, `[height, width]`. */
export interface Idefics3ImageTiles {
  tiles: Bitmap[];
  rows: number;
  cols: number;
  after_resize_hw: [number, number];
  after_resize_for_vision_encoder_hw?: [number, number];
}

export interface Idefics3Options {
  /** Overrides the config's `do_image_splitting` (`--image-splitting on|off`). */
  do_image_splitting?: boolean;
}

/** `_resize_output_size_rescale_to_max_len`: longest edge → maxLen, the other side rounded up to even. */
export function resizeOutputSizeRescaleToMaxLen(height: number, width: number, maxLen: number, minLen = 1): [number, number] {
  const aspect = width / height;
  let h = height;
  let w = width;
  if (width >= height) {
    w = maxLen;
    h = Math.trunc(w / aspect);
    if (h % 2 !== 0) h += 1;
  } else {
    h = maxLen;
    w = Math.trunc(h * aspect);
    if (w % 2 !== 0) w += 1;
  }
  return [Math.max(h, minLen), Math.max(w, minLen)];
}

/** `_resize_output_size_scale_below_upper_bound`. */
export function resizeOutputSizeScaleBelowUpperBound(height: number, width: number, maxLen: number): [number, number] {
  const aspect = width / height;
  let h = height;
  let w = width;
  if (width >= height && width > maxLen) {
    w = maxLen;
    h = Math.trunc(w / aspect);
  } else if (height > width && height > maxLen) {
    h = maxLen;
    w = Math.trunc(h * aspect);
  }
  return [Math.max(h, 1), Math.max(w, 1)];
}

/** `get_resize_output_image_size` for `size.longest_edge`. */
export function longestEdgeSize(height: number, width: number, longestEdge: number): [number, number] {
  const [h, w] = resizeOutputSizeRescaleToMaxLen(height, width, longestEdge);
  return resizeOutputSizeScaleBelowUpperBound(h, w, MAX_IMAGE_SIZE);
}

/** `resize_for_vision_encoder`: both sides up to multiples of `maxSize`, aspect from the current image. */
export function visionEncoderSize(height: number, width: number, maxSize: number): [number, number] {
  const aspect = width / height;
  let h = height;
  let w = width;
  if (width >= height) {
    w = Math.ceil(width / maxSize) * maxSize;
    h = Math.trunc(w / aspect);
    h = Math.ceil(h / maxSize) * maxSize;
  } else {
    h = Math.ceil(height / maxSize) * maxSize;
    w = Math.trunc(h * aspect);
    w = Math.ceil(w / maxSize) * maxSize;
  }
  return [h, w];
}

export class Idefics3ImageProcessor {
  constructor(readonly config: Idefics3ImageProcessorConfig) {}

  /** Idefics3ImageProcessor.resize: 1-channel images are resized as PIL "P" images, i.e. NEAREST. */
  private resizeTo(img: Bitmap, height: number, width: number): Bitmap {
    const filter: ResamplingFilter = MODE_CHANNELS[img.mode] === 1 ? Resampling.NEAREST : this.config.resample;
    return resize(img, width, height, filter);
  }

  /** Resize, split and convert one image (uint8 tiles, before rescale/normalize). */
  processImage(image: Bitmap, options: Idefics3Options = {}): Idefics3ImageTiles {
    const cfg = this.config;
    const split = options.do_image_splitting ?? cfg.do_image_splitting;
    const max = cfg.max_image_size.longest_edge;
    let img = image.mode === 'LA' ? convertToRGBA(image) : image;
    if (cfg.do_resize) {
      const [h, w] =
        'longest_edge' in cfg.size ? longestEdgeSize(img.height, img.width, cfg.size.longest_edge) : [cfg.size.height, cfg.size.width];
      img = this.resizeTo(img, h, w);
    }
    const afterResize: [number, number] = [img.height, img.width];
    let tiles: Bitmap[];
    let rows = 0;
    let cols = 0;
    let afterEncoderResize: [number, number] | undefined;
    if (split) {
      const [h, w] = visionEncoderSize(img.height, img.width, max);
      img = this.resizeTo(img, h, w);
      afterEncoderResize = [h, w];
      tiles = [];
      if (h > max || w > max) {
        // split_image: ceil-sized crops, row-major, then the global image resized to max×max
        rows = Math.ceil(h / max);
        cols = Math.ceil(w / max);
        const tileH = Math.ceil(h / rows);
        const tileW = Math.ceil(w / cols);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const x0 = c * tileW;
            const y0 = r * tileH;
            tiles.push(crop(img, x0, y0, Math.min(x0 + tileW, w), Math.min(y0 + tileH, h)));
          }
        }
        tiles.push(this.resizeTo(img, max, max));
      } else {
        tiles.push(img);
      }
    } else {
      tiles = [this.resizeTo(img, max, max)];
    }
    if (cfg.do_convert_rgb) tiles = tiles.map(flattenOnWhite);
    return { tiles, rows, cols, after_resize_hw: afterResize, after_resize_for_vision_encoder_hw: afterEncoderResize };
  }

  /** The table that rescales and normalizes this processor's tiles (transformers' numpy order). */
  normalization(channels: number): Float32Array {
    return normalizationTable(channels, this.config, 'Idefics3ImageProcessor');
  }

  /**
   * `images`: one image, a list of images (one sample), or one list per sample (a batch).
   * Tiles of a sample's images are concatenated in order; a sample with no images gets only
   * padding tiles (mask 0).
   */
  preprocess(images: Bitmap | Bitmap[] | Bitmap[][], options: Idefics3Options = {}): Idefics3Output {
    const batch: Bitmap[][] = !Array.isArray(images) ? [[images]] : images.length > 0 && Array.isArray(images[0]) ? (images as Bitmap[][]) : [images as Bitmap[]];
    if (batch.some((s) => !Array.isArray(s)) || batch.every((s) => s.length === 0)) {
      throw new TfvlmError('Idefics3ImageProcessor: no images given (a sample without images is only padding)');
    }
    const rows: number[] = [];
    const cols: number[] = [];
    const tilesPerImage: number[] = [];
    const samples: Bitmap[][] = batch.map((sample) =>
      sample.flatMap((img) => {
        const r = this.processImage(img, options);
        rows.push(r.rows);
        cols.push(r.cols);
        tilesPerImage.push(r.tiles.length);
        return r.tiles;
      }),
    );
    const C = MODE_CHANNELS[samples.flat()[0]!.mode]; // some sample has an image (checked above), and every image gives a tile
    const lut = this.normalization(C);
    return {
      ...stackTiles(samples.map((s) => s.map((tile) => ({ tile, lut }))), this.config.do_pad, 'Idefics3ImageProcessor'),
      rows,
      cols,
      tiles_per_image: tilesPerImage,
      images_per_sample: batch.map((s) => s.length),
    };
  }
}

/** A uint8 tile and the table that turns its values into model inputs. */
export interface PreparedTile {
  tile: Bitmap;
  lut: Float32Array;
}

/**
 * Tiles of each sample → `pixel_values [B, max_tiles, C, H, W]`, padded (bottom/right, and with zero
 * tiles up to the largest tile count) and with `pixel_attention_mask` 1 on real pixels when `doPad`.
 */
export function stackTiles(samples: PreparedTile[][], doPad: boolean, what: string): Pick<Idefics3Output, 'pixel_values' | 'shape' | 'pixel_attention_mask'> {
  const all = samples.flat().map((t) => t.tile);
  const [first] = all;
  if (first === undefined) throw new TfvlmError(`${what}: no images given`);
  const C = MODE_CHANNELS[first.mode];
  if (all.some((t) => MODE_CHANNELS[t.mode] !== C)) {
    throw new TfvlmError(`${what}: images with different channel counts in one batch (set do_convert_rgb)`);
  }
  const padH = Math.max(...all.map((t) => t.height));
  const padW = Math.max(...all.map((t) => t.width));
  const maxTiles = Math.max(...samples.map((s) => s.length));
  const uneven = all.some((t) => t.height !== padH || t.width !== padW) || samples.some((s) => s.length !== maxTiles);
  if (!doPad && uneven) {
    throw new TfvlmError(`${what}: do_pad is false but tile sizes or tile counts differ, so they cannot be stacked`);
  }
  const tileLen = C * padH * padW;
  const B = samples.length;
  const pixelValues = new Float32Array(B * maxTiles * tileLen);
  const mask = doPad ? new Uint8Array(B * maxTiles * padH * padW) : undefined;
  samples.forEach((sample, b) => {
    sample.forEach(({ tile, lut }, i) => {
      const n = b * maxTiles + i;
      writeChannelsFirst(tile, lut, pixelValues, n * tileLen, padH, padW);
      if (mask) for (let y = 0; y < tile.height; y++) mask.fill(1, (n * padH + y) * padW, (n * padH + y) * padW + tile.width);
    });
  });
  return { pixel_values: pixelValues, shape: [B, maxTiles, C, padH, padW], ...(mask ? { pixel_attention_mask: mask } : {}) };
}
