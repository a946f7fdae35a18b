/**
 * Scenes of the synthetic "shapes" dataset: 1–3 flat shapes on white, each in its own cell of a
 * 3×3 grid. A scene is plain data; drawing (draw.ts) and text (text.ts) are pure functions of it.
 */
import type { Rng } from '../../src/util/rng.ts';
import { TfvlmError } from '../../src/errors.ts';

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export const COLORS = ['red', 'green', 'blue', 'yellow'] as const;
/** Cell names in row-major order: POSITIONS[row * 3 + col]. */
export const POSITIONS = [
  'top left', 'top', 'top right',
  'left', 'center', 'right',
  'bottom left', 'bottom', 'bottom right',
] as const;

export type ShapeKind = (typeof SHAPES)[number];
export type ColorName = (typeof COLORS)[number];
export type PositionName = (typeof POSITIONS)[number];

/** Pure saturated RGB; the background is white. */
export const COLOR_RGB: Readonly<Record<ColorName, readonly [number, number, number]>> = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
};
export const BACKGROUND_RGB = [255, 255, 255] as const;

export const MIN_SHAPES = 1;
export const MAX_SHAPES = 3;
/** Smallest image side: cells of at least 8 px still leave room for a margin and jitter. */
export const MIN_IMAGE_SIZE = 24;
/** Shape side as a fraction of the cell side: most of the cell, with a little random jitter. */
const MIN_FILL = 0.65;
const MAX_FILL = 0.85;

export interface SceneShape {
  shape: ShapeKind;
  color: ColorName;
  /** Grid cell, row-major 0..8. */
  cell: number;
  position: PositionName;
  /** Bounding box of the shape in pixels: top-left corner and side (shapes are as wide as tall). */
  x: number;
  y: number;
  size: number;
}

export interface Scene {
  /** Image path relative to the dataset folder, e.g. "images/000123.png". */
  image: string;
  width: number;
  height: number;
  /** Sorted by cell (row-major), which is also the caption order. */
  shapes: SceneShape[];
}

/** Uniform integer in [lo, hi]. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng.next() * (hi - lo + 1));
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[randInt(rng, 0, items.length - 1)];
  if (item === undefined) throw new TfvlmError('shapes dataset: pick from an empty list');
  return item;
}

/** Pixel bounds [x0, x1) × [y0, y1) of a grid cell in an image of the given size. */
export function cellBounds(cell: number, width: number, height: number) {
  const row = Math.floor(cell / 3);
  const col = cell % 3;
  return {
    x0: Math.floor((col * width) / 3),
    x1: Math.floor(((col + 1) * width) / 3),
    y0: Math.floor((row * height) / 3),
    y1: Math.floor(((row + 1) * height) / 3),
  };
}

/**
 * Cell (row-major 0..8) of each of `count` image tokens laid out as a square grid over the image
 * (one tile, no splitting): the cell of the 3×3 grid the token's centre falls in.
 */
export function imageTokenCells(count: number): number[] {
  const side = Math.round(Math.sqrt(count));
  if (side * side !== count) throw new TfvlmError(`${count} image tokens do not form a square grid (one tile of a square image)`);
  return Array.from({ length: count }, (_, k) => {
    const row = Math.floor(((Math.floor(k / side) + 0.5) * 3) / side);
    const col = Math.floor((((k % side) + 0.5) * 3) / side);
    return row * 3 + col;
  });
}

export function checkImageSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_IMAGE_SIZE) {
    throw new TfvlmError(`shapes dataset: image size must be an integer ≥ ${MIN_IMAGE_SIZE}, got ${size}`);
  }
}

/** Samples a scene of a square image `size` px wide: shape count, cells, kinds, colours and jitter. */
export function sampleScene(rng: Rng, size: number, image: string): Scene {
  checkImageSize(size);
  const count = randInt(rng, MIN_SHAPES, MAX_SHAPES);
  const cells = POSITIONS.map((position, cell) => ({ cell, position }));
  for (let i = 0; i < count; i++) {
    const j = randInt(rng, i, cells.length - 1);
    [cells[i], cells[j]] = [cells[j]!, cells[i]!]; // i ≤ j < 9
  }
  const chosen = cells.slice(0, count).sort((a, b) => a.cell - b.cell);
  const shapes = chosen.map(({ cell, position }): SceneShape => {
    const shape = pick(rng, SHAPES);
    const color = pick(rng, COLORS);
    const { x0, x1, y0, y1 } = cellBounds(cell, size, size);
    const side = Math.min(x1 - x0, y1 - y0);
    // 1 px margin inside the cell on every side, so neighbouring shapes never touch.
    const maxSize = Math.min(Math.round(MAX_FILL * side), side - 2);
    const s = randInt(rng, Math.min(Math.round(MIN_FILL * side), maxSize), maxSize);
    return {
      shape,
      color,
      cell,
      position,
      x: randInt(rng, x0 + 1, x1 - 1 - s),
      y: randInt(rng, y0 + 1, y1 - 1 - s),
      size: s,
    };
  });
  return { image, width: size, height: size, shapes };
}
