// matvecRows / matvecRowsQuantized (linear.c: matvec_rows_<dt>, matvec_rows_q<b>) and
// packedMatvecRows: M rows over one weight in one pass, for continuous batching. The contract is
// bitwise: every row's output (padding included) is the bits the one-row kernel (matvec /
// matvecQuantized) gives for that row alone, whatever M, the strides, the bias or the thread count,
// so a sequence's greedy tokens do not depend on what else is in the batch. Compared as Uint32
// bits; and against a float64 reference within float32 rounding (TOLERANCE.float32Dot, as
// linear.test.ts and quantized.test.ts bound the one-row kernels).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  KernelArena, KernelPool, QUANT_BITS, QUANT_GROUP_SIZES, packedBytes, paddedColumns, quantizedBytes,
  type QuantBits, type QuantGroupSize, type WeightDType,
} from '../../src/kernels/index.ts';
import { MATVEC_INPUT_BYTES, matvecInputBytes } from '../../src/kernels/module.ts';
import { linearReference, quantizedLinearReference, type QuantizedMatrix } from '../../src/kernels/reference.ts';
import { packedMatmul, packedMatvecRows } from '../../src/layers/packed-matmul.ts';
import type { PackedMatrix } from '../../src/layers/weight-store.ts';
import { assertDotClose, TOLERANCE } from '../helpers/compare.ts';
import { Bump, DTYPES, onBareMemory, randomF32, randomQuantized, randomWeights } from './util.ts';

const ROWS = [1, 2, 3, 5, 8, 17];
/** [N, K] for the float dtypes: N off multiples of 8 and 16, K odd, small to largish (the last is split over threads). */
const FLOAT_SHAPES: [number, number][] = [[1, 1], [7, 3], [9, 17], [33, 100], [61, 129], [1003, 257]];
/** [N, K/G] for the quantized formats. */
const QUANT_SHAPES: [number, number][] = [[1, 1], [9, 2], [33, 3], [1003, 4]];
const FORMATS = QUANT_BITS.flatMap((bits) => QUANT_GROUP_SIZES.map((G) => [bits, G] as [QuantBits, QuantGroupSize]));

// One pool of each size; 2 threads even on one core (chunks are claimed in any order).
const pools = { 1: new KernelPool({ threads: 1 }), 2: new KernelPool({ threads: 2, spinMicros: 50 }) };
const THREADS = [1, 2] as const;
const arenas = { 1: KernelArena.create(24 << 20, { pool: pools[1] }), 2: KernelArena.create(24 << 20, { pool: pools[2] }) };
const mems = { 1: new Bump(arenas[1]), 2: new Bump(arenas[2]) };
after(() => {
  for (const t of THREADS) {
    arenas[t].dispose();
    pools[t].close();
  }
});

/** The bits of a float array. */
const bits32 = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);

/** Fails unless got and want hold the same bits, element for element. */
function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const a = bits32(got), b = bits32(want);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      assert.fail(`${what}: element ${i}: ${got[i]} (0x${a[i]!.toString(16)}) is not the one-row kernel's ${want[i]} (0x${b[i]!.toString(16)})`);
    }
  }
}

/** Rows of K values copied into the arena at row stride ldx (floats); returns the offset. */
function putRows(mem: Bump, xs: Float32Array, M: number, K: number, ldx: number): number {
  const at = mem.take(4 * ((M - 1) * ldx + K));
  const v = mem.arena.f32(at, (M - 1) * ldx + K);
  v.fill(NaN); // the gaps between rows must not be read
  for (let r = 0; r < M; r++) v.set(xs.subarray(r * K, (r + 1) * K), r * ldx);
  return at;
}

/** Strides for case i: packed rows, or rows with gaps (x: K + 3, y: padded + 8). */
function strides(i: number, K: number, N: number): { ldx: number; ldy: number } {
  return i % 2 ? { ldx: K + 3, ldy: paddedColumns(N) + 8 } : { ldx: K, ldy: paddedColumns(N) };
}

/**
 * y of M rows at stride ldy, NaN-filled; after the call, checkRows compares each row's padded
 * columns with the one-row results and the gaps with their NaN.
 */
