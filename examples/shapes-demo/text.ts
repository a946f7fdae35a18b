/**
 * The closed-vocabulary text of the shapes dataset: one caption per scene and question/answer
 * pairs whose answers are fully determined by the scene.
 *
 * Phrasing rules:
 * - caption: "a <color> <shape> <where>" per shape in row-major cell order, joined by ", ", ending
 *   with "."; <where> is "in the center" for the middle cell and "at the <position>" otherwise
 *   ("a red circle at the top left, a blue square in the center.").
 * - answers are bare: "two", "red", "circle", "yes", "top left" (no capital, no full stop).
 */
import type { Rng } from '../../src/util/rng.ts';
import { COLORS, SHAPES, pick, type PositionName, type Scene, type SceneShape } from './scene.ts';

export const CAPTION_PROMPT = 'Describe the image.';

export const QUESTION_TYPES = ['count', 'color', 'shape', 'exists', 'where'] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface QuestionAnswer {
  type: QuestionType;
  question: string;
  answer: string;
  /** Cells of the shapes the question is about: the one it names (none for counts or an absent shape). */
  cells: number[];
}

/** NUMBER_WORDS[n - 1] names a count of n shapes. */
export const NUMBER_WORDS = ['one', 'two', 'three'] as const;

/**
 * Every token that prompts, questions, captions and answers use, sorted by UTF-16 code unit
 * (so capitalised words come first). Case-sensitive; punctuation marks are tokens of their own
 * (see `textTokens`).
 */
export const VOCABULARY: readonly string[] = [
  ',', '.', '?',
  'Describe', 'How', 'Is', 'What', 'Where',
  'a', 'are', 'at', 'blue', 'bottom', 'center', 'circle', 'color', 'green', 'image', 'in', 'is',
  'left', 'many', 'no', 'one', 'red', 'right', 'shape', 'shapes', 'square', 'the', 'there',
  'three', 'top', 'triangle', 'two', 'yellow', 'yes',
];

/** Splits text into word and punctuation tokens; any other non-space character is its own token. */
export function textTokens(text: string): string[] {
  return text.match(/[A-Za-z]+|\S/g) ?? [];
}

/** "in the center" for the middle cell, "at the <position>" for the others. */
export function wherePhrase(position: PositionName): string {
  return position === 'center' ? 'in the center' : `at the ${position}`;
}

export function caption(scene: Scene): string {
  return scene.shapes.map((s) => `a ${s.color} ${s.shape} ${wherePhrase(s.position)}`).join(', ') + '.';
}

/** Every question of one type that the scene determines, with its answer. */
export function candidateQuestions(scene: Scene, type: QuestionType): QuestionAnswer[] {
  const shapes = scene.shapes;
  const count = (pred: (s: SceneShape) => boolean) => shapes.filter(pred).length;
  switch (type) {
    case 'count': {
      const answer = NUMBER_WORDS[shapes.length - 1];
      // A scene with no shapes, or more than there are number words for, determines no count question.
      return answer ? [{ type, question: 'How many shapes are there?', answer, cells: [] }] : [];
    }
    case 'color':
      return SHAPES.flatMap((kind) => {
        const [only, ...others] = shapes.filter((s) => s.shape === kind);
        return only && others.length === 0
          ? [{ type, question: `What color is the ${kind}?`, answer: only.color, cells: [only.cell] }]
          : [];
      });
    case 'shape':
      return shapes.map((s) => ({ type, question: `What shape is ${wherePhrase(s.position)}?`, answer: s.shape, cells: [s.cell] }));
    case 'exists':
      return COLORS.flatMap((color) =>
        SHAPES.map((kind) => {
          const cells = shapes.filter((s) => s.color === color && s.shape === kind).map((s) => s.cell);
          return { type, question: `Is there a ${color} ${kind}?`, answer: cells.length > 0 ? 'yes' : 'no', cells };
        }),
      );
    case 'where':
      return shapes
        .filter((s) => count((t) => t.color === s.color && t.shape === s.shape) === 1)
        .map((s) => ({ type, question: `Where is the ${s.color} ${s.shape}?`, answer: s.position, cells: [s.cell] }));
  }
}

/**
 * Samples up to `k` distinct questions: each draws its type uniformly among the types that still
 * have an unasked question, then a question of that type uniformly. Yes/no questions first flip a
 * fair coin for the answer, so "yes" and "no" are equally frequent.
 */
export function sampleQuestions(rng: Rng, scene: Scene, k: number): QuestionAnswer[] {
  const pools = new Map<QuestionType, QuestionAnswer[]>(
    QUESTION_TYPES.map((t) => [t, candidateQuestions(scene, t)]),
  );
  const out: QuestionAnswer[] = [];
  while (out.length < k) {
    const open = QUESTION_TYPES.filter((t) => pools.get(t)!.length > 0);
    if (open.length === 0) break;
    const type = pick(rng, open);
    let pool = pools.get(type)!;
    if (type === 'exists') {
      const wanted = rng.next() < 0.5 ? 'yes' : 'no';
      const side = pool.filter((q) => q.answer === wanted);
      if (side.length > 0) pool = side;
    }
    const chosen = pick(rng, pool);
    pools.set(type, pools.get(type)!.filter((q) => q !== chosen));
    out.push(chosen);
  }
  return out;
}
