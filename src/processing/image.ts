// Pixel operations of the image processors on uint8 bitmaps: compositing over white, alpha
// (un)premultiplication, crops, and the rescale/normalize lookup into channels-first float32
// (Pillow src/libImaging/Convert.c, AlphaComposite.c; transformers image_transforms).
import { TfvlmError } from '../errors.ts';
import { type Bitmap, MODE_CHANNELS, convertToRGB, convertToRGBA } from '../io/bitmap.ts';

/**
 * One RGB(A) pixel composited over opaque white, as `Image.alpha_composite(white, im.convert("RGBA"))`
 * computes it (Pillow AlphaComposite.c, PRECISION_BITS 7, SHIFTFORDIV255 rounding).
 */
export function compositeOverWhite(value: number, alpha: number): number {
  if (alpha === 0) return 255;
  const outa255 = alpha * 255 + 255 * (255 - alpha);
  const coef1 = Math.floor((alpha * 255 * 255 * 128) / outa255);
  const coef2 = 255 * 128 - coef1;
  const tmp = value * coef1 + 255 * coef2 + (0x80 << 7);
  return (((tmp >>> 8) + tmp) >>> 8) >>> 7;
}

/**
 * transformers' Idefics3 `convert_to_rgb`: the image becomes RGBA, is alpha-composited over white
 * and converted to RGB. Gray is replicated; RGB and P pass through unchanged.
 */
export function flattenOnWhite(img: Bitmap): Bitmap {
  if (img.mode === 'RGB') return img;
  if (img.mode !== 'RGBA' && img.mode !== 'LA') return convertToRGB(img);
  const rgba = convertToRGBA(img);
  const n = img.width * img.height;
  const src = rgba.data;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0, k = 0; i < n; i++, j += 3, k += 4) {
    const a = src[k + 3]!;
    out[j] = compositeOverWhite(src[k]!, a);
    out[j + 1] = compositeOverWhite(src[k + 1]!, a);
    out[j + 2] = compositeOverWhite(src[k + 2]!, a);
  }
  return { width: img.width, height: img.height, mode: 'RGB', data: out };
}

/** Pillow `MULDIV255(v, a)` (ImagingUtils.h), tabulated as `[a * 256 + v]`. */
const MULDIV255 = (() => {
  const t = new Uint8Array(256 * 256);
  for (let a = 0; a < 256; a++) {
    for (let v = 0; v < 256; v++) {
      const tmp = v * a + 128;
      t[a * 256 + v] = ((tmp >> 8) + tmp) >> 8;
    }
  }
  return t;
})();

/** Pillow `rgba2rgbA` un-premultiply `CLIP8((255 * v) / a)` (truncating), tabulated as `[a * 256 + v]`. */
const UNPREMULTIPLY = (() => {
  const t = new Uint8Array(256 * 256);
  for (let a = 1; a < 256; a++) for (let v = 0; v < 256; v++) t[a * 256 + v] = Math.min(255, Math.floor((255 * v) / a));
  return t;
})();

/** Pillow Convert.c `rgbA2rgba` (RGBA → RGBa) / LA → La: colour channels times alpha. */
export function premultiplyAlpha(data: Uint8Array, channels: 2 | 4): Uint8Array {
  const out = new Uint8Array(data.length);
  const a = channels - 1;
  for (let p = 0; p < data.length; p += channels) {
    const row = data[p + a]! * 256;
    for (let c = 0; c < a; c++) out[p + c] = MULDIV255[row + data[p + c]!]!;
    out[p + a] = data[p + a]!;
  }
  return out;
}

/** Pillow Convert.c `rgba2rgbA` (RGBa → RGBA), in place: alpha 0 and 255 leave the colour as is. */
export function unpremultiplyAlpha(data: Uint8Array, channels: 2 | 4): Uint8Array {
  const a = channels - 1;
  for (let p = 0; p < data.length; p += channels) {
    const alpha = data[p + a]!;
    if (alpha === 255 || alpha === 0) continue;
    const row = alpha * 256;
    for (let c = 0; c < a; c++) data[p + c] = UNPREMULTIPLY[row + data[p + c]!]!;
  }
  return data;
}

/** `image[top:bottom, left:right]` (numpy slicing: bounds are clamped to the image). */
export function crop(img: Bitmap, left: number, top: number, right: number, bottom: number): Bitmap {
  const l = Math.max(0, Math.min(left, img.width));
  const t = Math.max(0, Math.min(top, img.height));
  const r = Math.max(l, Math.min(right, img.width));
  const b = Math.max(t, Math.min(bottom, img.height));
  const c = MODE_CHANNELS[img.mode];
  const w = r - l;
  const h = b - t;
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) {
    const s = ((t + y) * img.width + l) * c;
    out.set(img.data.subarray(s, s + w * c), y * w * c);
  }
  return { width: w, height: h, mode: img.mode, data: out };
}

