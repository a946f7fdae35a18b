// The browser bundle's PNG and GIF decoder (src/io/png-gif-bmp.browser.ts) against the Node one
// (Jimp: pngjs, omggif): the same RGBA for every PNG and GIF in the test corpora, and for generated
// PNGs of every colour type × bit depth, interlaced or not, with every line filter, palette and tRNS.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { decodePngGifBmp as browserDecode } from '../../src/io/png-gif-bmp.browser.ts';
import { decodePngGifBmp as nodeDecode } from '../../src/io/png-gif-bmp.ts';
import { Rng } from '../../src/util/rng.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function files(dir: string, out: string[] = []): string[] {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else if (/\.(png|gif)$/i.test(e.name)) out.push(p);
  }
  return out;
}

/** Both decoders on `bytes`: the same RGBA (returns true), or both refuse (false). */
async function same(bytes: Uint8Array, what: string): Promise<boolean> {
  const raw16 = bytes[0] === 0x89 && bytes[24] === 16;
  for (const r16 of raw16 ? [false, true] : [false]) {
    let expected;
    try {
      expected = await nodeDecode(bytes, r16);
    } catch {
      await assert.rejects(browserDecode(bytes, r16), `${what}: Jimp refuses it, so must the browser decoder`);
      return false;
    }
    const got = await browserDecode(bytes, r16);
    assert.equal(got.width, expected.width, what);
    assert.equal(got.height, expected.height, what);
    assert.ok(Buffer.from(got.data).equals(Buffer.from(expected.data.buffer, expected.data.byteOffset, expected.data.byteLength)), `${what}${r16 ? ' (raw16)' : ''}: pixels differ`);
  }
  return true;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/**
 * A PNG of random samples: `colorType`, `depth`, Adam7 when `interlace`; line y of each pass image
 * filtered with filter y % 5 (None, Sub, Up, Average, Paeth).
 */
function randomPng(rng: Rng, width: number, height: number, colorType: number, depth: number, interlace: boolean, trns: boolean): Buffer {
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType]!;
  const paletteSize = colorType === 3 ? Math.min(2 ** depth, 6) : 0;
  const max = colorType === 3 ? paletteSize - 1 : 2 ** depth - 1;
  const sample = () => Math.min(max, Math.floor(rng.next() * (max + 1)));
  const pixels = Array.from({ length: width * height }, () => Array.from({ length: channels }, sample));
  if (trns && (colorType === 0 || colorType === 2)) pixels[0] = pixels[1]?.slice() ?? pixels[0]!; // one repeated colour to be transparent
  const bpp = Math.max(1, (channels * depth) / 8);
  const lines: number[] = [];
  const passes = interlace ? ADAM7 : [[0, 0, 1, 1]] as const;
  for (const [x0, y0, dx, dy] of passes) {
    const xs: number[] = [];
    for (let x = x0; x < width; x += dx) xs.push(x);
    let previous: number[] | undefined;
    let row = 0;
    for (let y = y0; y < height; y += dy) {
      if (xs.length === 0) break;
      // Pack the samples of the line.
      const bits: number[] = [];
      for (const x of xs) for (const v of pixels[y * width + x]!) {
        if (depth === 16) bits.push(v >> 8, v & 255);
        else if (depth === 8) bits.push(v);
        else bits.push(-1 - v); // placeholder, packed below
      }
      let raw: number[];
      if (depth < 8) {
        raw = new Array(Math.ceil((xs.length * channels * depth) / 8)).fill(0);
        let i = 0;
        for (const b of bits) {
          const v = -1 - b;
          const at = Math.floor((i * depth) / 8);
          raw[at] = raw[at]! | (v << (8 - depth - ((i * depth) % 8)));
          i++;
        }
      } else {
        raw = bits;
      }
      const filter = row % 5;
      const up = previous ?? raw.map(() => 0);
      const out = raw.map((v, i) => {
        const left = i >= bpp ? raw[i - bpp]! : 0;
        const above = up[i]!;
        const upLeft = i >= bpp ? up[i - bpp]! : 0;
        const p = left + above - upLeft;
        const pred = [0, left, above, (left + above) >> 1,
          Math.abs(p - left) <= Math.abs(p - above) && Math.abs(p - left) <= Math.abs(p - upLeft) ? left : Math.abs(p - above) <= Math.abs(p - upLeft) ? above : upLeft][filter]!;
        return (v - pred) & 255;
      });
      lines.push(filter, ...out);
      previous = raw;
      row++;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  ihdr[12] = interlace ? 1 : 0;
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (colorType === 3) {
    parts.push(chunk('PLTE', Uint8Array.from({ length: 3 * paletteSize }, () => Math.floor(rng.next() * 256))));
    if (trns) parts.push(chunk('tRNS', Uint8Array.from({ length: paletteSize - 1 }, (_, i) => i * 40)));
  } else if (trns && (colorType === 0 || colorType === 2)) {
    const t = Buffer.alloc(colorType === 0 ? 2 : 6);
    pixels[0]!.forEach((v, i) => t.writeUInt16BE(v, 2 * i));
    parts.push(chunk('tRNS', t));
  }
  parts.push(chunk('gAMA', Uint8Array.from([0, 0, 0xb1, 0x8f])));
  parts.push(chunk('IDAT', zlib.deflateSync(Uint8Array.from(lines))), chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}

describe('browser PNG/GIF decoder', () => {
  it('decodes every PNG and GIF of the test corpora as Jimp does', async () => {
    const all = [...files(path.join(ROOT, 'test')), ...files(path.join(ROOT, 'examples')), ...files(path.join(ROOT, '../shared/images'))];
    assert.ok(all.length >= 20, `${all.length} images`);
    for (const f of all) assert.ok(await same(new Uint8Array(fs.readFileSync(f)), path.relative(ROOT, f)), `${f} decodes`);
  });

  it('decodes every colour type, bit depth, filter, Adam7, palette and tRNS as pngjs does', async () => {
    const rng = new Rng(7);
    const depths: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
    let n = 0;
    for (const [type, ds] of Object.entries(depths)) {
      for (const depth of ds) {
        for (const interlace of [false, true]) {
          for (const trns of [false, true]) {
            for (const [w, h] of [[1, 1], [5, 3], [13, 11]] as const) {
              const what = `type ${type} depth ${depth}${interlace ? ' Adam7' : ''}${trns ? ' tRNS' : ''} ${w}x${h}`;
              assert.ok(await same(randomPng(rng, w, h, Number(type), depth, interlace, trns), what), `${what} decodes`);
              n++;
            }
          }
        }
      }
    }
    assert.equal(n, 180);
  });

  it('refuses corrupt PNGs (bad CRC, missing palette) as pngjs does', async () => {
    const good = randomPng(new Rng(1), 4, 4, 2, 8, false, false);
    const badCrc = Buffer.from(good);
    badCrc[29] = badCrc[29]! ^ 1; // a byte of IHDR's CRC
    assert.equal(await same(badCrc, 'bad CRC'), false);
    const p = randomPng(new Rng(2), 4, 4, 3, 8, false, false);
    const plte = p.indexOf('PLTE');
    const noPalette = Buffer.concat([p.subarray(0, plte - 4), p.subarray(plte + 4 + 4 + p.readUInt32BE(plte - 4))]);
    assert.equal(await same(noPalette, 'palette image without PLTE'), false);
    await assert.rejects(browserDecode(Buffer.from('BM\0\0'), false), /BMP is not decoded in the browser build/);
  });
});
