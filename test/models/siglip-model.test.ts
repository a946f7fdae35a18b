// SiglipModel (tiny-siglip) against transformers 4.47.1: every vision (incl. the attention-pooling
// head) and text intermediate, embeddings and both logit matrices from the golden inputs; no leaks.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tf, initBackend } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { Capture } from '../../src/models/capture.ts';
import { SiglipModel, parseSiglipConfig } from '../../src/models/siglip/model.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const DIR = fixture('tiny-siglip');
const CASE = 'three_images_four_texts';
const GOLDEN = fixture('tiny-siglip', 'golden');
const NAMES = ['vision.embeddings', 'vision.layers.0', 'vision.layers.1', 'vision.post_layernorm', 'vision.head.attention',
  'vision.pooled', 'image_embeds', 'text.embeddings', 'text.layers.0', 'text.layers.1', 'text.final_layer_norm',
  'text.pooled', 'text_embeds', 'logits_per_image', 'logits_per_text'];

function intRows(f: SafetensorsFile, name: string): number[][] {
  const { shape } = f.entry(name);
  const [B, T] = shape;
  assert.ok(B !== undefined && T !== undefined, `${name}: shape [${shape}] is not [B, T]`);
  const flat = Array.from(f.readArray(name) as ArrayLike<number | bigint>, Number);
  return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
}

describe('SiglipModel (tiny-siglip) parity with transformers', () => {
  let model: SiglipModel;
  let inputs: SafetensorsFile;
  before(async () => {
    await initBackend();
    model = await SiglipModel.load(DIR);
    inputs = SafetensorsFile.open(path.join(GOLDEN, `${CASE}.inputs.safetensors`));
  });
  after(() => {
    model?.dispose();
    inputs?.close();
  });

  it('config defaults and logit scale/bias', () => {
    const t = model.config.text_config;
    assert.deepEqual([t.hidden_act, t.layer_norm_eps, t.projection_size, t.head_dim], ['gelu_pytorch_tanh', 1e-6, 32, 8]);
    assert.ok(Math.abs(model.scale - Math.exp(2.5)) < 1e-5);
    assert.equal(model.bias, -1.75);
    assert.throws(() => parseSiglipConfig({ text_config: { hidden_size: 16, num_attention_heads: 4 }, vision_config: { hidden_size: 32, num_attention_heads: 4 } }),
      /projection_size \(16\) must equal vision_config.hidden_size \(32\)/);
  });

  it(`${CASE}: every golden tensor`, () => {
    const capture = new Capture(NAMES);
    const pixels = inputs.readTensor('pixel_values');
    const ids = intRows(inputs, 'input_ids');
    const before = tf.memory().numTensors;
    const img = model.embedImages(pixels, capture);
    const txt = model.embedTexts(ids, undefined, capture);
    tf.dispose([img, txt, model.logits(img, txt, capture)]);
    assert.equal(tf.memory().numTensors, before + capture.tensors.size, 'only the captured copies remain');
    assert.deepEqual(capture.missing(), []);
    const golden = SafetensorsFile.open(path.join(GOLDEN, `${CASE}.safetensors`));
    try {
      for (const name of NAMES) {
        const actual = capture.get(name)!;
        assert.deepEqual(actual.shape, golden.entry(name).shape, `${name} shape`);
        assertClose(actual.dataSync() as Float32Array, golden.readArray(name) as Float32Array, TOLERANCE.float32, name);
      }
    } finally {
      golden.close();
      capture.dispose();
      pixels.dispose();
    }
  });
});