/**
 * transformers image_transforms.center_crop: offsets `(H - h) // 2`, `(W - w) // 2`; when the crop
 * is larger than the image, the image is first zero-padded (centred, `ceil` of half the excess on
 * the top/left).
 */
export function centerCrop(img: Bitmap, cropHeight: number, cropWidth: number): Bitmap {
  const H = img.height;
  const W = img.width;
  let top = Math.floor((H - cropHeight) / 2);
  let left = Math.floor((W - cropWidth) / 2);
  if (top >= 0 && left >= 0 && top + cropHeight <= H && left + cropWidth <= W) {
    return crop(img, left, top, left + cropWidth, top + cropHeight);
  }
  const newH = Math.max(cropHeight, H);
  const newW = Math.max(cropWidth, W);
  const c = MODE_CHANNELS[img.mode];
  const padded = new Uint8Array(newH * newW * c);
  const topPad = Math.ceil((newH - H) / 2);
  const leftPad = Math.ceil((newW - W) / 2);
  for (let y = 0; y < H; y++) {
    padded.set(img.data.subarray(y * W * c, (y + 1) * W * c), ((y + topPad) * newW + leftPad) * c);
  }
  top += topPad;
  left += leftPad;
  const paddedImg: Bitmap = { width: newW, height: newH, mode: img.mode, data: padded };
  return crop(paddedImg, Math.max(0, left), Math.max(0, top), Math.min(newW, left + cropWidth), Math.min(newH, top + cropHeight));
}

export interface ImageProcessorOutput {
  /** Channels-first float32 pixels, laid out as `shape`. */
  pixel_values: Float32Array;
  /** Idefics3: `[batch, max_tiles, C, H, W]`; CLIP / SigLIP: `[images, C, H, W]`. */
  shape: number[];
  /** Idefics3 with do_pad: `[batch, max_tiles, H, W]`, 1 = real pixel. */
  pixel_attention_mask?: Uint8Array;
  /** Per image (samples in order, images in order): tile rows / cols, 0 when not split. */
  rows: number[];
  cols: number[];
}

/** What rescale/normalize do to a uint8 value, per channel (transformers image_transforms.rescale / normalize). */
export interface NormalizeSettings {
  do_rescale: boolean;
  rescale_factor: number;
  do_normalize: boolean;
  image_mean: number[];
  image_std: number[];
}

/**
 * Lookup table `[C × 256]` of the float32 each uint8 value becomes: `rescale` multiplies in float64
 * then casts to float32; `normalize` computes `(x - mean) / std` in float32 with float32 mean/std.
 */
export function normalizationTable(channels: number, s: NormalizeSettings, what: string): Float32Array {
  if (s.do_normalize && (s.image_mean.length !== channels || s.image_std.length !== channels)) {
    throw new TfvlmError(
      `${what}: image has ${channels} channel(s) but image_mean/image_std have ` +
        `${s.image_mean.length}/${s.image_std.length} entries` +
        (channels === 4 ? ' (an RGBA image needs do_convert_rgb: true, which this config does not set: pass --convert-rgb, convertRgb: true)' : ''),
    );
  }
  const lut = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    const mean = Math.fround(s.do_normalize ? s.image_mean[c]! : 0);
    const std = Math.fround(s.do_normalize ? s.image_std[c]! : 1);
    for (let v = 0; v < 256; v++) {
      let x = s.do_rescale ? Math.fround(v * s.rescale_factor) : v;
      if (s.do_normalize) x = Math.fround(Math.fround(x - mean) / std);
      lut[c * 256 + v] = x;
    }
  }
  return lut;
}

/**
 * Writes `img` channels-first into `out[offset …]` laid out as `[C, padHeight, padWidth]`; the
 * image sits top-left and the rest stays 0 (transformers pads after normalizing).
 */
export function writeChannelsFirst(img: Bitmap, lut: Float32Array, out: Float32Array, offset: number, padHeight = img.height, padWidth = img.width): void {
  const C = MODE_CHANNELS[img.mode];
  const { width: W, height: H, data } = img;
  if (padWidth === W) {
    const n = W * H;
    for (let c = 0; c < C; c++) {
      const plane = offset + c * padHeight * padWidth;
      const t = c * 256;
      for (let i = 0, s = c; i < n; i++, s += C) out[plane + i] = lut[t + data[s]!]!;
    }
    return;
  }
  for (let c = 0; c < C; c++) {
    const plane = offset + c * padHeight * padWidth;
    const t = c * 256;
    for (let y = 0; y < H; y++) {
      let s = y * W * C + c;
      const d = plane + y * padWidth;
      for (let x = 0; x < W; x++, s += C) out[d + x] = lut[t + data[s]!]!;
    }
  }
}
