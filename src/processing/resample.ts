// Pillow-exact resizing of uint8 bitmaps (Pillow 9.4; what transformers' `PIL.Image.resize(size,
// resample)` produces). References: Pillow src/PIL/Image.py `Image.resize`,
// src/libImaging/Resample.c (`precompute_coeffs`, `normalize_coeffs_8bpc`, `ImagingResampleInner`),
// src/libImaging/Geometry.c (`ImagingScaleAffine`, NEAREST) and src/_imaging.c (`_resize`).
import { TfvlmError } from '../errors.ts';
import { premultiplyAlpha, unpremultiplyAlpha } from './image.ts';
import { type Bitmap, MODE_CHANNELS } from '../io/bitmap.ts';

/** `PIL.Image.Resampling` values, as `resample` holds them in preprocessor_config.json. */
export const Resampling = { NEAREST: 0, LANCZOS: 1, BILINEAR: 2, BICUBIC: 3, BOX: 4, HAMMING: 5 } as const;
export type ResamplingFilter = (typeof Resampling)[keyof typeof Resampling];

export function isResamplingFilter(v: unknown): v is ResamplingFilter {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 5;
}

interface Filter {
  fn: (x: number) => number;
  support: number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

// Resample.c filter functions, same expressions and constants.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);
const FILTERS: Record<Exclude<ResamplingFilter, 0>, Filter> = {
  [Resampling.BOX]: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  [Resampling.BILINEAR]: {
    support: 1,
    fn: (x) => {
      const ax = Math.abs(x);
      return ax < 1 ? 1 - ax : 0;
    },
  },
  [Resampling.HAMMING]: {
    support: 1,
    fn: (x) => {
      const ax = Math.abs(x);
      if (ax === 0) return 1;
      if (ax >= 1) return 0;
      const px = ax * Math.PI;
      return (Math.sin(px) / px) * (HAMMING_A + HAMMING_B * Math.cos(px));
    },
  },
  [Resampling.BICUBIC]: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const ax = Math.abs(x);
      if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1;
      if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a;
      return 0;
    },
  },
  [Resampling.LANCZOS]: { support: 3, fn: (x) => (-3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

/** Pillow's 8-bit fixed point: 32 - 8 - 2 fractional bits. */
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

/** Integer coefficient table of one resampling direction. */
export interface Coefficients {
  ksize: number;
  /** Per output index: first input index, then the number of taps. */
  bounds: Int32Array;
  /** `outSize × ksize` coefficients scaled by 2^22 and rounded half away from zero. */
  kk: Int32Array;
}

/** Resample.c `precompute_coeffs` + `normalize_coeffs_8bpc` for the box [0, inSize). */
export function precomputeCoefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = filter.fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x]! / ww : w[x]!;
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Horizontal pass over input rows [rowStart, rowStart + rows). Output clipped like `clip8`. */
function resampleHorizontal(
  src: Uint8Array, inW: number, C: number, rowStart: number, rows: number, outW: number, co: Coefficients,
): Uint8Array {
  const out = new Uint8Array(outW * rows * C);
  const clip = new Uint8ClampedArray(out.buffer); // (ss >> 22) clamped to 0..255 == clip8(ss)
  const { ksize, bounds, kk } = co;
  for (let y = 0; y < rows; y++) {
    const inRow = (y + rowStart) * inW * C;
    let o = y * outW * C;
    if (C === 3) {
      for (let xx = 0; xx < outW; xx++) {
        const n = bounds[xx * 2 + 1]!;
        const kOff = xx * ksize;
        let p = inRow + bounds[xx * 2]! * 3;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < n; x++, p += 3) {
          const k = kk[kOff + x]!;
          s0 += src[p]! * k;
          s1 += src[p + 1]! * k;
          s2 += src[p + 2]! * k;
        }
        clip[o++] = s0 >> PRECISION_BITS;
        clip[o++] = s1 >> PRECISION_BITS;
        clip[o++] = s2 >> PRECISION_BITS;
      }
    } else if (C === 4) {
      for (let xx = 0; xx < outW; xx++) {
        const n = bounds[xx * 2 + 1]!;
        const kOff = xx * ksize;
        let p = inRow + bounds[xx * 2]! * 4;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        let s3 = HALF;
        for (let x = 0; x < n; x++, p += 4) {
          const k = kk[kOff + x]!;
          s0 += src[p]! * k;
          s1 += src[p + 1]! * k;
          s2 += src[p + 2]! * k;
          s3 += src[p + 3]! * k;
        }
        clip[o++] = s0 >> PRECISION_BITS;
        clip[o++] = s1 >> PRECISION_BITS;
        clip[o++] = s2 >> PRECISION_BITS;
        clip[o++] = s3 >> PRECISION_BITS;
      }
    } else {
      for (let xx = 0; xx < outW; xx++) {
        const n = bounds[xx * 2 + 1]!;
        const kOff = xx * ksize;
        const p0 = inRow + bounds[xx * 2]! * C;
        for (let c = 0; c < C; c++) {
          let s = HALF;
          for (let x = 0, p = p0 + c; x < n; x++, p += C) s += src[p]! * kk[kOff + x]!;
          clip[o++] = s >> PRECISION_BITS;
        }
      }
    }
  }
  return out;
}

/**
 * Vertical pass: each output row accumulates whole input rows, four taps at a time (cache-friendly;
 * integer sums are exact, and int32 wrap-around cannot change a final sum that fits in int32).
 */
