// The quantized Linear kernels (MLX's affine groups, bits 4 and 8, groups of 32, 64 and 128)
// against plain references on ragged sizes: packQuantized against the qpanel-8 layout written out
// by hand, gatherRowQuantized exactly against dequantizeReference, matvecQuantized and
// matmulQuantized against a float64 dot product over the exact weights s·q + b.
//
// Tolerance: TOLERANCE.float32Dot through assertDotClose with K + 3 terms, |Δ| ≤ (K + 4)·2^-24·M,
// where M = Σ_k |x_k|·(|s|·q_k + |b|) (+ |bias|) (quantizedLinearReference); matvec adds
// Σ_g 2^-28·max_g|x|·|s|·Σ_g q for holding x as 30-bit fixed point per group (linear.c,
// matvec_input_q<b>; assertMatvecClose). The bound:
// matvec sums s·Σ_g x·q + b·Σ_g x per group, so each term is x_k·s·q_k or x_k·b, not x_k·w_k
// (s·q + b cancels in real checkpoints: M, not Σ|x·w|, is the scale of what is summed). A group's
// Σ x·q takes G roundings (G products and G − 1 additions, in any tree), times s one more, Σ x
// G − 1 and times b one more; the 2K/G group terms added into y K/G·2 more, the bias one: in all
// ≤ G + 2K/G + 2 ≤ K + 4 for 2 ≤ G ≤ K. matmul dequantizes first (w̃ = fl(fl(s·q) + b), |w̃ − w|
// ≤ 2·2^-24·(|s·q| + |b|)) and sums K products (+ bias): ≤ K + 3.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  KernelArena, QUANT_BITS, QUANT_GROUP_SIZES, packedBytes, paddedColumns, quantizedBytes, quantizedCodeBytes,
  type QuantBits, type QuantGroupSize,
} from '../../src/kernels/index.ts';
import {
  dequantizeReference, linearReference, packQuantizedReference, quantizedLinearReference, type QuantizedMatrix,
} from '../../src/kernels/reference.ts';
import { assertDotClose, TOLERANCE } from '../helpers/compare.ts';
import { matvecInputBytes } from '../../src/kernels/module.ts';
import { Bump, onBareMemory, randomF32, randomQuantized } from './util.ts';

const NS = [1, 7, 8, 9, 33];
const MS = [1, 2, 5, 13];
/** K: one group, two, three. */
const groupsOf = (G: number) => [G, 2 * G, 3 * G];
const FORMATS = QUANT_BITS.flatMap((bits) => QUANT_GROUP_SIZES.map((G) => [bits, G] as [QuantBits, QuantGroupSize]));

/**
 * A quantized matvec's y against quantizedLinearReference: |Δ| ≤ (K + 4)·2^-24·M (the f32 sums, as
 * assertDotClose with K + 3 terms) + inputRounding (x as 30-bit fixed point per group).
 */
function assertMatvecClose(actual: ArrayLike<number>, ref: ReturnType<typeof quantizedLinearReference>, K: number, what: string): void {
  for (let n = 0; n < actual.length; n++) {
    const bound = (K + 4) * TOLERANCE.float32Dot.rel * ref.magnitude[n]! + ref.inputRounding[n]!;
    const d = Math.abs(actual[n]! - ref.y[n]!);
    assert.ok(d <= bound, `${what}: |Δ| ${d.toExponential(3)} at ${n} (actual ${actual[n]}, expected ${ref.y[n]}) exceeds ${bound.toExponential(3)}`);
  }
}

const arena = KernelArena.create(16 << 20);
const mem = new Bump(arena);
after(() => arena.dispose());

/** The sources of m copied into the arena and packed; returns the packed offset. */
function packed(m: QuantizedMatrix, a: KernelArena = arena, bump: Bump = mem): number {
  const codes = bump.put(m.codes);
  const scales = bump.put(m.scales);
  const biases = bump.put(m.biases);
  const w = bump.take(quantizedBytes(m.bits, m.groupSize, m.N, m.K));
  a.packQuantized(m.bits, m.groupSize, codes, scales, biases, w, m.N, m.K);
  return w;
}

