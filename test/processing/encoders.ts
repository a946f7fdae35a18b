// Tiny encoders for test images whose exact bytes matter: PNG of any colour type (with optional
// palette / eXIf chunk) and 24-bit BMP. Only what the decoder tests need.
import zlib from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export interface PngOptions {
  palette?: Uint8Array;
  /** 16-bit samples (big-endian in the file); `samples` must then be a Uint16Array. */
  bitDepth?: 8 | 16;
  /** Raw TIFF bytes for an eXIf chunk. */
  exif?: Uint8Array;
}

/** PNG. `samples` holds width × height × channels samples (palette indices for colour type 3). */
export function encodePng(width: number, height: number, colorType: 0 | 2 | 3 | 4 | 6, samples: Uint8Array | Uint16Array, opts: PngOptions = {}): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const bytes = opts.bitDepth === 16 ? 2 : 1;
  const stride = width * channels * bytes;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const v = samples[y * width * channels + i]!;
      if (bytes === 2) raw.writeUInt16BE(v, y * (stride + 1) + 1 + i * 2);
      else raw[y * (stride + 1) + 1 + i] = v;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bytes * 8;
  ihdr[9] = colorType;
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (opts.palette) parts.push(chunk('PLTE', opts.palette));
  if (opts.exif) parts.push(chunk('eXIf', opts.exif));
  parts.push(chunk('IDAT', zlib.deflateSync(raw, { level: 1 })), chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}

/** A PNG header (signature + IHDR) claiming a size, with no pixel data. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)]);
}

/** 24-bit bottom-up BMP from RGB samples. */
export function encodeBmp24(width: number, height: number, rgb: Uint8Array): Buffer {
  const rowSize = Math.ceil((width * 3) / 4) * 4;
  const out = Buffer.alloc(54 + rowSize * height);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(54, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(24, 28);
  out.writeUInt32LE(rowSize * height, 34);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * rowSize;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      out[row + x * 3] = rgb[s + 2]!;
      out[row + x * 3 + 1] = rgb[s + 1]!;
      out[row + x * 3 + 2] = rgb[s]!;
    }
  }
  return out;
}

/** Little-endian TIFF block with one IFD entry: Orientation (0x0112) = `value`. */
export function exifOrientationTiff(value: number): Uint8Array {
  const b = Buffer.alloc(26);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(1, 8);
  b.writeUInt16LE(0x0112, 10);
  b.writeUInt16LE(3, 12);
  b.writeUInt32LE(1, 14);
  b.writeUInt16LE(value, 18);
  b.writeUInt32LE(0, 22);
  return b;
}

/** Inserts an APP1 Exif segment right after a JPEG's SOI marker. */
export function withJpegExif(jpeg: Uint8Array, tiff: Uint8Array): Buffer {
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), Buffer.from(tiff)]);
  const seg = Buffer.alloc(4);
  seg[0] = 0xff;
  seg[1] = 0xe1;
  seg.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([Buffer.from(jpeg.subarray(0, 2)), seg, payload, Buffer.from(jpeg.subarray(2))]);
}
