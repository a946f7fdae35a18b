// Writes a random Idefics3/SmolVLM checkpoint for a config:
//   tsx bench/make-random-checkpoint.ts --config CONFIG.json --out DIR [--dtype f32|bf16|f16] [--seed S]
// DIR gets config.json + model.safetensors (every key/shape Idefics3ForConditionalGeneration has),
// plus any tokenizer/processor files found next to CONFIG.json.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeRandomIdefics3Checkpoint, type RandomDType } from '../src/models/random-weights.ts';

const COMPANIONS = [
  'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'vocab.json', 'merges.txt', 'chat_template.json', 'preprocessor_config.json', 'processor_config.json',
];

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string', default: 'bf16' },
    seed: { type: 'string', default: '0' },
  },
});
if (!values.config || !values.out) {
  console.error('usage: tsx bench/make-random-checkpoint.ts --config CONFIG.json --out DIR [--dtype f32|bf16|f16] [--seed S]');
  process.exit(2);
}
const dtype = values.dtype!.toUpperCase() as RandomDType;
if (!['F32', 'BF16', 'F16'].includes(dtype)) {
  console.error(`--dtype must be f32, bf16 or f16, got ${values.dtype}`);
  process.exit(2);
}
const t0 = performance.now();
const raw = JSON.parse(fs.readFileSync(values.config, 'utf8'));
const { keys, parameters } = writeRandomIdefics3Checkpoint(raw, values.out, { seed: Number(values.seed), dtype });
const from = path.dirname(values.config);
const copied = COMPANIONS.filter((f) => fs.existsSync(path.join(from, f)));
for (const f of copied) fs.copyFileSync(path.join(from, f), path.join(values.out, f));
const bytes = fs.statSync(path.join(values.out, 'model.safetensors')).size;
console.log(
  `wrote ${values.out}: ${keys} tensors, ${(parameters / 1e6).toFixed(1)}M parameters, ${dtype}, ` +
  `${(bytes / 2 ** 20).toFixed(0)} MiB, ${copied.length} companion files, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
