// WebP decoding (src/io/image.ts through @jsquash/webp): every pixel equal to libwebp's own decode
// (dwebp -pam of the same file, test/images/webp/), in the mode Pillow opens (RGB without alpha,
// RGBA with), EXIF orientation applied as transformers' load_image does, and broken or animated
// files refused by name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeImage, readImageHeader } from '../../src/io/image.ts';

const DIR = fileURLToPath(new URL('../images/webp/', import.meta.url));
const file = (name: string) => new Uint8Array(fs.readFileSync(DIR + name));

/** A PAM (P7, RGB_ALPHA) as width, height and RGBA bytes. */
function readPam(name: string): { width: number; height: number; rgba: Uint8Array } {
  const bytes = file(name);
  const end = Buffer.from(bytes).indexOf('ENDHDR\n') + 7;
  const head = Buffer.from(bytes.subarray(0, end)).toString('latin1');
  const field = (k: string) => Number(new RegExp(`${k} (\\d+)`).exec(head)![1]);
  return { width: field('WIDTH'), height: field('HEIGHT'), rgba: bytes.subarray(end) };
}

describe('WebP', () => {
  for (const [name, mode] of [['lossy', 'RGB'], ['lossless-alpha', 'RGBA'], ['lossy-alpha', 'RGBA']] as const) {
    it(`${name}.webp: ${mode}, every byte as libwebp's dwebp decodes it`, async () => {
      const img = await decodeImage(file(`${name}.webp`), name);
      const want = readPam(`${name}.pam`);
      assert.deepEqual([img.width, img.height, img.mode], [want.width, want.height, mode]);
      const expected = mode === 'RGBA' ? want.rgba : want.rgba.filter((_, i) => i % 4 !== 3);
      assert.ok(Buffer.from(img.data).equals(Buffer.from(expected)), 'pixels differ from dwebp');
    });
  }

  it('applies EXIF orientation 6 (a 67×45 image comes out 45×67, rotated clockwise)', async () => {
    const plain = await decodeImage(file('lossy.webp'), 'lossy');
    const rotated = await decodeImage(file('lossy-exif6.webp'), 'exif6');
    assert.deepEqual([rotated.width, rotated.height], [45, 67]);
    // Orientation 6: the new row y, column x is the old row (H − 1 − x), column y.
    const at = (img: typeof plain, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    for (const [x, y] of [[0, 0], [44, 0], [0, 66], [20, 30]] as const) assert.deepEqual(at(rotated, x, y), at(plain, y, 44 - x), `${x},${y}`);
  });

  it('reads size and mode from the header alone', () => {
    assert.deepEqual(readImageHeader(file('lossy.webp'), 'a'), { format: 'webp', width: 67, height: 45, mode: 'RGB' });
    assert.deepEqual(readImageHeader(file('lossless-alpha.webp'), 'b'), { format: 'webp', width: 50, height: 41, mode: 'RGBA' });
    assert.deepEqual(readImageHeader(file('lossy-exif6.webp'), 'c'), { format: 'webp', width: 67, height: 45, mode: 'RGB' });
  });

  it('refuses truncated, corrupt and animated files by name', async () => {
    const lossy = file('lossy.webp');
    await assert.rejects(decodeImage(lossy.subarray(0, 20), 'cut.webp'), /cut\.webp: corrupt WebP \(truncated header, 20 bytes\)/);
    await assert.rejects(decodeImage(lossy.subarray(0, 200), 'half.webp'), /half\.webp: corrupt WebP/);
    const noStart = Uint8Array.from(lossy);
    noStart[23] = 0;
    await assert.rejects(decodeImage(noStart, 'nostart.webp'), /corrupt WebP \(no VP8 start code\)/);
    const other = Uint8Array.from(lossy);
    other.set([0x41, 0x4c, 0x50, 0x48], 12); // 'ALPH' first
    await assert.rejects(decodeImage(other, 'alph.webp'), /first chunk 'ALPH' is not VP8, VP8L or VP8X/);
    const animated = file('lossy-exif6.webp');
    animated[20]! |= 0x02;
    await assert.rejects(decodeImage(animated, 'anim.webp'), /anim\.webp: animated WebP is not supported as an image/);
  });
});
