import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DTYPE_BYTES, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/io/dtypes.ts';

const widenBf16 = (bits: number) => bf16ToF32(Uint16Array.of(bits))[0]!;
const widenF16 = (bits: number) => f16ToF32(Uint16Array.of(bits))[0]!;
const toBf16 = (x: number) => f32ToBf16(Float32Array.of(x))[0]!;
const toF16 = (x: number) => f32ToF16(Float32Array.of(x))[0]!;
const fromBits = (u: number) => new Float32Array(Uint32Array.of(u).buffer)[0]!;
const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** Independent float16 decoding by the IEEE formula. */
function f16Reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

describe('DTYPE_BYTES', () => {
  it('matches the safetensors element sizes', () => {
    assert.deepEqual(DTYPE_BYTES, { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U32: 4, U8: 1, BOOL: 1 });
  });
});

describe('bf16ToF32', () => {
  it('widens known bit patterns exactly', () => {
    assert.ok(Object.is(widenBf16(0x0000), 0));
    assert.ok(Object.is(widenBf16(0x8000), -0));
    assert.equal(widenBf16(0x3f80), 1);
    assert.equal(widenBf16(0xc000), -2);
    assert.equal(widenBf16(0x0001), 2 ** -133); // smallest subnormal
    assert.equal(widenBf16(0x007f), 127 * 2 ** -133); // largest subnormal
    assert.equal(widenBf16(0x0080), 2 ** -126); // smallest normal
    assert.equal(widenBf16(0x7f7f), (2 - 2 ** -7) * 2 ** 127); // max normal
    assert.equal(widenBf16(0x7f80), Infinity);
    assert.equal(widenBf16(0xff80), -Infinity);
    assert.ok(Number.isNaN(widenBf16(0x7fc0)));
    assert.ok(Number.isNaN(widenBf16(0xffc1)));
  });

  it('is the upper half of the float32 bits for every pattern, also widening in place', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = bf16ToF32(all);
    const u = bitsOf(f);
    for (let i = 0; i < 65536; i++) assert.equal(u[i], i << 16 >>> 0);
    // in place: 2-byte values in the upper half of the output buffer
    const out = new Float32Array(65536);
    new Uint16Array(out.buffer, 2 * 65536, 65536).set(all);
    bf16ToF32(new Uint16Array(out.buffer, 2 * 65536, 65536), out);
    assert.deepEqual(bitsOf(out), u);
  });
});

describe('in-place and unaligned widening', () => {
  for (const [name, widen] of [['bf16ToF32', bf16ToF32], ['f16ToF32', f16ToF32]] as const) {
    it(`${name}: odd and even lengths, source at byte 2n−2 / 2n of out, and a 2-byte-aligned source`, () => {
      for (const n of [1, 2, 5, 6, 101]) {
        const src = Uint16Array.from({ length: n }, (_, i) => (i * 0x1f3d + 0x3c00) & 0xffff);
        const expected = bitsOf(widen(Uint16Array.from(src)));
        for (const start of [2 * n - 2, 2 * n]) {
          if (start < 0) continue;
          const out = new Float32Array(new ArrayBuffer(4 * n + 4), 0, n);
          const bits = new Uint16Array(out.buffer, start, n);
          bits.set(src);
          widen(bits, out);
          assert.deepEqual(bitsOf(out), expected, `n=${n} start=${start}`);
        }
        const unaligned = new Uint16Array(new ArrayBuffer(2 * n + 2), 2, n);
        unaligned.set(src);
        assert.deepEqual(bitsOf(widen(unaligned)), expected, `n=${n} unaligned`);
      }
    });
  }
});

describe('f16ToF32', () => {
  it('widens known bit patterns exactly', () => {
    assert.ok(Object.is(widenF16(0x0000), 0));
    assert.ok(Object.is(widenF16(0x8000), -0));
    assert.equal(widenF16(0x3c00), 1);
    assert.equal(widenF16(0xc000), -2);
    assert.equal(widenF16(0x3555), 0.333251953125);
    assert.equal(widenF16(0x0001), 2 ** -24); // smallest subnormal
    assert.equal(widenF16(0x8001), -(2 ** -24));
    assert.equal(widenF16(0x03ff), 1023 * 2 ** -24); // largest subnormal
    assert.equal(widenF16(0x0400), 2 ** -14); // smallest normal
    assert.equal(widenF16(0x7bff), 65504); // max normal
    assert.equal(widenF16(0x7c00), Infinity);
    assert.equal(widenF16(0xfc00), -Infinity);
    assert.ok(Number.isNaN(widenF16(0x7e00)));
    assert.ok(Number.isNaN(widenF16(0x7c01)));
  });

  it('matches the IEEE formula for all 65536 patterns and keeps NaN payloads', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      const ref = f16Reference(h);
      if (Number.isNaN(ref)) {
        assert.ok(Number.isNaN(f[h]), `0x${h.toString(16)}`);
        assert.equal(bitsOf(f)[h]! & 0x7fffff, (h & 0x3ff) << 13, `NaN payload 0x${h.toString(16)}`);
      } else {
        assert.ok(Object.is(f[h], ref), `0x${h.toString(16)}: ${f[h]} vs ${ref}`);
      }
    }
  });

  it('uses out when given and refuses one too small', () => {
    const out = new Float32Array(3);
    assert.equal(f16ToF32(Uint16Array.of(0x3c00, 0x4000), out), out);
    assert.deepEqual([...out], [1, 2, 0]);
    assert.throws(() => f16ToF32(Uint16Array.of(1, 2), new Float32Array(1)), RangeError);
  });
});

