// Image decoding that keeps what Pillow's `Image.open` gives: the same uint8 pixels and mode
// (L / LA / RGB / RGBA / P), then transformers `load_image`'s `ImageOps.exif_transpose`.
// PNG, GIF and BMP decode with jimp; WebP with libwebp (@jsquash/webp, bit-identical to libwebp's
// dwebp and so to Pillow, which decodes with libwebp); JPEG with MozJPEG (@jsquash/jpeg, libjpeg-turbo based, bit-identical
// to Pillow's libjpeg-turbo on the fixture photos where jimp's jpeg-js is not).
import { decodePngGifBmp } from './png-gif-bmp.ts';
import decodeJpeg, { init as initJpeg } from '@jsquash/jpeg/decode.js';
import decodeWebp, { init as initWebp } from '@jsquash/webp/decode.js';
import encodeJpegWasm, { init as initJpegEncoder } from '@jsquash/jpeg/encode.js';
import { TfvlmError } from '../errors.ts';
import { host, type HostStat } from './host.ts';
import { type Bitmap, type ImageMode, MODE_CHANNELS, checkBitmap, convertToRGBA } from './bitmap.ts';
import { PixelBudget, type ImageGate } from './pixel-budget.ts';

export type DecodedImage = Bitmap;
export type ImageSource = string | Uint8Array | DecodedImage;

type Format = 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp';

interface Header {
  format: Format;
  width: number;
  height: number;
  mode: ImageMode;
  /** PNG sample depth (16-bit samples are read raw and truncated to their high byte, like Pillow). */
  bitDepth?: number;
}

/**
 * Decodes a file path, a `data:` URI, encoded bytes, or validates an already-decoded bitmap. The image's
 * size is checked against `budget` (default: the per-image limit alone) from its header, before decoding.
 */
export async function loadImage(src: ImageSource | Buffer, name?: string, budget: ImageGate = new PixelBudget()): Promise<DecodedImage> {
  if (typeof src === 'string') {
    if (src.startsWith('data:')) return decodeImage(parseDataUri(src), name ?? 'data: URI', budget);
    if (/^https?:\/\//i.test(src)) throw new TfvlmError(`cannot read image ${src}: URLs are not fetched; download the file first`);
    return decodeImage(readImageFile(src), name ?? src, budget);
  }
  if (src instanceof Uint8Array) return decodeImage(src, name ?? 'image bytes', budget);
  if (src !== null && typeof src === 'object' && 'data' in src) {
    const img = fromRaw(src, name ?? 'decoded image');
    budget.admitImage(img.width, img.height, `image ${name ?? 'decoded image'}`);
    return img;
  }
  throw new TfvlmError(`${name ?? 'image'}: expected a file path, a data: URI, bytes or a decoded image`);
}

function fromRaw(img: DecodedImage, what: string): DecodedImage {
  const raw = img as Partial<Bitmap> & { data: unknown };
  let data = raw.data as Uint8Array;
  if ((raw.data as object) instanceof Uint8ClampedArray) {
    const c = raw.data as unknown as Uint8ClampedArray;
    data = new Uint8Array(c.buffer, c.byteOffset, c.length);
  }
  let mode = raw.mode;
  if (mode === undefined && typeof raw.width === 'number' && typeof raw.height === 'number') {
    const per = data.length / (raw.width * raw.height);
    mode = per === 4 ? 'RGBA' : per === 3 ? 'RGB' : per === 1 ? 'L' : undefined;
  }
  return checkBitmap({ width: raw.width as number, height: raw.height as number, mode: mode as ImageMode, data: data as Uint8Array }, what);
}

function readImageFile(file: string): Uint8Array {
  const h = host();
  let stat: HostStat | undefined;
  try {
    stat = h.stat(file);
  } catch (e) {
    throw new TfvlmError(`cannot read image ${file}: ${(e as Error).message}`);
  }
  if (stat === undefined) throw new TfvlmError(`cannot read image ${file}: no such file`);
  if (stat.kind === 'directory') throw new TfvlmError(`cannot read image ${file}: it is a directory, not an image file`);
  try {
    return h.readBytes(file);
  } catch (e) {
    throw new TfvlmError(`cannot read image ${file}: ${(e as Error).message}`);
  }
}

export function parseDataUri(uri: string): Uint8Array {
  const comma = uri.indexOf(',');
  if (comma < 0) throw new TfvlmError(`malformed data: URI (no comma): ${uri.slice(0, 40)}…`);
  const meta = uri.slice(5, comma);
  const payload = uri.slice(comma + 1);
  if (/;base64$/i.test(meta)) {
    const clean = payload.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*=*$/.test(clean)) throw new TfvlmError('malformed data: URI: invalid base64 payload');
    if (typeof Buffer === 'function') return Buffer.from(clean, 'base64');
    return binaryString(atob(clean.replace(/-/g, '+').replace(/_/g, '/')));
  }
  try {
    const text = decodeURIComponent(payload);
    return typeof Buffer === 'function' ? Buffer.from(text, 'latin1') : binaryString(text);
  } catch {
    throw new TfvlmError('malformed data: URI: invalid percent-encoding');
  }
}

