// loadImage: Pillow-identical pixels and modes for the fixture photos, every supported source kind,
// EXIF orientation, and a clear TfvlmError for each kind of bad input.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Jimp } from 'jimp';
import { TfvlmError } from '../../src/errors.ts';
import { decodeImage, encodeJpeg, loadImage } from '../../src/io/image.ts';
import { MAX_IMAGE_PIXELS } from '../../src/io/pixel-budget.ts';
import { MODE_CHANNELS } from '../../src/io/bitmap.ts';
import { image } from '../helpers/paths.ts';
import { IMAGES_JSON, photoPath, sha256 } from '../processing/goldens.ts';
import { encodeBmp24, encodePng, exifOrientationTiff, pngHeaderOnly, withJpegExif } from '../processing/encoders.ts';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-image-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tmpFile = (name: string, bytes: Uint8Array | string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, bytes);
  return f;
};

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TfvlmError, `expected TfvlmError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('loadImage: fixture photos decode to the same uint8 pixels and mode as Pillow', () => {
  for (const rec of IMAGES_JSON.images) {
    it(`${path.basename(rec.file)} (${rec.mode})`, async () => {
      const img = await loadImage(photoPath(rec));
      assert.equal(img.mode, rec.mode);
      assert.deepEqual([img.height, img.width, MODE_CHANNELS[img.mode]], rec.decoded_shape.length === 2 ? [...rec.decoded_shape, 1] : rec.decoded_shape);
      assert.equal(sha256(img.data), rec.decoded_uint8_sha256);
    });
  }
});

describe('loadImage sources', () => {
  it('detects the format from magic bytes, not the extension', async () => {
    const png = tmpFile('really-a-png.jpg', fs.readFileSync(image('chelsea.png')));
    const a = await loadImage(png);
    const b = await loadImage(image('chelsea.png'));
    assert.equal(a.mode, 'RGB');
    assert.deepEqual(a.data, b.data);
  });

  it('reads data: URIs (base64) and raw bytes like the file', async () => {
    const bytes = fs.readFileSync(image('rocket.jpg'));
    const fromFile = await loadImage(image('rocket.jpg'));
    const fromUri = await loadImage(`data:image/jpeg;base64,${bytes.toString('base64')}`);
    const fromBytes = await loadImage(new Uint8Array(bytes));
    assert.deepEqual(fromUri.data, fromFile.data);
    assert.deepEqual(fromBytes.data, fromFile.data);
  });

  it('accepts and validates already-decoded bitmaps', async () => {
    const ok = await loadImage({ width: 2, height: 1, mode: 'RGB', data: new Uint8Array(6) });
    assert.equal(ok.mode, 'RGB');
    const imageData = await loadImage({ width: 2, height: 2, data: new Uint8ClampedArray(16) } as never);
    assert.equal(imageData.mode, 'RGBA');
    await rejectsWith(loadImage({ width: 2, height: 2, mode: 'RGB', data: new Uint8Array(5) }), /needs 12 bytes, got 5/);
    await rejectsWith(loadImage({ width: 0, height: 2, mode: 'L', data: new Uint8Array(0) }), /invalid size 0x2/);
  });

  it('keeps PNG modes: L, LA, RGB, RGBA and palette (P, colours looked up)', async () => {
    const px = Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80]);
    const cases = [
      [0, 'L', 8],
      [4, 'LA', 4],
      [2, 'RGB', 8 / 3],
      [6, 'RGBA', 2],
    ] as const;
    for (const [type, mode] of cases) {
      const n = 8 / MODE_CHANNELS[mode];
      if (!Number.isInteger(n)) continue;
      const img = await decodeImage(encodePng(n, 1, type, px), `${mode}.png`);
      assert.equal(img.mode, mode);
      assert.deepEqual(Array.from(img.data), Array.from(px));
    }
    const rgb = await decodeImage(encodePng(2, 1, 2, px.subarray(0, 6)), 'rgb.png');
    assert.deepEqual([rgb.mode, ...rgb.data], ['RGB', 10, 20, 30, 40, 50, 60]);
    const palette = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255]);
    const p = await decodeImage(encodePng(3, 1, 3, Uint8Array.from([2, 0, 1]), { palette }), 'p.png');
    assert.equal(p.mode, 'P');
    assert.deepEqual(Array.from(p.data), [0, 0, 255, 255, 0, 0, 0, 255, 0]);
  });

  it('16-bit PNG samples keep their high byte (Pillow), not a rounded value', async () => {
    const vals = Uint16Array.from([0x1234, 0xff80, 0x0080, 0x7fff, 0x8000, 0xffff, 0x01ff, 0xfe00]);
    const rgba = await decodeImage(encodePng(2, 1, 6, vals, { bitDepth: 16 }), 'rgba16.png');
    assert.deepEqual([rgba.mode, ...rgba.data], ['RGBA', 0x12, 0xff, 0x00, 0x7f, 0x80, 0xff, 0x01, 0xfe]);
    const rgb = await decodeImage(encodePng(2, 1, 2, vals.subarray(0, 6), { bitDepth: 16 }), 'rgb16.png');
    assert.deepEqual([rgb.mode, ...rgb.data], ['RGB', 0x12, 0xff, 0x00, 0x7f, 0x80, 0xff]);
    await rejectsWith(decodeImage(encodePng(1, 1, 0, Uint16Array.from([7]), { bitDepth: 16 }), 'i16.png'), /i16\.png: 16-bit grayscale PNG/);
  });

  it('decodes BMP (24-bit, bottom-up rows) as RGB', async () => {
    const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 99, 199]);
    const img = await loadImage(tmpFile('x.bmp', encodeBmp24(2, 2, rgb)));
    assert.equal(img.mode, 'RGB');
    assert.deepEqual(Array.from(img.data), Array.from(rgb));
  });

  it('decodes the first GIF frame as a palette image', async () => {
    const j = new Jimp({ width: 4, height: 2, color: 0xff0000ff });
    j.setPixelColor(0x0000ffff, 3, 1);
    const img = await loadImage(new Uint8Array(await j.getBuffer('image/gif')));
    assert.equal(img.mode, 'P');
    assert.deepEqual([img.width, img.height], [4, 2]);
    assert.deepEqual(Array.from(img.data.subarray(0, 3)), [255, 0, 0]);
    const [r, , b] = img.data.subarray(21, 24); // jimp's GIF encoder dithers the odd pixel
    assert.ok(r !== undefined && b !== undefined && b > 200 && r < 60, `pixel (3,1) should be blue, got ${img.data.subarray(21, 24)}`);
  });

  it('GIF transparent pixels keep the palette colour of the transparent index (as Pillow)', async () => {
    const gif = new Uint8Array(await new Jimp({ width: 3, height: 2, color: 0x00ff00ff }).getBuffer('image/gif'));
    // mark palette index 0 (the green every pixel uses) transparent in the graphic control extension
    const gce = Buffer.from(gif).indexOf(Buffer.from([0x21, 0xf9, 0x04]));
    assert.ok(gce > 0);
    gif[gce + 3]! |= 1;
    gif[gce + 6] = 0;
    const img = await loadImage(gif);
    assert.equal(img.mode, 'P');
    for (let i = 0; i < 6; i++) assert.deepEqual(Array.from(img.data.subarray(i * 3, i * 3 + 3)), [0, 255, 0]);
  });

  it('decodes grayscale JPEG as L', async () => {
    const gray = { width: 16, height: 16, mode: 'L' as const, data: new Uint8Array(256).fill(128) };
    const img = await loadImage(await encodeJpeg(gray));
    assert.equal(img.mode, 'L');
    assert.equal(img.data.length, 256);
    assert.ok(Math.abs(img.data[0]! - 128) <= 1);
  });
});

describe('EXIF orientation (transformers load_image: ImageOps.exif_transpose)', () => {
  // 3×2 image, pixel values 1..6 row-major
  const px = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  const expected: Record<number, [number, number, number[]]> = {
    1: [3, 2, [1, 2, 3, 4, 5, 6]],
    2: [3, 2, [3, 2, 1, 6, 5, 4]],
    3: [3, 2, [6, 5, 4, 3, 2, 1]],
    4: [3, 2, [4, 5, 6, 1, 2, 3]],
    5: [2, 3, [1, 4, 2, 5, 3, 6]],
    6: [2, 3, [4, 1, 5, 2, 6, 3]],
    7: [2, 3, [6, 3, 5, 2, 4, 1]],
    8: [2, 3, [3, 6, 2, 5, 1, 4]],
  };
  for (const [o, [w, h, data]] of Object.entries(expected)) {
    it(`PNG eXIf orientation ${o}`, async () => {
      const img = await decodeImage(encodePng(3, 2, 0, px, { exif: exifOrientationTiff(Number(o)) }), 'exif.png');
      assert.deepEqual([img.width, img.height, ...img.data], [w, h, ...data]);
    });
  }

  it('JPEG APP1 orientation 6 rotates 90° clockwise', async () => {
    // 32×16: left half red, right half blue
    const rgb = new Uint8Array(32 * 16 * 3);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 32; x++) rgb.set(x < 16 ? [255, 0, 0] : [0, 0, 255], (y * 32 + x) * 3);
    const jpeg = await encodeJpeg({ width: 32, height: 16, mode: 'RGB', data: rgb }, 95);
    const img = await loadImage(withJpegExif(jpeg, exifOrientationTiff(6)));
    assert.deepEqual([img.width, img.height], [16, 32]);
    const at = (x: number, y: number) => Array.from(img.data.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3));
    assert.ok(at(8, 4)[0]! > 200 && at(8, 4)[2]! < 60, `top should be red, got ${at(8, 4)}`);
    assert.ok(at(8, 28)[2]! > 200 && at(8, 28)[0]! < 60, `bottom should be blue, got ${at(8, 28)}`);
  });
});

describe('loadImage bad input: a TfvlmError naming the file', () => {
  it('missing file', () => rejectsWith(loadImage(path.join(tmp, 'nope.png')), /nope\.png: no such file/));
  it('a directory', () => rejectsWith(loadImage(tmp), /is a directory/));
  it('zero-size file', () => rejectsWith(loadImage(tmpFile('empty.png', '')), /empty\.png.*empty \(0 bytes\)/));
  it('unknown bytes', () => rejectsWith(loadImage(tmpFile('junk.png', 'hello, not an image at all')), /junk\.png: unknown or unsupported image format/));
  it('a WebP with a zeroed VP8 frame is named as corrupt', () =>
    rejectsWith(loadImage(tmpFile('a.webp', Buffer.concat([Buffer.from('RIFF\0\0\0\0WEBPVP8 '), Buffer.alloc(20)]))), /a\.webp: corrupt WebP \(no VP8 start code\)/));
  it('truncated PNG', async () => {
    const bytes = fs.readFileSync(image('chelsea.png'));
    await rejectsWith(loadImage(tmpFile('half.png', bytes.subarray(0, bytes.length >> 1))), /half\.png: truncated or corrupt PNG/);
    await rejectsWith(loadImage(tmpFile('header.png', bytes.subarray(0, 20))), /header\.png: truncated PNG header/);
  });
  it('truncated JPEG', async () => {
    const bytes = fs.readFileSync(image('rocket.jpg'));
    await rejectsWith(loadImage(tmpFile('half.jpg', bytes.subarray(0, bytes.length >> 1))), /half\.jpg: truncated JPEG/);
    await rejectsWith(loadImage(tmpFile('tiny.jpg', bytes.subarray(0, 4))), /tiny\.jpg: truncated or corrupt JPEG/);
  });
  it('truncated BMP and GIF', async () => {
    const bmp = encodeBmp24(40, 30, new Uint8Array(40 * 30 * 3).fill(100));
    await rejectsWith(loadImage(tmpFile('cut.bmp', bmp.subarray(0, bmp.length >> 1))), /cut\.bmp: truncated or corrupt BMP/);
    const gif = await new Jimp({ width: 40, height: 30, color: 0xff0000ff }).getBuffer('image/gif');
    await rejectsWith(loadImage(tmpFile('cut.gif', gif.subarray(0, gif.length >> 1))), /cut\.gif: truncated or corrupt GIF/);
  });
  it('over the pixel limit: refused from the header, before any allocation', async () => {
    assert.ok(30000 * 30000 > MAX_IMAGE_PIXELS && 10000 * 10000 < MAX_IMAGE_PIXELS);
    await rejectsWith(loadImage(tmpFile('bomb.png', pngHeaderOnly(30000, 30000))), /bomb\.png is 30000x30000 .* over the \d+-pixel limit for one image/);
  });
  it('a URL', () => rejectsWith(loadImage('https://example.com/cat.png'), /cat\.png: URLs are not fetched/));
  it('malformed data: URI', () => rejectsWith(loadImage('data:image/png;base64'), /malformed data: URI/));
});
