// Checks a written dataset against an independent reading of its scenes: every answer and caption
// recomputed from scenes.jsonl, and the PNG pixels against the scene's boxes and colours.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Jimp } from 'jimp';
import { writeShapesDataset } from '../../examples/shapes-demo/dataset.ts';
import { readConversations, readJsonl, resolveImagePath, type Conversation } from '../../src/train/jsonl.ts';

interface Shape { shape: string; color: string; cell: number; position: string; x: number; y: number; size: number }
interface SceneLine { image: string; width: number; height: number; shapes: Shape[]; caption: string }

const CELLS = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'];
const RGB: Record<string, number[]> = { red: [255, 0, 0], green: [0, 255, 0], blue: [0, 0, 255], yellow: [255, 255, 0] };
const NUMBERS = ['one', 'two', 'three'];

/** The answer a reader of the scene gives, or undefined when the question is not determined. */
function oracle(scene: SceneLine, question: string): string | undefined {
  const sh = scene.shapes;
  let m: RegExpMatchArray | null;
  if (question === 'Describe the image.') {
    return sh
      .slice()
      .sort((a, b) => a.cell - b.cell)
      .map((s) => `a ${s.color} ${s.shape} ${s.position === 'center' ? 'in the center' : 'at the ' + s.position}`)
      .join(', ') + '.';
  }
  if (question === 'How many shapes are there?') return NUMBERS[sh.length - 1];
  if ((m = question.match(/^What color is the (\w+)\?$/))) {
    const hits = sh.filter((s) => s.shape === m![1]);
    return hits.length === 1 ? hits[0]!.color : undefined;
  }
  if ((m = question.match(/^What shape is (?:at the|in the) ([a-z ]+)\?$/))) {
    if (question.startsWith('What shape is in the') !== (m[1] === 'center')) return undefined;
    return sh.find((s) => s.position === m![1])?.shape;
  }
  if ((m = question.match(/^Is there a (\w+) (\w+)\?$/))) {
    return sh.some((s) => s.color === m![1] && s.shape === m![2]) ? 'yes' : 'no';
  }
  if ((m = question.match(/^Where is the (\w+) (\w+)\?$/))) {
    const hits = sh.filter((s) => s.color === m![1] && s.shape === m![2]);
    return hits.length === 1 ? hits[0]!.position : undefined;
  }
  return undefined;
}

const turnText = (c: Conversation, i: number) =>
  c.messages[i]!.content.map((p) => (p.type === 'text' ? p.text : '')).join('');