describe('packQuantized', () => {
  for (const [bits, G] of FORMATS) {
    it(`q${bits}, G = ${G}: lays out every [N, K] as qpanel-8, byte for byte, rows ≥ N zero`, () => {
      for (const N of [...NS, 16, 17]) {
        for (const K of groupsOf(G)) {
          mem.reset();
          const m = randomQuantized(bits, G, N, K, N * 1000 + K + bits);
          const codes = mem.put(m.codes);
          const scales = mem.put(m.scales);
          const biases = mem.put(m.biases);
          const bytes = quantizedBytes(bits, G, N, K);
          const w = mem.take(bytes);
          arena.view(w, bytes).fill(0xa5); // the padding must be written, not left over
          arena.packQuantized(bits, G, codes, scales, biases, w, N, K);
          const want = packQuantizedReference(m);
          assert.equal(bytes, want.length);
          assert.deepEqual(arena.view(w, bytes), want, `[${N}, ${K}]`);
          // The sources are untouched.
          assert.deepEqual(arena.view(codes, quantizedCodeBytes(bits, N, K)), new Uint8Array(m.codes.buffer));
          assert.deepEqual(arena.f32(scales, m.scales.length), m.scales);
        }
      }
    });
  }

  it('packs a run of whole panels at a time into its place (what the loader does in place)', () => {
    mem.reset();
    const [bits, G, N, K] = [4, 32, 21, 96] as const;
    const m = randomQuantized(bits, G, N, K, 5);
    const whole = packQuantizedReference(m);
    const w = mem.take(whole.length);
    // Rows [8, 21) as a matrix of their own, into panels 1.. of w; then rows [0, 8).
    for (const [r0, r1] of [[8, 21], [0, 8]] as const) {
      const part = {
        ...m, N: r1 - r0,
        codes: m.codes.slice((r0 * K * bits) / 32, (r1 * K * bits) / 32),
        scales: m.scales.slice((r0 * K) / G, (r1 * K) / G),
        biases: m.biases.slice((r0 * K) / G, (r1 * K) / G),
      };
      const codes = mem.put(part.codes), scales = mem.put(part.scales), biases = mem.put(part.biases);
      arena.packQuantized(bits, G, codes, scales, biases, w + (r0 / 8) * quantizedBytes(bits, G, 8, K), part.N, K);
    }
    assert.deepEqual(arena.view(w, whole.length), whole);
  });

  it('refuses a K that is not a multiple of the group, other widths and groups, overlaps, misalignment', () => {
    mem.reset();
    assert.throws(() => quantizedBytes(4, 64, 10, 100), /\[N, K\] = \[10, 100\]: K must be a multiple of the group size 64/);
    assert.throws(() => arena.packQuantized(8, 32, 0, 4096, 8192, 16384, 9, 48), /\[9, 48\].*multiple of the group size 32/);
    assert.throws(() => arena.matvecQuantized(4, 128, 0, 4096, 8192, 3, 64), /\[3, 64\].*group size 128/);
    assert.throws(() => arena.matmulQuantized(8, 64, 0, 4096, 8192, 2, 3, 96), /\[3, 96\]/);
    assert.throws(() => arena.gatherRowQuantized(4, 32, 0, 3, 40, 0, 4096), /\[3, 40\]/);
    assert.throws(() => quantizedBytes(3 as QuantBits, 64, 8, 64), /3-bit codes are not supported/);
    assert.throws(() => quantizedBytes(4, 16 as QuantGroupSize, 8, 64), /group size 16 is not supported/);
    assert.throws(() => quantizedBytes(4, 64, 0, 64), /positive integers/);
    // codes [0, 256), scales [4096, 4128), biases [8192, 8224); dst 8 panels' worth
    assert.throws(() => arena.packQuantized(8, 32, 0, 4096, 8192, 128, 8, 32), /destination .* overlaps codes/);
    assert.throws(() => arena.packQuantized(8, 32, 0, 4096, 8192, 8192 - 64, 8, 32), /overlaps biases/);
    assert.throws(() => arena.packQuantized(8, 32, 4, 4096, 8192, 16384, 8, 32), /multiple of 16/);
    assert.throws(() => arena.packQuantized(8, 32, 0, 4096, 8192, arena.bytes - 16, 8, 32), /do not fit/);
  });
});

