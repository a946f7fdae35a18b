/**
 * Rasterizes a scene with hard edges (no anti-aliasing): a pixel belongs to a shape when its centre
 * lies inside it, so every pixel is either white or exactly one palette colour. Encoded as RGB PNG.
 */
import { Jimp } from 'jimp';
import { BACKGROUND_RGB, COLOR_RGB, type Scene, type SceneShape } from './scene.ts';

/** Whether the pixel (px, py) is covered by the shape (tested at the pixel centre). */
export function coversPixel(s: SceneShape, px: number, py: number): boolean {
  const cx = px + 0.5;
  const cy = py + 0.5;
  if (cx < s.x || cx > s.x + s.size || cy < s.y || cy > s.y + s.size) return false;
  const half = s.size / 2;
  const mx = s.x + half;
  switch (s.shape) {
    case 'square':
      return true;
    case 'circle': {
      const dx = cx - mx;
      const dy = cy - (s.y + half);
      return dx * dx + dy * dy <= half * half;
    }
    case 'triangle': {
      // Upright isosceles: apex at the top middle of the box, base along its bottom edge.
      const halfWidth = ((cy - s.y) / s.size) * half;
      return Math.abs(cx - mx) <= halfWidth;
    }
  }
}

/** RGB pixels of the scene, row-major [height, width, 3]. */
export function renderScene(scene: Scene): Uint8Array {
  const { width, height } = scene;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set(BACKGROUND_RGB, i * 3);
  for (const s of scene.shapes) {
    const colour = COLOR_RGB[s.color];
    const x1 = Math.min(width, s.x + s.size + 1);
    const y1 = Math.min(height, s.y + s.size + 1);
    for (let py = Math.max(0, s.y); py < y1; py++) {
      for (let px = Math.max(0, s.x); px < x1; px++) {
        if (coversPixel(s, px, py)) rgb.set(colour, (py * width + px) * 3);
      }
    }
  }
  return rgb;
}

/** PNG bytes (8-bit RGB, no alpha) of the scene, drawn into a jimp bitmap. */
export async function sceneToPng(scene: Scene): Promise<Buffer> {
  const rgb = renderScene(scene);
  const img = new Jimp({ width: scene.width, height: scene.height, color: 0xffffffff });
  const rgba = img.bitmap.data;
  for (let i = 0, n = scene.width * scene.height; i < n; i++) {
    rgba[i * 4] = rgb[i * 3]!;
    rgba[i * 4 + 1] = rgb[i * 3 + 1]!;
    rgba[i * 4 + 2] = rgb[i * 3 + 2]!;
    rgba[i * 4 + 3] = 255;
  }
  // colorType 2 = truecolour without alpha (pngjs PNGColorType.COLOR).
  return img.getBuffer('image/png', { colorType: 2 });
}
