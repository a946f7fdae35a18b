// Images with lying headers, corrupt data, or bytes that hung a decoder: each is a TfvlmError naming
// the file, raised quickly. (test/io/image.test.ts covers missing / empty / directory / truncated /
// unknown-format files and the pixel limit.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Jimp } from 'jimp';
import { encodeJpeg, loadImage } from '../../src/io/image.ts';
import { fixture } from '../helpers/paths.ts';
import { escaped, rejectsWith } from './broken-model.ts';

const PNG = new Uint8Array(fs.readFileSync(fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png')));

/** An 84-byte GIF (a fuzzer's find) whose LZW codes made omggif build a self-referencing table entry and loop forever. */
const LZW_LOOP_GIF = Buffer.from(
  '4749463839610c00090081200000fe003366cb95346900080021ff0b5e45545343435045b22e32032100000021f9040808000000' +
  '2c000000000c000900000212448e27b88976a40b8dce29afd229ebca4905003b', 'hex',
);

/** Offset of the JPEG frame header (SOF0..SOF2 marker). */
function sofAt(b: Uint8Array): number {
  const at = b.findIndex((v, i) => {
    const next = b[i + 1];
    return v === 0xff && next !== undefined && next >= 0xc0 && next <= 0xc2;
  });
  assert.ok(at > 0, 'no SOF marker');
  return at;
}

function patched(src: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = Uint8Array.from(src);
  out.set(bytes, at);
  return out;
}

describe('hostile image bytes', () => {
  let tmp: string;
  let gif: Uint8Array;
  let bmp: Uint8Array;
  let jpeg: Uint8Array;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-hostile-img-'));
    const j = new Jimp({ width: 12, height: 9, color: 0x3366ccff });
    gif = new Uint8Array(await j.getBuffer('image/gif'));
    bmp = new Uint8Array(await j.getBuffer('image/bmp'));
    jpeg = await encodeJpeg(await loadImage(PNG), 80);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const file = (name: string, bytes: Uint8Array) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const refused = async (name: string, bytes: Uint8Array, re: RegExp) => {
    const p = file(name, bytes);
    const t0 = performance.now();
    await rejectsWith(() => loadImage(p), new RegExp(escaped(p)), re);
    assert.ok(performance.now() - t0 < 2000, `${name} took ${performance.now() - t0} ms`);
  };

  it('PNG whose header says 0x0', () => refused('zero.png', patched(PNG, 16, [0, 0, 0, 0, 0, 0, 0, 0]), /PNG header says 0x0 \(an empty image\)/));
  it('PNG whose header claims 20000x20000 (over the pixel limit, refused before decoding)', () =>
    refused('bomb.png', patched(PNG, 16, [0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20]), /20000x20000 = 400000000 pixels, over the \d+-pixel limit/));
  it('PNG whose header size disagrees with its CRC', () => refused('crc.png', patched(PNG, 19, [65]), /truncated or corrupt PNG/));
  it('PNG with a flipped byte in the image data', () => refused('data.png', patched(PNG, PNG.length - 30, [PNG[PNG.length - 30]! ^ 0xff]), /truncated or corrupt PNG/));
  it('16-bit grayscale PNG', () => refused('gray16.png', patched(PNG, 24, [16, 0]), /16-bit grayscale PNG \(Pillow mode I\) is not supported/));
  it('PNG with an invalid colour type', () => refused('colour.png', patched(PNG, 25, [7]), /invalid PNG colour type 7/));
  it('BMP whose header says zero height', () => refused('flat.bmp', patched(bmp, 22, [0, 0, 0, 0]), /BMP header says 12x0 \(an empty image\)/));
  it('GIF whose first frame extends past the screen', () => refused('frame.gif', (() => {
    const at = gif.indexOf(0x2c, 13);
    return patched(gif, at + 5, [0xfa, 0x24, 0x68, 0xbf]);
  })(), /corrupt GIF \(frame 0 at 0,0 of size 9466x49000 extends past the 12x9 screen\)/));
  it('GIF with LZW codes that hung the decoder', () => refused('loop.gif', new Uint8Array(LZW_LOOP_GIF), /corrupt GIF \(frame 0: LZW code \d+ names no table entry/));
  it('GIF with an application extension of the wrong size', () => refused('appext.gif', (() => {
    const at = LZW_LOOP_GIF.indexOf(Buffer.from([0x21, 0xff]));
    return patched(new Uint8Array(LZW_LOOP_GIF), at + 2, [0x0a]);
  })(), /application extension block size 10, not 11/));
  it('GIF whose screen is 0 wide', () => refused('zero.gif', patched(gif, 6, [0, 0]), /corrupt GIF \(frame 0 at 0,0 of size 12x9 extends past the 0x9 screen\)/));
  it('JPEG claiming 4 components (CMYK)', () => refused('cmyk.jpg', (() => {
    return patched(jpeg, sofAt(jpeg) + 9, [4]);
  })(), /JPEG with 4 components \(CMYK\/YCCK\) is not supported/));
  it('JPEG whose frame header says 0 rows', () => refused('zero.jpg', (() => {
    return patched(jpeg, sofAt(jpeg) + 5, [0, 0]);
  })(), /JPEG header says 64x0 \(an empty image\)/));
  it('JPEG without an end-of-image marker', () => refused('cut.jpg', jpeg.subarray(0, jpeg.length - 100), /truncated JPEG \(no end-of-image marker\)/));
  it('TIFF and HEIF are named as unsupported; a WebP cut short is named as such', async () => {
    await refused('x.tif', new Uint8Array(Buffer.from('II*\0\x08\0\0\0junkjunk', 'latin1')), /TIFF is not supported \(supported: PNG, JPEG, GIF, BMP, WebP\)/);
    await refused('x.webp', new Uint8Array(Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1')), /corrupt WebP \(truncated header, 16 bytes\)/);
    await refused('x.heic', new Uint8Array(Buffer.from('\0\0\0\x18ftypheic\0\0\0\0', 'latin1')), /HEIF\/AVIF is not supported/);
  });
  it('decoded bitmaps that lie about their size', async () => {
    await rejectsWith(() => loadImage({ width: 0, height: 0, data: new Uint8Array(0) } as never), /decoded image/);
    await rejectsWith(() => loadImage({ width: 4, height: 4, mode: 'RGB', data: new Uint8Array(5) } as never), /decoded image/);
  });
});