function takeY(mem: Bump, M: number, padded: number, ldy: number): number {
  const at = mem.take(4 * ((M - 1) * ldy + padded));
  mem.arena.f32(at, (M - 1) * ldy + padded).fill(NaN);
  return at;
}
function checkRows(arena: KernelArena, y: number, M: number, padded: number, ldy: number, oneRow: Float32Array[], what: string): void {
  for (let r = 0; r < M; r++) {
    assertSameBits(arena.f32(y + 4 * r * ldy, padded), oneRow[r]!, `${what} row ${r}`);
    if (r < M - 1) assert.ok(arena.f32(y + 4 * (r * ldy + padded), ldy - padded).every(Number.isNaN), `${what}: wrote between rows ${r} and ${r + 1}`);
  }
}

/** A quantized matvec's rows against quantizedLinearReference (quantized.test.ts's bound). */
function assertQuantizedClose(arena: KernelArena, y: number, ldy: number, ref: ReturnType<typeof quantizedLinearReference>, M: number, N: number, K: number, what: string): void {
  for (let r = 0; r < M; r++) {
    const row = arena.f32(y + 4 * r * ldy, N);
    for (let n = 0; n < N; n++) {
      const i = r * N + n;
      const bound = (K + 4) * TOLERANCE.float32Dot.rel * ref.magnitude[i]! + ref.inputRounding[i]!;
      const d = Math.abs(row[n]! - ref.y[i]!);
      assert.ok(d <= bound, `${what} row ${r}: |Δ| ${d.toExponential(3)} at ${n} exceeds ${bound.toExponential(3)}`);
    }
  }
}

/** Packs a float W into both arenas at the same offset (the bump allocators move together). */
function packFloat(dtype: WeightDType, raw: Float32Array | Uint16Array, N: number, K: number): number {
  let w = -1;
  for (const t of THREADS) {
    const src = mems[t].put(raw);
    const at = mems[t].take(packedBytes(dtype, N, K));
    arenas[t].pack(dtype, src, at, N, K);
    assert.ok(w < 0 || w === at);
    w = at;
  }
  return w;
}
function packQuant(m: QuantizedMatrix): number {
  let w = -1;
  for (const t of THREADS) {
    const mem = mems[t];
    const codes = mem.put(m.codes), scales = mem.put(m.scales), biases = mem.put(m.biases);
    const at = mem.take(quantizedBytes(m.bits, m.groupSize, m.N, m.K));
    arenas[t].packQuantized(m.bits, m.groupSize, codes, scales, biases, at, m.N, m.K);
    assert.ok(w < 0 || w === at);
    w = at;
  }
  return w;
}
const resetAll = () => {
  for (const t of THREADS) mems[t].reset();
};

/** The one-row kernel's padded y for each row, on one thread. */
function oneRowFloat(dtype: WeightDType, w: number, xs: Float32Array, M: number, N: number, K: number, b: number | undefined): Float32Array[] {
  const arena = arenas[1], mem = mems[1];
  const x = mem.take(4 * K), y = mem.take(4 * paddedColumns(N));
  return Array.from({ length: M }, (_, r) => {
    arena.f32(x, K).set(xs.subarray(r * K, (r + 1) * K));
    arena.f32(y, paddedColumns(N)).fill(NaN);
    arena.matvec(dtype, w, x, y, N, K, b);
    return arena.f32(y, paddedColumns(N)).slice();
  });
}
function oneRowQuant(m: QuantizedMatrix, w: number, xs: Float32Array, M: number, b: number | undefined): Float32Array[] {
  const { N, K } = m;
  const arena = arenas[1], mem = mems[1];
  const x = mem.take(4 * K), y = mem.take(4 * paddedColumns(N));
  return Array.from({ length: M }, (_, r) => {
    arena.f32(x, K).set(xs.subarray(r * K, (r + 1) * K));
    arena.f32(y, paddedColumns(N)).fill(NaN);
    arena.matvecQuantized(m.bits, m.groupSize, w, x, y, N, K, b);
    return arena.f32(y, paddedColumns(N)).slice();
  });
}

