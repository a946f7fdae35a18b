// Shared helpers for the preprocessing parity tests: golden files, hashing, image loading.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fixture, image } from '../helpers/paths.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { loadImage } from '../../src/io/image.ts';
import type { Bitmap } from '../../src/io/bitmap.ts';

export interface TileStats {
  sha256_f32: string;
  shape: number[];
}
export interface SettingRecord {
  rows?: number;
  cols?: number;
  num_tiles?: number;
  pixel_values_shape: number[];
  after_resize_hw?: [number, number];
  after_resize_for_vision_encoder_hw?: [number, number];
  full_pixel_values_stored?: boolean;
  tiles?: TileStats[];
  sha256_f32?: string;
}
export interface PhotoRecord {
  file: string;
  mode: string;
  width: number;
  height: number;
  decoded_uint8_sha256: string;
  decoded_shape: number[];
  smolvlm_split: SettingRecord;
  smolvlm_nosplit: SettingRecord;
  clip336: SettingRecord;
}

export const IMAGES_JSON = JSON.parse(fs.readFileSync(fixture('image-preprocessing', 'images.json'), 'utf8')) as {
  crop_size: number;
  images: PhotoRecord[];
};

export const photoPath = (rec: PhotoRecord) => image(rec.file.split('/').pop()!);
export const photoStem = (rec: PhotoRecord) => rec.file.split('/').pop()!.replace(/\.[a-z]+$/, '');

export const sha256 = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');
export const sha256F32 = (f32: Float32Array) => sha256(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength));

/** Reads every named tensor of a golden safetensors file as float32 (BOOL/ints widened). */
export function readGolden(file: string): Map<string, { shape: number[]; data: Float32Array }> {
  const st = SafetensorsFile.open(file);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  try {
    for (const k of st.keys()) {
      if (k === 'input_ids' || k === 'attention_mask') continue;
      const arr = st.readArray(k);
      out.set(k, { shape: st.entry(k).shape, data: arr instanceof Float32Array ? arr : Float32Array.from(arr) });
    }
  } finally {
    st.close();
  }
  return out;
}

export async function loadInputs(folder: string, files: string[]): Promise<Bitmap[]> {
  return Promise.all(files.map((f) => loadImage(fixture(folder, 'golden', f))));
}

/** The `[C, H, W]` 32×32 crops the image-preprocessing goldens store: top-left, centre, bottom-right. */
export function goldenCrops(tile: Float32Array, C: number, H: number, W: number, size: number): Float32Array {
  const out = new Float32Array(3 * C * size * size);
  const origins: [number, number][] = [
    [0, 0],
    [Math.floor((H - size) / 2), Math.floor((W - size) / 2)],
    [H - size, W - size],
  ];
  let o = 0;
  for (const [y0, x0] of origins) {
    for (let c = 0; c < C; c++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) out[o++] = tile[(c * H + y0 + y) * W + x0 + x]!;
  }
  return out;
}
