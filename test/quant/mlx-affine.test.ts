// MLX's affine quantizer, reproduced bit for bit (docs/notes/mlx-quantization.md). The goldens are
// derived by hand from MLX's formulas (no MLX test or published checkpoint with literal quantized
// values was found); the arithmetic is in the comments, with every value chosen so that float32
// computes it exactly unless a comment says otherwise. Random and adversarial rows are checked
// against a second, independent transcription of the formula and against the error bound.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TfvlmError } from '../../src/errors.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/io/dtypes.ts';
import {
  checkQuantization,
  dequantizeRows,
  quantizeRows,
  type MlxBackend,
  type MlxFloatDType,
} from '../../src/quant/mlx-affine.ts';
import { unpackCodes } from '../../src/quant/mlx-pack.ts';
import { rng } from '../layers/util.ts';

const EPS32 = Math.fround(1e-7); // 1.00000001168e-7, MLX's floor on |scale|

/** A 32-value row: `head`, then `fill` repeated. */
function rowOf(head: number[], fill: number, n = 32): Float32Array {
  return Float32Array.from([...head, ...Array<number>(n - head.length).fill(fill)]);
}

function quantize4(values: Float32Array, mlxBackend: MlxBackend, scaleDType: MlxFloatDType = 'F32') {
  return quantizeRows(values, 1, values.length, { bits: 4, groupSize: 32, scaleDType, mlxBackend });
}

function toBf16(x: number): number {
  return bf16ToF32(f32ToBf16(Float32Array.of(x)))[0]!;
}

function toF16(x: number): number {
  return f16ToF32(f32ToF16(Float32Array.of(x)))[0]!;
}

describe('checkQuantization', () => {
  it('accepts 4 and 8 bits with groups of 32, 64 and 128', () => {
    for (const bits of [4, 8]) for (const groupSize of [32, 64, 128]) checkQuantization({ bits, groupSize }, 3 * 128, 'k');
  });

  it('refuses other bits, other group sizes and a row that is not whole groups, naming the key', () => {
    const key = 'language_model.layers.0.mlp.down_proj.weight';
    const named = (re: RegExp) => (e: unknown) => e instanceof TfvlmError && e.message.startsWith(key) && re.test(e.message);
    for (const bits of [2, 3, 5, 6, 16]) assert.throws(() => checkQuantization({ bits, groupSize: 64 }, 128, key), named(new RegExp(`bits ${bits} is not supported`)));
    for (const groupSize of [16, 48, 256]) assert.throws(() => checkQuantization({ bits: 4, groupSize }, 512, key), named(new RegExp(`group size ${groupSize} is not supported`)));
    assert.throws(() => checkQuantization({ bits: 4, groupSize: 64 }, 96, key), named(/a row of 96 values is not a whole number of groups of 64/));
    assert.throws(() => checkQuantization({ bits: 8, groupSize: 32 }, 0, key), named(/a row of 0 values/));
  });
});