/** A string's UTF-16 code units as bytes, each taken mod 256 (Buffer.from(s, 'latin1'), where Buffer is absent). */
function binaryString(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** An image file's format and size from its header alone (GIF frames validated too); nothing is decoded. */
export function readImageHeader(bytes: Uint8Array, what: string): { format: Format; width: number; height: number } {
  if (bytes.length === 0) throw new TfvlmError(`cannot decode image ${what}: the file is empty (0 bytes)`);
  const header = readHeader(bytes, what);
  if (!(header.width > 0 && header.height > 0)) {
    throw new TfvlmError(`cannot decode image ${what}: the ${header.format.toUpperCase()} header says ${header.width}x${header.height} (an empty image)`);
  }
  return header;
}

/** Decodes encoded image bytes; `what` names the source in errors; the header's size is checked against `budget` first. */
export async function decodeImage(bytes: Uint8Array, what: string, budget: ImageGate = new PixelBudget()): Promise<DecodedImage> {
  const header = readImageHeader(bytes, what) as Header;
  budget.admitImage(header.width, header.height, `image ${what}`);
  const img = header.format === 'jpeg' ? await decodeJpegBytes(bytes, header, what)
    : header.format === 'webp' ? await decodeWebpBytes(bytes, header, what)
    : await decodeWithJimp(bytes, header, what);
  return exifTranspose(img, exifOrientation(bytes, header.format));
}

// Byte readers: every caller has checked that the bytes read lie inside `b` first.
function u16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function u32be(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function u16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
function i32le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}
/** The four-character code at `o` (a chunk type). */
function fourcc(b: Uint8Array, o: number): string {
  return String.fromCharCode(...b.subarray(o, o + 4));
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Format by magic bytes (never the extension), size, and the mode Pillow would open it in. */
function readHeader(b: Uint8Array, what: string): Header {
  const truncated = (fmt: string): never => {
    throw new TfvlmError(`cannot decode image ${what}: truncated ${fmt} header (${b.length} bytes)`);
  };
  if (PNG_SIGNATURE.every((v, i) => b[i] === v)) {
    if (b.length < 33) truncated('PNG');
    if (fourcc(b, 12) !== 'IHDR') {
      throw new TfvlmError(`cannot decode image ${what}: corrupt PNG (first chunk is not IHDR)`);
    }
    const depth = b[24]!;
    const colorType = b[25]!;
    const modes: Record<number, ImageMode> = { 0: 'L', 2: 'RGB', 3: 'P', 4: 'LA', 6: 'RGBA' };
    const mode = modes[colorType];
    if (mode === undefined) throw new TfvlmError(`cannot decode image ${what}: invalid PNG colour type ${colorType}`);
    if (depth === 16 && colorType === 0) {
      throw new TfvlmError(`image ${what}: 16-bit grayscale PNG (Pillow mode I) is not supported; convert it to 8-bit`);
    }
    return { format: 'png', width: u32be(b, 16), height: u32be(b, 20), mode, bitDepth: depth };
  }
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return readJpegHeader(b, what);
  if (b.length >= 6 && (String.fromCharCode(...b.subarray(0, 6)) === 'GIF87a' || String.fromCharCode(...b.subarray(0, 6)) === 'GIF89a')) {
    if (b.length < 10) truncated('GIF');
    const width = u16le(b, 6);
    const height = u16le(b, 8);
    checkGifFrames(b, width, height, what);
    return { format: 'gif', width, height, mode: 'P' };
  }
  if (b[0] === 0x42 && b[1] === 0x4d) {
    if (b.length < 30) truncated('BMP');
    const headerSize = i32le(b, 14);
    let width: number;
    let height: number;
    let bpp: number;
    if (headerSize === 12) {
      width = u16le(b, 18);
      height = u16le(b, 20);
      bpp = u16le(b, 24);
    } else {
      width = i32le(b, 18);
      height = Math.abs(i32le(b, 22));
      bpp = u16le(b, 28);
    }
    const compression = headerSize >= 40 && b.length >= 34 ? i32le(b, 30) : 0;
    const alphaMask = headerSize >= 56 && b.length >= 70 ? i32le(b, 66) : 0;
    // Pillow BmpImagePlugin: palette images are P; 32-bit is RGB unless bitfields carry an alpha mask.
    const mode: ImageMode = bpp <= 8 ? 'P' : bpp === 32 && (compression === 3 || compression === 6) && alphaMask !== 0 ? 'RGBA' : 'RGB';
    return { format: 'bmp', width, height, mode };
  }
  const ascii = String.fromCharCode(...b.subarray(0, Math.min(12, b.length)));
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return readWebpHeader(b, what);
  const known =
    ascii.startsWith('II*\0') || ascii.startsWith('MM\0*') ? 'TIFF'
    : ascii.slice(4, 12).startsWith('ftyp') ? 'HEIF/AVIF'
    : null;
  throw new TfvlmError(
    `cannot decode image ${what}: ${known ? `${known} is not supported` : 'unknown or unsupported image format'} ` +
      '(supported: PNG, JPEG, GIF, BMP, WebP)',
  );
}

/**
 * Checks every frame before the GIF decoder sees it (src/io/video.ts decodes them all with omggif).
 * The decoder allocates a frame at its own size before reading its data (an 84-byte file whose frame
 * claimed 9466x48999 took 10 s), so frames must lie inside the logical screen; and their LZW codes
 * must be ones the decoder can follow (see gifLzwProblem). Blocks are walked as omggif does.
 */
function checkGifFrames(b: Uint8Array, width: number, height: number, what: string): void {
  const corrupt = (why: string): never => {
    throw new TfvlmError(`cannot decode image ${what}: corrupt GIF (${why})`);
  };
  let o = 13;
  if (b.length > 10 && b[10]! & 0x80) o += 3 * (1 << ((b[10]! & 7) + 1));
  for (let frame = 0; o < b.length;) {
    const block = b[o];
    if (block === 0x21) { // extension: label, then sub-blocks up to a zero length
      // omggif reads an application extension whose block size is not 11 as a NETSCAPE loop block
      if (b[o + 1] === 0xff && b[o + 2] !== 0x0b) corrupt(`application extension block size ${b[o + 2]}, not 11`);
      o += 2;
      while (o < b.length && b[o] !== 0) o += b[o]! + 1;
      o += 1;
    } else if (block === 0x2c) {
      if (o + 10 > b.length) return;
      const left = u16le(b, o + 1);
      const top = u16le(b, o + 3);
      const w = u16le(b, o + 5);
      const h = u16le(b, o + 7);
      if (left + w > width || top + h > height) {
        corrupt(`frame ${frame} at ${left},${top} of size ${w}x${h} extends past the ${width}x${height} screen`);
      }
      const flags = b[o + 9]!;
      o += 10;
      if (flags & 0x80) o += 3 * (1 << ((flags & 7) + 1));
      const minCodeSize = b[o];
      if (minCodeSize === undefined) return corrupt(`frame ${frame}: the file ends before its LZW minimum code size`);
      o += 1;
      const data: Uint8Array[] = [];
      while (o < b.length && b[o] !== 0) {
        const len = b[o]!;
        data.push(b.subarray(o + 1, o + 1 + len));
        o += len + 1;
      }
      o += 1;
      const problem = gifLzwProblem(data, minCodeSize);
      if (problem) corrupt(`frame ${frame}: ${problem}`);
      frame++;
    } else {
      return; // trailer or garbage: the decoder reports it
    }
  }
}

/**
 * The GIF decoder (omggif) loops forever when a code names a table entry that does not exist yet:
 * the entry it then adds points at itself. Walks the codes as it does and reports such a code.
 */
function gifLzwProblem(blocks: Uint8Array[], minCodeSize: number): string | null {
  if (!(minCodeSize >= 1 && minCodeSize <= 11)) return `LZW minimum code size ${minCodeSize}`;
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  let next = eoi + 1;
  let size = minCodeSize + 1;
  let mask = (1 << size) - 1;
  let cur = 0;
  let shift = 0;
  let prev: number | null = null;
  let block = 0;
  let at = 0;
  for (;;) {
    while (shift < 16 && block < blocks.length) {
      const bytes = blocks[block]!;
      cur |= bytes[at++]! << shift;
      shift += 8;
      if (at >= bytes.length) {
        block++;
        at = 0;
      }
    }
    if (shift < size) return null;
    const code = cur & mask;
    cur >>= size;
    shift -= size;
    if (code === clear) {
      next = eoi + 1;
      size = minCodeSize + 1;
      mask = (1 << size) - 1;
      prev = null;
      continue;
    }
    if (code === eoi) return null;
    if (code > next || (code === next && prev === null)) return `LZW code ${code} names no table entry (next is ${next})`;
    if (prev !== null && next < 4096) {
      next++;
      if (next >= mask + 1 && size < 12) {
        size++;
        mask = (mask << 1) | 1;
      }
    }
    prev = code;
  }
}

function readJpegHeader(b: Uint8Array, what: string): Header {
  let o = 2;
  while (o + 4 <= b.length) {
    if (b[o] !== 0xff) {
      o++;
      continue;
    }
    const m = b[o + 1]!;
    if (m === 0xff) {
      o++;
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      o += 2;
      continue;
    }
    const len = u16be(b, o + 2);
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (o + 10 > b.length) break;
      const height = u16be(b, o + 5);
      const width = u16be(b, o + 7);
      const components = b[o + 9];
      if (components === 1) return { format: 'jpeg', width, height, mode: 'L' };
      if (components === 3) return { format: 'jpeg', width, height, mode: 'RGB' };
      throw new TfvlmError(`image ${what}: JPEG with ${components} components (CMYK/YCCK) is not supported; convert it to RGB`);
    }
    if (m === 0xda || m === 0xd9) break;
    o += 2 + len;
  }
  throw new TfvlmError(`cannot decode image ${what}: truncated or corrupt JPEG (no frame header)`);
}

/**
 * WebP's size and mode from its first chunk (libwebp WebPGetFeatures; Pillow opens RGBA when the
 * file has alpha, else RGB): 'VP8 ' (lossy: 14-bit sizes after the frame tag and start code),
 * 'VP8L' (lossless: 14-bit sizes − 1 and an alpha bit after the 0x2f signature), 'VP8X'
 * (extended: flags, 24-bit canvas sizes − 1). Animated files are refused: an image has one frame.
 */
function readWebpHeader(b: Uint8Array, what: string): Header {
  const bad = (why: string): never => {
    throw new TfvlmError(`cannot decode image ${what}: corrupt WebP (${why})`);
  };
  if (b.length < 30) bad(`truncated header, ${b.length} bytes`);
  const chunk = fourcc(b, 12);
  const u24le = (o: number) => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
  if (chunk === 'VP8 ') {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) bad('no VP8 start code');
    return { format: 'webp', width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff, mode: 'RGB' };
  }
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) bad('no VP8L signature');
    const bits = i32le(b, 21) >>> 0;
    return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, mode: (bits >>> 28) & 1 ? 'RGBA' : 'RGB' };
  }
  if (chunk === 'VP8X') {
    const flags = b[20]!;
    if (flags & 0x02) throw new TfvlmError(`image ${what}: animated WebP is not supported as an image (convert it to frames or a video file)`);
    return { format: 'webp', width: u24le(24) + 1, height: u24le(27) + 1, mode: flags & 0x10 ? 'RGBA' : 'RGB' };
  }
  return bad(`first chunk '${chunk.replace(/[^\x20-\x7e]/g, '?')}' is not VP8, VP8L or VP8X`);
}

