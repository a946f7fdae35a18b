/**
 * Scoring for the shapes dataset: exact match of generated text against the reference answer or
 * caption after trimming surrounding whitespace, reported separately for captions and questions.
 */
import { TfvlmError } from '../../src/errors.ts';
import { parseScenes } from './dataset.ts';
import { CAPTION_PROMPT } from './text.ts';
import { messageText, resolveImagePath, type Conversation } from '../../src/train/jsonl.ts';

export interface AnswerPair {
  expected: string;
  predicted: string;
}

export interface Score {
  exact: number;
  total: number;
  /** exact / total; 0 when there is nothing to score. */
  accuracy: number;
}

export interface EvalItem {
  kind: 'caption' | 'qa';
  /** "caption" or the question type ("count", "where", ...); "qa" when the line does not say. */
  task: string;
  /** Absolute image path. */
  image: string;
  prompt: string;
  expected: string;
  /** Shapes in the image, when the dataset's scenes.jsonl is at hand (see `withShapeCounts`). */
  shapes?: number;
}

export function isExactMatch(expected: string, predicted: string): boolean {
  return expected.trim() === predicted.trim();
}

export function scoreAnswers(pairs: readonly AnswerPair[]): Score {
  const exact = pairs.filter((p) => isExactMatch(p.expected, p.predicted)).length;
  const total = pairs.length;
  return { exact, total, accuracy: total === 0 ? 0 : exact / total };
}

/**
 * One eval item per conversation: a user turn with one image and a text prompt, then the reference
 * assistant turn. The kind comes from the line's "kind" field, or else from the prompt (the caption
 * instruction means a caption). `jsonlFile` resolves relative image paths.
 */
export function evalItem(conv: Conversation, jsonlFile: string, where = jsonlFile): EvalItem {
  if (conv.messages.filter((m) => m.role === 'user').length > 1) {
    throw new TfvlmError(`${where}: has several user turns; eval scores one question per conversation (write eval data with --questions-per-conversation 1)`);
  }
  const user = conv.messages.find((m) => m.role === 'user');
  const assistant = conv.messages.find((m) => m.role === 'assistant');
  const [image, ...moreImages] = user?.content.filter((p) => p.type === 'image') ?? [];
  if (!user || !assistant || image?.type !== 'image' || moreImages.length > 0) {
    throw new TfvlmError(`${where}: expected a user turn with exactly one image and an assistant turn`);
  }
  const prompt = messageText(user);
  const kind = conv.kind === 'caption' || conv.kind === 'qa' ? conv.kind : prompt === CAPTION_PROMPT ? 'caption' : 'qa';
  return {
    kind,
    task: conv.task ?? kind,
    image: resolveImagePath(jsonlFile, image.image),
    prompt,
    expected: messageText(assistant),
  };
}

export function evalItems(conversations: readonly Conversation[], jsonlFile: string): EvalItem[] {
  return conversations.map((c, i) => evalItem(c, jsonlFile, `${jsonlFile}: conversation ${i + 1}`));
}

/**
 * Adds each item's number of shapes from the dataset's scenes.jsonl (one scene per line, its image
 * path relative to the dataset folder). Questions about one shape can be answered from the picture
 * alone; only with two or three must the model find the shape the question names.
 */
export function withShapeCounts(items: readonly EvalItem[], scenesJsonl: string, scenesFile: string): EvalItem[] {
  const counts = new Map(parseScenes(scenesJsonl, scenesFile).map((s) => [resolveImagePath(scenesFile, s.image), s.shapes.length]));
  return items.map((it) => ({ ...it, shapes: counts.get(it.image) }));
}

export function splitByKind(items: readonly EvalItem[]): { captions: EvalItem[]; questions: EvalItem[] } {
  return {
    captions: items.filter((it) => it.kind === 'caption'),
    questions: items.filter((it) => it.kind === 'qa'),
  };
}

/** The first `captions` caption items and the first `questions` QA items, in file order. */
export function selectEvalItems(
  items: readonly EvalItem[],
  { captions = Infinity, questions = Infinity }: { captions?: number; questions?: number },
): EvalItem[] {
  let c = 0;
  let q = 0;
  return items.filter((it) => (it.kind === 'caption' ? c++ < captions : q++ < questions));
}

export interface ShapesEvalResult {
  captions: Score;
  questions: Score;
  /** Per task ("caption", "count", "color", ...). */
  byTask: Record<string, Score>;
  /** Per task, then per number of shapes in the image (items whose count is known). */
  byTaskAndShapes: Record<string, Record<number, Score>>;
  /** The items that did not match, with what was generated. */
  mistakes: (EvalItem & { predicted: string })[];
}

/** Runs `predict` on every item (in order, one at a time) and scores it. */
export async function evaluateShapes(
  items: readonly EvalItem[],
  predict: (item: EvalItem) => Promise<string>,
): Promise<ShapesEvalResult> {
  const scored: (EvalItem & { predicted: string })[] = [];
  for (const item of items) scored.push({ ...item, predicted: await predict(item) });
  const byTask: Record<string, Score> = {};
  for (const task of [...new Set(scored.map((s) => s.task))].sort()) {
    byTask[task] = scoreAnswers(scored.filter((s) => s.task === task));
  }
  const byTaskAndShapes: Record<string, Record<number, Score>> = {};
  for (const task of Object.keys(byTask)) {
    const counted = scored.filter((s) => s.task === task && s.shapes !== undefined);
    for (const n of [...new Set(counted.map((s) => s.shapes!))].sort((a, b) => a - b)) {
      (byTaskAndShapes[task] ??= {})[n] = scoreAnswers(counted.filter((s) => s.shapes === n));
    }
  }
  return {
    captions: scoreAnswers(scored.filter((s) => s.kind === 'caption')),
    questions: scoreAnswers(scored.filter((s) => s.kind === 'qa')),
    byTask,
    byTaskAndShapes,
    mistakes: scored.filter((s) => !isExactMatch(s.expected, s.predicted)),
  };
}

export function formatScore(s: Score): string {
  return `${s.exact}/${s.total} = ${(100 * s.accuracy).toFixed(1)}%`;
}

/** The numbers of shapes the per-shape-count scores cover, ascending (empty when none are known). */
export function shapeCountsOf(r: ShapesEvalResult): number[] {
  return [...new Set(Object.values(r.byTaskAndShapes).flatMap((per) => Object.keys(per).map(Number)))].sort((a, b) => a - b);
}

/**
 * A few lines for the terminal: caption and question accuracy, then per task, then (when the shape
 * counts are known) per task and number of shapes in the image.
 */
export function formatShapesEval(r: ShapesEvalResult): string {
  const lines = [`captions   ${formatScore(r.captions)} exact`, `questions  ${formatScore(r.questions)} exact`];
  for (const [task, s] of Object.entries(r.byTask)) lines.push(`  ${task.padEnd(9)}${formatScore(s)}`);
  const counts = shapeCountsOf(r);
  if (counts.length > 0) {
    const cell = (s: Score | undefined) => (s ? `${s.exact}/${s.total}` : '-').padStart(9);
    lines.push('', `by shapes in the image:${counts.map((n) => String(n).padStart(9)).join('')}`);
    for (const [task, per] of Object.entries(r.byTaskAndShapes)) {
      lines.push(`  ${task.padEnd(21)}${counts.map((n) => cell(per[n])).join('')}`);
    }
  }
  return lines.join('\n');
}