describe('matvecRows', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: every row bit for bit the one-row matvec's, M ∈ {${ROWS}}, 1 and 2 threads, ± bias, packed and gapped strides; within float32 rounding of float64`, () => {
      let i = 0;
      for (const [N, K] of FLOAT_SHAPES) {
        resetAll();
        const raw = randomWeights(dtype, N * K, 31 * N + K);
        const w = packFloat(dtype, raw, N, K);
        const padded = paddedColumns(N);
        const bias = randomF32(padded, 5 * N + K);
        const bAt = mems[1].put(bias);
        assert.equal(mems[2].put(bias), bAt);
        for (const M of ROWS) {
          const xs = randomF32(M * K, 7 * M + N + 3 * K);
          for (const withBias of [false, true]) {
            const b = withBias ? bAt : undefined;
            const mark = mems[1].take(0);
            const want = oneRowFloat(dtype, w, xs, M, N, K, b);
            const ref = linearReference(dtype, raw, xs, M, N, K, withBias ? bias : undefined);
            for (const t of THREADS) {
              const { ldx, ldy } = strides(i++, K, N);
              const mem = mems[t], arena = arenas[t];
              const x = putRows(mem, xs, M, K, ldx);
              const y = takeY(mem, M, padded, ldy);
              arena.matvecRows(dtype, w, x, y, M, N, K, b, { ldx, ldy });
              const what = `${dtype} [${N}, ${K}] M ${M} bias ${withBias} threads ${t} ldx ${ldx} ldy ${ldy}`;
              checkRows(arena, y, M, padded, ldy, want, what);
              for (let r = 0; r < M; r++) {
                assertDotClose(arena.f32(y + 4 * r * ldy, N), ref.y.subarray(r * N, (r + 1) * N), ref.magnitude.subarray(r * N, (r + 1) * N), K,
                  undefined, `${what} row ${r} vs float64`);
              }
            }
            // Keep the two bump allocators level for the next packed weight.
            for (const t of THREADS) mems[t].reset();
            for (const t of THREADS) mems[t].take(mark);
          }
        }
      }
    });
  }

  it('is not the blocked matmul: matmul\'s rows differ from the one-row bits (while within rounding), so the bitwise check tells them apart', () => {
    const [M, N, K] = [8, 64, 1000];
    let differing = 0;
    for (const dtype of DTYPES) {
      resetAll();
      const raw = randomWeights(dtype, N * K, 77);
      const w = packFloat(dtype, raw, N, K);
      const xs = randomF32(M * K, 78);
      const want = oneRowFloat(dtype, w, xs, M, N, K, undefined);
      const arena = arenas[2], mem = mems[2];
      const x = putRows(mem, xs, M, K, K);
      const y = takeY(mem, M, N, N);
      arena.matvecRows(dtype, w, x, y, M, N, K);
      checkRows(arena, y, M, N, N, want, `${dtype} rows`);
      const ym = mem.take(4 * M * N);
      arena.matmul(dtype, w, x, ym, M, N, K);
      const ref = linearReference(dtype, raw, xs, M, N, K);
      assertDotClose(arena.f32(ym, M * N), ref.y, ref.magnitude, K, undefined, `${dtype} matmul vs float64`);
      // Rows computed by the blocked matmul would fail the check every other test makes.
      assert.throws(() => checkRows(arena, ym, M, N, N, want, `${dtype} matmul`), /is not the one-row kernel's/);
      const mm = bits32(arena.f32(ym, M * N)), one = want.flatMap((row) => [...bits32(row)]);
      for (let e = 0; e < M * N; e++) if (mm[e] !== one[e]) differing++;
    }
    // Summed in another order, most of matmul's outputs land on another float.
    assert.ok(differing > (3 * M * N) / 2, `only ${differing} of ${3 * M * N} matmul outputs differ from the one-row kernel's`);
  });

  it('refuses a y stride below the padded row, overlapping x and y, bad M and strides, regions that do not fit', () => {
    resetAll();
    const arena = arenas[1];
    const [N, K] = [9, 8]; // padded 16
    const w = mems[1].take(packedBytes('f32', N, K));
    const x = mems[1].take(4 * 3 * K), y = mems[1].take(4 * 3 * 16);
    assert.throws(() => arena.matvecRows('f32', w, x, y, 3, N, K, undefined, { ldy: 9 }), /ldy = 9.*at least 16/);
    assert.throws(() => arena.matvecRows('f32', w, x, y, 3, N, K, undefined, { ldx: 7 }), /ldx = 7.*at least 8/);
    assert.throws(() => arena.matvecRows('f32', w, x, y, 0, N, K), /M = 0/);
    assert.throws(() => arena.matvecRows('f32', w, x, x + 16, 2, N, K), /overlaps x/);
    assert.throws(() => arena.matvecRows('f32', w, x, arena.bytes - 4 * 16, 2, N, K), /matvecRows y/);
    arena.matvecRows('f32', w, x, arena.bytes - 4 * 32, 2, N, K); // exactly fits
  });
});