describe('quantizeRows: hand-derived goldens', () => {
  // Case A, 4 bits, one group: max 0.9375, min 0.
  //   (0.9375 − 0) / 15 = 0.0625;  |0| > |0.9375| is false → scale = −0.0625, edge = 0.9375
  //   q0 = round(0.9375 / −0.0625) = −15 → scale = 0.9375 / −15 = −0.0625, bias = 0.9375
  //   code(w) = (w − 0.9375) / −0.0625:  0.9375 → 0, 0 → 15, 0.5 → 7,
  //   and three exact ties: 0.90625 → 0.5, 0.84375 → 1.5, 0.78125 → 2.5
  //   CPU rint (ties to even): 0, 2, 2;  GPU round (ties away from zero): 1, 2, 3
  const rowA = rowOf([0.9375, 0, 0.90625, 0.84375, 0.78125], 0.5);

  it('A, CPU: ties go to the even code', () => {
    const { codes, scales, biases } = quantize4(rowA, 'cpu');
    // codes 0, 15, 0, 2, 2, 7, 7, 7 → nibbles from the top: 7 7 7 2 2 0 F 0
    assert.deepEqual([...codes], [0x777220f0, 0x77777777, 0x77777777, 0x77777777]);
    assert.deepEqual([...scales], [-0.0625]);
    assert.deepEqual([...biases], [0.9375]);
    // w = −0.0625·q + 0.9375:  q 0 → 0.9375, 15 → 0, 2 → 0.8125, 7 → 0.5
    const w = dequantizeRows(codes, scales, biases, 1, 32, { bits: 4, groupSize: 32 });
    assert.deepEqual([...w.slice(0, 6)], [0.9375, 0, 0.9375, 0.8125, 0.8125, 0.5]);
  });

  it('A, GPU: ties go away from zero', () => {
    const { codes, scales, biases } = quantize4(rowA, 'gpu');
    // codes 0, 15, 1, 2, 3, 7, 7, 7 → 7 7 7 3 2 1 F 0
    assert.deepEqual([...codes], [0x777321f0, 0x77777777, 0x77777777, 0x77777777]);
    assert.deepEqual([...scales], [-0.0625]);
    assert.deepEqual([...biases], [0.9375]);
    const w = dequantizeRows(codes, scales, biases, 1, 32, { bits: 4, groupSize: 32 });
    assert.deepEqual([...w.slice(0, 6)], [0.9375, 0, 0.875, 0.8125, 0.75, 0.5]);
  });

  // Case B, 4 bits: max 0.53125 (= 17/32), min −0.40625, the rest 0.
  //   range 0.9375 / 15 = 0.0625; |−0.40625| > 0.53125 is false → scale −0.0625, edge 0.53125
  //   edge / scale = −8.5 exactly: q0 = −8 on the CPU (even), −9 on the GPU (away from zero)
  const rowB = rowOf([0.53125, -0.40625], 0);

  it('B, CPU: q0 = −8, zero lands exactly on a code', () => {
    const { codes, scales, biases } = quantize4(rowB, 'cpu');
    // scale = 0.53125 / −8 = −0.06640625 (17/256, exact)
    // −0.40625: (−0.9375) / −0.06640625 = 240/17 = 14.1176… → 14
    // 0:        (−0.53125) / −0.06640625 = 136/17 = 8 exactly → 8
    assert.deepEqual([...scales], [-0.06640625]);
    assert.deepEqual([...biases], [0.53125]);
    assert.deepEqual([...codes], [0x888888e0, 0x88888888, 0x88888888, 0x88888888]);
    // 14·−0.06640625 + 0.53125 = −0.3984375;  8·−0.06640625 + 0.53125 = 0 exactly
    const w = dequantizeRows(codes, scales, biases, 1, 32, { bits: 4, groupSize: 32 });
    assert.deepEqual([...w.slice(0, 3)], [0.53125, -0.3984375, 0]);
  });

  it('B, GPU: q0 = −9, and the clamped far end misses by more than scale / 2', () => {
    const { codes, scales, biases } = quantize4(rowB, 'gpu');
    // scale = f32(0.53125 / −9) = −f32(17/288) = 1.888…·2^-5: 17/288·2^28 = 15845148.44 → 15845148, so −15845148 / 2^28
    const scale = -15845148 / 2 ** 28;
    assert.deepEqual([...scales], [scale]);
    assert.deepEqual([...biases], [0.53125]);
    // −0.40625: −0.9375 / scale = 15.88… → 16 → clamped to 15;  0: 0.53125 / |scale| = 9.00000025 → f32 9 → 9
    assert.deepEqual([...codes], [0x999999f0, 0x99999999, 0x99999999, 0x99999999]);
    const w = dequantizeRows(codes, scales, biases, 1, 32, { bits: 4, groupSize: 32 });
    const err = Math.abs(w[1]! - -0.40625); // 15·scale + 0.53125 = −0.354…, off by 0.052
    assert.ok(err > Math.abs(scale) / 2 && err <= Math.abs(scale), `error ${err}, scale ${scale}`);
  });

  // Case C, a constant negative row, c = −2 (4 bits).
  //   CPU: min = max = −2, range 0 → scale floor EPS; |−2| > |−2| false → scale −EPS, edge = max = −2
  //        q0 = rint(f32(−2 / −EPS)): 19999999.77 → f32 (spacing 2) 20000000 → scale f32(−2 / 2e7) = −EPS
  //   GPU: max starts at 0, so max = 0, min = −2: range 2 → f32(2/15) = 0.13333334; |−2| > 0 → scale +0.13333334,
  //        edge −2; f32(−2 / 0.13333334) = −14.999999 → −15 → scale f32(−2 / −15) = 0.13333334
  //   Both: bias −2, every code 0, and −2 comes back exactly.
  const rowC = rowOf([], -2);

  it('C: a constant row dequantizes exactly, with a different scale per backend', () => {
    const cpu = quantize4(rowC, 'cpu');
    const gpu = quantize4(rowC, 'gpu');
    assert.deepEqual([...cpu.scales], [-EPS32]);
    assert.deepEqual([...gpu.scales], [Math.fround(2 / 15)]);
    for (const q of [cpu, gpu]) {
      assert.deepEqual([...q.biases], [-2]);
      assert.deepEqual([...q.codes], [0, 0, 0, 0]);
      assert.deepEqual([...dequantizeRows(q.codes, q.scales, q.biases, 1, 32, { bits: 4, groupSize: 32 })], [...rowC]);
    }
    // stored as bf16: −EPS bits 0x33D6BF95 → 0xB3D7 (low half 0xBF95 rounds up); 0.13333334 = 0x3E088889 → 0x3E09
    assert.deepEqual([...quantize4(rowC, 'cpu', 'BF16').scales], [-1.0011717677116394e-7]);
    assert.deepEqual([...quantize4(rowC, 'gpu', 'BF16').scales], [0.1337890625]);
  });

  // Case D, an all-zero group: range 0 → EPS, |0| > |0| false → scale −EPS, edge 0 → q0 = 0 →
  // bias 0, scale stays −EPS; codes (0 − 0) / −EPS = −0 → 0. Dequantized: −EPS·0 = −0, −0 + 0 = +0.
  it('D: an all-zero group keeps scale −1e-7 in its dtype and comes back as +0', () => {
    const zeros = new Float32Array(32);
    const expectedScale = { F32: -EPS32, BF16: -1.0011717677116394e-7, F16: -(2 ** -23) }; // f16: 1e-7 / 2^-24 = 1.68 → 2 subnormal units
    for (const backend of ['cpu', 'gpu'] as const) {
      for (const dtype of ['F32', 'BF16', 'F16'] as const) {
        const q = quantize4(zeros, backend, dtype);
        assert.deepEqual([...q.scales], [expectedScale[dtype]], `${backend} ${dtype}`);
        assert.ok(Object.is(q.biases[0], 0));
        assert.deepEqual([...q.codes], [0, 0, 0, 0]);
        const w = dequantizeRows(q.codes, q.scales, q.biases, 1, 32, { bits: 4, groupSize: 32, dtype });
        assert.ok(w.every((x) => Object.is(x, 0)), `${backend} ${dtype}: ${[...w]}`);
      }
    }
  });

  it('E: negative zero is a zero: an all −0 group is case D, and −0 beside 0.9375 is case A\'s 0', () => {
    for (const backend of ['cpu', 'gpu'] as const) {
      const allNegZero = quantize4(new Float32Array(32).fill(-0), backend);
      assert.deepEqual([...allNegZero.scales], [-EPS32]);
      assert.ok(Object.is(allNegZero.biases[0], 0), 'bias +0');
      const mixed = quantize4(rowOf([-0, 0.9375], 0.5), backend);
      // −0 − 0.9375 = −0.9375 → code 15 → 15·−0.0625 + 0.9375 = +0
      assert.deepEqual([...unpackCodes(mixed.codes, 4).slice(0, 3)], [15, 0, 7]);
      const w = dequantizeRows(mixed.codes, mixed.scales, mixed.biases, 1, 32, { bits: 4, groupSize: 32 });
      assert.ok(Object.is(w[0], 0));
    }
  });

  // Case F, one huge value among small ones (4 bits, group 64): 1e6 and k/1024 for k = −31..31.
  //   range f32(1e6 + 31/1024) = 1e6 (spacing 0.0625 there); f32(1e6 / 15) = 66666.6640625
  //   (spacing 2^-7); −scale, edge 1e6; f32(1e6 / 66666.6640625) = 15 → q0 = −15 → scale
  //   f32(1e6 / −15) = −66666.6640625, bias 1e6. Each small w: f32(w − 1e6) = −1e6 (|w| < 0.03125)
  //   → 15. Dequantized: f32(15·−66666.6640625) = f32(−999999.9609375) = −999999.9375, + 1e6 = 0.0625.
  it('F: a row with one huge value keeps the huge value exact and lumps the rest onto one code', () => {
    const small = Array.from({ length: 63 }, (_, i) => (i - 31) / 1024);
    const row = Float32Array.from([1e6, ...small]);
    for (const backend of ['cpu', 'gpu'] as const) {
      const q = quantizeRows(row, 1, 64, { bits: 4, groupSize: 64, scaleDType: 'F32', mlxBackend: backend });
      assert.deepEqual([...q.scales], [-66666.6640625]);
      assert.deepEqual([...q.biases], [1e6]);
      assert.deepEqual([...unpackCodes(q.codes, 4)], [0, ...Array<number>(63).fill(15)]);
      const w = dequantizeRows(q.codes, q.scales, q.biases, 1, 64, { bits: 4, groupSize: 64 });
      assert.deepEqual([...w], [1e6, ...Array<number>(63).fill(0.0625)]);
    }
  });

  // Case G, 8 bits: max 255/256, min 0 → (255/256) / 255 = 1/256; −scale, edge 255/256,
  // q0 = −255 → scale −1/256, bias 255/256; code(k/256) = 255 − k. The last value, 2^-9 = 0.5/256,
  // gives 254.5: 254 on the CPU, 255 on the GPU.
  it('G: 8-bit codes are the row\'s bytes in order', () => {
    const row = Float32Array.from([255 / 256, 0, ...Array.from({ length: 29 }, (_, k) => (k + 1) / 256), 2 ** -9]);
    const cpu = quantizeRows(row, 1, 32, { bits: 8, groupSize: 32, scaleDType: 'F32', mlxBackend: 'cpu' });
    const gpu = quantizeRows(row, 1, 32, { bits: 8, groupSize: 32, scaleDType: 'F32', mlxBackend: 'gpu' });
    for (const q of [cpu, gpu]) {
      assert.deepEqual([...q.scales], [-1 / 256]);
      assert.deepEqual([...q.biases], [255 / 256]);
      assert.equal(q.codes[0], 0xfdfeff00); // codes 0, 255, 254, 253
    }
    assert.equal(cpu.codes[7], 0xfee2e3e4); // codes 228, 227, 226, 254
    assert.equal(gpu.codes[7], 0xffe2e3e4); // … 255
  });
});

