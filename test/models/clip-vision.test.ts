// CLIP vision tower (tiny-clip, a full CLIPModel) against transformers 4.47.1: embeddings,
// pre_layrnorm, every layer, pooled CLS, projection and the normalised image_embeds; the encoder
// loads from CLIPModel, CLIPVisionModelWithProjection-shaped and LLaVA folders; no tensors leak.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf, initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { SafetensorsFile, writeSafetensors, type RawTensor } from '../../src/io/safetensors.ts';
import { Capture } from '../../src/models/capture.ts';
import { CLIPImageEncoder } from '../../src/models/clip-image-encoder.ts';
import { parseCLIPConfig, parseCLIPTextConfig, parseCLIPVisionConfig } from '../../src/models/clip/config.ts';
import { assertClose, diff, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const DIR = fixture('tiny-clip');
const CASE = 'three_images_four_texts';
const GOLDEN = fixture('tiny-clip', 'golden');
const VISION_NAMES = ['vision.embeddings', 'vision.pre_layrnorm', 'vision.layers.0', 'vision.layers.1', 'vision.layers.2',
  'vision.pooled', 'vision.projection', 'image_embeds'];

function pixelValues(): tf.Tensor {
  const f = SafetensorsFile.open(path.join(GOLDEN, `${CASE}.inputs.safetensors`));
  try {
    return f.readTensor('pixel_values');
  } finally {
    f.close();
  }
}

describe('CLIP config parsing', () => {
  it('applies the transformers defaults for fields save_pretrained leaves out', () => {
    const c = parseCLIPConfig(JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8')));
    assert.equal(c.projection_dim, 24);
    assert.equal(c.logit_scale_init_value, 2.6592);
    assert.deepEqual([c.vision_config.hidden_act, c.vision_config.layer_norm_eps, c.vision_config.num_channels], ['quick_gelu', 1e-5, 3]);
    assert.equal(c.vision_config.num_positions, 17);
    const t = c.text_config;
    assert.deepEqual([t.hidden_act, t.layer_norm_eps, t.pad_token_id, t.bos_token_id, t.eos_token_id, t.head_dim],
      ['quick_gelu', 1e-5, 1, 0, 2, 8]);
    const d = parseCLIPTextConfig({});
    assert.deepEqual([d.max_position_embeddings, d.vocab_size, d.bos_token_id, d.eos_token_id, d.pad_token_id], [77, 49408, 49406, 49407, 1]);
    const v = parseCLIPVisionConfig({});
    assert.deepEqual([v.hidden_size, v.image_size, v.patch_size, v.projection_dim, v.num_positions], [768, 224, 32, 512, 50]);
  });

  it('names the field at fault', () => {
    assert.throws(() => parseCLIPVisionConfig({ hidden_size: 30, num_attention_heads: 4 }), (e: Error) =>
      e instanceof TfvlmError && /vision_config\.num_attention_heads must divide hidden_size/.test(e.message));
    assert.throws(() => parseCLIPTextConfig({ hidden_act: 'nope' }), (e: Error) => e instanceof TfvlmError && /text_config\.hidden_act/.test(e.message));
  });
});

describe('CLIP vision tower (tiny-clip) parity with transformers', () => {
  let encoder: CLIPImageEncoder;
  before(async () => {
    await initBackend();
    encoder = await CLIPImageEncoder.load(DIR);
  });
  after(() => encoder?.dispose());

  it(`${CASE}: every vision intermediate and image_embeds`, () => {
    const pixels = pixelValues();
    const capture = new Capture(VISION_NAMES);
    const before = tf.memory().numTensors;
    const embeds = encoder.embed(pixels, capture);
    assert.deepEqual(capture.missing(), []);
    const golden = SafetensorsFile.open(path.join(GOLDEN, `${CASE}.safetensors`));
    const rows: string[] = [];
    for (const name of VISION_NAMES) {
      const actual = capture.get(name)!;
      assert.deepEqual(actual.shape, golden.entry(name).shape, `${name} shape`);
      const expected = golden.readArray(name) as Float32Array;
      const d = diff(actual.dataSync() as Float32Array, expected);
      rows.push(`  ${name.padEnd(20)} ${String(actual.shape).padEnd(10)} max|Δ| ${d.maxAbs.toExponential(2)}  max|ref| ${d.maxRef.toExponential(2)}`);
      assertClose(actual.dataSync() as Float32Array, expected, TOLERANCE.float32, name);
    }
    assertClose(embeds.dataSync() as Float32Array, golden.readArray('image_embeds') as Float32Array, TOLERANCE.float32, 'returned image_embeds');
    golden.close();
    console.log(`parity ${CASE} (vision):\n${rows.join('\n')}`);
    embeds.dispose();
    capture.dispose();
    assert.equal(tf.memory().numTensors, before, 'embed leaves no tensors behind');
    for (let i = 0; i < 3; i++) encoder.embed(pixels).dispose();
    assert.equal(tf.memory().numTensors, before, 'repeated embeds leave no tensors behind');
    pixels.dispose();
  });

  it('refuses pixel_values of another size than vision_config.image_size', () => {
    const wrong = tf.zeros([1, 3, 40, 40]);
    assert.throws(() => encoder.embed(wrong), (e: Error) => e instanceof TfvlmError && /\[N, 3, 32, 32\]/.test(e.message));
    wrong.dispose();
  });
});

describe('CLIPImageEncoder.load on other layouts', () => {
  const dirs: string[] = [];
  before(async () => { await initBackend(); });
  after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  /** A folder with config.json and the tiny-clip tensors whose keys pass `keep`, renamed by `rename`. */
  function folder(config: unknown, keep: (k: string) => boolean, rename: (k: string) => string = (k) => k): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-clip-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const src = SafetensorsFile.open(path.join(DIR, 'model.safetensors'));
    const out = new Map<string, RawTensor>();
    for (const k of src.keys().filter(keep)) out.set(rename(k), { dtype: 'F32', shape: src.entry(k).shape, data: src.readArray(k) as Float32Array });
    src.close();
    writeSafetensors(path.join(dir, 'model.safetensors'), out, { format: 'pt' });
    return dir;
  }

  it('CLIPVisionModelWithProjection (top-level vision config + visual_projection) gives the same image_embeds', async () => {
    const full = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
    const dir = folder({ ...full.vision_config, architectures: ['CLIPVisionModelWithProjection'] },
      (k) => k.startsWith('vision_model.') || k === 'visual_projection.weight');
    const encoder = await CLIPImageEncoder.load(dir);
    const pixels = pixelValues();
    const embeds = encoder.embed(pixels);
    const golden = SafetensorsFile.open(path.join(GOLDEN, `${CASE}.safetensors`));
    assertClose(embeds.dataSync() as Float32Array, golden.readArray('image_embeds') as Float32Array, TOLERANCE.float32, 'image_embeds');
    golden.close();
    tf.dispose([embeds, pixels]);
    encoder.dispose();
  });

  it('a vision tower without projection (CLIPVisionModel, LLaVA) gives the normalised pooled CLS', async () => {
    const full = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
    const dir = folder({ ...full.vision_config, architectures: ['CLIPVisionModel'] }, (k) => k.startsWith('vision_model.'));
    const encoder = await CLIPImageEncoder.load(dir);
    assert.equal(encoder.embedDim, 48);
    const pixels = pixelValues();
    const embeds = encoder.embed(pixels);
    const golden = SafetensorsFile.open(path.join(GOLDEN, `${CASE}.safetensors`));
    const pooled = golden.readArray('vision.pooled') as Float32Array;
    golden.close();
    const normalised = new Float32Array(pooled.length);
    for (let n = 0; n < 3; n++) {
      const row = pooled.subarray(n * 48, (n + 1) * 48);
      const norm = Math.hypot(...row);
      row.forEach((v, j) => { normalised[n * 48 + j] = v / norm; });
    }
    assertClose(embeds.dataSync() as Float32Array, normalised, TOLERANCE.float32, 'normalised pooled');
    tf.dispose([embeds, pixels]);
    encoder.dispose();
  });

  it('a missing tower weight is reported with its key and shape', async () => {
    const full = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
    const dir = folder(full, (k) => k !== 'vision_model.pre_layrnorm.bias');
    await assert.rejects(CLIPImageEncoder.load(dir), (e: Error) =>
      e instanceof TfvlmError && /missing \(1\)/.test(e.message) && /vision_model\.pre_layrnorm\.bias \[48\]/.test(e.message));
  });

  it('a model_type without a CLIP tower is refused by name', async () => {
    const dir = folder({ model_type: 'idefics3' }, () => false);
    await assert.rejects(CLIPImageEncoder.load(dir), /model_type "idefics3" has no CLIP image encoder/);
  });
});