describe('gatherRowQuantized', () => {
  for (const [bits, G] of FORMATS) {
    it(`q${bits}, G = ${G}: every row of ragged [N, K] is fl(fl(s·q) + b), bit for bit`, () => {
      for (const N of NS) {
        for (const K of groupsOf(G)) {
          for (const plain of [false, true]) {
            mem.reset();
            const m = randomQuantized(bits, G, N, K, 31 * N + K, plain);
            const w = packed(m);
            const values = dequantizeReference(m);
            const out = mem.take(4 * K);
            for (let n = 0; n < N; n++) {
              arena.gatherRowQuantized(bits, G, w, N, K, n, out);
              assert.deepEqual(arena.f32(out, K), values.subarray(n * K, (n + 1) * K), `[${N}, ${K}] row ${n}`);
            }
            assert.throws(() => arena.gatherRowQuantized(bits, G, w, N, K, N, out), /not in/);
          }
        }
      }
    });
  }

  it('with bf16 scales and biases s·q is exact: the values are the float64 s·q + b rounded once', () => {
    mem.reset();
    const m = randomQuantized(8, 64, 9, 128, 3);
    const values = dequantizeReference(m);
    for (let i = 0; i < values.length; i++) {
      const n = Math.floor(i / 128), g = n * 2 + Math.floor((i % 128) / 64);
      const q = (m.codes[i >> 2]! >>> (8 * (i & 3))) & 0xff;
      assert.equal(values[i], Math.fround(m.scales[g]! * q + m.biases[g]!));
    }
  });
});

