// MLX's code packing: a row is a little-endian bit stream, code k of a word at bit k·bits
// (mlx/backend/cpu/quantized.cpp, `out_el |= q << (k * bits)`).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TfvlmError } from '../../src/errors.ts';
import { packCodes, unpackCodes } from '../../src/quant/mlx-pack.ts';

function seededCodes(n: number, bits: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> (32 - bits);
  }
  return out;
}

describe('packCodes', () => {
  it('puts 4-bit code i at bits 4·(i mod 8) of word i / 8', () => {
    // nibbles, most significant first: 7 6 5 4 3 2 1 0
    assert.deepEqual([...packCodes(Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7), 4)], [0x76543210]);
    // a code in the top nibble: 15·2^28 + 15 = 4026531855, stored unsigned
    assert.deepEqual([...packCodes(Uint8Array.of(15, 0, 0, 0, 0, 0, 0, 15), 4)], [0xf000000f]);
    assert.deepEqual([...packCodes(Uint8Array.of(...Array(8).fill(0), 9, ...Array(7).fill(0)), 4)], [0, 9]);
  });

  it('puts 8-bit code i in byte i mod 4 of word i / 4, so the little-endian bytes are the codes in order', () => {
    assert.deepEqual([...packCodes(Uint8Array.of(1, 2, 3, 4, 0xff, 0, 0, 0x80), 8)], [0x04030201, 0x800000ff]);
    const codes = seededCodes(64, 8, 3);
    const words = packCodes(codes, 8);
    assert.deepEqual(new Uint8Array(words.buffer), codes); // tfvlm runs on little-endian hosts only
  });

  it('round-trips random codes at 4 and 8 bits', () => {
    for (const bits of [4, 8]) {
      const codes = seededCodes(32 * 37, bits, 11 + bits);
      const words = packCodes(codes, bits);
      assert.equal(words.length, (codes.length * bits) / 32);
      assert.deepEqual(unpackCodes(words, bits), codes);
    }
  });

  it('refuses a code that does not fit, a partial word and unsupported bits', () => {
    assert.throws(() => packCodes(Uint8Array.of(16, 0, 0, 0, 0, 0, 0, 0), 4), (e: unknown) => e instanceof TfvlmError && /code 16 at index 0/.test(e.message));
    assert.throws(() => packCodes(new Uint8Array(7), 4), /7 codes do not fill whole words of 8/);
    assert.throws(() => packCodes(new Uint8Array(8), 3), /bits must be 4 or 8, got 3/);
    assert.throws(() => unpackCodes(new Uint32Array(1), 2), /bits must be 4 or 8, got 2/);
  });
});

describe('unpackCodes', () => {
  it('reads the hand-packed words back', () => {
    assert.deepEqual([...unpackCodes(Uint32Array.of(0x76543210), 4)], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual([...unpackCodes(Uint32Array.of(0x800000ff), 8)], [0xff, 0, 0, 0x80]);
  });
});
