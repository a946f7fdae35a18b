// How many pixels one image and one request may take, checked from image headers before any pixel is
// decoded, so a small file claiming a huge canvas is refused instead of allocated (a 1.9 MB PNG of
// 12000x12000 took 1.86 GB to decode). Limits come from the call's options, else the environment
// (TFVLM_MAX_IMAGE_PIXELS, TFVLM_MAX_REQUEST_PIXELS), else the defaults below.
import { TfvlmError } from '../errors.ts';

/** Pillow's `Image.MAX_IMAGE_PIXELS`: it warns (DecompressionBombWarning) above this many pixels. */
export const PILLOW_WARNING_PIXELS = 89_478_485;
/** Pillow's decompression-bomb error (2 × MAX_IMAGE_PIXELS): transformers cannot open larger images either. */
export const MAX_IMAGE_PIXELS = 2 * PILLOW_WARNING_PIXELS;

export interface PixelLimits {
  /** Pixels of one image or one video frame (default 89,478,485, where Pillow starts warning; at most 178,956,970). */
  maxImagePixels?: number;
  /** Pixels one request holds at once: its images, plus its video frames once resized (default 4 × 89,478,485). */
  maxRequestPixels?: number;
}

export const DEFAULT_PIXEL_LIMITS: Required<PixelLimits> = { maxImagePixels: PILLOW_WARNING_PIXELS, maxRequestPixels: 4 * PILLOW_WARNING_PIXELS };

const ENV = { maxImagePixels: 'TFVLM_MAX_IMAGE_PIXELS', maxRequestPixels: 'TFVLM_MAX_REQUEST_PIXELS' } as const;

function limit(name: keyof PixelLimits, given: number | undefined): number {
  const fromEnv = process.env[ENV[name]];
  const v = given ?? (fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : DEFAULT_PIXEL_LIMITS[name]);
  const source = given !== undefined ? `option ${name}` : fromEnv ? ENV[name] : `default ${name}`;
  if (!Number.isSafeInteger(v) || v < 1) throw new TfvlmError(`${source} must be a positive whole number of pixels, got ${given ?? fromEnv}`);
  if (name === 'maxImagePixels' && v > MAX_IMAGE_PIXELS) {
    throw new TfvlmError(`${source} is ${v}, above ${MAX_IMAGE_PIXELS} pixels (Pillow's decompression-bomb limit, which transformers cannot exceed either)`);
  }
  return v;
}

export function resolvePixelLimits(limits: PixelLimits = {}): Required<PixelLimits> {
  return { maxImagePixels: limit('maxImagePixels', limits.maxImagePixels), maxRequestPixels: limit('maxRequestPixels', limits.maxRequestPixels) };
}

/** The pixels one request has taken so far, against its limits. */
export class PixelBudget {
  readonly limits: Required<PixelLimits>;
  private spent = 0;

  constructor(limits: PixelLimits = {}) {
    this.limits = resolvePixelLimits(limits);
  }

  /** Refuses an image or frame larger than the per-image limit (call before decoding it). */
  checkImage(width: number, height: number, what: string): void {
    const n = width * height;
    if (n > this.limits.maxImagePixels) {
      throw new TfvlmError(
        `${what} is ${width}x${height} = ${n} pixels, over the ${this.limits.maxImagePixels}-pixel limit for one image ` +
          `(maxImagePixels / ${ENV.maxImagePixels}); downscale it or raise the limit (at most ${MAX_IMAGE_PIXELS})`,
      );
    }
  }

  /** Counts `pixels` against the request limit. */
  spend(pixels: number, what: string): void {
    if (this.spent + pixels > this.limits.maxRequestPixels) {
      throw new TfvlmError(
        `${what} would bring this request to ${this.spent + pixels} pixels, over its ${this.limits.maxRequestPixels}-pixel limit ` +
          `(maxRequestPixels / ${ENV.maxRequestPixels}); send fewer or smaller images, or raise the limit`,
      );
    }
    this.spent += pixels;
  }

  /** An image about to be decoded: within the per-image limit, and counted against the request. */
  admitImage(width: number, height: number, what: string): void {
    this.checkImage(width, height, what);
    this.spend(width * height, what);
  }

  /** The per-image check alone, for decoded pixels that are not kept (video frames resized at once). */
  perImageOnly(): ImageGate {
    return { admitImage: (width, height, what) => this.checkImage(width, height, what) };
  }
}

/** What image decoding asks before it allocates a decoded image. */
export type ImageGate = Pick<PixelBudget, 'admitImage'>;
