// Safetensors element types and exact conversions between float16 / bfloat16 bits and float32.
// Widening is exact; narrowing rounds to nearest, ties to even (as torch's .to(bfloat16/float16) does).

/** U32 holds MLX's quantized codes (uint32 words of packed 4- or 8-bit codes). */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U32' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U32: 4, U8: 1, BOOL: 1,
};

export function isSafetensorsDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

function outFor(n: number, out: Float32Array | undefined, fn: string): Float32Array {
  if (!out) return new Float32Array(n);
  if (out.length < n) throw new RangeError(`${fn}: out has ${out.length} elements, needs ${n}`);
  return out;
}

/**
 * bfloat16 bits → float32: the bf16 bits are the top half of the float32 bits.
 * In place is allowed: `bits` may sit inside `out`'s memory starting at byte 2n − 2 or later
 * (element i is written only after source elements 0..i were read).
 */
export function bf16ToF32(bits: Uint16Array, out?: Float32Array): Float32Array {
  const n = bits.length;
  const res = outFor(n, out, 'bf16ToF32');
  const u32 = new Uint32Array(res.buffer, res.byteOffset, n);
  let i = 0;
  if ((bits.byteOffset & 3) === 0) {
    // two values per 32-bit load (little-endian: element 2j in the low half)
    const m = n >> 1;
    const pairs = new Uint32Array(bits.buffer, bits.byteOffset, m);
    for (let j = 0, o = 0; j < m; j++, o += 2) {
      const w = pairs[j]!;
      u32[o] = w << 16;
      u32[o + 1] = w & 0xffff0000;
    }
    i = 2 * m;
  }
  for (; i < n; i++) u32[i] = bits[i]! << 16;
  return res;
}

let f16Table: Uint32Array | undefined;

/** float32 bit pattern of every float16 bit pattern (65536 entries, built once). */
function f16ToF32Table(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  const f = new Float32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      t[h] = sign | 0x7f800000 | (mant << 13); // inf, or NaN keeping its payload
    } else if (exp !== 0) {
      t[h] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    } else {
      f[h] = mant * 2 ** -24; // zero or subnormal: exact in float32
      t[h]! |= sign;
    }
  }
  f16Table = t;
  return t;
}

/** float16 bits → float32, exact for every pattern (±0, subnormals, ±inf, NaN payloads). Same in-place rule as bf16ToF32. */
export function f16ToF32(bits: Uint16Array, out?: Float32Array): Float32Array {
  const n = bits.length;
  const res = outFor(n, out, 'f16ToF32');
  const u32 = new Uint32Array(res.buffer, res.byteOffset, n);
  const table = f16ToF32Table();
  let i = 0;
  if ((bits.byteOffset & 3) === 0) {
    const m = n >> 1;
    const pairs = new Uint32Array(bits.buffer, bits.byteOffset, m);
    for (let j = 0, o = 0; j < m; j++, o += 2) {
      const w = pairs[j]!;
      u32[o] = table[w & 0xffff]!;
      u32[o + 1] = table[w >>> 16]!;
    }
    i = 2 * m;
  }
  for (; i < n; i++) u32[i] = table[bits[i]!]!;
  return res;
}

/** float32 → bfloat16 bits, round to nearest even; NaN stays NaN (quiet, sign and top payload kept). */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const n = x.length;
  const u32 = new Uint32Array(x.buffer, x.byteOffset, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const u = u32[i]!;
    if ((u & 0x7fffffff) > 0x7f800000) {
      out[i] = (u >>> 16) | 0x0040;
    } else {
      out[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** float32 → float16 bits, round to nearest even; overflow → ±inf, underflow → subnormal or ±0; NaN stays NaN. */
export function f32ToF16(x: Float32Array): Uint16Array {
  const n = x.length;
  const u32 = new Uint32Array(x.buffer, x.byteOffset, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32BitsToF16(u32[i]!);
  return out;
}

function f32BitsToF16(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal (2^-25): rounds to ±0
    // value = m · 2^(e-14) in units of the smallest subnormal 2^-24
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h; // a carry into bit 10 yields the smallest normal, as it should
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may reach 0x7c00 = inf
  return sign | h;
}
