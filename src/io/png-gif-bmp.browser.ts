// PNG and GIF decoding in the browser bundle (scripts/build-web.mjs swaps png-gif-bmp.ts for this
// file): the RGBA Jimp gives under Node, without Node's Buffer and zlib. PNG follows pngjs 7 step by
// step (parser.js, filter-parse.js, bitmapper.js, format-normaliser.js): chunks, zlib inflate (the
// platform's DecompressionStream), unfiltering, Adam7, samples to RGBA, palette and tRNS, depth
// scaling; gAMA is ignored as pngjs ignores it. GIF is omggif's first frame on the logical screen, as
// @jimp/js-gif decodes. test/io/png-browser-decoder.test.ts checks both against Jimp on every test image.
// BMP is refused by name (bmp-ts needs Node's Buffer): pages can send PNG, JPEG, WebP or GIF.
// @ts-expect-error omggif ships no types; the one class used is typed below.
import omggif from 'omggif';

const { GifReader } = omggif as {
  GifReader: new (b: Uint8Array) => { width: number; height: number; decodeAndBlitFrameRGBA(i: number, pixels: Uint8Array): void };
};

type Rgba = { data: Uint8Array; width: number; height: number };

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Samples per pixel by colour type (pngjs constants.COLORTYPE_TO_BPP_MAP). */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes (pngjs interlace.js). */
const PASSES = [
  { x: [0], y: [0] }, { x: [4], y: [0] }, { x: [0, 4], y: [4] }, { x: [2, 6], y: [0, 4] },
  { x: [0, 2, 4, 6], y: [2, 6] }, { x: [1, 3, 5, 7], y: [0, 2, 4, 6] }, { x: [0, 1, 2, 3, 4, 5, 6, 7], y: [1, 3, 5, 7] },
];