function resampleVertical(src: Uint8Array, rowLen: number, outH: number, co: Coefficients): Uint8Array {
  const out = new Uint8Array(outH * rowLen);
  const clip = new Uint8ClampedArray(out.buffer);
  const acc = new Int32Array(rowLen);
  const { ksize, bounds, kk } = co;
  for (let yy = 0; yy < outH; yy++) {
    acc.fill(HALF);
    const ymin = bounds[yy * 2]!;
    const n = bounds[yy * 2 + 1]!;
    const kOff = yy * ksize;
    let y = 0;
    for (; y + 3 < n; y += 4) {
      const k0 = kk[kOff + y]!;
      const k1 = kk[kOff + y + 1]!;
      const k2 = kk[kOff + y + 2]!;
      const k3 = kk[kOff + y + 3]!;
      const b0 = (ymin + y) * rowLen;
      const b1 = b0 + rowLen;
      const b2 = b1 + rowLen;
      const b3 = b2 + rowLen;
      for (let i = 0; i < rowLen; i++) acc[i]! += src[b0 + i]! * k0 + src[b1 + i]! * k1 + src[b2 + i]! * k2 + src[b3 + i]! * k3;
    }
    for (; y < n; y++) {
      const k = kk[kOff + y]!;
      const b = (ymin + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i]! += src[b + i]! * k;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) clip[o + i] = acc[i]! >> PRECISION_BITS;
  }
  return out;
}

/** Resample.c `ImagingResampleInner`: horizontal pass (only the rows the vertical pass reads), then vertical. */
export function resampleConvolution(
  src: Uint8Array, inW: number, inH: number, C: number, outW: number, outH: number, filter: Exclude<ResamplingFilter, 0>,
): Uint8Array {
  const f = FILTERS[filter];
  const needH = outW !== inW;
  const needV = outH !== inH;
  const vert = precomputeCoefficients(inH, outH, f);
  let data = src;
  let w = inW;
  if (needH) {
    const first = vert.bounds[0]!;
    const last = vert.bounds[outH * 2 - 2]! + vert.bounds[outH * 2 - 1]!;
    for (let i = 0; i < outH; i++) vert.bounds[i * 2]! -= first;
    data = resampleHorizontal(src, inW, C, first, last - first, outW, precomputeCoefficients(inW, outW, f));
    w = outW;
  }
  if (needV) data = resampleVertical(data, w * C, outH, vert);
  return data === src ? src.slice() : data;
}

/** Geometry.c `ImagingScaleAffine` (what `_resize` runs for NEAREST): source positions accumulate by addition. */
export function resampleNearest(src: Uint8Array, inW: number, inH: number, C: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * C);
  const a0 = inW / outW;
  const a4 = inH / outH;
  const xintab = new Int32Array(outW);
  let xmin = outW;
  let xmax = 0;
  let xo = a0 * 0.5;
  for (let x = 0; x < outW; x++) {
    const xin = xo < 0 ? -1 : Math.trunc(xo);
    if (xin >= 0 && xin < inW) {
      xmax = x + 1;
      if (x < xmin) xmin = x;
      xintab[x] = xin;
    }
    xo += a0;
  }
  let yo = a4 * 0.5;
  for (let y = 0; y < outH; y++) {
    const yi = yo < 0 ? -1 : Math.trunc(yo);
    if (yi >= 0 && yi < inH) {
      const inRow = yi * inW * C;
      const outRow = y * outW * C;
      if (C === 1) {
        for (let x = xmin; x < xmax; x++) out[outRow + x] = src[inRow + xintab[x]!]!;
      } else {
        for (let x = xmin; x < xmax; x++) {
          const s = inRow + xintab[x]! * C;
          const d = outRow + x * C;
          for (let c = 0; c < C; c++) out[d + c] = src[s + c]!;
        }
      }
    }
    yo += a4;
  }
  return out;
}

/**
 * `PIL.Image.resize((width, height), resample)` with no box or reducing_gap. Same size returns the
 * input unchanged (Pillow returns a copy); P images always use NEAREST; LA/RGBA are resized with
 * premultiplied alpha (converted to La/RGBa and back) unless the filter is NEAREST.
 */
export function resize(img: Bitmap, width: number, height: number, resample: ResamplingFilter): Bitmap {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new TfvlmError(`resize: invalid target size ${width}x${height} (from ${img.width}x${img.height})`);
  }
  if (!isResamplingFilter(resample)) throw new TfvlmError(`resize: unknown resample filter ${String(resample)}`);
  if (width === img.width && height === img.height) return img;
  const C = MODE_CHANNELS[img.mode];
  const filter: ResamplingFilter = img.mode === 'P' ? Resampling.NEAREST : resample;
  if (filter === Resampling.NEAREST) {
    return { width, height, mode: img.mode, data: resampleNearest(img.data, img.width, img.height, C, width, height) };
  }
  if (img.mode === 'RGBA' || img.mode === 'LA') {
    const pre = premultiplyAlpha(img.data, C as 2 | 4);
    const out = resampleConvolution(pre, img.width, img.height, C, width, height, filter);
    return { width, height, mode: img.mode, data: unpremultiplyAlpha(out, C as 2 | 4) };
  }
  return { width, height, mode: img.mode, data: resampleConvolution(img.data, img.width, img.height, C, width, height, filter) };
}