describe('matvecQuantized', () => {
  for (const [bits, G] of FORMATS) {
    it(`q${bits}, G = ${G}: y = W·x (+ b) for N ∈ {${NS}}, K of 1–3 groups, within (K + 4)·2^-24·M + the input's rounding`, () => {
      for (const N of NS) {
        for (const K of groupsOf(G)) {
          for (const [withBias, plain] of [[false, false], [true, false], [true, true]]) {
            mem.reset();
            const m = randomQuantized(bits, G, N, K, 7 * N + K + bits, plain);
            const w = packed(m);
            const xs = randomF32(K, N + 13 * K);
            const bias = randomF32(paddedColumns(N), 3 * N + K);
            const x = mem.put(xs);
            const b = withBias ? mem.put(bias) : undefined;
            const y = mem.take(4 * paddedColumns(N));
            arena.f32(y, paddedColumns(N)).fill(NaN);
            arena.matvecQuantized(bits, G, w, x, y, N, K, b);
            const ref = quantizedLinearReference(m, xs, 1, withBias ? bias : undefined);
            const out = arena.f32(y, paddedColumns(N));
            assertMatvecClose(out.subarray(0, N), ref, K, `q${bits}/${G} matvec [${N}, ${K}] bias ${withBias}`);
            // The padding columns get the bias's padding (or 0): rows ≥ N have zero codes, scales and biases.
            for (let n = N; n < paddedColumns(N); n++) assert.equal(out[n], withBias ? bias[n] : 0);
          }
        }
      }
    });
  }

  it('every code value and position counts: one-hot x picks out single weights', () => {
    // x = e_k: y[n] = s·q[n, k] + b, each product and sum exact for bf16 s, b and small q.
    for (const [bits, G] of FORMATS) {
      mem.reset();
      const [N, K] = [16, 2 * G];
      const m = randomQuantized(bits, G, N, K, bits + G);
      const w = packed(m);
      const values = dequantizeReference(m);
      const x = mem.take(4 * K);
      const y = mem.take(4 * N);
      for (let k = 0; k < K; k++) {
        const xs = arena.f32(x, K);
        xs.fill(0);
        xs[k] = 1;
        arena.matvecQuantized(bits, G, w, x, y, N, K);
        for (let n = 0; n < N; n++) assert.equal(arena.f32(y, N)[n], values[n * K + k], `q${bits}/${G} n ${n} k ${k}`);
      }
    }
  });

  it('takes K up to 131072 and refuses more (its prepared x has a fixed place); matmul takes any', () => {
    mem.reset();
    const G = 32, N = 3;
    const m = randomQuantized(4, G, N, 131072 + G, 1);
    const w = packed(m);
    const xs = randomF32(m.K, 2);
    const x = mem.put(xs);
    const y = mem.take(4 * 8);
    assert.throws(() => arena.matvecQuantized(4, G, w, x, y, N, m.K), /\[3, 131104\]: K is more than the 131072 it takes/);
    arena.matmulQuantized(4, G, w, x, y, 1, N, m.K);
    const ref = quantizedLinearReference(m, xs, 1);
    assertDotClose(arena.f32(y, N), ref.y, ref.magnitude, m.K + 3, undefined, 'matmul, K = 131104');
    for (const G of [32, 128] as const) {
      const at = randomQuantized(4, G, N, 131072, 1);
      arena.matvecQuantized(4, G, packed(at), x, y, N, at.K);
      assertMatvecClose(arena.f32(y, N), quantizedLinearReference(at, xs.subarray(0, at.K), 1), at.K, `matvec, K = 131072, G = ${G}`);
    }
  });

  it('keeps x to 2^-29 of its group\'s largest value: what cancels in Σ x·q leaves the small terms exact', () => {
    // x = [1, −1, 3·2^-29, 0, …] against codes [5, 5, 7, 0, …] (s = 1, b = 0): y = 21·2^-29 exactly,
    // in f32 as in the float64 reference. x held to fewer bits loses the 3·2^-29.
    for (const [bits, G] of FORMATS) {
      mem.reset();
      const N = 8, K = G;
      const codes = new Uint32Array((N * K * bits) / 32);
      const setCode = (n: number, k: number, q: number) => {
        const bit = (n * K + k) * bits;
        codes[bit >> 5]! |= q << (bit & 31);
      };
      for (let n = 0; n < N; n++) [5, 5, 7].forEach((q, k) => setCode(n, k, q));
      const m: QuantizedMatrix = { bits, groupSize: G, N, K, codes, scales: new Float32Array(N).fill(1), biases: new Float32Array(N) };
      const xs = new Float32Array(K);
      xs.set([1, -1, 3 * 2 ** -29]);
      const x = mem.put(xs);
      const y = mem.take(4 * N);
      arena.matvecQuantized(bits, G, packed(m), x, y, N, K);
      assert.deepEqual([...arena.f32(y, N)], new Array(N).fill(21 * 2 ** -29), `q${bits}/${G}`);
    }
  });

  it('holds x to 30 bits below each group\'s largest value: tiny, subnormal, zero and huge groups', () => {
    // Group 0 spans 2^-140..1 (its small values lose their low bits), 1 is subnormals (exact at
    // 2^-149 steps), 2 zeros, 3 around 2^100, 4 a single value just below a power of two
    // (rounds up to 2^30 steps: clamped).
    for (const [bits, G] of FORMATS) {
      mem.reset();
      const N = 16, K = 5 * G;
      const m = randomQuantized(bits, G, N, K, 17 + bits + G, true);
      const xs = randomF32(K, 5);
      for (let k = 0; k < G; k++) xs[k]! *= 2 ** -(k % 141);
      for (let k = G; k < 2 * G; k++) xs[k]! *= 2 ** -126 * ((k % 7) / 8);
      xs.fill(0, 2 * G, 3 * G);
      for (let k = 3 * G; k < 4 * G; k++) xs[k]! *= 2 ** 100;
      xs.fill(0, 4 * G, 5 * G);
      xs[4 * G + 3] = Math.fround(1 - 2 ** -24);
      const x = mem.put(xs);
      const y = mem.take(4 * N);
      arena.matvecQuantized(bits, G, packed(m), x, y, N, K);
      assertMatvecClose(arena.f32(y, N), quantizedLinearReference(m, xs, 1), K, `q${bits}/${G} extreme groups`);
    }
  });

  it('propagates a NaN or an infinity in x to every output', () => {
    const [N, K] = [33, 128];
    for (const [bits, G] of FORMATS) {
      for (const [at, bad] of [[0, NaN], [57, NaN], [127, Infinity]] as const) {
        mem.reset();
        const w = packed(randomQuantized(bits, G, N, K, 3));
        const xs = randomF32(K, 4);
        xs[at] = bad;
        const x = mem.put(xs);
        const y = mem.take(4 * paddedColumns(N));
        arena.matvecQuantized(bits, G, w, x, y, N, K);
        assert.ok(arena.f32(y, N).every((v) => !Number.isFinite(v)), `q${bits}/${G} x[${at}] = ${bad}`);
      }
    }
  });
});

