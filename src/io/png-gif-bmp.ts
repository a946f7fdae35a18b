// PNG, GIF and BMP decoding under Node: Jimp (pngjs, omggif through gifwrap's first frame, bmp-ts).
// The browser bundle swaps this file for png-gif-bmp.browser.ts (scripts/build-web.mjs), which
// decodes to the same RGBA without Node's Buffer and zlib.
import { Jimp } from 'jimp';

/** RGBA 8-bit of the image (GIF: its first frame on the logical screen); `raw16`: 16-bit PNG samples keep their high byte. */
export async function decodePngGifBmp(bytes: Uint8Array, raw16: boolean): Promise<{ data: Uint8Array; width: number; height: number }> {
  // pngjs rounds 16-bit samples to 8 bits; Pillow (PngImagePlugin "RGB;16B" etc.) keeps the high byte
  const options = raw16 ? { 'image/png': { skipRescale: true } } : undefined;
  const img = await Jimp.fromBuffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), options as never);
  const bitmap = img.bitmap;
  if (raw16) return { ...bitmap, data: Uint8Array.from(bitmap.data as unknown as Uint16Array, (v) => v >> 8) };
  return bitmap;
}