describe('dequantizeRows', () => {
  // One row, code 3 then zeros; scale 1.0078125 (1 + 2^-7), bias −0.0078125 (−2^-7).
  //   3·1.0078125 = 3.0234375 = 1.10000011b·2: to bf16 (7 fraction bits) it is a tie → even → 3.03125
  //   bf16: 3.03125 − 0.0078125 = 3.0234375 → the same tie → 3.03125
  //   float32: 3.0234375 − 0.0078125 = 3.015625 (what a single rounding of the exact result gives, too)
  it('multiplies, rounds, adds and rounds again, in the given dtype', () => {
    const codes = Uint32Array.of(3, 0, 0, 0);
    const scales = Float32Array.of(1.0078125);
    const biases = Float32Array.of(-0.0078125);
    const inBf16 = dequantizeRows(codes, scales, biases, 1, 32, { bits: 4, groupSize: 32, dtype: 'BF16' });
    const inF32 = dequantizeRows(codes, scales, biases, 1, 32, { bits: 4, groupSize: 32 });
    assert.equal(inBf16[0], 3.03125);
    assert.equal(inF32[0], 3.015625);
    assert.equal(inBf16[1], -0.0078125);
  });

  it('refuses codes, scales or biases that do not match the shape', () => {
    const opts = { bits: 4, groupSize: 32, where: 'model.x.weight' };
    assert.throws(() => dequantizeRows(new Uint32Array(3), new Float32Array(1), new Float32Array(1), 1, 32, opts), /^TfvlmError: model\.x\.weight: 3 words of 4-bit codes do not make 1 rows of 32/);
    assert.throws(() => dequantizeRows(new Uint32Array(8), new Float32Array(1), new Float32Array(2), 1, 64, opts), /1 scales and 2 biases for 2 groups/);
    assert.throws(() => dequantizeRows(new Uint32Array(4), new Float32Array(1), new Float32Array(1), 1, 32, { ...opts, bits: 3 }), TfvlmError);
  });
});