describe('shapes dataset content', () => {
  let tmp: string;
  let scenes: SceneLine[];
  let convs: Conversation[];
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tfvlm-shapes-content-'));
    await writeShapesDataset(tmp, { n: 40, seed: 11, questionsPerImage: 5 });
    scenes = (await readJsonl(path.join(tmp, 'scenes.jsonl'))) as SceneLine[];
    convs = await readConversations(path.join(tmp, 'data.jsonl'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('scenes have 1–3 shapes in distinct cells, named by their cell, boxes inside their cells', () => {
    for (const sc of scenes) {
      assert.ok(sc.shapes.length >= 1 && sc.shapes.length <= 3, sc.image);
      assert.equal(new Set(sc.shapes.map((s) => s.cell)).size, sc.shapes.length, sc.image);
      for (const s of sc.shapes) {
        assert.equal(s.position, CELLS[s.cell]);
        const cw = sc.width / 3;
        const col = s.cell % 3;
        const row = Math.floor(s.cell / 3);
        assert.ok(s.x >= col * cw && s.x + s.size <= (col + 1) * cw, `${sc.image} ${s.position} x`);
        assert.ok(s.y >= row * cw && s.y + s.size <= (row + 1) * cw, `${sc.image} ${s.position} y`);
        assert.ok(s.size >= 0.6 * cw && s.size <= 0.9 * cw, `${sc.image} size ${s.size}`);
      }
    }
  });

  it('every caption and answer is what the scene says', () => {
    const byImage = new Map(scenes.map((s) => [s.image, s]));
    const perImage = new Map<string, Set<string>>();
    for (const c of convs) {
      assert.equal(c.messages.length, 2);
      assert.equal(c.messages[0]!.role, 'user');
      assert.equal(c.messages[1]!.role, 'assistant');
      const img = c.messages[0]!.content[0];
      assert.ok(img?.type === 'image');
      const scene = byImage.get(img.image);
      assert.ok(scene, img.image);
      const question = turnText(c, 0);
      const answer = turnText(c, 1);
      assert.equal(answer, oracle(scene, question), `${img.image}: ${question}`);
      assert.equal(c.kind, question === 'Describe the image.' ? 'caption' : 'qa');
      if (c.kind === 'caption') assert.equal(answer, scene.caption);
      const asked = perImage.get(img.image) ?? new Set();
      assert.ok(!asked.has(question), `${img.image}: '${question}' asked twice`);
      perImage.set(img.image, asked.add(question));
    }
    for (const sc of scenes) assert.equal(perImage.get(sc.image)?.size, 6, sc.image);
  });

  it('pixels: white background, each shape its colour and area inside its own box', async () => {
    for (const sc of scenes) {
      const img = await Jimp.read(resolveImagePath(path.join(tmp, 'data.jsonl'), sc.image));
      assert.equal(img.bitmap.width, sc.width);
      assert.equal(img.bitmap.height, sc.height);
      const px = img.bitmap.data;
      const at = (x: number, y: number) => Array.from(px.subarray((y * sc.width + x) * 4, (y * sc.width + x) * 4 + 3));
      const painted = new Array(sc.shapes.length).fill(0);
      for (let y = 0; y < sc.height; y++) {
        for (let x = 0; x < sc.width; x++) {
          const c = at(x, y);
          if (c.every((v) => v === 255)) continue;
          const owner = sc.shapes.findIndex(
            (s) => x >= s.x && x <= s.x + s.size && y >= s.y && y <= s.y + s.size,
          );
          assert.ok(owner >= 0, `${sc.image}: non-white pixel (${x},${y}) outside every shape`);
          assert.deepEqual(c, RGB[sc.shapes[owner]!.color], `${sc.image}: pixel (${x},${y})`);
          painted[owner]++;
        }
      }
      sc.shapes.forEach((s, i) => {
        const centre = at(Math.floor(s.x + s.size / 2), Math.floor(s.y + s.size / 2));
        assert.deepEqual(centre, RGB[s.color], `${sc.image}: centre of the ${s.shape}`);
        // Filled fraction of the box tells the shapes apart: square 1, circle π/4, triangle 1/2.
        const fill = painted[i] / (s.size * s.size);
        const want = { square: 1, circle: Math.PI / 4, triangle: 0.5 }[s.shape]!;
        assert.ok(Math.abs(fill - want) < 0.08, `${sc.image}: ${s.shape} fills ${fill.toFixed(3)} of its box`);
      });
    }
  });

  it('the pixels alone determine the caption (a rule-based reader recovers every one)', async () => {
    for (const sc of scenes) {
      const img = await Jimp.read(path.join(tmp, sc.image));
      const { width, height, data } = img.bitmap;
      const parts: string[] = [];
      for (let cell = 0; cell < 9; cell++) {
        const [x0, x1] = [Math.floor(((cell % 3) * width) / 3), Math.floor((((cell % 3) + 1) * width) / 3)];
        const [y0, y1] = [Math.floor((Math.floor(cell / 3) * height) / 3), Math.floor(((Math.floor(cell / 3) + 1) * height) / 3)];
        let n = 0, minX = Infinity, maxX = -1, minY = Infinity, maxY = -1, colour = '';
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            const rgb = Array.from(data.subarray((y * width + x) * 4, (y * width + x) * 4 + 3));
            if (rgb.every((v) => v === 255)) continue;
            colour = Object.keys(RGB).find((k) => RGB[k]!.every((v, i) => v === rgb[i]))!;
            n++;
            [minX, maxX, minY, maxY] = [Math.min(minX, x), Math.max(maxX, x), Math.min(minY, y), Math.max(maxY, y)];
          }
        }
        if (n === 0) continue;
        const fill = n / ((maxX - minX + 1) * (maxY - minY + 1));
        const shape = fill > 0.95 ? 'square' : fill > 0.65 ? 'circle' : 'triangle';
        const name = CELLS[cell];
        parts.push(`a ${colour} ${shape} ${name === 'center' ? 'in the center' : 'at the ' + name}`);
      }
      assert.equal(parts.join(', ') + '.', sc.caption, sc.image);
    }
  });
});
