// `tfvlm batch` throughput on the shipped demo model: N fresh shapes pictures (96×96, drawn by the
// shapes-demo generator) captioned through runBatch + VlmBatcher at several --max-batch values, in one
// process with one model load; images/min, generated tok/s, and each run's captions checked against the
// scenes' true captions and against the --max-batch 1 run (greedy: they must be identical).
//   npx tsx bench/batch-throughput.ts [--images 200] [--max-batch 1,8,16] [--model DIR] [--seed 2027] [--json]
// Prints a markdown table, then one JSON line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { backendInfo, initBackend } from '../src/backend/index.ts';
import { DEMO_MODEL_DIR, Vlm } from '../src/engine.ts';
import { VlmBatcher } from '../src/vlm-batcher.ts';
import { openInput } from '../src/batch/input.ts';
import { planBatch } from '../src/batch/plan.ts';
import { ResultsWriter } from '../src/batch/results-file.ts';
import { runBatch } from '../src/batch/run-batch.ts';
import { shapesExamples, imageName } from '../examples/shapes-demo/dataset.ts';
import { sceneToPng } from '../examples/shapes-demo/draw.ts';
import { CAPTION_PROMPT } from '../examples/shapes-demo/text.ts';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '200' },
    'max-batch': { type: 'string', default: '1,8,16' },
    model: { type: 'string', default: DEMO_MODEL_DIR },
    seed: { type: 'string', default: '2027' },
    json: { type: 'boolean', default: false },
  },
});
const n = Number(values.images);
const seed = Number(values.seed);
const batches = values['max-batch']!.split(',').map(Number);
if (!Number.isSafeInteger(n) || n < 1 || batches.some((b) => !Number.isSafeInteger(b) || b < 1)) {
  console.error('--images and --max-batch take whole numbers ≥ 1');
  process.exit(2);
}
const log = (line: string) => console.error(line);

// The pictures and the JSONL naming them, made once per (n, seed) in the OS temp dir.
const dir = path.join(os.tmpdir(), `tfvlm-bench-batch-${n}-${seed}`);
const input = path.join(dir, 'items.jsonl');
const truth = new Map<string, string>();
const lines: string[] = [];
for (const ex of shapesExamples({ n, seed, size: 96, questionsPerImage: 0 })) {
  const id = path.basename(ex.scene.image, '.png');
  truth.set(id, ex.caption);
  lines.push(JSON.stringify({ id, image: ex.scene.image, prompt: CAPTION_PROMPT }));
  const file = path.join(dir, ex.scene.image);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, await sceneToPng(ex.scene));
  }
}
fs.writeFileSync(input, `${lines.join('\n')}\n`);
log(`${n} pictures in ${path.dirname(path.join(dir, imageName(0, n)))}`);

await initBackend();
const vlm = await Vlm.load(values.model!);
const generation = { doSample: false };
// Warm-up: the first request pays one-time costs (kernel set-up, first-use packing).
await vlm.generate({ messages: [{ role: 'user', content: [{ type: 'image', image: path.join(dir, imageName(0, n)) }, { type: 'text', text: CAPTION_PROMPT }] }] }, generation);

interface Row {
  max_batch: number;
  images: number;
  seconds: number;
  images_per_min: number;
  generated_tokens: number;
  tok_s: number;
  exact_captions: number;
  same_as_first: number | null;
  errors: number;
  /** Summed over items: vision + prefill (one at a time, whatever the batch), and decode steps run. */
  vision_prefill_s: number;
  decode_steps: number;
  rows_per_step: number;
}
const rows: Row[] = [];
let first: Map<string, string> | undefined;
for (const maxBatch of batches) {
  const output = path.join(dir, `out-${maxBatch}.jsonl`);
  fs.rmSync(output, { force: true });
  const plan = await planBatch({ input: openInput(input), output });
  const batcher = new VlmBatcher(vlm, { maxBatch, maxQueue: maxBatch + 2 });
  const writer = ResultsWriter.open(output);
  log(`--max-batch ${maxBatch} …`);
  const t0 = performance.now();
  const summary = await runBatch(batcher, plan.items(), (line) => writer.append(line), { generation, maxInFlight: maxBatch + 2 });
  const seconds = (performance.now() - t0) / 1000;
  writer.close();
  await batcher.close();
  const texts = new Map<string, string>();
  let tokens = 0;
  let visionPrefillMs = 0;
  for (const l of fs.readFileSync(output, 'utf8').split('\n').filter(Boolean)) {
    const line = JSON.parse(l) as { id: string; text?: string; generated_tokens?: number; timings?: { embed_ms: number; prefill_ms: number } };
    if (line.text !== undefined) texts.set(line.id, line.text);
    tokens += line.generated_tokens ?? 0;
    visionPrefillMs += (line.timings?.embed_ms ?? 0) + (line.timings?.prefill_ms ?? 0);
  }
  const { steps, rows: stepRows } = batcher.stats;
  const exact = [...texts].filter(([id, text]) => truth.get(id) === text).length;
  rows.push({
    max_batch: maxBatch, images: summary.written, seconds, images_per_min: (summary.written * 60) / seconds, generated_tokens: tokens,
    tok_s: tokens / seconds, exact_captions: exact, same_as_first: first ? [...texts].filter(([id, text]) => first!.get(id) === text).length : null,
    errors: summary.failed, vision_prefill_s: visionPrefillMs / 1000, decode_steps: steps, rows_per_step: steps ? stepRows / steps : 0,
  });
  first ??= texts;
  log(`  ${summary.written} images in ${seconds.toFixed(1)} s`);
}
vlm.dispose();

const info = await backendInfo();
const base = rows[0]!;
if (!values.json) {
  console.log(`tfvlm batch, ${n} demo-model pictures (96×96, shapes-demo seed ${seed}, "${CAPTION_PROMPT}", greedy), ${info.backend}, ${info.threads} thread(s), ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}`);
  console.log('| --max-batch | images | time | images/min | speed-up | generated tok/s | decode steps (rows/step) | vision + prefill | exact captions | same text as --max-batch ' + base.max_batch + ' |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.max_batch} | ${r.images} | ${r.seconds.toFixed(1)} s | ${r.images_per_min.toFixed(0)} | ${(r.images_per_min / base.images_per_min).toFixed(2)}× | ${r.tok_s.toFixed(0)} | ` +
      `${r.decode_steps} (${r.rows_per_step.toFixed(1)}) | ${r.vision_prefill_s.toFixed(1)} s | ${r.exact_captions}/${r.images} | ${r.same_as_first === null ? '—' : `${r.same_as_first}/${r.images}`} |`);
  }
}
console.log(JSON.stringify({ bench: 'batch-throughput', images: n, seed, model: values.model, backend: info.backend, threads: info.threads, rows }));