describe('matvecRowsQuantized', () => {
  for (const [bits, G] of FORMATS) {
    it(`q${bits}, G = ${G}: every row bit for bit the one-row matvecQuantized's, M ∈ {${ROWS}}, 1 and 2 threads, ± bias, strides; within the matvec's bound of float64`, () => {
      let i = 0;
      for (const [N, groups] of QUANT_SHAPES) {
        const K = groups * G;
        resetAll();
        const m = randomQuantized(bits, G, N, K, 13 * N + K + bits);
        const w = packQuant(m);
        const padded = paddedColumns(N);
        const bias = randomF32(padded, 3 * N + K);
        const bAt = mems[1].put(bias);
        assert.equal(mems[2].put(bias), bAt);
        for (const M of ROWS) {
          const xs = randomF32(M * K, 5 * M + N + K);
          for (const withBias of [false, true]) {
            const b = withBias ? bAt : undefined;
            const mark = mems[1].take(0);
            const want = oneRowQuant(m, w, xs, M, b);
            const ref = quantizedLinearReference(m, xs, M, withBias ? bias : undefined);
            for (const t of THREADS) {
              const { ldx, ldy } = strides(i++, K, N);
              const mem = mems[t], arena = arenas[t];
              const x = putRows(mem, xs, M, K, ldx);
              const y = takeY(mem, M, padded, ldy);
              // Every other case puts the prepared inputs in a region of the caller's.
              const xin = i % 4 < 2 ? undefined : mem.take(M * matvecInputBytes(K, G));
              arena.matvecRowsQuantized(bits, G, w, x, y, M, N, K, b, { ldx, ldy, xin });
              const what = `q${bits}/${G} [${N}, ${K}] M ${M} bias ${withBias} threads ${t} ldx ${ldx} ldy ${ldy} xin ${xin !== undefined}`;
              checkRows(arena, y, M, padded, ldy, want, what);
              assertQuantizedClose(arena, y, ldy, ref, M, N, K, what);
            }
            for (const t of THREADS) mems[t].reset();
            for (const t of THREADS) mems[t].take(mark);
          }
        }
      }
    });
  }

  it('takes rows in passes when their prepared inputs outgrow the arena\'s region (K = 8192, G = 32: 16 rows a pass), same bits', () => {
    resetAll();
    const [bits, G, N, K, M] = [4, 32, 9, 8192, 37] as const;
    assert.ok(M * matvecInputBytes(K, G) > 2 * MATVEC_INPUT_BYTES);
    const m = randomQuantized(bits, G, N, K, 99);
    const w = packQuant(m);
    const xs = randomF32(M * K, 100);
    const want = oneRowQuant(m, w, xs, M, undefined);
    for (const t of THREADS) {
      const arena = arenas[t], mem = mems[t];
      const x = putRows(mem, xs, M, K, K);
      const y = takeY(mem, M, 16, 16);
      arena.matvecRowsQuantized(bits, G, w, x, y, M, N, K);
      checkRows(arena, y, M, 16, 16, want, `q4/32 K 8192 M ${M} threads ${t}`);
    }
  });

  it('is not the blocked matmulQuantized: its rows differ from the one-row bits', () => {
    resetAll();
    const [M, N, K] = [8, 64, 512];
    const m = randomQuantized(4, 64, N, K, 5);
    const w = packQuant(m);
    const xs = randomF32(M * K, 6);
    const want = oneRowQuant(m, w, xs, M, undefined);
    const arena = arenas[2], mem = mems[2];
    const x = putRows(mem, xs, M, K, K);
    const y = takeY(mem, M, N, N);
    arena.matvecRowsQuantized(4, 64, w, x, y, M, N, K);
    checkRows(arena, y, M, N, N, want, 'q4/64 rows');
    const ym = mem.take(4 * M * N);
    arena.matmulQuantized(4, 64, w, x, ym, M, N, K);
    assert.throws(() => checkRows(arena, ym, M, N, N, want, 'q4/64 matmul'), /is not the one-row kernel's/);
    const mm = bits32(arena.f32(ym, M * N)), one = want.flatMap((row) => [...bits32(row)]);
    let differing = 0;
    for (let e = 0; e < M * N; e++) if (mm[e] !== one[e]) differing++;
    assert.ok(differing > (M * N) / 2, `only ${differing} of ${M * N} matmulQuantized outputs differ`);
  });

  it('refuses a caller region for the prepared inputs that overlaps or does not fit', () => {
    resetAll();
    const arena = arenas[1];
    const [N, K, G] = [9, 64, 32] as const;
    const w = mems[1].take(quantizedBytes(4, G, N, K));
    const x = mems[1].take(4 * 2 * K), y = mems[1].take(4 * 2 * 16), xin = mems[1].take(2 * matvecInputBytes(K, G));
    arena.matvecRowsQuantized(4, G, w, x, y, 2, N, K, undefined, { xin });
    assert.throws(() => arena.matvecRowsQuantized(4, G, w, x, y, 2, N, K, undefined, { xin: y }), /overlaps/);
    assert.throws(() => arena.matvecRowsQuantized(4, G, w, x, y, 2, N, K, undefined, { xin: arena.bytes - 64 }), /matvecRowsQuantized xin/);
    assert.throws(() => arena.matvecRowsQuantized(4, G, w, x, y, 2, N, 48), /multiple of the group size 32/);
  });
});

describe('packedMatvecRows', () => {
  /** A PackedMatrix over weights at w with a scratch of `rows` rows' worth at `scratch`. */
  const matrix = (arena: KernelArena, format: PackedMatrix['format'], w: number, N: number, K: number, scratch: number, scratchBytes: number, biasOffset?: number): PackedMatrix => ({
    arena, offset: w, format, rows: N, cols: K, biasOffset, scratch: { offset: scratch, bytes: scratchBytes },
  });

  it('gives each row the bits of a one-row packedMatmul, with more rows than the scratch holds at once (chunks of 3)', () => {
    const cases: { format: PackedMatrix['format']; N: number; K: number }[] = [
      { format: { kind: 'float', dtype: 'f32' }, N: 61, K: 129 },
      { format: { kind: 'float', dtype: 'bf16' }, N: 33, K: 100 },
      { format: { kind: 'float', dtype: 'f16' }, N: 1003, K: 17 },
      { format: { kind: 'quantized', bits: 4, groupSize: 64 }, N: 61, K: 192 },
      { format: { kind: 'quantized', bits: 8, groupSize: 32 }, N: 9, K: 64 },
    ];
    const M = 17;
    for (const { format, N, K } of cases) {
      for (const t of THREADS) {
        const arena = arenas[t], mem = new Bump(arena);
        let w: number;
        let perRow = 4 * K + 4 * paddedColumns(N) + 128;
        if (format.kind === 'float') {
          const src = mem.put(randomWeights(format.dtype, N * K, N + K));
          w = mem.take(packedBytes(format.dtype, N, K));
          arena.pack(format.dtype, src, w, N, K);
        } else {
          const q = randomQuantized(format.bits, format.groupSize, N, K, N + K);
          const codes = mem.put(q.codes), scales = mem.put(q.scales), biases = mem.put(q.biases);
          w = mem.take(quantizedBytes(format.bits, format.groupSize, N, K));
          arena.packQuantized(format.bits, format.groupSize, codes, scales, biases, w, N, K);
          perRow += matvecInputBytes(K, format.groupSize);
        }
        const bias = mem.put(randomF32(paddedColumns(N), 3));
        // Room for 3 rows (and for the one-row path's single row).
        const scratchBytes = 3 * perRow + 128;
        const scratch = mem.take(scratchBytes);
        const m = matrix(arena, format, w, N, K, scratch, scratchBytes, bias);
        const xs = randomF32(M * K, 4);
        const got = packedMatvecRows(m, xs, M);
        assert.equal(got.length, M * N);
        const what = `${format.kind === 'float' ? format.dtype : `q${format.bits}/${format.groupSize}`} [${N}, ${K}] threads ${t}`;
        for (let r = 0; r < M; r++) {
          const one = packedMatmul(m, xs.subarray(r * K, (r + 1) * K), 1);
          assertSameBits(got.subarray(r * N, (r + 1) * N), one, `${what} row ${r}`);
        }
        // Into a caller's array, and the same bits with the scratch holding every row at once.
        const out = new Float32Array(M * N).fill(NaN);
        const wholeBytes = M * perRow + 1024;
        const whole = matrix(arena, format, w, N, K, mem.take(wholeBytes), wholeBytes, bias);
        assert.equal(packedMatvecRows(whole, xs, M, out), out);
        assertSameBits(out, got, `${what}, unchunked`);
      }
    }
  });

  it('refuses an input of the wrong length or a scratch too small for one row', () => {
    const arena = arenas[1];
    const m: PackedMatrix = {
      arena, offset: 0, format: { kind: 'float', dtype: 'f32' }, rows: 8, cols: 16, scratch: { offset: 4096, bytes: 64 },
    };
    assert.throws(() => packedMatvecRows(m, new Float32Array(15), 1), /input has 15 values, expected 1×16/);
    assert.throws(() => packedMatvecRows(m, new Float32Array(16), 1), /does not fit the kernel scratch/);
  });
});

describe('matvec_rows edges', () => {
  it('read nothing past the weights: packed W flush against the end of the memory, every dtype and format', () => {
    onBareMemory((k, bytes, memory) => {
      const end = memory.buffer.byteLength;
      const M = 3;
      for (const dtype of DTYPES) {
        for (const [N, K] of [[16, 100], [33, 35], [24, 4096]] as const) {
          const raw = randomWeights(dtype, N * K, N + K);
          const xs = randomF32(M * K, K);
          const padded = paddedColumns(N);
          const x = 16384, y = x + 4 * M * K, y1 = y + 4 * M * padded, src = y1 + 4 * padded;
          const w = end - packedBytes(dtype, N, K);
          bytes.set(new Uint8Array(xs.buffer), x);
          bytes.set(new Uint8Array(raw.buffer), src);
          k[`pack_${dtype}`](src, w, N, K, 0, padded / 8);
          k[`matvec_rows_${dtype}`](w, x, y, M, K, K, padded, 0, padded / 8, 0);
          for (let r = 0; r < M; r++) {
            k[`matvec_${dtype}`](w, x + 4 * r * K, y1, K, 0, padded / 8, 0);
            assertSameBits(new Float32Array(memory.buffer, y + 4 * r * padded, padded), new Float32Array(memory.buffer, y1, padded), `${dtype} [${N}, ${K}] row ${r} at the end`);
          }
        }
      }
      for (const [bits, G] of FORMATS) {
        for (const [N, K] of [[16, 128], [33, 384], [9, 4096]] as const) {
          const m = randomQuantized(bits, G, N, K, N + K);
          const xs = randomF32(M * K, K);
          const padded = paddedColumns(N);
          const x = 16384, y = x + 4 * M * K, y1 = y + 4 * M * padded, xin = y1 + 4 * padded, xin1 = xin + M * matvecInputBytes(K, G);
          const codes = xin1 + matvecInputBytes(K, G), scales = codes + m.codes.byteLength, biases = scales + m.scales.byteLength;
          const w = end - quantizedBytes(bits, G, N, K);
          assert.ok(biases + m.biases.byteLength <= w);
          bytes.set(new Uint8Array(xs.buffer), x);
          bytes.set(new Uint8Array(m.codes.buffer), codes);
          bytes.set(new Uint8Array(m.scales.buffer), scales);
          bytes.set(new Uint8Array(m.biases.buffer), biases);
          k[`pack_q${bits}`](codes, scales, biases, w, N, K, G, 0, padded / 8);
          k[`matvec_input_rows_q${bits}`](x, K, K, G, xin, 0, M);
          k[`matvec_rows_q${bits}`](w, xin, y, M, K, padded, 0, padded / 8, 0, G);
          for (let r = 0; r < M; r++) {
            k[`matvec_input_q${bits}`](x + 4 * r * K, K, G, xin1);
            k[`matvec_q${bits}`](w, xin1, y1, K, 0, padded / 8, 0, G);
            assertSameBits(new Float32Array(memory.buffer, y + 4 * r * padded, padded), new Float32Array(memory.buffer, y1, padded), `q${bits}/${G} [${N}, ${K}] row ${r} at the end`);
          }
        }
      }
    });
  });
});
