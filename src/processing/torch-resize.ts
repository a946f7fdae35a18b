// torchvision.transforms.v2.functional.resize on a uint8 CPU image with antialias=True, as transformers'
// torchvision-backed processors call it. torchvision hands uint8 straight to
// torch.nn.functional.interpolate, whose CPU kernel for uint8 (pytorch aten/src/ATen/native/cpu/
// UpSampleKernel.cpp `_compute_index_ranges_int16_weights`, UpSampleKernelAVXAntialias.h, a port of
// Pillow-SIMD) computes each output index's weights in double, turns them into int16 with a
// per-direction precision, and resamples horizontally then vertically, rounding to uint8 in between.
// Same-size directions are skipped; a same-size resize returns the image itself.
import { TfvlmError } from '../errors.ts';
import { type Bitmap, MODE_CHANNELS } from '../io/bitmap.ts';
import { Resampling, type ResamplingFilter } from './resample.ts';

export type TorchInterpolation = 'nearest-exact' | 'bilinear' | 'bicubic' | 'lanczos';

interface AntialiasFilter {
  /** `interp_size`: taps at scale 1. */
  size: number;
  fn: (x: number) => number;
}

const sinc = (x: number) => (x === 0 ? 1 : Math.sin(x * Math.PI) / (x * Math.PI));

/** UpSampleKernel.cpp HelperInterpLinear / HelperInterpCubic (a = -0.5 with antialias) / HelperInterpLanczos aa_filter. */
const FILTERS: Record<Exclude<TorchInterpolation, 'nearest-exact'>, AntialiasFilter> = {
  bilinear: { size: 2, fn: (x) => { const a = Math.abs(x); return a < 1 ? 1 - a : 0; } },
  bicubic: {
    size: 4,
    fn: (x) => {
      const A = -0.5;
      const a = Math.abs(x);
      // UpSample.h cubic_convolution1 / cubic_convolution2, same operation order.
      if (a < 1) return ((A + 2) * a - (A + 3)) * a * a + 1;
      if (a < 2) return ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
      return 0;
    },
  },
  lanczos: { size: 6, fn: (x) => { const a = Math.abs(x); return a < 3 ? sinc(a) * sinc(a / 3) : 0; } },
};

/**
 * transformers' `pil_torch_interpolation_mapping` for a config's PIL `resample` value. LANCZOS stays
 * LANCZOS: transformers 5.x keeps it since huggingface/transformers#46496 (June 2026) when torchvision
 * is 0.27 or newer (the first with tensor Lanczos, on CPU); older releases replaced it with BICUBIC.
 */
export function torchvisionInterpolation(resample: ResamplingFilter): TorchInterpolation {
  switch (resample) {
    case Resampling.NEAREST: return 'nearest-exact';
    case Resampling.BILINEAR: return 'bilinear';
    case Resampling.BICUBIC: return 'bicubic';
    case Resampling.LANCZOS: return 'lanczos';
    default:
      throw new TfvlmError(`resample ${resample} (${resample === Resampling.BOX ? 'BOX' : 'HAMMING'}) has no torchvision tensor resize; use NEAREST, BILINEAR, BICUBIC or LANCZOS`);
  }
}

/** Fixed-point weights of one direction: per output index its first input index, tap count and int16 taps. */
export interface Int16Weights {
  /** Taps per output index in `weights` (`max_interp_size`). */
  stride: number;
  start: Int32Array;
  count: Int32Array;
  weights: Int16Array;
  /** Fractional bits of `weights`. */
  precision: number;
}

