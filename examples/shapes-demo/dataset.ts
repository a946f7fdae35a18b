/**
 * The synthetic "shapes" dataset: scenes → PNG images + caption and question/answer conversations.
 *
 * Layout of a dataset folder:
 *   images/000000.png …   one image per scene
 *   data.jsonl            per image: its caption conversation, then its QA conversations (each of
 *                         up to questionsPerConversation user/assistant turns about that image)
 *   scenes.jsonl          per image: the scene (shapes, cells, boxes) and its caption
 *
 * Image i draws its scene and its questions from two seeds taken, in order, from one Rng(seed),
 * so output depends only on (seed, n, size, questionsPerImage, questionsPerConversation), the
 * questions only on (seed, n, size, questionsPerImage) and the scenes only on the seed and size
 * (changing the number of questions keeps the images; grouping them into turns keeps the questions).
 */
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '../../src/util/rng.ts';
import { TfvlmError } from '../../src/errors.ts';
import { checkImageSize, sampleScene, type Scene } from './scene.ts';
import { sceneToPng } from './draw.ts';
import { CAPTION_PROMPT, QUESTION_TYPES, caption, sampleQuestions, type QuestionAnswer, type QuestionType } from './text.ts';
import { parseJsonl, type Conversation, type DatasetMessage } from '../../src/train/jsonl.ts';

export const DATA_FILE = 'data.jsonl';
export const SCENES_FILE = 'scenes.jsonl';

/** The scenes of a scenes.jsonl text (one per line, image paths relative to the dataset folder). */
export function parseScenes(jsonl: string, scenesFile: string): Scene[] {
  return parseJsonl(jsonl, scenesFile).map((value, i) => {
    const scene = value as Scene | null;
    if (typeof scene?.image !== 'string' || !Array.isArray(scene.shapes)) {
      throw new TfvlmError(`${scenesFile}:${i + 1}: expected a scene with "image" and "shapes"`);
    }
    return scene;
  });
}
export const IMAGES_DIR = 'images';
export const DEFAULT_IMAGE_SIZE = 96;
export const DEFAULT_QUESTIONS_PER_IMAGE = 3;
export const DEFAULT_QUESTIONS_PER_CONVERSATION = 1;

export interface ShapesDatasetOptions {
  n: number;
  seed: number;
  /** Image side in pixels (square images). */
  size?: number;
  questionsPerImage?: number;
  /** Questions asked in one conversation, as consecutive user/assistant turns (1 = one each). */
  questionsPerConversation?: number;
}

export interface ShapesConversation extends Conversation {
  kind: 'caption' | 'qa';
  /** The question type, or 'mixed' for a conversation of several questions. */
  task: 'caption' | QuestionType | 'mixed';
}

export interface ShapesExample {
  scene: Scene;
  caption: string;
  questions: QuestionAnswer[];
  conversations: ShapesConversation[];
}

export interface ShapesDatasetCounts {
  images: number;
  conversations: number;
  captions: number;
  questions: number;
  byTask: Record<QuestionType, number>;
  yes: number;
  no: number;
}

/** The image goes with the first user turn only, as a user shows a picture once and then asks on. */
function conversation(image: string, turns: { prompt: string; answer: string }[], task: ShapesConversation['task']): ShapesConversation {
  const messages: DatasetMessage[] = turns.flatMap(({ prompt, answer }, i): DatasetMessage[] => [
    { role: 'user', content: [...(i === 0 ? [{ type: 'image' as const, image }] : []), { type: 'text' as const, text: prompt }] },
    { role: 'assistant', content: [{ type: 'text', text: answer }] },
  ]);
  return { messages, kind: task === 'caption' ? 'caption' : 'qa', task };
}

function questionConversations(image: string, questions: QuestionAnswer[], perConversation: number): ShapesConversation[] {
  const out: ShapesConversation[] = [];
  for (let i = 0; i < questions.length; i += perConversation) {
    const group = questions.slice(i, i + perConversation);
    const [first] = group;
    const task = first && group.length === 1 ? first.type : 'mixed';
    out.push(conversation(image, group.map((q) => ({ prompt: q.question, answer: q.answer })), task));
  }
  return out;
}

