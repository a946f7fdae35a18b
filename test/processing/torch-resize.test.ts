// torchvision's antialiased uint8 resize (what transformers' torchvision backend runs for video frames):
// weights worked out by hand from PyTorch's UpSampleKernel.cpp formulas, the kernel against a plain
// per-pixel reference written from the same code, and against Pillow (the kernel is a Pillow-SIMD port).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadImage } from '../../src/io/image.ts';
import { convertToRGB, type Bitmap } from '../../src/io/bitmap.ts';
import { Resampling, resize } from '../../src/processing/resample.ts';
import { int16Weights, torchResize, torchvisionInterpolation, type TorchInterpolation } from '../../src/processing/torch-resize.ts';
import { image } from '../helpers/paths.ts';

const keysCubic = (x: number) => {
  const a = Math.abs(x);
  if (a < 1) return ((-0.5 + 2) * a - (-0.5 + 3)) * a * a + 1;
  if (a < 2) return ((-0.5 * a + 2.5) * a - 4) * a + 2;
  return 0;
};
const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
const REFERENCE_FILTERS: Record<Exclude<TorchInterpolation, 'nearest-exact'>, { size: number; fn: (x: number) => number }> = {
  bilinear: { size: 2, fn: (x) => Math.max(0, 1 - Math.abs(x)) },
  bicubic: { size: 4, fn: keysCubic },
  lanczos: { size: 6, fn: (x) => (Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

/**
 * One output sample of one direction, straight from the kernel's definition: double weights over the
 * window around the centre, normalized, int16 at the direction's precision, (2^(P-1) + Σ k·x) >> P.
 */
function referenceLine(line: number[], outSize: number, mode: Exclude<TorchInterpolation, 'nearest-exact'>): number[] {
  const f = REFERENCE_FILTERS[mode];
  const inSize = line.length;
  const scale = inSize / outSize;
  const support = scale >= 1 ? (f.size / 2) * scale : f.size / 2;
  const windows = Array.from({ length: outSize }, (_, i) => {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w = [];
    for (let x = xmin; x < xmax; x++) w.push(f.fn((x - center + 0.5) / Math.max(scale, 1)));
    const total = w.reduce((a, b) => a + b, 0);
    return { xmin, w: w.map((v) => v / total) };
  });
  const wtMax = Math.max(...windows.flatMap((o) => o.w));
  let P = 0;
  while (P < 22 && Math.trunc(0.5 + wtMax * 2 ** (P + 1)) < 32768) P++;
  return windows.map(({ xmin, w }) => {
    let acc = 2 ** (P - 1);
    w.forEach((v, j) => { acc += Math.round(Math.abs(v) * 2 ** P) * Math.sign(v) * line[xmin + j]!; });
    return Math.min(255, Math.max(0, Math.floor(acc / 2 ** P)));
  });
}

/** Width first (every row, rounded to uint8), then height — skipping a direction whose size does not change. */
function referenceResize(img: Bitmap, height: number, width: number, mode: Exclude<TorchInterpolation, 'nearest-exact'>): Uint8Array {
  const C = img.data.length / (img.width * img.height);
  let rows = Array.from({ length: img.height }, (_, y) => Array.from({ length: img.width * C }, (_, i) => img.data[y * img.width * C + i]!));
  if (width !== img.width) {
    rows = rows.map((row) => {
      const out = new Array(width * C);
      for (let c = 0; c < C; c++) referenceLine(row.filter((_, i) => i % C === c), width, mode).forEach((v, x) => { out[x * C + c] = v; });
      return out;
    });
  }
  if (height !== img.height) {
    const cols = Array.from({ length: width * C }, (_, i) => rows.map((r) => r[i]!));
    const resized = cols.map((col) => referenceLine(col, height, mode));
    rows = Array.from({ length: height }, (_, y) => resized.map((col) => col[y]!));
  }
  return Uint8Array.from(rows.flat());
}

function noise(width: number, height: number, seed: number): Bitmap {
  let s = seed;
  const data = Uint8Array.from({ length: width * height * 3 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
  return { width, height, mode: 'RGB', data };
}

describe('torchvision antialiased uint8 resize', () => {
  it('bicubic 4 → 2 weights and precision, worked out by hand from UpSampleKernel.cpp', () => {
    // scale 2, support 4: output 0 is centred at 1, window [0, 4); taps at (j - 1 + 0.5) / 2 = -0.25, 0.25, 0.75, 1.25.
    // Keys a = -0.5: 0.8671875, 0.8671875, 0.2265625, -0.0703125; their sum 1.890625 normalizes them.
    const w = int16Weights(4, 2, { size: 4, fn: keysCubic });
    assert.equal(w.stride, 9);
    assert.deepEqual([...w.start], [0, 0]);
    assert.deepEqual([...w.count], [4, 4]);
    // Largest weight 0.4586776… : 2^17 · 0.4587 ≥ 32768 > 2^16 · 0.4587 → precision 16.
    assert.equal(w.precision, 16);
    // round-half-away(w · 65536): 30059.9 → 30060, 7853.49 → 7853, -2437.29 → -2437 (sum 65536); output 1 mirrors output 0.
    assert.deepEqual([...w.weights.subarray(0, 4)], [30060, 30060, 7853, -2437]);
    assert.deepEqual([...w.weights.subarray(9, 13)], [-2437, 7853, 30060, 30060]);
    // A gray row [10, 20, 30, 40]: (32768 + 30060·10 + 30060·20 + 7853·30 − 2437·40) >> 16 = 16.
    const row: Bitmap = { width: 4, height: 1, mode: 'L', data: Uint8Array.from([10, 20, 30, 40]) };
    assert.deepEqual([...torchResize(row, 1, 2, 'bicubic').data], [16, 34]);
  });

  it('equals a per-pixel reference written from the same kernel, up and down, every filter, ragged sizes', () => {
    const cases: [number, number, number, number][] = [[7, 5, 3, 2], [5, 7, 11, 13], [16, 9, 64, 36], [33, 20, 8, 8], [1, 9, 4, 3], [40, 3, 1, 17]];
    for (const mode of ['bilinear', 'bicubic', 'lanczos'] as const) {
      cases.forEach(([w, h, W, H], k) => {
        const img = noise(w, h, k + 1);
        assert.deepEqual(torchResize(img, H, W, mode).data, referenceResize(img, H, W, mode), `${mode} ${w}x${h} → ${W}x${H}`);
      });
    }
  });

  it('keeps the image when the size does not change, and resizes only the direction that changes', () => {
    const img = noise(12, 8, 3);
    assert.equal(torchResize(img, 8, 12, 'lanczos'), img);
    const wide = torchResize(img, 8, 20, 'lanczos');
    assert.deepEqual(wide.data, referenceResize(img, 8, 20, 'lanczos'));
  });

  it('agrees with Pillow within 2 levels on photos (both round to uint8 after each direction; weights differ in precision)', async () => {
    for (const name of ['chelsea.png', 'rocket.jpg']) {
      const img = convertToRGB(await loadImage(image(name)));
      for (const [H, W] of [[64, 64], [301, 517], [900, 1600]] as const) {
        for (const [mode, filter] of [['lanczos', Resampling.LANCZOS], ['bicubic', Resampling.BICUBIC]] as const) {
          const a = torchResize(img, H, W, mode).data;
          const b = resize(img, W, H, filter).data;
          let max = 0;
          let differ = 0;
          for (let i = 0; i < a.length; i++) {
            const d = Math.abs(a[i]! - b[i]!);
            max = Math.max(max, d);
            if (d) differ++;
          }
          assert.ok(max <= 2, `${name} → ${W}x${H} ${mode}: max |Δ| ${max}`);
          assert.ok(differ / a.length < 0.02, `${name} → ${W}x${H} ${mode}: ${(100 * differ / a.length).toFixed(2)}% of samples differ`);
        }
      }
    }
  });

  it('nearest-exact picks min(floor((i + 0.5) · in/out), in − 1); the PIL filters map as transformers maps them', () => {
    const row: Bitmap = { width: 5, height: 1, mode: 'L', data: Uint8Array.from([0, 1, 2, 3, 4]) };
    // in/out = 5/3: (0.5, 1.5, 2.5) · 1.667 = 0.83, 2.5, 4.17 → 0, 2, 4; 5/7: 0.36, 1.07, 1.79, 2.5, 3.21, 3.93, 4.64.
    assert.deepEqual([...torchResize(row, 1, 3, 'nearest-exact').data], [0, 2, 4]);
    assert.deepEqual([...torchResize(row, 1, 7, 'nearest-exact').data], [0, 1, 1, 2, 3, 3, 4]);
    assert.deepEqual([0, 1, 2, 3].map((r) => torchvisionInterpolation(r as 0 | 1 | 2 | 3)), ['nearest-exact', 'lanczos', 'bilinear', 'bicubic']);
    assert.throws(() => torchvisionInterpolation(Resampling.BOX), /resample 4 \(BOX\) has no torchvision tensor resize/);
    assert.throws(() => torchResize(row, 0, 3, 'bicubic'), /invalid target size/);
  });
});
