// The Linear kernels against plain references on ragged sizes: pack against the panel-8 layout
// written out by hand, matvec and matmul against a float64 dot product (and tf.matMul), for every
// weight dtype, with and without bias. Tolerance: TOLERANCE.float32Dot, |Δ| ≤ (K + 1)·2^-24·Σ|x·w|.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../src/backend/index.ts';
import { KernelArena, packedBytes, paddedColumns } from '../../src/kernels/index.ts';
import { linearReference, packReference } from '../../src/kernels/reference.ts';
import { assertDotClose } from '../helpers/compare.ts';
import { Bump, DTYPES, ELEMENT_BYTES, onBareMemory, randomF32, randomWeights, u16, weightValues } from './util.ts';

const NS = [1, 7, 8, 9, 33];
const KS = [1, 3, 16, 17, 100];
const MS = [1, 2, 5, 13];

const arena = KernelArena.create(16 << 20);
const mem = new Bump(arena);
after(() => arena.dispose());

/** Row-major W [N, K] of `dtype` copied into the arena and packed; returns the offsets and data. */
function packed(dtype: (typeof DTYPES)[number], N: number, K: number, seed: number) {
  const raw = randomWeights(dtype, N * K, seed);
  const src = mem.put(raw);
  const w = mem.take(packedBytes(dtype, N, K));
  arena.pack(dtype, src, w, N, K);
  return { raw, w };
}

describe('pack', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: lays out every [N, K] as panel-8, byte for byte, rows ≥ N zero`, () => {
      for (const N of [...NS, 16, 17]) {
        for (const K of [...KS, 8, 9]) {
          mem.reset();
          const raw = randomWeights(dtype, N * K, N * 1000 + K);
          const src = mem.put(raw);
          const bytes = packedBytes(dtype, N, K);
          const w = mem.take(bytes);
          arena.view(w, bytes).fill(0xa5); // the padding must be written, not left over
          arena.pack(dtype, src, w, N, K);
          const got = dtype === 'f32' ? arena.f32(w, bytes / 4) : u16(arena, w, bytes / 2);
          const want = packReference(raw, N, K);
          assert.equal(got.length, want.length);
          for (let e = 0; e < want.length; e++) {
            if (!Object.is(got[e], want[e])) assert.fail(`[${N}, ${K}] element ${e}: ${got[e]} != ${want[e]}`);
          }
          // The source is untouched.
          assert.deepEqual(dtype === 'f32' ? arena.f32(src, N * K) : u16(arena, src, N * K), raw);
        }
      }
    });
  }

  it('refuses overlapping source and destination, misaligned offsets and regions outside the arena', () => {
    mem.reset();
    assert.throws(() => arena.pack('f32', 0, 64, 8, 8), /overlap/);
    assert.throws(() => arena.pack('f32', 4, 4096, 8, 8), /multiple of 16/);
    assert.throws(() => arena.pack('bf16', 0, arena.bytes - 16, 8, 8), /do not fit/);
    assert.throws(() => arena.pack('bf16', 0, 4096, 0, 8), /positive integers/);
  });
});

describe('matvec', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: y = W·x (+ b) for N ∈ {${NS}}, K ∈ {${KS}}, within float32 rounding of float64`, () => {
      for (const N of NS) {
        for (const K of KS) {
          for (const withBias of [false, true]) {
            mem.reset();
            const { raw, w } = packed(dtype, N, K, 7 * N + K);
            const xs = randomF32(K, N + 13 * K);
            const bias = randomF32(paddedColumns(N), 3 * N + K);
            const x = mem.put(xs);
            const b = withBias ? mem.put(bias) : undefined;
            const y = mem.take(4 * paddedColumns(N));
            arena.f32(y, paddedColumns(N)).fill(NaN);
            arena.matvec(dtype, w, x, y, N, K, b);
            const ref = linearReference(dtype, raw, xs, 1, N, K, withBias ? bias : undefined);
            const out = arena.f32(y, paddedColumns(N));
            assertDotClose(out.subarray(0, N), ref.y, ref.magnitude, K, undefined, `${dtype} matvec [${N}, ${K}] bias ${withBias}`);
            // The padding columns get the bias's padding (or 0): rows ≥ N are zero weights.
            for (let n = N; n < paddedColumns(N); n++) assert.equal(out[n], withBias ? bias[n] : 0);
          }
        }
      }
    });
  }

  it('refuses an x, y or bias that does not fit', () => {
    mem.reset();
    const { w } = packed('f32', 9, 8, 1); // x: 32 bytes; y and bias: 16 floats = 64 bytes
    assert.throws(() => arena.matvec('f32', w, arena.bytes - 16, 4096, 9, 8), /matvec x/);
    assert.throws(() => arena.matvec('f32', w, 4096, arena.bytes - 48, 9, 8), /matvec y/);
    assert.throws(() => arena.matvec('f32', w, 4096, 8192, 9, 8, arena.bytes - 48), /matvec bias/);
    arena.matvec('f32', w, arena.bytes - 32, arena.bytes - 96, 9, 8); // exactly fits
    assert.throws(() => arena.matvec('f32', w, 4096, 4096 + 16, 9, 8), /y \[4112, 4176\) overlaps x/);
    assert.throws(() => arena.matmul('f32', w, 4096, w + 64, 2, 9, 8), /y .* overlaps weights/);
  });
});