/** `_compute_index_ranges_weights` (scalar double, antialias) + `_compute_index_ranges_int16_weights`. */
export function int16Weights(inSize: number, outSize: number, filter: AntialiasFilter): Int16Weights {
  const scale = inSize / outSize;
  const support = scale >= 1 ? filter.size * 0.5 * scale : filter.size * 0.5;
  const stride = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1 ? 1 / scale : 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const real = new Float64Array(outSize * stride);
  let wtMax = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0), stride);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = filter.fn((j + xmin - center + 0.5) * invscale);
      real[i * stride + j] = w;
      total += w;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        real[i * stride + j]! /= total;
        wtMax = Math.max(wtMax, real[i * stride + j]!);
      }
    }
    start[i] = xmin;
    count[i] = xsize;
  }
  // The largest precision (< 22) whose doubled largest weight still fits int16.
  let precision = 0;
  for (; precision < 22; precision++) if (Math.trunc(0.5 + wtMax * 2 ** (precision + 1)) >= 1 << 15) break;
  const weights = new Int16Array(outSize * stride);
  for (let k = 0; k < real.length; k++) {
    const v = real[k]! * 2 ** precision;
    weights[k] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return { stride, start, count, weights, precision };
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Horizontal pass (UpSampleKernel.cpp basic_loop_aa_horizontal for uint8): every input row, `outW` samples. */
function resampleHorizontal(src: Uint8Array, inW: number, rows: number, C: number, outW: number, w: Int16Weights): Uint8Array {
  const out = new Uint8Array(rows * outW * C);
  const half = 1 << (w.precision - 1);
  const { start, count, weights, stride, precision } = w;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < outW; x++) {
      const n = count[x]!;
      const k0 = x * stride;
      let p = (y * inW + start[x]!) * C;
      let dst = (y * outW + x) * C;
      if (C === 3) {
        let s0 = half;
        let s1 = half;
        let s2 = half;
        for (let j = 0; j < n; j++, p += 3) {
          const k = weights[k0 + j]!;
          s0 += src[p]! * k;
          s1 += src[p + 1]! * k;
          s2 += src[p + 2]! * k;
        }
        out[dst++] = clamp8(s0 >> precision);
        out[dst++] = clamp8(s1 >> precision);
        out[dst] = clamp8(s2 >> precision);
        continue;
      }
      for (let c = 0; c < C; c++) {
        let acc = half;
        for (let j = 0, q = p + c; j < n; j++, q += C) acc += src[q]! * weights[k0 + j]!;
        out[dst + c] = clamp8(acc >> precision);
      }
    }
  }
  return out;
}

/** Vertical pass (basic_loop_aa_vertical): each output row accumulates whole input rows of `rowLen` samples. */
function resampleVertical(src: Uint8Array, rowLen: number, outH: number, w: Int16Weights): Uint8Array {
  const out = new Uint8Array(outH * rowLen);
  const acc = new Int32Array(rowLen);
  const { start, count, weights, stride, precision } = w;
  for (let y = 0; y < outH; y++) {
    acc.fill(1 << (precision - 1));
    for (let j = 0; j < count[y]!; j++) {
      const k = weights[y * stride + j]!;
      const row = (start[y]! + j) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i]! += src[row + i]! * k;
    }
    const o = y * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clamp8(acc[i]! >> precision);
  }
  return out;
}

/** NEAREST_EXACT: source index min(floor((i + 0.5) · in/out), in - 1), the scale in float32 (UpSample.h nearest_exact_idx). */
function nearestExact(img: Bitmap, height: number, width: number): Bitmap {
  const C = MODE_CHANNELS[img.mode];
  const index = (outSize: number, inSize: number) => {
    const scale = Math.fround(inSize / outSize);
    return Int32Array.from({ length: outSize }, (_, i) => Math.min(Math.floor(Math.fround(Math.fround(i + 0.5) * scale)), inSize - 1));
  };
  const xs = index(width, img.width);
  const ys = index(height, img.height);
  const data = new Uint8Array(width * height * C);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (ys[y]! * img.width + xs[x]!) * C;
      data.set(img.data.subarray(s, s + C), (y * width + x) * C);
    }
  }
  return { width, height, mode: img.mode, data };
}

/** torchvision `resize(image, [height, width], interpolation, antialias=True)` of a uint8 bitmap (channels-last). */
export function torchResize(img: Bitmap, height: number, width: number, interpolation: TorchInterpolation): Bitmap {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new TfvlmError(`resize: invalid target size ${width}x${height} (from ${img.width}x${img.height})`);
  }
  if (width === img.width && height === img.height) return img;
  if (interpolation === 'nearest-exact') return nearestExact(img, height, width);
  const filter = FILTERS[interpolation];
  const C = MODE_CHANNELS[img.mode];
  let data = img.data;
  if (width !== img.width) data = resampleHorizontal(data, img.width, img.height, C, width, int16Weights(img.width, width, filter));
  if (height !== img.height) data = resampleVertical(data, width * C, height, int16Weights(img.height, height, filter));
  return { width, height, mode: img.mode, data };
}
