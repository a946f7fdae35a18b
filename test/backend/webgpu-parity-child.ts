// Child process for webgpu.test.ts: runs tiny fixture models on the backend the environment names
// (TFVLM_BACKEND=webgpu) against their transformers goldens, as the wasm parity tests do
// (test/models/*-parity.test.ts, clip-model, siglip-model, test/generation/golden-generate), and
// prints one JSON line per model: max |Δ| and its bound per compared tensor, the greedy ids, tensor
// counts. One process for all models: they share compiled shaders (SwiftShader compiles slowly).
// Usage: webgpu-parity-child.ts FOLDER[:forward] … (`:forward`: no generation).
// Results are read with tensor.data(): webgpu cannot read synchronously in Node.
import fs from 'node:fs';
import { activeBackend, initBackend, tf } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { Capture } from '../../src/models/capture.ts';
import { CLIPModel } from '../../src/models/clip/model.ts';
import type { GenerativeModel } from '../../src/models/decoder-model.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { LlavaModel } from '../../src/models/llava/model.ts';
import { SiglipModel } from '../../src/models/siglip/model.ts';
import { generateTokens, type PromptBatch } from '../../src/generation/generate.ts';
import { GREEDY } from '../../src/generation/sampler.ts';
import { diff, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

/** One compared tensor: max |Δ| against the bound TOLERANCE.float32 gives it. */
export interface Compared {
  what: string;
  maxAbs: number;
  bound: number;
}

export interface Generated {
  case: string;
  expected: number[];
  got: number[];
}

export interface ParityReport {
  ok: boolean;
  backend?: string;
  fixture: string;
  compared: Compared[];
  generated: Generated[];
  /** tf.memory().numTensors before and after the last generation (with the model loaded). */
  tensorsBefore?: number;
  tensorsAfter?: number;
  ms: number;
  message?: string;
}

interface Case {
  name: string;
  batch?: number;
  tensors: Record<string, number[]>;
  generate?: { max_new_tokens: number; new_token_ids: number[] | number[][] };
}

let folder = '';
let GOLDEN = '';
let compared: Compared[] = [];
let generated: Generated[] = [];

function compare(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  const d = diff(actual, expected);
  const { abs, rel } = TOLERANCE.float32;
  compared.push({ what, maxAbs: d.maxAbs, bound: abs + rel * d.maxRef });
}

function open<T>(file: string, fn: (f: SafetensorsFile) => T): T {
  const f = SafetensorsFile.open(file);
  try {
    return fn(f);
  } finally {
    f.close();
  }
}

const golden = (name: string, key: string) => open(`${GOLDEN}/${name}.safetensors`, (f) => f.readArray(key) as Float32Array);

/** Values where the [B, T] mask is 1 (padding positions are not meaningful), as idefics3-parity does. */
function atMask(values: ArrayLike<number>, mask: ArrayLike<number>, B: number, T: number): Float32Array {
  const width = values.length / (B * T);
  const keep: number[] = [];
  for (let i = 0; i < B * T; i++) if (mask[i]) for (let j = 0; j < width; j++) keep.push(values[i * width + j]!);
  return Float32Array.from(keep);
}

/** Every golden intermediate and the logits of every case, from the golden model inputs. */
async function forwardParity(model: Idefics3Model | LlavaModel, cases: Case[]): Promise<void> {
  for (const c of cases) {
    const inputs = open(`${GOLDEN}/${c.name}.inputs.safetensors`, (f) =>
      Object.fromEntries(['input_ids', 'attention_mask', 'pixel_values', 'pixel_attention_mask'].filter((k) => f.has(k)).map((k) => [k, f.readTensor(k)])));
    const names = Object.keys(c.tensors).filter((n) => !n.startsWith('generate') && n !== 'pixel_values' && n !== 'pixel_attention_mask');
    const capture = new Capture(names.filter((n) => n !== 'logits'));
    const { logits } = model.forward(inputs as never, { capture });
    const [B, T] = inputs.input_ids!.shape as [number, number];
    const mask = await inputs.attention_mask!.data();
    const padded = Array.from(mask).some((m) => m === 0);
    for (const name of names) {
      const t = name === 'logits' ? logits : capture.get(name);
      if (!t) throw new Error(`${c.name}: nothing captured for ${name}`);
      let actual: ArrayLike<number> = await t.data();
      let expected: ArrayLike<number> = golden(c.name, name);
      if (padded && (name === 'logits' || name.startsWith('text.'))) {
        actual = atMask(actual, mask, B, T);
        expected = atMask(expected, mask, B, T);
      }
      compare(`${c.name} ${name}`, actual, expected);
    }
    logits.dispose();
    capture.dispose();
    tf.dispose(Object.values(inputs));
  }
}

function promptOf(name: string): PromptBatch {
  return open(`${GOLDEN}/${name}.inputs.safetensors`, (f) => {
    const [B, T] = f.entry('input_ids').shape as [number, number];
    const rows = (a: number[]) => Array.from({ length: B }, (_, b) => a.slice(b * T, (b + 1) * T));
    return {
      input_ids: rows(Array.from(f.readArray('input_ids'), Number)),
      attention_mask: rows(Array.from(f.readArray('attention_mask'), Number)),
      pixel_values: f.readArray('pixel_values') as Float32Array,
      pixelShape: f.entry('pixel_values').shape,
      ...(f.has('pixel_attention_mask')
        ? { pixel_attention_mask: Uint8Array.from(f.readArray('pixel_attention_mask'), (v) => (v ? 1 : 0)) }
        : {}),
    };
  });
}

/** Greedy generation with the KV cache: the golden ids and every step's logits, per single-sample case. */
async function generateParity(model: GenerativeModel, cases: Case[], eos: number, pad: number): Promise<void> {
  for (const c of cases) {
    if (c.batch !== undefined || !c.generate) continue;
    const steps: Float32Array[] = [];
    const loop = generateTokens(model, promptOf(c.name), {
      ...GREEDY, maxNewTokens: c.generate.max_new_tokens, eosTokenIds: [eos], padTokenId: pad, seed: 0,
      onLogits: (l) => steps.push(l),
    });
    let r = await loop.next();
    while (!r.done) r = await loop.next();
    generated.push({ case: c.name, expected: c.generate.new_token_ids as number[], got: r.value.generated[0] ?? [] });
    const stepLogits = golden(c.name, 'generate.logits');
    const V = stepLogits.length / c.generate.max_new_tokens;
    steps.forEach((s, k) => compare(`${c.name} generate step ${k} logits`, s, stepLogits.subarray(k * V, (k + 1) * V)));
  }
}

/** The greedy ids again on the on-device argMax path (no logits downloaded), counting tensors around it. */
async function leakCheck(model: GenerativeModel, c: Case, eos: number, pad: number): Promise<{ before: number; after: number }> {
  const before = tf.memory().numTensors;
  const loop = generateTokens(model, promptOf(c.name), { ...GREEDY, maxNewTokens: 4, eosTokenIds: [eos], padTokenId: pad, seed: 0 });
  let r = await loop.next();
  while (!r.done) r = await loop.next();
  generated.push({ case: `${c.name} (argMax on device, 4 tokens)`, expected: (c.generate!.new_token_ids as number[]).slice(0, 4), got: r.value.generated[0] ?? [] });
  return { before, after: tf.memory().numTensors };
}

/** CLIP / SigLIP: every golden tensor of the one case (3 images × 4 texts), as clip-model / siglip-model do. */
async function dualEncoderParity(model: CLIPModel | SiglipModel, withMask: boolean): Promise<void> {
  const CASE = 'three_images_four_texts';
  const names = open(`${GOLDEN}/${CASE}.safetensors`, (f) => f.keys())
    .filter((n) => n !== 'pixel_values' && n !== 'input_ids' && n !== 'attention_mask');
  const capture = new Capture(names);
  const { pixels, ids, mask } = open(`${GOLDEN}/${CASE}.inputs.safetensors`, (f) => {
    const [B, T] = f.entry('input_ids').shape as [number, number];
    const rows = (k: string) => {
      const flat = Array.from(f.readArray(k) as ArrayLike<number | bigint>, Number);
      return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
    };
    return { pixels: f.readTensor('pixel_values'), ids: rows('input_ids'), mask: withMask ? rows('attention_mask') : undefined };
  });
  const img = model.embedImages(pixels, capture);
  const txt = model.embedTexts(ids, mask, capture);
  tf.dispose([img, txt, model.logits(img, txt, capture)]);
  const missing = capture.missing();
  if (missing.length) throw new Error(`not captured: ${missing.join(', ')}`);
  for (const name of names) compare(`${CASE} ${name}`, await capture.get(name)!.data(), golden(CASE, name));
  capture.dispose();
  pixels.dispose();
}

async function run(generate: boolean): Promise<ParityReport> {
  const started = performance.now();
  const cases = JSON.parse(fs.readFileSync(`${GOLDEN}/cases.json`, 'utf8')).cases as Case[];
  let leak: { before: number; after: number } | undefined;
  if (folder === 'tiny-clip' || folder === 'tiny-siglip') {
    const model = folder === 'tiny-clip' ? await CLIPModel.load(fixture(folder)) : await SiglipModel.load(fixture(folder));
    try {
      await dualEncoderParity(model, folder === 'tiny-clip');
    } finally {
      model.dispose();
    }
  } else {
    const model = folder === 'tiny-llava' ? await LlavaModel.load(fixture(folder)) : await Idefics3Model.load(fixture(folder));
    try {
      const generation = folder === 'tiny-llava' ? { eos: 2, pad: 500 }
        : { eos: JSON.parse(fs.readFileSync(fixture(folder, 'generation_config.json'), 'utf8')).eos_token_id as number, pad: 2 };
      await forwardParity(model, cases);
      if (generate) {
        await generateParity(model, cases, generation.eos, generation.pad);
        leak = await leakCheck(model, cases.find((c) => c.batch === undefined)!, generation.eos, generation.pad);
      }
    } finally {
      model.dispose();
    }
  }
  return {
    ok: true, backend: activeBackend(), fixture: folder, compared, generated,
    tensorsBefore: leak?.before, tensorsAfter: leak?.after, ms: performance.now() - started,
  };
}

await initBackend();
for (const arg of process.argv.slice(2)) {
  const [name = '', mode] = arg.split(':');
  [folder, GOLDEN, compared, generated] = [name, fixture(name, 'golden'), [], []];
  const started = performance.now();
  let report: ParityReport;
  try {
    report = await run(mode !== 'forward');
  } catch (e) {
    report = { ok: false, fixture: folder, compared, generated, ms: performance.now() - started, message: (e as Error).stack ?? String(e) };
  }
  console.log(JSON.stringify(report));
}
