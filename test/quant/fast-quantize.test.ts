// quantizeRowsFast (the quantize_q4 / quantize_q8 kernels) against the reference quantizeRows with
// mlxBackend 'gpu', bit for bit: codes, scales and biases compared as bytes, on random rows (f32,
// bf16 and f16 values), adversarial rows (constant, zero and −0 groups, huge values beside tiny
// ones, all-negative groups, ties in both roundings, the 1e-7 floor) and refused inputs (the same
// TfvlmError message, word for word, wherever the first bad value is), on 1 and 2 threads and with
// arenas small enough that a matrix goes through in many chunks. No tfjs.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelArena, KernelPool, quantizedCodeBytes } from '../../src/kernels/index.ts';
import { quantizeRowsFast } from '../../src/quant/fast-quantize.ts';
import { quantizeRows, roundToDType, type MlxFloatDType, type QuantizeOptions } from '../../src/quant/mlx-affine.ts';
import { rng } from '../layers/util.ts';

const pools = { '1 thread': new KernelPool({ threads: 1 }), '2 threads': new KernelPool({ threads: 2 }) };
after(() => {
  for (const pool of Object.values(pools)) pool.close();
});


const FORMATS: [number, number][] = [4, 8].flatMap((bits) => [32, 64, 128].map((G) => [bits, G] as [number, number]));
const bytes = (a: Uint32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Quantizes with the reference and with the kernels (each pool; one arena for the whole matrix
 * and one that holds a single row, so every row is its own chunk) and asserts the same bytes.
 */
function assertSame(values: Float32Array, rows: number, cols: number, options: QuantizeOptions, what: string): void {
  const want = quantizeRows(values, rows, cols, options);
  for (const [name, pool] of Object.entries(pools)) {
    for (const maxArenaBytes of [undefined, 1]) {
      const before = pool.registeredArenas;
      const got = quantizeRowsFast(values, rows, cols, { ...options, pool, maxArenaBytes });
      assert.equal(pool.registeredArenas, before, 'the arena is disposed');
      const label = `${what}, ${name}, ${maxArenaBytes ? 'a row per chunk' : 'one chunk'}`;
      assert.deepEqual(bytes(got.codes), bytes(want.codes), `${label}: codes`);
      assert.deepEqual(bytes(got.scales), bytes(want.scales), `${label}: scales`);
      assert.deepEqual(bytes(got.biases), bytes(want.biases), `${label}: biases`);
    }
  }
}

/** The reference's error message for these inputs (it must throw). */
function referenceError(values: Float32Array, rows: number, cols: number, options: QuantizeOptions): string {
  try {
    quantizeRows(values, rows, cols, options);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('the reference accepted the input');
}

/** Asserts that the kernels refuse the input with the reference's message, and leak no arena. */
function assertSameError(values: Float32Array, rows: number, cols: number, options: QuantizeOptions, what: string): void {
  const message = referenceError(values, rows, cols, options);
  for (const [name, pool] of Object.entries(pools)) {
    for (const maxArenaBytes of [undefined, 1, 3 * 4 * cols]) {
      const before = pool.registeredArenas;
      assert.throws(() => quantizeRowsFast(values, rows, cols, { ...options, pool, maxArenaBytes }), { name: 'TfvlmError', message },
        `${what}, ${name}, ${maxArenaBytes ?? 'default'} bytes`);
      assert.equal(pool.registeredArenas, before, 'the arena is disposed after an error');
    }
  }
}

/** Gaussian-ish weights (std ~0.02) with a few outliers and some all-positive and all-negative groups. */
function randomRows(n: number, G: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = new Float32Array(n);
  for (let g = 0; g < n; g += G) {
    const kind = r();
    const shift = kind < 0.1 ? 0.05 : kind < 0.2 ? -0.05 : 0; // all positive / all negative groups
    for (let i = g; i < g + G; i++) {
      const gauss = (r() + r() + r() + r() - 2) * 0.035;
      v[i] = shift + gauss * (r() < 0.005 ? 40 : 1);
    }
  }
  return v;
}

/** f16 values across the whole range, subnormals included. */
function randomF16Values(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = Float32Array.from({ length: n }, () => (r() * 2 - 1) * 2 ** Math.floor(r() * 44 - 28));
  return roundToDType(v, 'F16');
}

describe('quantizeRowsFast matches quantizeRows (mlxBackend gpu) bit for bit', () => {
  for (const [bits, G] of FORMATS) {
    it(`q${bits}, G = ${G}: random rows of f32, bf16 and f16 values (1, 7, 129 rows)`, () => {
      for (const rows of [1, 7, 129]) {
        const cols = (rows === 7 ? 3 : 2) * G;
        const seed = rows * 100 + bits * 10 + G;
        const f32 = randomRows(rows * cols, G, seed);
        for (const scaleDType of ['F32', 'BF16', 'F16'] as MlxFloatDType[]) {
          const values = scaleDType === 'F32' ? f32 : roundToDType(f32.slice(), scaleDType);
          assertSame(values, rows, cols, { bits, groupSize: G, scaleDType, mlxBackend: 'gpu' }, `${rows} rows, ${scaleDType}`);
        }
        const wide = randomF16Values(rows * cols, seed + 1);
        assertSame(wide, rows, cols, { bits, groupSize: G, scaleDType: 'F16', mlxBackend: 'gpu' }, `${rows} rows, f16 over its range`);
        // Values over many scales of magnitude: every group's scale and bias differ a lot.
        const r = rng(seed + 2);
        const spread = Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 2 ** Math.floor(r() * 200 - 100));
        assertSame(spread, rows, cols, { bits, groupSize: G, scaleDType: 'F32', mlxBackend: 'gpu' }, `${rows} rows, wide exponents`);
      }
    });

    it(`q${bits}, G = ${G}: adversarial groups`, () => {
      const nBins = 2 ** bits - 1;
      const groups: number[][] = [];
      const fill = (f: (i: number) => number) => groups.push(Array.from({ length: G }, (_, i) => f(i)));
      for (const c of [0, -0, 1, -1, 0.375, -0.375, 1e-30, -1e-30, 3e38, -3e38, 65504, 2 ** -24]) fill(() => c); // constant
      fill((i) => (i % 2 ? 0 : -0)); // zeros of both signs
      fill((i) => (i === 5 ? 3e38 : 1e-6 * (i % 7))); // one huge value among tiny ones
      fill((i) => (i === 9 ? -3e38 : -1e-6 * (i % 5)));
      fill((i) => (i === 0 ? 3e38 : i === 1 ? -1e-38 : 2 ** -140)); // huge, tiny, an f32 denormal
      fill((i) => -0.001 - 0.01 * (i / G)); // all negative: the GPU range is [min, 0]
      fill((i) => 0.001 + 0.01 * (i / G)); // all positive
      fill((i) => -1e-9 * (i + 1)); // range under the 1e-7 floor: q0 = 0, bias 0
      fill((i) => 5e-8 * ((i % 3) - 1));
      // Ties in the codes: min 0, max n_bins makes scale −1 and bias n_bins, so w = k + 0.5 sits on a tie.
      fill((i) => (i === 0 ? 0 : i === 1 ? nBins : (i % nBins) + 0.5));
      fill((i) => (i === 0 ? 0 : i === 1 ? -nBins : -((i % nBins) + 0.5))); // the same, negative (scale +1)
      // Ties in q0 = round(edge / scale): min −(k + 0.5), max n_bins − (k + 0.5) gives range n_bins,
      // |scale| 1 and edge / scale = −(k + 0.5) (ties away from zero: −(k + 1)).
      for (const k of [Math.floor(nBins / 2), Math.floor(nBins / 2) + 1, nBins - 2]) {
        fill((i) => (i === 0 ? -(k + 0.5) : i === 1 ? nBins - (k + 0.5) : -(k + 0.5) + (i % (nBins + 1))));
        fill((i) => (i === 0 ? k + 0.5 : i === 1 ? -(nBins - (k + 0.5)) : k + 0.5 - (i % (nBins + 1))));
      }
      // Scaled ties: the same pattern times powers of two stays exact.
      for (const s of [2 ** -20, 2 ** -3, 2 ** 10]) fill((i) => s * (i === 0 ? 0 : i === 1 ? nBins : (i % nBins) + 0.5));
      const values = Float32Array.from(groups.flat());
      // As one row, as rows of one group, and as rows of two groups (the last one padded by a copy of the first).
      const n = groups.length;
      assertSame(values, 1, n * G, { bits, groupSize: G, scaleDType: 'F32', mlxBackend: 'gpu' }, 'one row');
      assertSame(values, n, G, { bits, groupSize: G, scaleDType: 'F32', mlxBackend: 'gpu' }, 'a group per row');
      const [first] = groups;
      assert.ok(first, 'no groups');
      const even = Float32Array.from([...groups.flat(), ...(n % 2 ? first : [])]);
      assertSame(even, Math.ceil(n / 2), 2 * G, { bits, groupSize: G, scaleDType: 'F32', mlxBackend: 'gpu' }, 'two groups per row');
    });
  }

  it('takes an empty matrix, and runs the reference for mlxBackend cpu', () => {
    const empty = quantizeRowsFast(new Float32Array(0), 0, 64, { bits: 4, groupSize: 64, scaleDType: 'F32', mlxBackend: 'gpu' });
    assert.equal(empty.codes.length + empty.scales.length + empty.biases.length, 0);
    const values = randomRows(7 * 64, 64, 3);
    const options: QuantizeOptions = { bits: 4, groupSize: 32, scaleDType: 'F32', mlxBackend: 'cpu' };
    const want = quantizeRows(values, 7, 64, options);
    const got = quantizeRowsFast(values, 7, 64, options);
    assert.deepEqual(bytes(got.codes), bytes(want.codes));
    assert.deepEqual(bytes(got.scales), bytes(want.scales));
  });
});

describe('quantizeRowsFast refuses what quantizeRows refuses, with the same message', () => {
  const rows = 9, cols = 128;
  const base = (seed: number) => randomRows(rows * cols, 32, seed);
  for (const [bits, G] of [[4, 32], [8, 128]] as [number, number][]) {
    const options: QuantizeOptions = { bits, groupSize: G, scaleDType: 'F32', mlxBackend: 'gpu', where: 'model.layers.0.mlp.up_proj.weight' };
    it(`q${bits}, G = ${G}: NaN and ±Infinity, first, in the middle, last, and after a range overflow`, () => {
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of [0, 5 * cols + 17, rows * cols - 1]) {
          const v = base(at);
          v[at] = bad;
          assertSameError(v, rows, cols, options, `${bad} at ${at}`);
        }
        // An overflowing group in row 1, the non-finite value in row 7: the reference reports the value.
        const v = base(1);
        v[cols + 3] = 3e38;
        v[cols + 4] = -3e38;
        v[7 * cols + 100] = bad;
        assertSameError(v, rows, cols, options, `${bad} after an overflow`);
      }
    });

    it(`q${bits}, G = ${G}: a group whose max − min overflows float32`, () => {
      for (const [row, k] of [[0, 0], [4, G + 1], [8, cols - 1]] as const) {
        const v = base(row);
        v[row * cols + k] = -3.4e38;
        v[row * cols + (k % G === 0 ? k + 1 : k - 1)] = 3.4e38;
        v[8 * cols + 5] = 3e38; // and a later group: the first one is reported
        v[8 * cols + 6] = -3e38;
        assertSameError(v, rows, cols, options, `row ${row}, k ${k}`);
      }
      // An all-negative group spans [min, 0] on the GPU: −3.4e38 alone does not overflow.
      const v = base(2);
      v.fill(-3.4e38, 2 * cols, 2 * cols + G);
      assertSame(v, rows, cols, options, 'an all −3.4e38 group');
    });
  }

  it('values that are not values of scaleDType (bf16, f16), in kernel order and the reference\'s', () => {
    const options = (scaleDType: MlxFloatDType): QuantizeOptions => ({ bits: 4, groupSize: 64, scaleDType, mlxBackend: 'gpu' });
    const cols = 128;
    for (const scaleDType of ['BF16', 'F16'] as MlxFloatDType[]) {
      // Plain f32 values: the first row is already wrong.
      assertSameError(randomRows(5 * cols, 64, 1), 5, cols, options(scaleDType), `f32 values as ${scaleDType}`);
      const v = roundToDType(randomRows(5 * cols, 64, 2), scaleDType);
      v[3 * cols + 70] = 0.1; // not a bf16 or f16 value
      assertSameError(v, 5, cols, options(scaleDType), `one bad value as ${scaleDType}`);
      v[4 * cols] = NaN; // a later NaN is reported first (the reference checks finiteness first)
      assertSameError(v, 5, cols, options(scaleDType), `a bad value, then a NaN, as ${scaleDType}`);
    }
    // f16's edges: 65504 and the subnormals 2^-24 · m are values; 65520, 2^-25, 2^-14 + 2^-25 and f32 denormals are not.
    const edges = [65504, -65504, 2 ** -24, -3 * 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 2 ** -14 + 2 ** -24, 0, -0, 1 + 2 ** -10];
    const good = Float32Array.from({ length: 2 * cols }, (_, i) => edges[i % edges.length]!);
    assertSame(good, 2, cols, options('F16'), 'f16 edge values');
    for (const bad of [65505, 65520, 1e9, 2 ** -25, 3 * 2 ** -25, 2 ** -14 + 2 ** -25, 2 ** -140, 1 + 2 ** -11]) {
      const v = good.slice();
      v[cols + 3] = bad;
      assertSameError(v, 2, cols, options('F16'), `${bad} as F16`);
    }
    const bv = roundToDType(good.slice(), 'BF16');
    bv[cols + 9] = 1 + 2 ** -10;
    assertSameError(bv, 2, cols, options('BF16'), '1 + 2^-10 as BF16');
  });

  it('refuses shapes as the reference does', () => {
    const options: QuantizeOptions = { bits: 4, groupSize: 64, scaleDType: 'F32', mlxBackend: 'gpu' };
    assert.throws(() => quantizeRowsFast(new Float32Array(96), 1, 96, options), { message: referenceError(new Float32Array(96), 1, 96, options) });
    assert.throws(() => quantizeRowsFast(new Float32Array(128), 3, 64, options), { message: referenceError(new Float32Array(128), 3, 64, options) });
    assert.throws(() => quantizeRowsFast(new Float32Array(64), 1, 64, { ...options, bits: 3 }), /bits 3 is not supported/);
  });
});

