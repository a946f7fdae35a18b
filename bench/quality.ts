// Quantization quality: how far q8 and q4 (MLX affine, groups of 64, quantized while loading) move a
// model's next-token distributions from the unquantized model (dtype 'auto': the weights as stored).
//   npx tsx bench/quality.ts [--quick] [--out FILE]
// Per model: one image prompt (splitting off); the full model greedily generates 64 tokens S with
// EOS ignored; then one teacher-forced forward over prompt + S[0..62] per dtype, and at the 64
// positions that predict S: greedy agreement with the full model, KL(P_full ‖ P_quant) in nats
// (float64 log-softmax, as llama.cpp's --kl-divergence: mean, p99, max) and max |Δlogit| over every
// position and vocabulary entry. For the demo model also the shapes eval (accuracy, and the share of
// items answered exactly as the full model answers them). Prints a markdown table and one JSON line,
// and writes bench/results/quality-<timestamp>.json (or --out).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tf, initBackend, backendInfo } from '../src/backend/index.ts';
import { Vlm } from '../src/engine.ts';
import { generateTokens, type TokenLoopResult } from '../src/generation/generate.ts';
import { GREEDY } from '../src/generation/sampler.ts';
import { DecoderModel } from '../src/models/decoder-model.ts';
import type { LoadDType } from '../src/models/load-options.ts';
import { loadModel } from '../src/models/registry.ts';
import { VlmProcessor, type ProcessedInputs } from '../src/processing/processor.ts';
import { evaluateShapesModel } from '../examples/shapes-demo/eval.ts';
import { CAPTION_PROMPT } from '../examples/shapes-demo/text.ts';
import { fixture, image } from '../test/helpers/paths.ts';
import { ensurePublishedCheckpoint } from './lib/published-models.ts';
import { agreementCount, argmax, compareLogits, sameAnswers, type LogitComparison } from './lib/quality-metrics.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } } });
const quick = values.quick ?? false;

const NEW_TOKENS = 64;
const GROUP_SIZE = 64;
const QUANTIZED: LoadDType[] = ['q8', 'q4'];
const DEMO_EVAL = quick ? { nImages: 40, nQuestions: 100, seed: 1 } : { nImages: 200, nQuestions: 500, seed: 1 };

interface ModelSpec {
  name: string;
  dir: () => string;
  image: string;
  prompt: string;
  demoEval?: boolean;
}

const MODELS: ModelSpec[] = [
  { name: 'tiny-smolvlm', dir: () => fixture('tiny-smolvlm'), image: image('astronaut.png'), prompt: 'Describe this image.' },
  { name: 'tiny-smolvlm2', dir: () => fixture('tiny-smolvlm2'), image: image('astronaut.png'), prompt: 'Describe this image.' },
  { name: 'tiny-llava', dir: () => fixture('tiny-llava'), image: image('astronaut.png'), prompt: 'Describe this image.' },
  {
    name: 'smolvlm-256m random (bf16)', dir: () => ensurePublishedCheckpoint('smolvlm-256m-instruct'),
    image: image('astronaut.png'), prompt: 'Describe this image.',
  },
  {
    name: 'tfvlm-demo', dir: () => path.join(ROOT, 'weights/tfvlm-demo'),
    image: path.join(ROOT, 'examples/assets/shapes.png'), prompt: CAPTION_PROMPT, demoEval: true,
  },
];

interface QualityRow extends Omit<LogitComparison, 'kl' | 'full_argmax' | 'quant_argmax'> {
  model: string;
  dtype: LoadDType;
  group_size: number;
  kl: number[];
  load_ms: number;
  forward_ms: number;
}

interface ModelResult {
  model: string;
  dir: string;
  vocab: number;
  prompt_tokens: number;
  generated: number[];
  generated_text: string;
  generate_ms: number;
  /** Teacher-forced argmax of the full model itself vs S (the cached decode path vs one forward). */
  full_self_agree: number;
  rows: QualityRow[];
  /** Live tfjs tensors before the model's first load and after each run's dispose. */
  num_tensors: { before: number; after: Record<string, number> };
  seconds: number;
}

interface DemoEvalRow {
  dtype: LoadDType;
  caption_acc: number;
  question_acc: number;
  captions: { exact: number; total: number };
  questions: { exact: number; total: number };
  /** Items (captions and questions) answered exactly as the full model answers them. */
  same_as_full: { same: number; total: number; fraction: number } | null;
  seconds: number;
}

const warnings: string[] = [];

function checkTensors(model: string, label: string, before: number): number {
  const now = tf.memory().numTensors;
  if (now > before) {
    const w = `${model}: ${now - before} tfjs tensors more after ${label} than before the first load (${before} → ${now})`;
    warnings.push(w);
    console.error(`WARNING ${w}`);
  }
  return now;
}

function asDecoderModel(m: unknown, dir: string): DecoderModel {
  if (!(m instanceof DecoderModel)) throw new Error(`${dir}: not an image-text model`);
  return m;
}

async function drain(gen: AsyncGenerator<unknown, TokenLoopResult>): Promise<TokenLoopResult> {
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
  }
}

