// Writes a random checkpoint with exactly the keys, shapes, dtype and sharding of a config: any
// architecture tfvlm loads (Idefics3/SmolVLM, SmolVLM2, LLaVA, LlamaForCausalLM).
//   tsx bench/make-random-checkpoint.ts --preset NAME --out DIR        a published model (below)
//   tsx bench/make-random-checkpoint.ts --config CONFIG.json --out DIR [--dtype f32|bf16|f16] [--shard-gb G]
// Common: [--seed S]. With --config, tokenizer/processor files found next to CONFIG.json are copied.
// The folder is written as DIR.partial-PID and renamed to DIR when complete. Never commit the output.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeRandomCheckpoint, type RandomDType } from '../src/models/random-weights.ts';
import { CONFIG_COMPANIONS, PUBLISHED_MODELS, publishedModel } from './lib/published-models.ts';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt'];
const USAGE = 'usage: tsx bench/make-random-checkpoint.ts (--preset NAME | --config CONFIG.json [--dtype f32|bf16|f16] [--shard-gb G]) --out DIR [--seed S]\n'
  + `presets: ${PUBLISHED_MODELS.map((m) => `${m.name} (${m.repo}, ${m.dtype.toLowerCase()}${m.maxShardBytes ? `, shards ≤ ${m.maxShardBytes / 1e9} GB` : ''})`).join('; ')}`;

const { values } = parseArgs({
  options: {
    preset: { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string' },
    'shard-gb': { type: 'string' },
    seed: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.out || (values.preset === undefined) === (values.config === undefined)) {
  console.error(USAGE);
  process.exit(2);
}
const preset = values.preset === undefined ? undefined : publishedModel(values.preset);
const configFile = preset ? path.join(preset.configDir, 'config.json') : values.config!;
const dtype = (values.dtype?.toUpperCase() ?? preset?.dtype ?? 'BF16') as RandomDType;
if (!['F32', 'BF16', 'F16'].includes(dtype)) {
  console.error(`--dtype must be f32, bf16 or f16, got ${values.dtype}`);
  process.exit(2);
}
const maxShardBytes = values['shard-gb'] !== undefined ? Number(values['shard-gb']) * 1e9 : preset?.maxShardBytes;
if (maxShardBytes !== undefined && !(maxShardBytes > 0)) {
  console.error(`--shard-gb must be a positive number, got ${values['shard-gb']}`);
  process.exit(2);
}

const t0 = performance.now();
const out = path.resolve(values.out);
const partial = `${out}.partial-${process.pid}`;
fs.rmSync(partial, { recursive: true, force: true });
const raw = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
const written = writeRandomCheckpoint(raw, partial, {
  seed: Number(values.seed), dtype, maxShardBytes,
  onFile: (file, i, n) => console.error(`  ${path.basename(file)} (${i + 1}/${n}) ${((performance.now() - t0) / 1000).toFixed(0)} s`),
});
const from = path.dirname(configFile);
const companions = (preset ? CONFIG_COMPANIONS : [...CONFIG_COMPANIONS, ...TOKENIZER_FILES])
  .filter((f) => fs.existsSync(path.join(from, f)));
for (const f of companions) fs.copyFileSync(path.join(from, f), path.join(partial, f));
preset?.writeTokenizer(partial);
fs.rmSync(out, { recursive: true, force: true });
fs.renameSync(partial, out);
console.log(
  `wrote ${out}: ${written.keys} tensors, ${(written.parameters / 1e6).toFixed(1)}M parameters, ${dtype}, ` +
  `${(written.bytes / 1e9).toFixed(2)} GB in ${written.files.length} file(s), ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
