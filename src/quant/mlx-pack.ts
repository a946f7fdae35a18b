// MLX's packing of quantization codes into uint32 words: each row is one little-endian bit stream,
// `32 / bits` codes per word, code k of a word at bits `k·bits …` (mlx/backend/cpu/quantized.cpp,
// `out_el |= q << (k * bits)`). For 4 bits, value i sits in word i >> 3 at bit 4·(i & 7); for 8 bits
// the words' little-endian bytes are the codes in order. Rows need no separate handling: a row of
// `cols` codes fills exactly `cols · bits / 32` words, so a row-major matrix is one long stream.
import { TfvlmError } from '../errors.ts';

function codesPerWord(bits: number, fn: string): number {
  if (bits !== 4 && bits !== 8) throw new TfvlmError(`${fn}: bits must be 4 or 8, got ${bits}`);
  return 32 / bits;
}

/** Codes (one per value, each < 2^bits) → uint32 words. */
export function packCodes(codes: Uint8Array, bits: number): Uint32Array {
  const perWord = codesPerWord(bits, 'packCodes');
  if (codes.length % perWord !== 0) {
    throw new TfvlmError(`packCodes: ${codes.length} codes do not fill whole words of ${perWord}`);
  }
  const limit = 1 << bits;
  const words = new Uint32Array(codes.length / perWord);
  for (let w = 0; w < words.length; w++) {
    let word = 0;
    for (let k = 0; k < perWord; k++) {
      const code = codes[w * perWord + k]!;
      if (code >= limit) throw new TfvlmError(`packCodes: code ${code} at index ${w * perWord + k} does not fit in ${bits} bits`);
      word |= code << (k * bits);
    }
    words[w] = word; // ToUint32: a code in the top nibble makes `word` negative as an int32
  }
  return words;
}

/** uint32 words → codes (one per value). */
export function unpackCodes(words: Uint32Array, bits: number): Uint8Array {
  const perWord = codesPerWord(bits, 'unpackCodes');
  const mask = (1 << bits) - 1;
  const codes = new Uint8Array(words.length * perWord);
  for (let w = 0; w < words.length; w++) {
    const word = words[w]!;
    for (let k = 0; k < perWord; k++) codes[w * perWord + k] = (word >>> (k * bits)) & mask;
  }
  return codes;
}
