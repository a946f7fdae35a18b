// CLIPModel (tiny-clip) against transformers 4.47.1: every vision and text intermediate, projections,
// embeddings and both logit matrices from the golden inputs; the tokenizer gives the golden ids; the
// EOS pooling rule; no tensors leak.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tf, initBackend } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { Capture } from '../../src/models/capture.ts';
import { CLIPModel } from '../../src/models/clip/model.ts';
import { clipEosPositions } from '../../src/models/clip/text.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const DIR = fixture('tiny-clip');
const CASE = 'three_images_four_texts';
const GOLDEN = fixture('tiny-clip', 'golden');
const NAMES = ['vision.embeddings', 'vision.pre_layrnorm', 'vision.layers.0', 'vision.layers.1', 'vision.layers.2',
  'vision.pooled', 'vision.projection', 'image_embeds', 'text.embeddings', 'text.layers.0', 'text.layers.1',
  'text.final_layer_norm', 'text.pooled', 'text.projection', 'text_embeds', 'logits_per_image', 'logits_per_text'];

function intRows(f: SafetensorsFile, name: string): number[][] {
  const { shape } = f.entry(name);
  const [B, T] = shape;
  assert.ok(B !== undefined && T !== undefined, `${name}: shape [${shape}] is not [B, T]`);
  const flat = Array.from(f.readArray(name) as ArrayLike<number | bigint>, Number);
  return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
}

describe('CLIPModel (tiny-clip) parity with transformers', () => {
  let model: CLIPModel;
  let inputs: SafetensorsFile;
  before(async () => {
    await initBackend();
    model = await CLIPModel.load(DIR);
    inputs = SafetensorsFile.open(path.join(GOLDEN, `${CASE}.inputs.safetensors`));
  });
  after(() => {
    model?.dispose();
    inputs?.close();
  });

  it('tokenizer: the golden input_ids and attention_mask (padding=True)', async () => {
    const cases = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases.json'), 'utf8')).cases;
    const c = cases.find((x: { name: string }) => x.name === CASE);
    const tok = await loadTokenizer(DIR);
    const enc = tok.encodeBatch(c.texts, { padding: 'longest' });
    assert.deepEqual(enc.input_ids, intRows(inputs, 'input_ids'));
    assert.deepEqual(enc.attention_mask, intRows(inputs, 'attention_mask'));
    assert.deepEqual(clipEosPositions(enc.input_ids, model.config.text_config.eos_token_id), c.text_pooling.positions ?? [8, 18, 17, 7]);
  });

  it(`${CASE}: every golden tensor`, () => {
    const capture = new Capture(NAMES);
    const pixels = inputs.readTensor('pixel_values');
    const ids = intRows(inputs, 'input_ids');
    const mask = intRows(inputs, 'attention_mask');
    const before = tf.memory().numTensors;
    const img = model.embedImages(pixels, capture);
    const txt = model.embedTexts(ids, mask, capture);
    const logits = model.logits(img, txt, capture);
    tf.dispose([img, txt, logits]);
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

  it('EOS pooling: eos_token_id 2 → first argmax; otherwise the first eos', () => {
    assert.deepEqual(clipEosPositions([[5, 9, 9, 1], [3, 2, 7, 7]], 2), [1, 2]);
    assert.deepEqual(clipEosPositions([[5, 9, 7, 7], [7, 2, 7, 9]], 7), [2, 0]);
    assert.throws(() => clipEosPositions([[5, 9]], 7), /no eos_token_id 7/);
  });
});
