// The Pillow-exact resampler: hand-checked Pillow values, a slow per-pixel reference of the same
// algorithm (exact agreement with the fast separable loops), sizes, identity, 1×1, alpha, palette.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type Bitmap, type ImageMode, MODE_CHANNELS } from '../../src/io/bitmap.ts';
import { Resampling, type ResamplingFilter, precomputeCoefficients, resize } from '../../src/processing/resample.ts';

const FILTERS: [string, ResamplingFilter][] = [
  ['NEAREST', Resampling.NEAREST],
  ['BOX', Resampling.BOX],
  ['BILINEAR', Resampling.BILINEAR],
  ['HAMMING', Resampling.HAMMING],
  ['BICUBIC', Resampling.BICUBIC],
  ['LANCZOS', Resampling.LANCZOS],
];

/** Deterministic pseudo-random image (xorshift). */
function noise(width: number, height: number, mode: ImageMode, seed = 1): Bitmap {
  const data = new Uint8Array(width * height * MODE_CHANNELS[mode]);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = s & 255;
  }
  return { width, height, mode, data };
}

const KERNELS: Record<number, [number, (x: number) => number]> = {
  [Resampling.BOX]: [0.5, (x) => (x > -0.5 && x <= 0.5 ? 1 : 0)],
  [Resampling.BILINEAR]: [1, (x) => Math.max(0, 1 - Math.abs(x))],
  [Resampling.HAMMING]: [1, (x) => {
    const a = Math.abs(x);
    if (a === 0) return 1;
    if (a >= 1) return 0;
    return (Math.sin(a * Math.PI) / (a * Math.PI)) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(a * Math.PI));
  }],
  [Resampling.BICUBIC]: [2, (x) => {
    const a = Math.abs(x);
    return a < 1 ? (1.5 * a - 2.5) * a * a + 1 : a < 2 ? (((a - 5) * a + 8) * a - 4) * -0.5 : 0;
  }],
  [Resampling.LANCZOS]: [3, (x) => {
    const s = (v: number) => (v === 0 ? 1 : Math.sin(v * Math.PI) / (v * Math.PI));
    return x >= -3 && x < 3 ? s(x) * s(x / 3) : 0;
  }],
};

function kernel(filter: number): [number, (x: number) => number] {
  const k = KERNELS[filter];
  if (!k) throw new Error(`no reference kernel for filter ${filter}`);
  return k;
}

/** One direction of Pillow's fixed-point convolution, written per output sample with no tables. */
function referencePass(get: (i: number) => number, inSize: number, outSize: number, filter: number): number[] {
  const [support0, fn] = kernel(filter);
  const scale = inSize / outSize;
  const fs = Math.max(scale, 1);
  const support = support0 * fs;
  const out: number[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const w: number[] = [];
    for (let i = lo; i < hi; i++) w.push(fn((i - center + 0.5) / fs));
    const total = w.reduce((a, b) => a + b, 0);
    let acc = 1 << 21;
    w.forEach((v, j) => {
      const k = total !== 0 ? v / total : v;
      acc += get(lo + j) * (k < 0 ? Math.trunc(-0.5 + k * 2 ** 22) : Math.trunc(0.5 + k * 2 ** 22));
    });
    out.push(Math.min(255, Math.max(0, acc >> 22)));
  }
  return out;
}

/** Horizontal pass then vertical pass, a pass skipped when that side keeps its size (Resample.c). */
function referenceResize(img: Bitmap, width: number, height: number, filter: number): Uint8Array {
  const C = MODE_CHANNELS[img.mode];
  let cur = { w: img.width, h: img.height, px: Array.from(img.data) };
  if (width !== img.width) {
    const px = new Array<number>(width * cur.h * C);
    for (let y = 0; y < cur.h; y++) {
      for (let c = 0; c < C; c++) {
        const row = referencePass((x) => cur.px[(y * cur.w + x) * C + c]!, cur.w, width, filter);
        row.forEach((v, x) => (px[(y * width + x) * C + c] = v));
      }
    }
    cur = { w: width, h: cur.h, px };
  }
  if (height !== img.height) {
    const px = new Array<number>(cur.w * height * C);
    for (let x = 0; x < cur.w; x++) {
      for (let c = 0; c < C; c++) {
        const col = referencePass((y) => cur.px[(y * cur.w + x) * C + c]!, cur.h, height, filter);
        col.forEach((v, y) => (px[(y * cur.w + x) * C + c] = v));
      }
    }
    cur = { w: cur.w, h: height, px };
  }
  return Uint8Array.from(cur.px);
}

