// Where does a shapes model look when a question names one of several shapes? Prints, per text
// layer and head, the first answer position's attention on the named shape, on each other shape,
// on the empty cells and on the text (lookup-attention.ts).
// Usage: npm run demo:lookup-attention -- [MODEL_DIR] [--questions N] [--seed S]
// (default: the shipped demo model, 60 questions per type, seed 3).
import { parseArgs } from 'node:util';
import { initBackend } from '../../src/backend/index.ts';
import { DEMO_MODEL_DIR } from '../../src/engine.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { LOOKUP_QUESTION_TYPES, formatLookupAttention, lookupAttention } from './lookup-attention.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { questions: { type: 'string' }, seed: { type: 'string' } } });
const positive = (name: string, raw: string | undefined, fallback: number, min: number) => {
  const v = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}, got '${raw}'`);
  return v;
};
const questions = positive('questions', values.questions, 60, 1);
const seed = positive('seed', values.seed, 3, 0);
const dir = positionals[0] ?? DEMO_MODEL_DIR;
await initBackend();
const model = await Idefics3Model.load(dir);
const processor = await VlmProcessor.load(dir);
try {
  for (const type of LOOKUP_QUESTION_TYPES) {
    console.log(formatLookupAttention(await lookupAttention(model, processor, type, { questions, seed })));
    console.log();
  }
} finally {
  model.dispose();
}
