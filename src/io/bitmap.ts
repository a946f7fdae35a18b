// A small uint8 bitmap that keeps the source's channel layout (Pillow's image modes), and the two
// Pillow mode conversions the decoders and image processors share (Pillow src/libImaging/Convert.c).
import { TfvlmError } from '../errors.ts';

/**
 * Pillow's image modes as tfvlm keeps them. `P` (palette) images hold their palette colours
 * already looked up (3 bytes per pixel); the mode is kept because Pillow resizes palette images
 * with NEAREST whatever filter is asked for.
 */
export type ImageMode = 'L' | 'LA' | 'RGB' | 'RGBA' | 'P';

/** Interleaved uint8 pixels, row-major: `data[(y * width + x) * channels + c]`. */
export interface Bitmap {
  width: number;
  height: number;
  mode: ImageMode;
  data: Uint8Array;
}

export const MODE_CHANNELS: Record<ImageMode, number> = { L: 1, LA: 2, RGB: 3, RGBA: 4, P: 3 };

export function channelsOf(mode: ImageMode): number {
  return MODE_CHANNELS[mode];
}

/** Checks sizes and buffer length; `what` names the image in the error. */
export function createBitmap(width: number, height: number, mode: ImageMode, data?: Uint8Array, what = 'image'): Bitmap {
  if (!(mode in MODE_CHANNELS)) throw new TfvlmError(`${what}: unknown image mode ${JSON.stringify(mode)}`);
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new TfvlmError(`${what}: invalid size ${width}x${height} (width and height must be positive integers)`);
  }
  const n = width * height * MODE_CHANNELS[mode];
  if (data === undefined) return { width, height, mode, data: new Uint8Array(n) };
  if (data.length !== n) {
    throw new TfvlmError(`${what}: ${mode} ${width}x${height} needs ${n} bytes, got ${data.length}`);
  }
  return { width, height, mode, data };
}

/** Validates a bitmap handed in through the API. */
export function checkBitmap(img: Bitmap, what = 'image'): Bitmap {
  if (img === null || typeof img !== 'object' || !(img.data instanceof Uint8Array)) {
    throw new TfvlmError(`${what}: expected a decoded image {width, height, mode, data: Uint8Array}`);
  }
  return createBitmap(img.width, img.height, img.mode, img.data, what);
}

/** Pillow `Image.convert("RGB")`: gray is replicated, alpha is dropped (not composited). */
export function convertToRGB(img: Bitmap): Bitmap {
  if (img.mode === 'RGB') return img;
  const n = img.width * img.height;
  const src = img.data;
  const out = new Uint8Array(n * 3);
  const c = MODE_CHANNELS[img.mode];
  if (img.mode === 'P') out.set(src);
  else if (img.mode === 'L' || img.mode === 'LA') {
    for (let i = 0, j = 0; i < n; i++, j += 3) out[j] = out[j + 1] = out[j + 2] = src[i * c]!;
  } else {
    for (let i = 0, j = 0, k = 0; i < n; i++, j += 3, k += 4) {
      out[j] = src[k]!;
      out[j + 1] = src[k + 1]!;
      out[j + 2] = src[k + 2]!;
    }
  }
  return { width: img.width, height: img.height, mode: 'RGB', data: out };
}

/** Pillow `Image.convert("RGBA")` for L/LA/RGB/P (alpha 255 where the source has none). */
export function convertToRGBA(img: Bitmap): Bitmap {
  if (img.mode === 'RGBA') return img;
  const n = img.width * img.height;
  const c = MODE_CHANNELS[img.mode];
  const src = img.data;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const s = i * c;
    const d = i * 4;
    if (c >= 3) {
      out[d] = src[s]!;
      out[d + 1] = src[s + 1]!;
      out[d + 2] = src[s + 2]!;
    } else {
      out[d] = out[d + 1] = out[d + 2] = src[s]!;
    }
    out[d + 3] = c === 2 ? src[s + 1]! : 255;
  }
  return { width: img.width, height: img.height, mode: 'RGBA', data: out };
}
