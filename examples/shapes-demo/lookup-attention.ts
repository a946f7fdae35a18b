/**
 * Where a model looks when a question names one of several shapes. For "Where is the <color>
 * <shape>?" and "What color is the <shape>?" about fresh shapes scenes with 2–3 shapes, it averages
 * each text layer's attention (per head) from the first answer position over: the named shape's
 * image token, the other shapes' tokens, the empty cells' tokens and the text. A model that finds
 * the named shape puts more weight on it than on each other shape.
 *
 * Image tokens are mapped to cells by imageTokenCells (one tile, no splitting).
 */
import { tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Capture } from '../../src/models/capture.ts';
import type { Idefics3Model } from '../../src/models/idefics3/model.ts';
import type { VlmProcessor } from '../../src/processing/processor.ts';
import { sceneToPng } from './draw.ts';
import { shapesExamples } from './dataset.ts';
import { candidateQuestions, type QuestionType } from './text.ts';
import { imageTokenCells, type Scene } from './scene.ts';

export const LOOKUP_QUESTION_TYPES = ['where', 'color'] as const satisfies readonly QuestionType[];
export type LookupQuestionType = (typeof LOOKUP_QUESTION_TYPES)[number];

/** Mean attention of one head; named + otherShapes + emptyCells + text = 1. */
export interface HeadAttention {
  layer: number;
  head: number;
  named: number;
  /** On all other shapes together. */
  otherShapes: number;
  /** On one other shape, on average (otherShapes shared out over each question's other shapes). */
  eachOtherShape: number;
  emptyCells: number;
  text: number;
}

export interface LookupAttention {
  type: LookupQuestionType;
  questions: number;
  heads: HeadAttention[];
}

export interface LookupAttentionOptions {
  /** Questions per type (default 60). */
  questions?: number;
  /** Scene seed (default 3; the demo recipe trains on seed 0). */
  seed?: number;
  /** Image side of the generated scenes (default: the dataset's 96). */
  size?: number;
}

interface Question {
  scene: Scene;
  text: string;
  /** Cell of the shape the question names. */
  cell: number;
}

/** The processor's pixel shape [B, tiles, C, H, W] (one tile per image here: no splitting). */
function pixelDims(shape: readonly number[] | undefined): [number, number, number, number, number] {
  const [B, N, C, H, W, ...rest] = shape ?? [];
  if (B === undefined || N === undefined || C === undefined || H === undefined || W === undefined || rest.length > 0) {
    throw new TfvlmError(`lookup attention: expected pixels shaped [B, tiles, C, H, W], got [${shape ?? ''}]`);
  }
  return [B, N, C, H, W];
}

function lookupQuestions(type: LookupQuestionType, count: number, seed: number, size: number | undefined): Question[] {
  const out: Question[] = [];
  for (const { scene } of shapesExamples({ n: count * 4, seed, size })) {
    if (scene.shapes.length < 2) continue;
    for (const q of candidateQuestions(scene, type)) {
      const named = scene.shapes.find((s) => q.question.includes(`${type === 'where' ? `${s.color} ` : ''}${s.shape}?`));
      if (named) out.push({ scene, text: q.question, cell: named.cell });
      if (out.length === count) return out;
    }
  }
  return out;
}

/** Attention from the first answer position, averaged per text layer and head (see the file comment). */
export async function lookupAttention(
  model: Idefics3Model, processor: VlmProcessor, type: LookupQuestionType, opts: LookupAttentionOptions = {},
): Promise<LookupAttention> {
  const layers = model.config.text_config.num_hidden_layers;
  const heads = model.config.text_config.num_attention_heads;
  const names = Array.from({ length: layers }, (_, i) => `text.layers.${i}.attn_weights`);
  // Per layer, per head: the attention sums over all questions.
  const sums = names.map((name) => ({
    name,
    perHead: Array.from({ length: heads }, () => ({ named: 0, otherShapes: 0, eachOtherShape: 0, emptyCells: 0, text: 0 })),
  }));
  const questions = lookupQuestions(type, opts.questions ?? 60, opts.seed ?? 3, opts.size);
  for (const q of questions) {
    const png = await sceneToPng(q.scene);
    const inputs = await processor.fromMessages(
      [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: q.text }] }],
      { images: [[png]], imageSplitting: false },
    );
    const [ids] = inputs.input_ids;
    const { pixel_values: pixels, pixel_attention_mask: pixelMask } = inputs;
    if (!ids || !pixels || !pixelMask) throw new TfvlmError('lookup attention: the processor gave no prompt ids or no pixels');
    const [B, N, C, H, W] = pixelDims(inputs.pixelShape);
    const imagePositions = ids.flatMap((id, i) => (id === processor.imageTokenId ? [i] : []));
    const cells = imageTokenCells(imagePositions.length);
    const occupied = new Set(q.scene.shapes.map((s) => s.cell));
    const capture = new Capture(names);
    try {
      tf.tidy(() => {
        model.forward({
          input_ids: tf.tensor2d([ids], [1, ids.length], 'int32'),
          pixel_values: tf.tensor5d(pixels, [B, N, C, H, W]),
          pixel_attention_mask: tf.tensor4d(Int32Array.from(pixelMask), [B, N, H, W], 'int32'),
        }, { capture, lastOnly: true });
      });
      const T = ids.length;
      for (const layer of sums) {
        const w = capture.get(layer.name)!.dataSync(); // [1, heads, T, T]
        layer.perHead.forEach((s, h) => {
          const row = w.subarray((h * T + T - 1) * T, (h * T + T) * T);
          let image = 0;
          imagePositions.forEach((p, k) => {
            const weight = row[p]!; // p < T
            const cell = cells[k]!; // one cell per image token
            image += weight;
            if (cell === q.cell) s.named += weight;
            else if (occupied.has(cell)) {
              s.otherShapes += weight;
              s.eachOtherShape += weight / (occupied.size - 1);
            }
            else s.emptyCells += weight;
          });
          s.text += 1 - image;
        });
      }
    } finally {
      capture.dispose();
    }
  }
  const n = Math.max(1, questions.length);
  return {
    type,
    questions: questions.length,
    heads: sums.flatMap(({ perHead }, layer) => perHead.map((s, head) => ({
      layer, head,
      named: s.named / n, otherShapes: s.otherShapes / n, eachOtherShape: s.eachOtherShape / n, emptyCells: s.emptyCells / n, text: s.text / n,
    }))),
  };
}

export function formatLookupAttention(r: LookupAttention): string {
  const lines = [
    `${r.type}: ${r.questions} questions about scenes with 2–3 shapes; attention of the first answer position`,
    'layer head   named shape   each other shape   empty cells   text',
  ];
  for (const h of r.heads) {
    lines.push(`${String(h.layer).padStart(5)} ${String(h.head).padStart(4)}   ${h.named.toFixed(3).padStart(11)}   ${h.eachOtherShape.toFixed(3).padStart(16)}   ${h.emptyCells.toFixed(3).padStart(11)}   ${h.text.toFixed(3).padStart(4)}`);
  }
  return lines.join('\n');
}