/**
 * One forward over prompt + generated[0 .. n−2]; the logits of the n positions that predict
 * generated[0 .. n−1], [n, vocab] row-major.
 */
function teacherForcedLogits(model: DecoderModel, inputs: ProcessedInputs, generated: number[]): { logits: Float32Array; vocab: number; ms: number } {
  const t0 = performance.now();
  const [prompt] = inputs.input_ids;
  if (!prompt) throw new Error('teacher forcing: the inputs hold no prompt row');
  const ids = [...prompt, ...generated.slice(0, -1)];
  const n = generated.length;
  const out = tf.tidy(() => {
    const pixels = inputs.pixel_values && inputs.pixelShape ? tf.tensor(inputs.pixel_values, inputs.pixelShape, 'float32') : undefined;
    const pixelMask = pixels && inputs.pixel_attention_mask && inputs.pixelShape
      ? tf.tensor(inputs.pixel_attention_mask, [...inputs.pixelShape.slice(0, 2), ...inputs.pixelShape.slice(3)], 'bool') // [B, tiles, H, W]
      : undefined;
    const { logits } = model.forward({
      input_ids: tf.tensor2d(ids, [1, ids.length], 'int32'),
      ...(pixels ? { pixel_values: pixels } : {}),
      ...(pixelMask ? { pixel_attention_mask: pixelMask } : {}),
    });
    const vocab = logits.shape[2]!;
    return tf.slice(logits, [0, prompt.length - 1, 0], [1, n, vocab]);
  });
  try {
    const vocab = out.shape[2]!;
    return { logits: out.dataSync() as Float32Array, vocab, ms: performance.now() - t0 };
  } finally {
    out.dispose();
  }
}

async function measureModel(spec: ModelSpec): Promise<ModelResult> {
  const t0 = performance.now();
  const dir = spec.dir();
  const before = tf.memory().numTensors;
  const after: Record<string, number> = {};
  const processor = await VlmProcessor.load(dir);
  const inputs = await processor.fromMessages(
    [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: spec.prompt }] }],
    { images: [[spec.image]], imageSplitting: false },
  );
  const [prompt] = inputs.input_ids;
  if (!prompt || inputs.input_ids.length !== 1) throw new Error(`${spec.name}: expected one prompt row`);

  // The full-precision model: S, then its own teacher-forced logits.
  let tLoad = performance.now();
  const full = asDecoderModel(await loadModel(dir, { dtype: 'auto' }), dir);
  const fullLoadMs = performance.now() - tLoad;
  let generated: number[];
  let generateMs: number;
  let reference: { logits: Float32Array; vocab: number; ms: number };
  try {
    const tGen = performance.now();
    const res = await drain(generateTokens(full, inputs, { ...GREEDY, seed: 0, maxNewTokens: NEW_TOKENS, eosTokenIds: [] }));
    generateMs = performance.now() - tGen;
    const [row] = res.generated;
    if (!row) throw new Error(`${spec.name}: generation returned no rows (${res.stopReason})`);
    generated = row;
    if (generated.length !== NEW_TOKENS) throw new Error(`${spec.name}: generated ${generated.length} tokens, not ${NEW_TOKENS} (${res.stopReason})`);
    reference = teacherForcedLogits(full, inputs, generated);
  } finally {
    full.dispose();
  }
  after.auto = checkTensors(spec.name, 'the full model', before);
  const { vocab } = reference;
  const selfArgmax = Array.from({ length: NEW_TOKENS }, (_, p) => argmax(reference.logits, p * vocab, vocab));
  const rows: QualityRow[] = [];
  const self = compareLogits(reference.logits, reference.logits, vocab);
  rows.push({
    model: spec.name, dtype: 'auto', group_size: 0, ...pickSummary(self), load_ms: fullLoadMs, forward_ms: reference.ms,
  });

  for (const dtype of QUANTIZED) {
    tLoad = performance.now();
    const q = asDecoderModel(await loadModel(dir, { dtype, groupSize: GROUP_SIZE }), dir);
    const loadMs = performance.now() - tLoad;
    let cand: { logits: Float32Array; vocab: number; ms: number };
    try {
      cand = teacherForcedLogits(q, inputs, generated);
    } finally {
      q.dispose();
    }
    after[dtype] = checkTensors(spec.name, dtype, before);
    const c = compareLogits(reference.logits, cand.logits, vocab);
    rows.push({ model: spec.name, dtype, group_size: GROUP_SIZE, ...pickSummary(c), load_ms: loadMs, forward_ms: cand.ms });
  }
  return {
    model: spec.name,
    dir,
    vocab,
    prompt_tokens: prompt.length,
    generated,
    generated_text: processor.tokenizer.decode(generated, { skipSpecialTokens: false }),
    generate_ms: generateMs,
    full_self_agree: agreementCount(selfArgmax, generated),
    rows,
    num_tensors: { before, after },
    seconds: (performance.now() - t0) / 1000,
  };
}

function pickSummary(c: LogitComparison): Omit<LogitComparison, 'full_argmax' | 'quant_argmax'> {
  const { full_argmax: _f, quant_argmax: _q, ...rest } = c;
  return rest;
}