describe('quantizeRows: refusals', () => {
  const opts = { bits: 4, groupSize: 32, mlxBackend: 'gpu', where: 'lm_head.weight' } as const;
  it('refuses values that are not values of the weights\' dtype', () => {
    const row = rowOf([0.5, 1 + 2 ** -10], 0); // 1 + 2^-10 needs 10 fraction bits: fine in f16, not in bf16
    assert.throws(() => quantizeRows(row, 1, 32, { ...opts, scaleDType: 'BF16' }), /^TfvlmError: lm_head\.weight: value 1\.0009765625 at index 1 is not a BF16 value/);
    quantizeRows(row, 1, 32, { ...opts, scaleDType: 'F16' });
    assert.throws(() => quantizeRows(rowOf([70000], 0), 1, 32, { ...opts, scaleDType: 'F16' }), /value 70000 at index 0 is not a F16 value/);
  });

  it('refuses NaN, infinities and a range float32 cannot hold', () => {
    assert.throws(() => quantizeRows(rowOf([Number.NaN], 0), 1, 32, { ...opts, scaleDType: 'F32' }), /value NaN at index 0 is not finite/);
    assert.throws(() => quantizeRows(rowOf([], 0, 64).fill(-Infinity, 40, 41), 2, 32, { ...opts, scaleDType: 'F32' }), /value -Infinity at index 40/);
    const wide = new Float32Array(64);
    wide[33] = 3e38;
    wide[34] = -3e38;
    assert.throws(() => quantizeRows(wide, 1, 64, { ...opts, scaleDType: 'F32' }), /row 0, group 1: max − min overflows float32/);
  });

  it('refuses a value count that is not rows × cols', () => {
    assert.throws(() => quantizeRows(new Float32Array(64), 3, 32, { ...opts, scaleDType: 'F32' }), /64 values do not make 3 rows of 32/);
  });
});

