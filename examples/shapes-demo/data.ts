// `npm run demo:data -- --n N --out DIR`: writes a synthetic shapes dataset (what `tfvlm data shapes`
// did before the shapes demo left the library).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TfvlmError } from '../../src/errors.ts';
import { optionalNumber, requireString, runCommand, type Command } from '../../src/cli/command.ts';
import {
  DATA_FILE, DEFAULT_IMAGE_SIZE, DEFAULT_QUESTIONS_PER_CONVERSATION, DEFAULT_QUESTIONS_PER_IMAGE, IMAGES_DIR, SCENES_FILE, writeShapesDataset,
} from './dataset.ts';

export const dataCommand: Command = {
  name: 'demo:data',
  summary: 'generate the synthetic shapes dataset (coloured shapes with captions and questions)',
  usage: `Usage: npm run demo:data -- --n N --out DIR [--seed S] [--size 96] [--questions-per-image 3]
                              [--questions-per-conversation 1] [--force]

Draws N images of 1–3 shapes (circle, square, triangle; red, green, blue, yellow) on white, each in
its own cell of a 3×3 grid, and writes:
  DIR/${IMAGES_DIR}/000000.png …  the images (RGB PNG, --size × --size pixels)
  DIR/${DATA_FILE}            conversations in the chat message format, one per line: per image
                            its caption ("Describe the image." → "a red circle at the top left.")
                            then --questions-per-image questions (count, color, shape, exists,
                            where), asked in conversations of up to --questions-per-conversation
                            user/assistant turns (the image comes with the first). Image paths are
                            relative to DIR. Each line also carries "kind" (caption|qa) and
                            "task" (caption, the question type, or mixed for several questions).
  DIR/${SCENES_FILE}          the scene of each image (shapes, cells, pixel boxes) and its caption

Defaults: --seed 0, --size ${DEFAULT_IMAGE_SIZE}, --questions-per-image ${DEFAULT_QUESTIONS_PER_IMAGE},
--questions-per-conversation ${DEFAULT_QUESTIONS_PER_CONVERSATION}. The same seed gives
byte-identical output; use different seeds for train and eval (e.g. train 0, eval 1).
--force replaces a dataset already in DIR.`,
  options: {
    n: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    size: { type: 'string' },
    'questions-per-image': { type: 'string' },
    'questions-per-conversation': { type: 'string' },
    force: { type: 'boolean' },
  },
  async run(args) {
    const n = optionalNumber(args, 'n', 'demo:data');
    if (n === undefined) throw new TfvlmError('tfvlm demo:data: --n is required');
    const out = requireString(args, 'out', 'demo:data');
    const counts = await writeShapesDataset(
      out,
      {
        n,
        seed: optionalNumber(args, 'seed', 'demo:data') ?? 0,
        size: optionalNumber(args, 'size', 'demo:data') ?? DEFAULT_IMAGE_SIZE,
        questionsPerImage: optionalNumber(args, 'questions-per-image', 'demo:data') ?? DEFAULT_QUESTIONS_PER_IMAGE,
        questionsPerConversation: optionalNumber(args, 'questions-per-conversation', 'demo:data') ?? DEFAULT_QUESTIONS_PER_CONVERSATION,
      },
      { force: args.values.force === true },
    );
    const tasks = Object.entries(counts.byTask).map(([t, c]) => `${t} ${c}`).join(', ');
    process.stdout.write(
      `wrote ${counts.images} images and ${counts.conversations} conversations to ${path.resolve(out)}\n` +
        `  captions   ${counts.captions}\n` +
        `  questions  ${counts.questions} (${tasks}; exists: yes ${counts.yes}, no ${counts.no})\n`,
    );
    return 0;
  },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runCommand(dataCommand, process.argv.slice(2));
}