async function demoEval(dir: string): Promise<{ rows: DemoEvalRow[]; num_tensors: { before: number; after: Record<string, number> } }> {
  const before = tf.memory().numTensors;
  const after: Record<string, number> = {};
  const answers = new Map<LoadDType, string[]>();
  const rows: DemoEvalRow[] = [];
  for (const dtype of ['auto', ...QUANTIZED] as LoadDType[]) {
    const t0 = performance.now();
    const vlm = await Vlm.load(dir, dtype === 'auto' ? { dtype } : { dtype, groupSize: GROUP_SIZE });
    const predicted: string[] = [];
    let r;
    try {
      r = await evaluateShapesModel(vlm, { ...DEMO_EVAL, onItem: (_item, p) => predicted.push(p) });
    } finally {
      vlm.dispose();
    }
    after[dtype] = checkTensors('tfvlm-demo eval', dtype, before);
    answers.set(dtype, predicted);
    const ref = answers.get('auto')!;
    rows.push({
      dtype,
      caption_acc: r.captions.accuracy,
      question_acc: r.questions.accuracy,
      captions: { exact: r.captions.exact, total: r.captions.total },
      questions: { exact: r.questions.exact, total: r.questions.total },
      same_as_full: dtype === 'auto' ? null : sameAnswers(ref, predicted),
      seconds: (performance.now() - t0) / 1000,
    });
    console.error(`demo eval ${dtype}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { rows, num_tensors: { before, after } };
}

function fmt(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 0.01 && a < 1000 ? x.toFixed(a >= 10 ? 2 : 4) : x.toExponential(2);
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function main(): Promise<void> {
  const tStart = performance.now();
  await initBackend();
  const info = await backendInfo();
  const models: ModelResult[] = [];
  let demo: Awaited<ReturnType<typeof demoEval>> | null = null;
  for (const spec of MODELS) {
    console.error(`${spec.name} …`);
    const r = await measureModel(spec);
    console.error(`${spec.name}: ${r.seconds.toFixed(1)} s`);
    models.push(r);
    if (spec.demoEval) demo = await demoEval(r.dir);
  }
  const durationS = (performance.now() - tStart) / 1000;

  console.log(`tfjs backend ${info.backend}, ${info.threads} threads; q8/q4 = MLX affine, group size ${GROUP_SIZE}, quantized at load; reference = dtype 'auto' (weights as stored)`);
  console.log(`${NEW_TOKENS} greedy tokens from the full model (EOS ignored), then teacher forcing; KL(P_full ‖ P_quant) in nats${quick ? '; --quick' : ''}\n`);
  console.log('| model | dtype | agreement (64 steps) | mean KL | p99 KL | max KL | max \\|Δlogit\\| |\n|---|---|---|---|---|---|---|');
  for (const m of models) {
    for (const r of m.rows.filter((row) => row.dtype !== 'auto')) {
      console.log(`| ${m.model} | ${r.dtype} | ${r.agree}/${r.positions} | ${fmt(r.mean_kl)} | ${fmt(r.p99_kl)} | ${fmt(r.max_kl)} | ${fmt(r.max_abs_dlogit)} |`);
    }
  }
  for (const w of warnings) console.log(`| WARNING | ${w} | | | | | |`);
  console.log('\nfull model, teacher-forced argmax vs its own greedy tokens: ' +
    models.map((m) => `${m.model} ${m.full_self_agree}/${NEW_TOKENS}`).join(', '));
  if (demo) {
    console.log(`\ntfvlm-demo shapes eval (seed ${DEMO_EVAL.seed}, ${DEMO_EVAL.nImages} captions, ${DEMO_EVAL.nQuestions} questions, greedy)\n`);
    console.log('| dtype | caption acc | question acc | same answer as full |\n|---|---|---|---|');
    for (const r of demo.rows) {
      console.log(`| ${r.dtype} | ${pct(r.caption_acc)} (${r.captions.exact}/${r.captions.total}) | ${pct(r.question_acc)} (${r.questions.exact}/${r.questions.total}) | ${r.same_as_full ? `${pct(r.same_as_full.fraction)} (${r.same_as_full.same}/${r.same_as_full.total})` : '—'} |`);
    }
  }
  console.log(`\n(${durationS.toFixed(0)} s)`);
  const result = {
    bench: 'quality',
    timestamp: new Date().toISOString(),
    quick,
    duration_s: durationS,
    backend: info.backend,
    threads: info.threads,
    machine: { cpu: os.cpus()[0]?.model ?? '', cores: os.cpus().length, load_avg: os.loadavg() },
    new_tokens: NEW_TOKENS,
    group_size: GROUP_SIZE,
    models,
    demo_eval: demo ? { ...DEMO_EVAL, ...demo } : null,
    warnings,
  };
  const json = JSON.stringify(result);
  console.log(json);
  const out = values.out ?? path.join(ROOT, 'bench/results', `quality-${result.timestamp.replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.error(`wrote ${path.relative(process.cwd(), out)}`);
}

await main();