let webpReady: Promise<void> | undefined;

/** libwebp's decoder (@jsquash/webp, WebPDecodeRGBA with its default fancy upsampling, as Pillow decodes). */
async function decodeWebpBytes(bytes: Uint8Array, header: Header, what: string): Promise<Bitmap> {
  webpReady ??= (async () => {
    const wasm = await host().readPackageAsset('@jsquash/webp/codec/dec/webp_dec.wasm');
    await initWebp(await WebAssembly.compile(wasm) as never);
  })();
  await webpReady;
  let out: ImageData;
  try {
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    out = await decodeWebp(copy.buffer);
  } catch (e) {
    throw new TfvlmError(`cannot decode image ${what}: corrupt WebP (${(e as Error).message})`);
  }
  if (out.width !== header.width || out.height !== header.height) {
    throw new TfvlmError(`cannot decode image ${what}: corrupt WebP (header says ${header.width}x${header.height}, decoded ${out.width}x${out.height})`);
  }
  const rgba = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length);
  if (header.mode === 'RGBA') return { width: out.width, height: out.height, mode: 'RGBA', data: Uint8Array.from(rgba) };
  const rgb = new Uint8Array(out.width * out.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = rgba[j]!;
    rgb[i + 1] = rgba[j + 1]!;
    rgb[i + 2] = rgba[j + 2]!;
  }
  return { width: out.width, height: out.height, mode: 'RGB', data: rgb };
}