describe('matmulQuantized', () => {
  for (const [bits, G] of FORMATS) {
    it(`q${bits}, G = ${G}: Y = X·Wᵀ (+ b) for M ∈ {${MS}}, N ∈ {${NS}}, K of 1–3 groups; nothing past [M, N] is written`, () => {
      for (const M of MS) {
        for (const N of NS) {
          for (const K of groupsOf(G)) {
            for (const withBias of [false, true]) {
              mem.reset();
              const m = randomQuantized(bits, G, N, K, 11 * N + K + M, withBias);
              const w = packed(m);
              const xs = randomF32(M * K, M + 17 * N + K);
              const bias = randomF32(paddedColumns(N), 5 * N + K);
              const x = mem.put(xs);
              const b = withBias ? mem.put(bias) : undefined;
              const y = mem.take(4 * Math.max(M * N, paddedColumns(N)) + 64);
              const guard = M === 1 && N % 8 === 0 ? paddedColumns(N) : M * N; // M = 1, whole panels: matvec
              arena.f32(y, guard + 16).fill(NaN);
              arena.matmulQuantized(bits, G, w, x, y, M, N, K, b);
              const ref = quantizedLinearReference(m, xs, M, withBias ? bias : undefined);
              assertDotClose(arena.f32(y, M * N), ref.y, ref.magnitude, K + 3, undefined, `q${bits}/${G} matmul [${M}, ${N}, ${K}] bias ${withBias}`);
              assert.ok(arena.f32(y + 4 * guard, 16).every(Number.isNaN), `[${M}, ${N}, ${K}]: wrote past Y`);
            }
          }
        }
      }
    });
  }

  it('is matmul("f32") on the dequantized weights, bit for bit, over several k blocks and row blocks (KC = 512, MC = 96)', () => {
    for (const [M, N, K] of [[97, 19, 640], [130, 41, 1152], [7, 257, 1024]] as const) {
      for (const [bits, G] of FORMATS) {
        if (K % G) continue;
        mem.reset();
        const m = randomQuantized(bits, G, N, K, M + N + K + G, bits === 8);
        const w = packed(m);
        const values = dequantizeReference(m);
        const src = mem.put(values);
        const wf = mem.take(packedBytes('f32', N, K));
        arena.pack('f32', src, wf, N, K);
        const xs = randomF32(M * K, M * N);
        const bias = randomF32(paddedColumns(N), K);
        const x = mem.put(xs);
        const b = mem.put(bias);
        const y = mem.take(4 * M * N + 64);
        const yf = mem.take(4 * M * N);
        arena.f32(y, M * N + 16).fill(NaN);
        arena.matmulQuantized(bits, G, w, x, y, M, N, K, b);
        arena.matmul('f32', wf, x, yf, M, N, K, b);
        assert.deepEqual(arena.f32(y, M * N), arena.f32(yf, M * N), `q${bits}/${G} [${M}, ${N}, ${K}]`);
        assert.ok(arena.f32(y + 4 * M * N, 16).every(Number.isNaN));
        const ref = quantizedLinearReference(m, xs, M, bias);
        assertDotClose(arena.f32(y, M * N), ref.y, ref.magnitude, K + 3, undefined, `q${bits}/${G} matmul [${M}, ${N}, ${K}]`);
        // And the float64 reference on those values agrees within the plain dot-product bound.
        const f = linearReference('f32', values, xs, M, N, K, bias);
        assertDotClose(arena.f32(y, M * N), f.y, f.magnitude, K, undefined, `q${bits}/${G} vs dequantized [${M}, ${N}, ${K}]`);
      }
    }
  });
});

