// `npm run demo:eval -- --model DIR`: scores a model on fresh shapes data (what `tfvlm eval shapes`
// did before the shapes demo left the library); evaluateShapesModel is also train.ts's final score.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TfvlmError } from '../../src/errors.ts';
import { Vlm } from '../../src/engine.ts';
import { readConversations } from '../../src/train/jsonl.ts';
import { DATA_FILE, DEFAULT_IMAGE_SIZE, SCENES_FILE, writeShapesDataset } from './dataset.ts';
import {
  evalItems, evaluateShapes, formatShapesEval, selectEvalItems, withShapeCounts, type EvalItem, type ShapesEvalResult,
} from './scoring.ts';
import { optionalNumber, requireString, runCommand, type Command } from '../../src/cli/command.ts';
import { dtypeOptions } from '../../src/cli/generation-flags.ts';

export interface ShapesEvalOptions {
  nImages: number;
  nQuestions: number;
  seed: number;
  /** Image side of the generated data (default: the dataset default). */
  size?: number;
  /** Where the fresh data is written (default: a temporary folder, removed afterwards). */
  dataDir?: string;
  maxNewTokens?: number;
  onProgress?: (done: number, total: number) => void;
  /** Receives every item with the model's answer, in order (the result keeps only the mistakes). */
  onItem?: (item: EvalItem, predicted: string) => void;
}

/**
 * Generates a fresh shapes dataset (seed should be one training did not use) and scores the model's
 * greedy answers: the first nImages captions and the first nQuestions questions, exact match.
 */
export async function evaluateShapesModel(model: string | Vlm, opts: ShapesEvalOptions): Promise<ShapesEvalResult & { seconds: number }> {
  const t0 = performance.now();
  const questionsPerImage = Math.max(1, Math.ceil(opts.nQuestions / Math.max(1, opts.nImages)));
  const dir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-eval-'));
  const vlm = typeof model === 'string' ? await Vlm.load(model) : model;
  try {
    await writeShapesDataset(dir, {
      n: opts.nImages, seed: opts.seed, size: opts.size ?? DEFAULT_IMAGE_SIZE, questionsPerImage,
    }, { force: true });
    const file = path.join(dir, DATA_FILE);
    const scenesFile = path.join(dir, SCENES_FILE);
    const items = withShapeCounts(
      selectEvalItems(evalItems(await readConversations(file), file), { captions: opts.nImages, questions: opts.nQuestions }),
      fs.readFileSync(scenesFile, 'utf8'), scenesFile,
    );
    let done = 0;
    const result = await evaluateShapes(items, async (item) => {
      const out = await vlm.generate(
        { messages: [{ role: 'user', content: [{ type: 'image', image: item.image }, { type: 'text', text: item.prompt }] }] },
        { maxNewTokens: opts.maxNewTokens ?? 48, doSample: false },
      );
      opts.onItem?.(item, out.text);
      opts.onProgress?.(++done, items.length);
      return out.text;
    });
    return { ...result, seconds: (performance.now() - t0) / 1000 };
  } finally {
    if (typeof model === 'string') vlm.dispose();
    if (!opts.dataDir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const evalCommand: Command = {
  name: 'demo:eval',
  summary: 'score a model on freshly generated shapes data (caption and question exact match)',
  usage: `Usage: npm run demo:eval -- --model DIR [--n-images 200] [--n-questions 500] [--seed 1] [--size ${DEFAULT_IMAGE_SIZE}] [--data-dir DIR] [--dtype auto|q8|q4] [--group-size 64] [--json]

Generates a new shapes dataset with --seed (use one that training did not use; the demo model was
trained on seed 0), asks the model for each image's caption and for --n-questions questions, decoding
greedily, and prints the share of exactly right captions and answers: overall, per question type, and
per question type and number of shapes in the image (with one shape, most questions can be answered
without finding the shape the question names).
--data-dir keeps the generated data there instead of a temporary folder; --dtype q8|q4 quantizes the
model while loading (as tfvlm generate); --json prints the result with every mistake.`,
  options: {
    model: { type: 'string' },
    'n-images': { type: 'string' },
    'n-questions': { type: 'string' },
    seed: { type: 'string' },
    size: { type: 'string' },
    'data-dir': { type: 'string' },
    dtype: { type: 'string' },
    'group-size': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args) {
    const model = requireString(args, 'model', 'demo:eval');
    const count = (name: string, fallback: number) => {
      const v = optionalNumber(args, name, 'demo:eval') ?? fallback;
      if (!Number.isInteger(v) || v < 0) throw new TfvlmError(`tfvlm demo:eval: --${name} must be a whole number ≥ 0, got ${v}`);
      return v;
    };
    const nImages = count('n-images', 200);
    const nQuestions = count('n-questions', 500);
    if (nImages === 0) throw new TfvlmError('tfvlm demo:eval: --n-images must be at least 1');
    const tty = process.stderr.isTTY;
    const vlm = await Vlm.load(model, dtypeOptions(args, 'demo:eval'));
    let result: Awaited<ReturnType<typeof evaluateShapesModel>>;
    try {
      result = await evaluateShapesModel(vlm, {
        nImages, nQuestions, seed: count('seed', 1), size: optionalNumber(args, 'size', 'demo:eval'),
        dataDir: typeof args.values['data-dir'] === 'string' ? args.values['data-dir'] : undefined,
        onProgress: (done, total) => {
          if (tty) process.stderr.write(`\r${done}/${total}`);
          else if (done % 100 === 0 || done === total) process.stderr.write(`${done}/${total}\n`);
        },
      });
    } finally {
      vlm.dispose();
    }
    if (tty) process.stderr.write('\n');
    if (args.values.json === true) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      process.stdout.write(`${formatShapesEval(result)}\n`);
      process.stderr.write(`(${result.seconds.toFixed(1)} s)\n`);
    }
    return 0;
  },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runCommand(evalCommand, process.argv.slice(2));
}