let jpegReady: Promise<void> | undefined;

/** MozJPEG's wasm, compiled once from the package's bundled .wasm file (no fetch in Node). */
function ensureJpegDecoder(): Promise<void> {
  jpegReady ??= (async () => {
    const wasm = await host().readPackageAsset('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
    await initJpeg(await WebAssembly.compile(wasm) as never);
  })();
  return jpegReady;
}

let jpegEncoderReady: Promise<void> | undefined;

/** Encodes a bitmap as JPEG with MozJPEG (test images, benchmarks, debugging dumps); L is written as 1-component gray. */
export async function encodeJpeg(img: Bitmap, quality = 90): Promise<Uint8Array> {
  const grayscale = img.mode === 'L';
  jpegEncoderReady ??= (async () => {
    const wasm = await host().readPackageAsset('@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm');
    await initJpegEncoder(await WebAssembly.compile(wasm) as never);
  })();
  await jpegEncoderReady;
  const rgba = convertToRGBA(img);
  const data = new Uint8ClampedArray(rgba.data.buffer, rgba.data.byteOffset, rgba.data.length);
  const imageData = { data, width: img.width, height: img.height, colorSpace: 'srgb' } as ImageData;
  return new Uint8Array(await encodeJpegWasm(imageData, { quality, color_space: grayscale ? 1 : 3 }));
}

/** True when an EOI marker follows the first scan: Pillow refuses JPEGs that end early. */
function jpegHasEnd(b: Uint8Array): boolean {
  let o = 2;
  while (o + 4 <= b.length) {
    if (b[o] !== 0xff) return false;
    const m = b[o + 1];
    if (m === 0xff) {
      o++;
      continue;
    }
    if (m === 0xda) break;
    o += 2 + u16be(b, o + 2);
  }
  for (let i = b.length - 2; i > o; i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

async function decodeJpegBytes(bytes: Uint8Array, header: Header, what: string): Promise<Bitmap> {
  if (!jpegHasEnd(bytes)) throw new TfvlmError(`cannot decode image ${what}: truncated JPEG (no end-of-image marker)`);
  await ensureJpegDecoder();
  let rgba: Uint8ClampedArray;
  let width: number;
  let height: number;
  try {
    const copy = new Uint8Array(bytes.length); // Buffer#slice would share a pooled ArrayBuffer
    copy.set(bytes);
    const out = await decodeJpeg(copy.buffer, { preserveOrientation: false });
    rgba = out.data;
    width = out.width;
    height = out.height;
  } catch (e) {
    throw new TfvlmError(`cannot decode image ${what}: corrupt JPEG (${(e as Error).message})`);
  }
  return fromRgba(rgba, width, height, header.mode);
}

async function decodeWithJimp(bytes: Uint8Array, header: Header, what: string): Promise<Bitmap> {
  let bitmap: { data: Uint8Array; width: number; height: number };
  const raw16 = header.bitDepth === 16;
  try {
    bitmap = await decodePngGifBmp(bytes, raw16);
  } catch (e) {
    throw new TfvlmError(`cannot decode image ${what}: truncated or corrupt ${header.format.toUpperCase()} (${(e as Error).message})`);
  }
  if (bitmap.width !== header.width || bitmap.height !== header.height) {
    if (header.format !== 'gif') {
      throw new TfvlmError(`cannot decode image ${what}: decoded ${bitmap.width}x${bitmap.height}, header says ${header.width}x${header.height}`);
    }
  }
  if (header.format === 'gif') restoreGifTransparentColour(bitmap.data, gifTransparentColour(bytes));
  return fromRgba(bitmap.data, bitmap.width, bitmap.height, header.mode);
}

/**
 * The palette colour of the first frame's transparent index, or null. Pillow keeps that index (so
 * its palette colour) where gifwrap writes transparent pixels as 0,0,0,0.
 */
export function gifTransparentColour(b: Uint8Array): [number, number, number] | null {
  if (b.length < 13) return null;
  let o = 13;
  let palette = -1;
  if (b[10]! & 0x80) {
    palette = o;
    o += 3 * (1 << ((b[10]! & 7) + 1));
  }
  let transparent = -1;
  while (o < b.length) {
    const block = b[o];
    if (block === 0x21) {
      if (b[o + 1] === 0xf9 && o + 6 < b.length && b[o + 3]! & 1) transparent = b[o + 6]!;
      o += 2;
      while (o < b.length && b[o] !== 0) o += b[o]! + 1;
      o += 1;
    } else if (block === 0x2c) {
      if (o + 9 < b.length && b[o + 9]! & 0x80) palette = o + 10;
      break;
    } else return null;
  }
  if (transparent < 0 || palette < 0 || palette + 3 * transparent + 3 > b.length) return null;
  const p = palette + 3 * transparent;
  return [b[p]!, b[p + 1]!, b[p + 2]!];
}

function restoreGifTransparentColour(rgba: Uint8Array, colour: [number, number, number] | null): void {
  if (!colour) return;
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i + 3] === 0) {
      rgba[i] = colour[0];
      rgba[i + 1] = colour[1];
      rgba[i + 2] = colour[2];
    }
  }
}