describe('quantized edges', () => {
  it('read nothing past the weights: packed W flush against the end of the memory', () => {
    // A read past the weights traps on the bare memory.
    onBareMemory((k, bytes, memory) => {
      const end = memory.buffer.byteLength;
      for (const [bits, G] of FORMATS) {
        for (const [N, K] of [[16, 128], [33, 384], [9, 4096]] as const) {
          const M = 3;
          const m = randomQuantized(bits, G, N, K, N + K);
          const xs = randomF32(M * K, K);
          // [0, 16K) scratch, then x, y, the matvec's input and the sources; the packed W ends the memory.
          const x = 16384, y = x + 4 * M * K, xin = y + 4 * M * paddedColumns(N), codes = xin + matvecInputBytes(K, G);
          const scales = codes + m.codes.byteLength, biases = scales + m.scales.byteLength;
          const w = end - quantizedBytes(bits, G, N, K);
          assert.ok(biases + m.biases.byteLength <= w);
          bytes.set(new Uint8Array(xs.buffer), x);
          bytes.set(new Uint8Array(m.codes.buffer), codes);
          bytes.set(new Uint8Array(m.scales.buffer), scales);
          bytes.set(new Uint8Array(m.biases.buffer), biases);
          k[`pack_q${bits}`](codes, scales, biases, w, N, K, G, 0, paddedColumns(N) / 8);
          k[`matvec_input_q${bits}`](x, K, G, xin);
          k[`matvec_q${bits}`](w, xin, y, K, 0, paddedColumns(N) / 8, 0, G);
          const ref = quantizedLinearReference(m, xs, M);
          const out = new Float32Array(memory.buffer, y, M * N);
          assertMatvecClose(out.subarray(0, N), ref, K, `q${bits}/${G} matvec at the end`);
          k[`matmul_q${bits}`](w, x, y, M, N, K, N, 0, paddedColumns(N) / 8, 0, 0, G);
          assertDotClose(out, ref.y, ref.magnitude, K + 3, undefined, `q${bits}/${G} matmul at the end`);
          k[`gather_row_q${bits}`](w, K, G, N - 1, x);
          assert.deepEqual(new Float32Array(memory.buffer, x, K), dequantizeReference(m).subarray((N - 1) * K, N * K));
        }
      }
    });
  });

  it('work at offsets past 2 GiB (the pointers reach the kernels as negative int32)', () => {
    const big = KernelArena.create(KernelArena.maxBytes());
    try {
      const bump = new Bump(big);
      bump.take(2 ** 32 - (32 << 20));
      const [M, N, K] = [5, 300, 256];
      for (const [bits, G] of FORMATS) {
        const m = randomQuantized(bits, G, N, K, 9 + bits + G);
        const w = packed(m, big, bump);
        const xs = randomF32(M * K, 10);
        const bias = randomF32(paddedColumns(N), 11);
        const x = bump.put(xs);
        const b = bump.put(bias);
        const y = bump.take(4 * M * N);
        const yv = bump.take(4 * paddedColumns(N));
        const row = bump.take(4 * K);
        big.matmulQuantized(bits, G, w, x, y, M, N, K, b);
        big.matvecQuantized(bits, G, w, x, yv, N, K, b);
        big.gatherRowQuantized(bits, G, w, N, K, N - 1, row);
        const ref = quantizedLinearReference(m, xs, M, bias);
        assertDotClose(big.f32(y, M * N), ref.y, ref.magnitude, K + 3, undefined, `q${bits}/${G} matmul past 2 GiB`);
        assertMatvecClose(big.f32(yv, N), ref, K, `q${bits}/${G} matvec past 2 GiB`);
        assert.deepEqual(big.f32(row, K), dequantizeReference(m).subarray((N - 1) * K, N * K));
      }
    } finally {
      big.dispose();
    }
  });
});

describe('quantizedBytes', () => {
  it('counts whole panels of K/G blocks of 64 + G·bits bytes', () => {
    assert.equal(quantizedBytes(4, 64, 1, 64), 64 + 256);
    assert.equal(quantizedBytes(8, 32, 9, 96), 2 * 3 * (64 + 256));
    assert.equal(quantizedBytes(4, 128, 16, 256), 2 * 2 * (64 + 512));
    assert.equal(quantizedCodeBytes(4, 3, 64), 96);
  });
});