describe('matmul', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: Y = X·Wᵀ (+ b) for M ∈ {${MS}}, N ∈ {${NS}}, K ∈ {${KS}}; nothing past [M, N] is written`, () => {
      for (const M of MS) {
        for (const N of NS) {
          for (const K of KS) {
            for (const withBias of [false, true]) {
              mem.reset();
              const { raw, w } = packed(dtype, N, K, 11 * N + K + M);
              const xs = randomF32(M * K, M + 17 * N + K);
              const bias = randomF32(paddedColumns(N), 5 * N + K);
              const x = mem.put(xs);
              const b = withBias ? mem.put(bias) : undefined;
              // y [M, N] with guard bytes after it.
              const y = mem.take(4 * M * N + 64);
              arena.f32(y, M * N + 16).fill(NaN);
              arena.matmul(dtype, w, x, y, M, N, K, b);
              const ref = linearReference(dtype, raw, xs, M, N, K, withBias ? bias : undefined);
              assertDotClose(arena.f32(y, M * N), ref.y, ref.magnitude, K, undefined, `${dtype} matmul [${M}, ${N}, ${K}] bias ${withBias}`);
              assert.ok(arena.f32(y + 4 * M * N, 16).every(Number.isNaN), `[${M}, ${N}, ${K}]: wrote past Y`);
            }
          }
        }
      }
    });
  }

  it('every dtype: ragged shapes over several k blocks and row blocks (KC = 512, MC = 96 in linear.c)', () => {
    for (const [M, N, K] of [[97, 19, 600], [130, 41, 1025], [7, 257, 1100]] as const) {
      mem.reset();
      for (const dtype of DTYPES) {
        const { raw, w } = packed(dtype, N, K, M + N + K);
        const xs = randomF32(M * K, M * N);
        const bias = randomF32(paddedColumns(N), K);
        const x = mem.put(xs);
        const b = mem.put(bias);
        const y = mem.take(4 * M * N + 64);
        arena.f32(y, M * N + 16).fill(NaN);
        arena.matmul(dtype, w, x, y, M, N, K, b);
        const ref = linearReference(dtype, raw, xs, M, N, K, bias);
        assertDotClose(arena.f32(y, M * N), ref.y, ref.magnitude, K, undefined, `${dtype} matmul [${M}, ${N}, ${K}]`);
        assert.ok(arena.f32(y + 4 * M * N, 16).every(Number.isNaN));
      }
    }
  });
});

describe('against tf.matMul', () => {
  before(async () => {
    await initBackend();
  });

  it('matvec and matmul agree with tf.matMul(x, w, false, true) on random shapes, every dtype', () => {
    const pick = (xs: number[], i: number) => xs[i % xs.length]!;
    for (let i = 0; i < 12; i++) {
      const M = pick([1, 2, 5, 13, 40], i);
      const N = pick([1, 7, 9, 33, 64, 130], i * 5 + 1);
      const K = pick([3, 17, 100, 257, 640], i * 3 + 2);
      for (const dtype of DTYPES) {
        mem.reset();
        const { raw, w } = packed(dtype, N, K, 100 * i + 1);
        const xs = randomF32(M * K, 100 * i + 2);
        const x = mem.put(xs);
        const y = mem.take(4 * Math.max(M * N, paddedColumns(N)));
        const want = tf.tidy(() =>
          tf.matMul(tf.tensor2d(xs, [M, K]), tf.tensor2d(weightValues(dtype, raw), [N, K]), false, true).dataSync(),
        );
        const magnitude = linearReference(dtype, raw, xs, M, N, K).magnitude;
        arena.matmul(dtype, w, x, y, M, N, K);
        assertDotClose(arena.f32(y, M * N), want, magnitude, K, undefined, `${dtype} matmul vs tf [${M}, ${N}, ${K}]`, 2);
        arena.matvec(dtype, w, x, y, N, K);
        assertDotClose(arena.f32(y, N), want.subarray(0, N), magnitude.subarray(0, N), K, undefined, `${dtype} matvec vs tf [${N}, ${K}]`, 2);
      }
    }
  });
});

describe('edges', () => {
  it('read nothing past the weights: packed W flush against the end of the memory', () => {
    // A read past the weights traps on the bare memory.
    onBareMemory((k, bytes, memory) => {
      const end = memory.buffer.byteLength;
      for (const dtype of DTYPES) {
        for (const [N, K] of [[16, 100], [33, 35], [24, 4096]] as const) {
          const M = 3;
          const raw = randomWeights(dtype, N * K, N + K);
          const xs = randomF32(M * K, K);
          // [0, 16K) scratch, then x, y, the row-major source; the packed W ends the memory.
          const x = 16384, y = x + 4 * M * K, src = y + 4 * M * paddedColumns(N);
          const w = end - packedBytes(dtype, N, K);
          bytes.set(new Uint8Array(xs.buffer), x);
          bytes.set(new Uint8Array(raw.buffer), src);
          k[`pack_${dtype}`](src, w, N, K, 0, paddedColumns(N) / 8);
          k[`matvec_${dtype}`](w, x, y, K, 0, paddedColumns(N) / 8, 0);
          const ref = linearReference(dtype, raw, xs, M, N, K);
          const out = new Float32Array(memory.buffer, y, M * N);
          assertDotClose(out.subarray(0, N), ref.y.subarray(0, N), ref.magnitude.subarray(0, N), K, undefined, `${dtype} matvec at the end`);
          k[`matmul_${dtype}`](w, x, y, M, N, K, N, 0, paddedColumns(N) / 8, 0, 0);
          assertDotClose(out, ref.y, ref.magnitude, K, undefined, `${dtype} matmul at the end`);
          k[`gather_row_${dtype}`](w, K, N - 1, x); // x is done with; it holds M·K ≥ K floats
          assert.deepEqual(new Float32Array(memory.buffer, x, K), weightValues(dtype, raw).subarray((N - 1) * K, N * K));
        }
      }
    });
  });

  it('propagate a NaN or an infinity in x to every output', () => {
    const [N, K] = [33, 100];
    for (const dtype of DTYPES) {
      for (const [at, bad] of [[0, NaN], [57, NaN], [99, Infinity]] as const) {
        mem.reset();
        const { w } = packed(dtype, N, K, 3);
        const xs = randomF32(K, 4);
        xs[at] = bad;
        const x = mem.put(xs);
        const y = mem.take(4 * paddedColumns(N));
        arena.matvec(dtype, w, x, y, N, K);
        // inf·w is ±inf, or NaN where w = 0 or where +inf meets -inf; never a finite value.
        assert.ok(arena.f32(y, N).every((v) => !Number.isFinite(v)), `${dtype} x[${at}] = ${bad}`);
      }
    }
  });
});

describe('offsets past 2 GiB', () => {
  it('work in every kernel (the pointers reach the kernels as negative int32)', () => {
    const big = KernelArena.create(KernelArena.maxBytes());
    try {
      const base = 2 ** 32 - (32 << 20);
      const mem = new Bump(big);
      mem.take(base);
      const [M, N, K] = [5, 300, 200];
      for (const dtype of DTYPES) {
        const raw = randomWeights(dtype, N * K, 9);
        const xs = randomF32(M * K, 10);
        const bias = randomF32(paddedColumns(N), 11);
        const src = mem.put(raw);
        const w = mem.take(packedBytes(dtype, N, K));
        const x = mem.put(xs);
        const b = mem.put(bias);
        const y = mem.take(4 * M * N);
        const yv = mem.take(4 * paddedColumns(N));
        const row = mem.take(4 * K);
        big.pack(dtype, src, w, N, K);
        big.matmul(dtype, w, x, y, M, N, K, b);
        big.matvec(dtype, w, x, yv, N, K, b);
        big.gatherRow(dtype, w, N, K, N - 1, row);
        const ref = linearReference(dtype, raw, xs, M, N, K, bias);
        assertDotClose(big.f32(y, M * N), ref.y, ref.magnitude, K, undefined, `${dtype} matmul past 2 GiB`);
        assertDotClose(big.f32(yv, N), ref.y.subarray(0, N), ref.magnitude.subarray(0, N), K, undefined, `${dtype} matvec past 2 GiB`);
        assert.deepEqual(big.f32(row, K), weightValues(dtype, raw).subarray((N - 1) * K, N * K));
      }
    } finally {
      big.dispose();
    }
  });
});

describe('gatherRow', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: every row of ragged [N, K] comes back as its values`, () => {
      for (const N of NS) {
        for (const K of KS) {
          mem.reset();
          const { raw, w } = packed(dtype, N, K, 31 * N + K);
          const values = weightValues(dtype, raw);
          const out = mem.take(4 * K);
          for (let n = 0; n < N; n++) {
            arena.gatherRow(dtype, w, N, K, n, out);
            assert.deepEqual(arena.f32(out, K), values.subarray(n * K, (n + 1) * K));
          }
          assert.throws(() => arena.gatherRow(dtype, w, N, K, N, out), /not in/);
        }
      }
    });
  }
});

describe('packedBytes', () => {
  it('counts whole panels of K × 8 elements', () => {
    assert.equal(packedBytes('f32', 1, 3), 8 * 3 * 4);
    assert.equal(packedBytes('bf16', 9, 100), 16 * 100 * 2);
    assert.equal(packedBytes('f16', 16, 5), 16 * 5 * ELEMENT_BYTES.f16);
  });
});
