// Exhaustive 16-bit → f32 widening: every bf16 and f16 bit pattern through each kernel that widens
// (matvec's even/odd-lane path, matmul's widen-to-scratch path, gatherRow's scalar path), against
// the references in src/kernels/reference.ts. With x = 1 and K = 1 a kernel's output is the
// widened weight itself.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelArena, packedBytes, type WeightDType } from '../../src/kernels/index.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/kernels/reference.ts';
import { Bump, u16 } from './util.ts';

const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i);
const arena = KernelArena.create(8 << 20);
after(() => arena.dispose());

/** What the kernels give for bits h: the exact value; f16 inf/NaN → ±65536·(1 + m/1024) (documented). */
function expected(dtype: WeightDType, h: number): number {
  if (dtype === 'bf16') return bf16ToF32(h);
  if ((h & 0x7c00) === 0x7c00) return (h & 0x8000 ? -1 : 1) * 65536 * (1 + (h & 0x3ff) / 1024);
  return f16ToF32(h);
}

function same(actual: number, want: number): boolean {
  // −0 may come out +0 from the SIMD paths (no sum can tell them apart); everything else exactly.
  return Number.isNaN(want) ? Number.isNaN(actual) : actual === want;
}

function firstMismatch(dtype: WeightDType, out: Float32Array, exact = false): string | undefined {
  for (let h = 0; h < 65536; h++) {
    const want = expected(dtype, h);
    const ok = exact && !Number.isNaN(want) ? Object.is(out[h], want) : same(out[h]!, want);
    if (!ok) return `bits 0x${h.toString(16)}: got ${out[h]}, want ${want}`;
  }
  return undefined;
}

for (const dtype of ['bf16', 'f16'] as const) {
  describe(`${dtype} → f32, all 65536 bit patterns`, () => {
    it('matvec with K = 1 and x = 1 gives each value', () => {
      const mem = new Bump(arena);
      const src = mem.put(ALL);
      const w = mem.take(packedBytes(dtype, 65536, 1));
      const x = mem.put(Float32Array.of(1));
      const y = mem.take(4 * 65536);
      arena.pack(dtype, src, w, 65536, 1);
      arena.matvec(dtype, w, x, y, 65536, 1);
      assert.equal(firstMismatch(dtype, arena.f32(y, 65536)), undefined);
    });

    it('matmul with K = 1 and x = 1 gives each value (the widen-to-scratch path)', () => {
      const mem = new Bump(arena);
      const src = mem.put(ALL);
      const w = mem.take(packedBytes(dtype, 65536, 1));
      const x = mem.put(Float32Array.of(1));
      const y = mem.take(4 * 65536);
      arena.pack(dtype, src, w, 65536, 1);
      arena.matmul(dtype, w, x, y, 1, 65536, 1);
      assert.equal(firstMismatch(dtype, arena.f32(y, 65536)), undefined);
    });

    it('gatherRow of a [1, 65536] row gives each value, −0 included', () => {
      const mem = new Bump(arena);
      const src = mem.put(ALL);
      const w = mem.take(packedBytes(dtype, 1, 65536));
      const out = mem.take(4 * 65536);
      arena.pack(dtype, src, w, 1, 65536);
      arena.gatherRow(dtype, w, 1, 65536, 0, out);
      assert.equal(firstMismatch(dtype, arena.f32(out, 65536), true), undefined);
    });
  });
}

describe('f16 subnormals', () => {
  it('widen exactly in every kernel (products and sums of them stay exact here)', () => {
    // W [2, 1023]: row 0 holds the positive subnormals, row 1 the negative ones; x = 2^k scales.
    const K = 1023;
    const bits = new Uint16Array(2 * K);
    for (let m = 1; m <= K; m++) {
      bits[m - 1] = m;
      bits[K + m - 1] = 0x8000 | m;
    }
    const mem = new Bump(arena);
    const src = mem.put(bits);
    const w = mem.take(packedBytes('f16', 2, K));
    arena.pack('f16', src, w, 2, K);
    const out = mem.take(4 * K);
    for (const row of [0, 1]) {
      arena.gatherRow('f16', w, 2, K, row, out);
      const got = arena.f32(out, K);
      for (let m = 1; m <= K; m++) assert.equal(got[m - 1], (row ? -m : m) * 2 ** -24);
    }
    // Σ_m m·2^-24 · 1 = K(K+1)/2 · 2^-24, exact in float32 (< 2^24 · 2^-24).
    const x = mem.put(new Float32Array(K).fill(1));
    const y = mem.take(4 * 8);
    arena.matvec('f16', w, x, y, 2, K);
    assert.deepEqual([...arena.f32(y, 2)], [(K * (K + 1)) / 2 * 2 ** -24, -((K * (K + 1)) / 2) * 2 ** -24]);
    const y2 = mem.take(4 * 2);
    arena.matmul('f16', w, x, y2, 1, 2, K);
    assert.deepEqual([...arena.f32(y2, 2)], [(K * (K + 1)) / 2 * 2 ** -24, -((K * (K + 1)) / 2) * 2 ** -24]);
  });
});

describe('the rounding references', () => {
  it('round float32 to the nearest bf16 / f16, ties to even, and back exactly', () => {
    assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie → even
    assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(f32ToF16(65504), 0x7bff);
    assert.equal(f32ToF16(65520), 0x7c00);
    assert.equal(f32ToF16(2 ** -24), 0x0001);
    assert.equal(f32ToF16(2 ** -25), 0x0000); // tie → even (0)
    assert.equal(f32ToF16(-(2 ** -14)), 0x8400);
    for (let h = 0; h < 0x7c00; h++) {
      assert.equal(f32ToF16(f16ToF32(h)), h);
      assert.equal(f32ToF16(f16ToF32(h | 0x8000)), h | 0x8000);
    }
  });
});

describe('f16_all_finite', () => {
  it('finds an inf or NaN anywhere, the SIMD body and the scalar tail alike', () => {
    const mem = new Bump(arena);
    for (const count of [1, 7, 8, 9, 100, 1001]) {
      const bits = Uint16Array.from({ length: count }, (_, i) => (i * 2654435761) % 0x7c00);
      const at = mem.put(bits);
      assert.equal(arena.allFiniteF16(at, count), true, `count ${count}: all finite`);
      for (const pos of new Set([0, Math.min(7, count - 1), Math.min(8, count - 1), count - 1])) {
        for (const bad of [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff]) {
          u16(arena, at, count)[pos] = bad;
          assert.equal(arena.allFiniteF16(at, count), false, `count ${count}: 0x${bad.toString(16)} at ${pos}`);
          u16(arena, at, count)[pos] = bits[pos]!;
        }
      }
      mem.reset();
    }
  });
});