// ---- random and adversarial rows against an independent transcription ----

const cell = new Float32Array(1);
/** float32 rounding through a typed-array store (the module under test uses Math.fround). */
const F = (x: number): number => {
  cell[0] = x;
  return cell[0];
};
const rintRef = (x: number): number => {
  const r = Math.round(x); // halves go up
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const roundAwayRef = (x: number): number => Math.sign(x) * Math.floor(Math.abs(x) + 0.5); // exact for float32 x

interface ReferenceGroup {
  codes: number[];
  scale: number;
  bias: number;
}

/** mlx/backend/cpu/quantized.cpp `quantize` and metal/kernels/quantized.h `affine_quantize`, one group. */
function referenceGroup(group: number[], bits: number, backend: MlxBackend): ReferenceGroup {
  const nBins = 2 ** bits - 1;
  const round = backend === 'cpu' ? rintRef : roundAwayRef;
  const lo = Math.min(...group);
  const hi = backend === 'cpu' ? Math.max(...group) : Math.max(0, ...group);
  const useMin = Math.abs(lo) > Math.abs(hi);
  let scale = Math.max(F(F(hi - lo) / nBins), F(1e-7)) * (useMin ? 1 : -1);
  const edge = useMin ? lo : hi;
  const q0 = round(F(edge / scale));
  let bias = 0;
  if (q0 !== 0) {
    scale = F(edge / q0);
    bias = edge;
  }
  const codes = group.map((w) => Math.min(nBins, Math.max(0, round(F(F(w - bias) / scale)))));
  return { codes, scale, bias };
}

function referencePack(codes: number[], bits: number): number[] {
  const perWord = 32 / bits;
  const words: number[] = [];
  for (let w = 0; w < codes.length / perWord; w++) {
    let word = 0;
    for (let k = 0; k < perWord; k++) word += codes[w * perWord + k]! * 2 ** (k * bits);
    words.push(word);
  }
  return words;
}

function roundTo(dtype: MlxFloatDType, x: number): number {
  return dtype === 'BF16' ? toBf16(x) : dtype === 'F16' ? toF16(x) : F(x);
}


/** Rows of several kinds: centred, all positive, all negative, with an outlier per group, tiny, and half zeros. */
function adversarialRows(cols: number, groupSize: number, dtype: MlxFloatDType, seed: number): Float32Array {
  const next = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const kinds: Array<(i: number) => number> = [
    () => 0.02 * normal(),
    () => 0.01 + Math.abs(0.02 * normal()),
    () => -0.01 - Math.abs(0.02 * normal()),
    (i) => (i % groupSize === 7 ? 50 : 1) * 0.02 * normal(),
    () => 1e-5 * normal(),
    (i) => (i % 2 === 0 ? 0 : 0.3 * normal()),
  ];
  const values = new Float32Array(kinds.length * cols);
  kinds.forEach((kind, r) => {
    for (let i = 0; i < cols; i++) values[r * cols + i] = roundTo(dtype, kind(i));
  });
  return values;
}

const UNIT_ROUNDOFF: Record<MlxFloatDType, number> = { F32: 2 ** -24, BF16: 2 ** -8, F16: 2 ** -11 };

describe('quantizeRows against an independent transcription, on random and adversarial rows', () => {
  for (const mlxBackend of ['cpu', 'gpu'] as const) {
    for (const bits of [4, 8]) {
      for (const groupSize of [32, 64, 128]) {
        for (const scaleDType of ['F32', 'BF16', 'F16'] as const) {
          it(`${mlxBackend}, ${bits} bits, groups of ${groupSize}, ${scaleDType}`, () => {
            const nBins = 2 ** bits - 1;
            const cols = 3 * groupSize;
            const values = adversarialRows(cols, groupSize, scaleDType, bits * 1000 + groupSize);
            const rows = values.length / cols;
            const q = quantizeRows(values, rows, cols, { bits, groupSize, scaleDType, mlxBackend });
            const codes = unpackCodes(q.codes, bits);
            const w = dequantizeRows(q.codes, q.scales, q.biases, rows, cols, { bits, groupSize, dtype: scaleDType });

            for (let g = 0; g < values.length / groupSize; g++) {
              const start = g * groupSize;
              const group = [...values.subarray(start, start + groupSize)];
              const ref = referenceGroup(group, bits, mlxBackend);
              // bit for bit: codes, packing, scale and bias (rounded to the dtype only when stored)
              assert.deepEqual([...codes.subarray(start, start + groupSize)], ref.codes, `group ${g} codes`);
              assert.ok(Object.is(q.scales[g], roundTo(scaleDType, ref.scale)), `group ${g} scale ${q.scales[g]} vs ${ref.scale}`);
              assert.ok(Object.is(q.biases[g], ref.bias), `group ${g} bias ${q.biases[g]} vs ${ref.bias}`);

              const sT = q.scales[g]!;
              const b = q.biases[g]!;
              for (let i = 0; i < groupSize; i++) {
                const code = ref.codes[i]!;
                const err = Math.abs(group[i]! - w[start + i]!);
                // |scale| / 2 inside the range; up to |scale| for a far end clamped to the last code
                // (edge / q0 may undershoot range / nBins; notes, section 4); plus the stored scale's
                // rounding times the code, plus the dequantization's two roundings.
                const bound =
                  (code === nBins ? 1 : 0.5) * Math.abs(ref.scale) * (1 + 2 ** -12) +
                  code * Math.abs(sT - ref.scale) +
                  2 * UNIT_ROUNDOFF[scaleDType] * (code * Math.abs(sT) + Math.abs(b)) +
                  (scaleDType === 'F16' ? 2 ** -24 : 0);
                assert.ok(err <= bound, `group ${g} value ${i}: |${group[i]} − ${w[start + i]}| = ${err} > ${bound}`);
                if (scaleDType === 'F32') assert.ok(err <= Math.abs(sT) + 1e-6, 'MLX\'s own test bound'); // python/tests/test_quantized.py
                // the endpoint MLX puts at code 0 (the bias) comes back exactly
                if (b !== 0 && group[i] === b) assert.ok(Object.is(w[start + i], group[i]), `group ${g} edge ${group[i]}`);
              }
            }
            assert.deepEqual([...q.codes], referencePack([...codes], bits));
          });
        }
      }
    }
  }

  it('the two backends differ only where the notes say: all-negative groups and exact ties', () => {
    // An all-negative group: the GPU spans [min, 0], the CPU [min, max].
    const negative = Float32Array.from({ length: 32 }, (_, i) => -0.25 - i / 128);
    const cpu = quantize4(negative, 'cpu');
    const gpu = quantize4(negative, 'gpu');
    // min −0.4921875 (= −63/128), max −0.25; the min is the edge on both.
    // CPU: f32(0.2421875 / 15) = 0.016145…; q0 = rint(−0.4921875 / 0.016145…) = rint(−30.48) = −30
    // GPU: max = 0: 0.4921875 / 15 = 0.0328…; q0 = −15 — twice as coarse
    assert.deepEqual([...cpu.scales], [Math.fround(0.4921875 / 30)]);
    assert.deepEqual([...gpu.scales], [Math.fround(0.4921875 / 15)]);
    assert.deepEqual([...cpu.biases], [-0.4921875]);
    assert.deepEqual([...gpu.biases], [-0.4921875]);
  });
});