describe('KernelArena.quantizeRows', () => {
  const pool = pools['2 threads'];
  it('checks its regions like packQuantized', () => {
    const arena = KernelArena.create(1 << 16, { pool });
    try {
      const [N, K] = [4, 128];
      const src = 0, codes = 4 * N * K, scales = codes + quantizedCodeBytes(8, N, K), biases = scales + 64;
      assert.equal(arena.quantizeRows(4, 32, src, N, K, codes, scales, biases), -1);
      assert.throws(() => arena.quantizeRows(4, 32, src, N, K, 16, scales, biases), /codes .* overlaps source/);
      assert.throws(() => arena.quantizeRows(4, 32, src, N, K, codes, scales, scales), /scales .* overlaps biases/);
      assert.throws(() => arena.quantizeRows(4, 32, src, N, K, codes, scales + 4, biases), /multiple of 16/);
      assert.throws(() => arena.quantizeRows(4, 32, src, N, K, codes, scales, 1 << 16), /do not fit/);
      assert.throws(() => arena.quantizeRows(4, 48 as 32, src, N, K, codes, scales, biases), /group size 48/);
      assert.throws(() => arena.quantizeRows(4, 32, src, N, 100, codes, scales, biases), /multiple of the group size/);
      assert.throws(() => arena.quantizeRows(4, 32, src, N, K, codes, scales, biases, 'toString' as 'f32'), /values must be 'f32', 'bf16' or 'f16'/);
      // The first bad row of the call, whichever thread meets it.
      const v = arena.f32(src, N * K);
      v.fill(0.5);
      v[2 * K + 7] = NaN;
      v[3 * K] = Infinity;
      assert.equal(arena.quantizeRows(8, 128, src, N, K, codes, scales, biases), 2);
      v[2 * K + 7] = 0.25;
      assert.equal(arena.quantizeRows(8, 128, src, N, K, codes, scales, biases, 'bf16'), 3);
      v[3 * K] = 0.1;
      assert.equal(arena.quantizeRows(8, 128, src, N, K, codes, scales, biases, 'bf16'), 3);
      assert.equal(arena.quantizeRows(8, 128, src, N, K, codes, scales, biases, 'f32'), -1);
    } finally {
      arena.dispose();
    }
    assert.equal(pool.registeredArenas, 0);
  });
});