let crcTable: Uint32Array | undefined;
function crc32(b: Uint8Array, from: number, to: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = from; i < to; i++) c = crcTable[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function passesOf(width: number, height: number): { width: number; height: number; index: number }[] {
  const out = [];
  const xLeft = width % 8;
  const yLeft = height % 8;
  const xRep = (width - xLeft) / 8;
  const yRep = (height - yLeft) / 8;
  for (let i = 0; i < PASSES.length; i++) {
    const p = PASSES[i]!;
    let w = xRep * p.x.length;
    let h = yRep * p.y.length;
    for (const x of p.x) if (x < xLeft) w++; else break;
    for (const y of p.y) if (y < yLeft) h++; else break;
    if (w > 0 && h > 0) out.push({ width: w, height: h, index: i });
  }
  return out;
}

function paeth(left: number, above: number, upLeft: number): number {
  const p = left + above - upLeft;
  const pl = Math.abs(p - left);
  const pa = Math.abs(p - above);
  const pu = Math.abs(p - upLeft);
  if (pl <= pa && pl <= pu) return left;
  return pa <= pu ? above : upLeft;
}

/** Reverses the line filters of each pass image; returns the unfiltered bytes, passes back to back. */
function unfilter(data: Uint8Array, images: { width: number; height: number }[], samples: number, depth: number): Uint8Array {
  const byteWidthOf = (w: number) => (depth === 8 ? w * samples : Math.ceil((w * samples) / (8 / depth)));
  const xc = depth === 8 ? samples : depth === 16 ? samples * 2 : 1;
  const total = images.reduce((a, im) => a + byteWidthOf(im.width) * im.height, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  let o = 0;
  for (const im of images) {
    const bw = byteWidthOf(im.width);
    let last: Uint8Array | undefined;
    for (let y = 0; y < im.height; y++) {
      if (pos + bw + 1 > data.length) throw new Error('Ran out of data');
      const filter = data[pos]!;
      const raw = data.subarray(pos + 1, pos + 1 + bw);
      const line = out.subarray(o, o + bw);
      for (let x = 0; x < bw; x++) {
        const left = x >= xc ? line[x - xc]! : 0;
        const above = last ? last[x]! : 0;
        const upLeft = last && x >= xc ? last[x - xc]! : 0;
        switch (filter) {
          case 0: line[x] = raw[x]!; break;
          case 1: line[x] = (raw[x]! + left) & 0xff; break;
          case 2: line[x] = (raw[x]! + above) & 0xff; break;
          case 3: line[x] = (raw[x]! + ((left + above) >> 1)) & 0xff; break;
          case 4: line[x] = (raw[x]! + paeth(left, above, upLeft)) & 0xff; break;
          default: throw new Error(`Unrecognised filter type - ${filter}`);
        }
      }
      last = line;
      pos += bw + 1;
      o += bw;
    }
  }
  return out;
}

async function decodePng(b: Uint8Array, raw16: boolean): Promise<Rgba> {
  if (!SIGNATURE.every((v, i) => b[i] === v)) throw new Error('Invalid file signature');
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = 8;
  let width = 0, height = 0, depth = 0, colorType = -1, interlace = false;
  const palette: number[][] = [];
  let transColor: number[] | undefined;
  const idat: Uint8Array[] = [];
  for (let ended = false; !ended;) {
    if (pos + 8 > b.length) throw new Error('Unexpected end of input');
    const length = view.getUint32(pos);
    const type = String.fromCharCode(b[pos + 4]!, b[pos + 5]!, b[pos + 6]!, b[pos + 7]!);
    const start = pos + 8;
    if (start + length + 4 > b.length) throw new Error('Unexpected end of input');
    const data = b.subarray(start, start + length);
    const ancillary = (b[pos + 4]! & 0x20) !== 0;
    if (crc32(b, pos + 4, start + length) !== view.getUint32(start + length)) throw new Error(`Crc error - ${view.getUint32(start + length)} - ${crc32(b, pos + 4, start + length)}`);
    pos = start + length + 4;
    switch (type) {
      case 'IHDR': {
        width = view.getUint32(start);
        height = view.getUint32(start + 4);
        depth = data[8]!;
        colorType = data[9]!;
        if (![1, 2, 4, 8, 16].includes(depth)) throw new Error(`Unsupported bit depth ${depth}`);
        if (!(colorType in SAMPLES)) throw new Error('Unsupported color type');
        if (data[10] !== 0) throw new Error('Unsupported compression method');
        if (data[11] !== 0) throw new Error('Unsupported filter method');
        if (data[12] !== 0 && data[12] !== 1) throw new Error('Unsupported interlace method');
        interlace = data[12] === 1;
        break;
      }
      case 'PLTE':
        for (let i = 0; i < Math.floor(data.length / 3); i++) palette.push([data[3 * i]!, data[3 * i + 1]!, data[3 * i + 2]!, 0xff]);
        break;
      case 'tRNS':
        if (colorType === 3) {
          if (palette.length === 0) throw new Error('Transparency chunk must be after palette');
          if (data.length > palette.length) throw new Error('More transparent colors than palette size');
          for (let i = 0; i < data.length; i++) palette[i]![3] = data[i]!;
        }
        if (colorType === 0) transColor = [view.getUint16(start)];
        if (colorType === 2) transColor = [view.getUint16(start), view.getUint16(start + 2), view.getUint16(start + 4)];
        break;
      case 'IDAT':
        if (colorType === 3 && palette.length === 0) throw new Error('Expected palette not found');
        idat.push(data);
        break;
      case 'IEND':
        ended = true;
        break;
      default:
        if (!ancillary) throw new Error(`Unsupported critical chunk type ${type}`);
    }
  }
  const samples = SAMPLES[colorType]!;
  const all = new Uint8Array(idat.reduce((a, d) => a + d.length, 0));
  let at = 0;
  for (const d of idat) {
    all.set(d, at);
    at += d.length;
  }
  let inflated = await inflate(all);
  const images = interlace ? passesOf(width, height) : [{ width, height, index: 0 }];
  if (!interlace) {
    const size = ((width * samples * depth + 7) >> 3) * height + height;
    if (inflated.length > size) inflated = inflated.subarray(0, size);
  }
  const bytes = unfilter(inflated, images, samples, depth);

  // bitmapper.js: samples → 4 channels (depth 16 kept as 16-bit values).
  const px: Uint8Array | Uint16Array = depth <= 8 ? new Uint8Array(width * height * 4) : new Uint16Array(width * height * 4);
  const maxBit = 2 ** depth - 1;
  let lineStart = 0;
  const byteWidthOf = (w: number) => (depth === 8 ? w * samples : Math.ceil((w * samples) / (8 / depth)));
  const sample = (lineByte: number, index: number): number => {
    if (depth === 16) return (bytes[lineByte + 2 * index]! << 8) | bytes[lineByte + 2 * index + 1]!;
    if (depth === 8) return bytes[lineByte + index]!;
    const perByte = 8 / depth;
    const byte = bytes[lineByte + Math.floor(index / perByte)]!;
    return (byte >> (8 - depth * (1 + (index % perByte)))) & maxBit;
  };
  for (const im of images) {
    const p = PASSES[im.index]!;
    for (let y = 0; y < im.height; y++) {
      for (let x = 0; x < im.width; x++) {
        let o: number;
        if (interlace) {
          const xl = x % p.x.length;
          const yl = y % p.y.length;
          const ox = ((x - xl) / p.x.length) * 8 + p.x[xl]!;
          const oy = ((y - yl) / p.y.length) * 8 + p.y[yl]!;
          o = ox * 4 + oy * width * 4;
        } else {
          o = (y * width + x) * 4;
        }
        const s = x * samples;
        const v0 = sample(lineStart, s);
        const opaque = depth === 8 ? 0xff : maxBit;
        if (samples === 1) {
          px[o] = v0; px[o + 1] = v0; px[o + 2] = v0; px[o + 3] = opaque;
        } else if (samples === 2) {
          px[o] = v0; px[o + 1] = v0; px[o + 2] = v0; px[o + 3] = sample(lineStart, s + 1);
        } else {
          px[o] = v0; px[o + 1] = sample(lineStart, s + 1); px[o + 2] = sample(lineStart, s + 2);
          px[o + 3] = samples === 4 ? sample(lineStart, s + 3) : opaque;
        }
      }
      lineStart += byteWidthOf(im.width);
    }
  }

  // format-normaliser.js
  let out: Uint8Array | Uint16Array = px;
  if (colorType === 3) {
    for (let i = 0; i < px.length; i += 4) {
      const c = palette[px[i]!];
      if (!c) throw new Error(`index ${px[i]} not in palette`);
      px[i] = c[0]!; px[i + 1] = c[1]!; px[i + 2] = c[2]!; px[i + 3] = c[3]!;
    }
  } else {
    if (transColor) {
      for (let i = 0; i < px.length; i += 4) {
        const hit = transColor.length === 1 ? transColor[0] === px[i]
          : transColor[0] === px[i] && transColor[1] === px[i + 1] && transColor[2] === px[i + 2];
        if (hit) px.fill(0, i, i + 4);
      }
    }
    if (depth !== 8 && !raw16) {
      const scaled = new Uint8Array(width * height * 4);
      for (let i = 0; i < px.length; i++) scaled[i] = Math.floor((px[i]! * 255) / maxBit + 0.5);
      out = scaled;
    }
  }
  if (out instanceof Uint16Array) return { width, height, data: Uint8Array.from(out, (v) => v >> 8) };
  return { width, height, data: out };
}

function decodeGif(b: Uint8Array): Rgba {
  const reader = new GifReader(b);
  const data = new Uint8Array(reader.width * reader.height * 4);
  reader.decodeAndBlitFrameRGBA(0, data);
  return { data, width: reader.width, height: reader.height };
}

export async function decodePngGifBmp(bytes: Uint8Array, raw16: boolean): Promise<Rgba> {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return decodePng(bytes, raw16);
  if (bytes[0] === 0x47 && bytes[1] === 0x49) return decodeGif(bytes);
  throw new Error('BMP is not decoded in the browser build; send PNG, JPEG, WebP or GIF bytes, or decoded pixels');
}