/** Keeps the channels the source mode has (palette images keep their looked-up RGB). */
function fromRgba(rgba: ArrayLike<number>, width: number, height: number, mode: ImageMode): Bitmap {
  const C = MODE_CHANNELS[mode];
  const n = width * height;
  const out = new Uint8Array(n * C);
  if (C === 4) out.set(rgba as Uint8Array);
  else if (C === 3) {
    for (let i = 0, j = 0, k = 0; i < n; i++, j += 3, k += 4) {
      out[j] = rgba[k]!;
      out[j + 1] = rgba[k + 1]!;
      out[j + 2] = rgba[k + 2]!;
    }
  } else if (C === 2) {
    for (let i = 0; i < n; i++) {
      out[i * 2] = rgba[i * 4]!;
      out[i * 2 + 1] = rgba[i * 4 + 3]!;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = rgba[i * 4]!;
  }
  return { width, height, mode, data: out };
}

/** The EXIF Orientation tag (1..8) from a JPEG APP1 or PNG eXIf chunk; 1 when absent. */
export function exifOrientation(b: Uint8Array, format: Format): number {
  let tiff = -1;
  if (format === 'jpeg') {
    let o = 2;
    while (o + 4 <= b.length && b[o] === 0xff) {
      const m = b[o + 1];
      const len = u16be(b, o + 2);
      if (m === 0xda) break;
      if (m === 0xe1 && len >= 14 && String.fromCharCode(...b.subarray(o + 4, o + 10)) === 'Exif\0\0') {
        tiff = o + 10;
        break;
      }
      o += 2 + len;
    }
  } else if (format === 'png') {
    let o = 8;
    while (o + 12 <= b.length) {
      const len = u32be(b, o);
      const type = fourcc(b, o + 4);
      if (type === 'eXIf') {
        tiff = String.fromCharCode(...b.subarray(o + 8, o + 14)) === 'Exif\0\0' ? o + 14 : o + 8;
        break;
      }
      if (type === 'IDAT' || type === 'IEND') break;
      o += 12 + len;
    }
  } else if (format === 'webp') {
    // RIFF chunks after 'WEBP': fourcc, u32le size, data padded to even; EXIF holds a TIFF header.
    let o = 12;
    while (o + 8 <= b.length) {
      const type = fourcc(b, o);
      const len = (i32le(b, o + 4) >>> 0);
      if (type === 'EXIF') {
        tiff = String.fromCharCode(...b.subarray(o + 8, o + 14)) === 'Exif\0\0' ? o + 14 : o + 8;
        break;
      }
      o += 8 + len + (len & 1);
    }
  }
  if (tiff < 0 || tiff + 8 > b.length) return 1;
  const le = b[tiff] === 0x49 && b[tiff + 1] === 0x49;
  if (!le && !(b[tiff] === 0x4d && b[tiff + 1] === 0x4d)) return 1;
  const r16 = (o: number) => (le ? u16le(b, o) : u16be(b, o));
  const r32 = (o: number) => (le ? i32le(b, o) >>> 0 : u32be(b, o));
  const ifd = tiff + r32(tiff + 4);
  if (ifd + 2 > b.length) return 1;
  const count = r16(ifd);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > b.length) return 1;
    if (r16(e) === 0x0112) {
      const v = r16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

/** Pillow `ImageOps.exif_transpose`: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 270, 7 transverse, 8 rotate 90. */
export function exifTranspose(img: Bitmap, orientation: number): Bitmap {
  if (orientation <= 1 || orientation > 8) return img;
  const { width: W, height: H, mode } = img;
  const C = MODE_CHANNELS[mode];
  const swap = orientation >= 5;
  const outW = swap ? H : W;
  const outH = swap ? W : H;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: sx = W - 1 - x; sy = y; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sx = x; sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        default: sx = W - 1 - y; sy = x; break;
      }
      const s = (sy * W + sx) * C;
      const d = (y * outW + x) * C;
      for (let c = 0; c < C; c++) out[d + c] = img.data[s + c]!;
    }
  }
  return { width: outW, height: outH, mode, data: out };
}