describe('f32ToBf16', () => {
  it('rounds to nearest, ties to even', () => {
    assert.equal(toBf16(1), 0x3f80);
    assert.equal(toBf16(1 + 2 ** -8), 0x3f80); // tie → even (down)
    assert.equal(toBf16(1 + 3 * 2 ** -8), 0x3f82); // tie → even (up)
    assert.equal(toBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above the tie
    assert.equal(toBf16(-(1 + 2 ** -8 + 2 ** -20)), 0xbf81);
    assert.equal(toBf16(fromBits(0x7f7fffff)), 0x7f80); // float32 max rounds up to inf
    assert.equal(toBf16(fromBits(0x7f7f7fff)), 0x7f7f);
    assert.equal(toBf16(Infinity), 0x7f80);
    assert.equal(toBf16(-Infinity), 0xff80);
    assert.equal(toBf16(-0), 0x8000);
    assert.equal(toBf16(2 ** -133), 0x0001);
  });

  it('keeps NaN a NaN even when the payload is only in the dropped bits', () => {
    for (const u of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
      const b = toBf16(fromBits(u));
      assert.ok(Number.isNaN(widenBf16(b)), `0x${u.toString(16)} → 0x${b.toString(16)}`);
      assert.equal(b & 0x8000, (u >>> 16) & 0x8000);
    }
  });

  it('round-trips every non-NaN bf16 pattern and picks the nearest for random floats', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToBf16(bf16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      if ((i & 0x7fff) > 0x7f80) continue;
      assert.equal(back[i], i);
    }
    checkNearest(f32ToBf16, widenBf16, 0x7f80);
  });
});

describe('f32ToF16', () => {
  it('rounds to nearest, ties to even, in normal and subnormal ranges', () => {
    assert.equal(toF16(1), 0x3c00);
    assert.equal(toF16(1 + 2 ** -11), 0x3c00); // tie → even (down)
    assert.equal(toF16(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
    assert.equal(toF16(1 + 2 ** -11 + 2 ** -20), 0x3c01);
    assert.equal(toF16(65504), 0x7bff);
    assert.equal(toF16(65519), 0x7bff);
    assert.equal(toF16(65520), 0x7c00); // tie between max normal (odd) and inf → inf
    assert.equal(toF16(1e6), 0x7c00);
    assert.equal(toF16(-1e6), 0xfc00);
    assert.equal(toF16(2 ** -14), 0x0400);
    assert.equal(toF16(1023.5 * 2 ** -24), 0x0400); // tie rounds up into the smallest normal
    assert.equal(toF16(1022.5 * 2 ** -24), 0x03fe); // tie → even
    assert.equal(toF16(2 ** -24), 0x0001);
    assert.equal(toF16(2 ** -25), 0x0000); // half the smallest subnormal: tie → 0
    assert.equal(toF16(2 ** -25 * (1 + 2 ** -23)), 0x0001);
    assert.equal(toF16(3 * 2 ** -25), 0x0002); // tie → even (up)
    assert.equal(toF16(1e-10), 0x0000);
    assert.equal(toF16(-1e-10), 0x8000);
    assert.equal(toF16(-0), 0x8000);
    assert.equal(toF16(Infinity), 0x7c00);
    assert.ok(Number.isNaN(widenF16(toF16(NaN))));
    assert.ok(Number.isNaN(widenF16(toF16(fromBits(0x7f800001)))));
  });

  it('round-trips every non-NaN f16 pattern and picks the nearest for random floats', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      if ((i & 0x7fff) > 0x7c00) continue;
      assert.equal(back[i], i);
    }
    checkNearest(f32ToF16, widenF16, 0x7c00);
  });
});

/**
 * For random float32 values inside the finite range, the 16-bit result h must be at least as close
 * as its neighbours h±1, and on an exact tie have an even mantissa.
 */
function checkNearest(narrow: (x: Float32Array) => Uint16Array, widen: (h: number) => number, infBits: number): void {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const x = new Float32Array(20000);
  const maxFinite = widen(infBits - 1);
  for (let i = 0; i < x.length; i++) {
    const scale = 2 ** Math.floor(rand() * 60 - 40);
    x[i] = Math.max(-maxFinite, Math.min(maxFinite, (rand() * 2 - 1) * scale));
  }
  const h = narrow(x);
  for (let i = 0; i < x.length; i++) {
    const hi = h[i]!;
    const xi = x[i]!;
    const mag = hi & 0x7fff;
    const v = widen(hi);
    const err = Math.abs(v - xi);
    for (const nb of [mag - 1, mag + 1]) {
      if (nb < 0 || nb >= infBits) continue;
      const w = widen((hi & 0x8000) | nb);
      const errNb = Math.abs(w - xi);
      assert.ok(err < errNb || (err === errNb && (mag & 1) === 0), `x=${xi} → 0x${hi.toString(16)}`);
    }
  }
}