function checkOptions(opts: ShapesDatasetOptions): Required<ShapesDatasetOptions> {
  const {
    n, seed, size = DEFAULT_IMAGE_SIZE, questionsPerImage = DEFAULT_QUESTIONS_PER_IMAGE,
    questionsPerConversation = DEFAULT_QUESTIONS_PER_CONVERSATION,
  } = opts;
  if (!Number.isInteger(n) || n < 1) throw new TfvlmError(`shapes dataset: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new TfvlmError(`shapes dataset: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  checkImageSize(size);
  if (!Number.isInteger(questionsPerImage) || questionsPerImage < 0) {
    throw new TfvlmError(`shapes dataset: questions per image must be an integer ≥ 0, got ${questionsPerImage}`);
  }
  if (!Number.isInteger(questionsPerConversation) || questionsPerConversation < 1) {
    throw new TfvlmError(`shapes dataset: questions per conversation must be a positive integer, got ${questionsPerConversation}`);
  }
  return { n, seed, size, questionsPerImage, questionsPerConversation };
}

export function imageName(index: number, n: number): string {
  const digits = Math.max(6, String(n - 1).length);
  return `${IMAGES_DIR}/${String(index).padStart(digits, '0')}.png`;
}

/** The dataset's examples in order, without drawing or writing anything. */
export function* shapesExamples(options: ShapesDatasetOptions): Generator<ShapesExample> {
  const { n, seed, size, questionsPerImage, questionsPerConversation } = checkOptions(options);
  const master = new Rng(seed);
  for (let i = 0; i < n; i++) {
    const sceneRng = new Rng(master.nextUint32());
    const questionRng = new Rng(master.nextUint32());
    const scene = sampleScene(sceneRng, size, imageName(i, n));
    const text = caption(scene);
    const questions = sampleQuestions(questionRng, scene, questionsPerImage);
    const conversations = [
      conversation(scene.image, [{ prompt: CAPTION_PROMPT, answer: text }], 'caption'),
      ...questionConversations(scene.image, questions, questionsPerConversation),
    ];
    yield { scene, caption: text, questions, conversations };
  }
}

function emptyCounts(): ShapesDatasetCounts {
  const byTask = Object.fromEntries(QUESTION_TYPES.map((t) => [t, 0])) as Record<QuestionType, number>;
  return { images: 0, conversations: 0, captions: 0, questions: 0, byTask, yes: 0, no: 0 };
}

function tally(counts: ShapesDatasetCounts, ex: ShapesExample): void {
  counts.images++;
  counts.conversations += ex.conversations.length;
  counts.captions++;
  for (const q of ex.questions) {
    counts.questions++;
    counts.byTask[q.type]++;
    if (q.type === 'exists') counts[q.answer === 'yes' ? 'yes' : 'no']++;
  }
}

/** Counts of the dataset's conversations without writing it (for reports and tests). */
export function countShapesDataset(options: ShapesDatasetOptions): ShapesDatasetCounts {
  const counts = emptyCounts();
  for (const ex of shapesExamples(options)) tally(counts, ex);
  return counts;
}

/**
 * Writes the dataset into `out`. Refuses a folder that already holds a dataset unless `force`,
 * which first removes the previous images/, data.jsonl and scenes.jsonl (so no stale image stays).
 */
export async function writeShapesDataset(
  out: string,
  options: ShapesDatasetOptions,
  { force = false }: { force?: boolean } = {},
): Promise<ShapesDatasetCounts> {
  checkOptions(options);
  const existing = await readdir(out).catch(() => [] as string[]);
  const previous = [IMAGES_DIR, DATA_FILE, SCENES_FILE].filter((f) => existing.includes(f));
  if (previous.length > 0) {
    if (!force) throw new TfvlmError(`${out} already holds ${previous.join(', ')}; pass --force to replace them`);
    for (const f of previous) await rm(path.join(out, f), { recursive: true, force: true });
  }
  await mkdir(path.join(out, IMAGES_DIR), { recursive: true });

  const counts = emptyCounts();
  const data = await open(path.join(out, DATA_FILE), 'w');
  const scenes = await open(path.join(out, SCENES_FILE), 'w');
  try {
    for (const ex of shapesExamples(options)) {
      await writeFile(path.join(out, ex.scene.image), await sceneToPng(ex.scene));
      await data.write(ex.conversations.map((c) => JSON.stringify(c) + '\n').join(''));
      await scenes.write(JSON.stringify({ ...ex.scene, caption: ex.caption }) + '\n');
      tally(counts, ex);
    }
  } finally {
    await data.close();
    await scenes.close();
  }
  return counts;
}