describe('resize: values Pillow produces', () => {
  it('BILINEAR 2→4 of [0, 255] is [0, 64, 191, 255]', () => {
    const out = resize({ width: 2, height: 1, mode: 'L', data: Uint8Array.from([0, 255]) }, 4, 1, Resampling.BILINEAR);
    assert.deepEqual(Array.from(out.data), [0, 64, 191, 255]);
  });
  it('NEAREST samples at (i + 0.5) · in/out, accumulated', () => {
    const row = { width: 3, height: 1, mode: 'L' as const, data: Uint8Array.from([10, 20, 30]) };
    assert.deepEqual(Array.from(resize(row, 2, 1, Resampling.NEAREST).data), [10, 30]);
    const two = { width: 2, height: 1, mode: 'L' as const, data: Uint8Array.from([10, 20]) };
    assert.deepEqual(Array.from(resize(two, 3, 1, Resampling.NEAREST).data), [10, 20, 20]);
  });
  it('coefficients are rounded to 2^22 fixed point and each row sums to ~2^22', () => {
    for (const [, f] of FILTERS.slice(1)) {
      const [support, fn] = kernel(f);
      const co = precomputeCoefficients(37, 11, { support, fn });
      for (let o = 0; o < 11; o++) {
        let sum = 0;
        for (let k = 0; k < co.bounds[o * 2 + 1]!; k++) sum += co.kk[o * co.ksize + k]!;
        assert.ok(Math.abs(sum - 2 ** 22) <= co.ksize, `row ${o} sums to ${sum}`);
      }
    }
  });
});

describe('resize: fast loops equal the slow per-sample reference', () => {
  const sizes: [number, number, number, number][] = [
    [17, 13, 41, 29], // upscale both
    [41, 29, 9, 7], // downscale both
    [40, 30, 40, 11], // vertical only
    [40, 30, 13, 30], // horizontal only
    [23, 19, 64, 5], // mixed
    [1, 1, 5, 3], // from 1×1
    [9, 7, 1, 1], // to 1×1
  ];
  for (const [name, f] of FILTERS.slice(1)) {
    for (const mode of ['L', 'RGB'] as const) {
      it(`${name} ${mode}`, () => {
        for (const [w, h, W, H] of sizes) {
          const img = noise(w, h, mode, w * 31 + h);
          const out = resize(img, W, H, f);
          assert.deepEqual([out.width, out.height, out.mode], [W, H, mode]);
          assert.deepEqual(out.data, referenceResize(img, W, H, f), `${w}x${h} -> ${W}x${H}`);
        }
      });
    }
  }
});

describe('resize: identity, sizes, modes', () => {
  for (const [name, f] of FILTERS) {
    it(`${name}: same size is the identity; constant images stay constant; 1×1 works`, () => {
      const img = noise(12, 9, 'RGB');
      assert.deepEqual(resize(img, 12, 9, f).data, img.data);
      const flat: Bitmap = { width: 7, height: 5, mode: 'RGB', data: new Uint8Array(7 * 5 * 3).fill(77) };
      for (const [W, H] of [[20, 3], [2, 11], [1, 1]] as const) {
        const out = resize(flat, W, H, f);
        assert.equal(out.data.length, W * H * 3);
        assert.ok(out.data.every((v) => v === 77), `${name} ${W}x${H}`);
      }
      const one: Bitmap = { width: 1, height: 1, mode: 'RGBA', data: Uint8Array.from([1, 2, 3, 255]) };
      const big = resize(one, 6, 4, f);
      for (let i = 0; i < 24; i++) assert.deepEqual(Array.from(big.data.subarray(i * 4, i * 4 + 4)), [1, 2, 3, 255]);
    });
  }

  it('RGBA is resized premultiplied: transparent colour does not bleed', () => {
    const img: Bitmap = { width: 2, height: 1, mode: 'RGBA', data: Uint8Array.from([255, 0, 0, 255, 0, 255, 0, 0]) };
    const out = resize(img, 4, 1, Resampling.BILINEAR);
    assert.deepEqual(Array.from(out.data), [255, 0, 0, 255, 255, 0, 0, 191, 255, 0, 0, 64, 0, 0, 0, 0]);
  });

  it('P images are always resized with NEAREST', () => {
    const p: Bitmap = { width: 2, height: 1, mode: 'P', data: Uint8Array.from([0, 0, 0, 255, 255, 255]) };
    const out = resize(p, 4, 1, Resampling.LANCZOS);
    assert.deepEqual(Array.from(out.data), [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]);
  });

  it('rejects bad sizes and filters', () => {
    const img = noise(3, 3, 'L');
    assert.throws(() => resize(img, 0, 3, Resampling.BICUBIC), /invalid target size 0x3/);
    assert.throws(() => resize(img, 3, 3.5, Resampling.BICUBIC), /invalid target size/);
    assert.throws(() => resize(img, 4, 4, 9 as ResamplingFilter), /unknown resample filter 9/);
  });
});
