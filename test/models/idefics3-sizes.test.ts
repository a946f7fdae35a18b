// Idefics3 with other sizes than the fixture (head counts, GQA ratios 1 and 4, depths, image/patch
// sizes, scale_factor 3, tied embeddings, linear RoPE scaling) from random weights: loads, runs with
// the right shapes, cached decoding equals the uncached forward, and repeated forwards leak nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf, initBackend } from '../../src/backend/index.ts';
import { Capture, loadModel, type Idefics3Model } from '../../src/models/index.ts';
import { gaussianSource, writeRandomCheckpoint } from '../../src/models/random-weights.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';

interface Variant {
  name: string;
  config: Record<string, unknown>;
}

const VARIANTS: Variant[] = [
  {
    name: 'GQA 4:1, scale_factor 3, tied, linear RoPE, 3+3 layers, 48 px / patch 4',
    config: {
      architectures: ['Idefics3ForConditionalGeneration'], model_type: 'idefics3', image_token_id: 299, scale_factor: 3,
      tie_word_embeddings: true,
      vision_config: { hidden_size: 24, intermediate_size: 40, num_attention_heads: 3, num_hidden_layers: 3, image_size: 48, patch_size: 4 },
      text_config: {
        model_type: 'llama', hidden_size: 48, intermediate_size: 80, num_attention_heads: 4, num_key_value_heads: 1,
        head_dim: 12, num_hidden_layers: 3, vocab_size: 300, rope_theta: 5000, rope_scaling: { type: 'linear', factor: 2 },
      },
    },
  },
  {
    name: 'MHA (GQA 1:1), scale_factor 2, untied, 1+2 layers, 32 px / patch 8, smolvlm model_type',
    config: {
      architectures: ['SmolVLMForConditionalGeneration'], model_type: 'smolvlm', image_token_id: 7, scale_factor: 2,
      vision_config: { hidden_size: 16, intermediate_size: 24, num_attention_heads: 2, num_hidden_layers: 1, image_size: 32, patch_size: 8 },
      text_config: { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_hidden_layers: 2, vocab_size: 100, rms_norm_eps: 1e-5 },
    },
  },
];

/** ids: text, then one run of image tokens per tile, then text; last `tail` ids are plain text. */
function promptIds(imageToken: number, tiles: number, perTile: number, vocab: number, seed: number): Int32Array {
  const normal = gaussianSource(seed);
  const text = () => {
    let id = imageToken;
    while (id === imageToken) id = Math.abs(Math.floor(normal() * 1000)) % vocab;
    return id;
  };
  const ids: number[] = [text(), text()];
  for (let t = 0; t < tiles; t++) {
    ids.push(text());
    for (let i = 0; i < perTile; i++) ids.push(imageToken);
  }
  for (let i = 0; i < 5; i++) ids.push(text());
  return Int32Array.from(ids);
}

describe('Idefics3 with other sizes (random weights)', () => {
  const dirs: string[] = [];
  before(async () => { await initBackend(); });
  after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  for (const [vi, variant] of VARIANTS.entries()) {
    describe(variant.name, () => {
      let model: Idefics3Model;
      let dir: string;
      before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-idefics3-'));
        dirs.push(dir);
        // A larger std than real checkpoints so differences between positions are visible in the logits.
        writeRandomCheckpoint(variant.config, dir, { seed: 10 + vi, dtype: 'BF16', std: 0.2 });
        model = (await loadModel(dir)) as Idefics3Model;
      });
      after(() => model?.dispose());

      it('loads, runs, and every intermediate has the shape the config implies', () => {
        const c = model.config;
        const vc = c.vision_config, tc = c.text_config;
        const tiles = 2;
        const ids = promptIds(c.image_token_id, tiles, c.image_seq_len, tc.vocab_size, vi);
        const T = ids.length;
        const normal = gaussianSource(99);
        const pixels = Float32Array.from({ length: tiles * 3 * vc.image_size ** 2 }, () => normal());
        const inputIds = tf.tensor2d(ids, [1, T], 'int32');
        const pixelValues = tf.tensor(pixels, [1, tiles, 3, vc.image_size, vc.image_size]);
        const capture = new Capture('all');
        const { logits } = model.forward({ input_ids: inputIds, pixel_values: pixelValues }, { capture });
        const side = vc.image_size / vc.patch_size;
        const expected: Record<string, number[]> = {
          'vision.embeddings': [tiles, side * side, vc.hidden_size],
          'vision.post_layernorm': [tiles, side * side, vc.hidden_size],
          'connector.pixel_shuffle': [tiles, c.image_seq_len, vc.hidden_size * c.scale_factor ** 2],
          connector: [tiles, c.image_seq_len, tc.hidden_size],
          'text.inputs_embeds': [1, T, tc.hidden_size],
          'text.norm': [1, T, tc.hidden_size],
          logits: [1, T, tc.vocab_size],
        };
        for (let i = 0; i < vc.num_hidden_layers; i++) expected[`vision.layers.${i}`] = [tiles, side * side, vc.hidden_size];
        for (let i = 0; i < tc.num_hidden_layers; i++) expected[`text.layers.${i}`] = [1, T, tc.hidden_size];
        assert.deepEqual([...capture.tensors.keys()].sort(), Object.keys(expected).sort());
        for (const [name, shape] of Object.entries(expected)) assert.deepEqual(capture.get(name)!.shape, shape, name);
        assert.ok((logits.dataSync() as Float32Array).every(Number.isFinite));
        [logits, inputIds, pixelValues].forEach((t) => t.dispose());
        capture.dispose();
      });

      it('cached decoding (prefill + one token at a time) equals the uncached forward', () => {
        const c = model.config;
        const vc = c.vision_config;
        const ids = promptIds(c.image_token_id, 1, c.image_seq_len, c.text_config.vocab_size, 100 + vi);
        const T = ids.length;
        const normal = gaussianSource(7);
        const pixelValues = tf.tensor(Float32Array.from({ length: 3 * vc.image_size ** 2 }, () => normal()), [1, 1, 3, vc.image_size, vc.image_size]);
        const full = tf.tensor2d(ids, [1, T], 'int32');
        const { logits: reference } = model.forward({ input_ids: full, pixel_values: pixelValues });
        const refValues = reference.dataSync() as Float32Array;
        const V = c.text_config.vocab_size;

        const steps = 3;
        const cache = model.createCache();
        const prefill = tf.tensor2d(ids.subarray(0, T - steps), [1, T - steps], 'int32');
        const { logits: first } = model.forward({ input_ids: prefill, pixel_values: pixelValues }, { cache, lastOnly: true });
        assert.deepEqual(first.shape, [1, 1, V]);
        assertClose(first.dataSync(), refValues.subarray((T - steps - 1) * V, (T - steps) * V), TOLERANCE.float32, 'prefill last logits');
        const [layer0] = cache;
        assert.ok(layer0, 'a cache per layer');
        for (let s = T - steps; s < T; s++) {
          const step = tf.tensor2d([ids[s]!], [1, 1], 'int32');
          const { logits } = model.forward({ input_ids: step, attention_mask: new Int32Array(s + 1).fill(1) }, { cache, lastOnly: true });
          assert.equal(layer0.offset, s + 1);
          assertClose(logits.dataSync(), refValues.subarray(s * V, (s + 1) * V), TOLERANCE.float32, `decode step at position ${s}`);
          logits.dispose();
          step.dispose();
        }
        cache.forEach((k) => k.dispose());
        [reference, full, pixelValues, prefill, first].forEach((t) => t.dispose());
      });

      it('repeated forwards (with and without images, with a cache) leave tf.memory().numTensors unchanged', () => {
        const c = model.config;
        const vc = c.vision_config;
        const ids = promptIds(c.image_token_id, 1, c.image_seq_len, c.text_config.vocab_size, 5);
        const inputIds = tf.tensor2d(ids, [1, ids.length], 'int32');
        const pixelValues = tf.ones([1, 1, 3, vc.image_size, vc.image_size]);
        const run = () => {
          const capture = new Capture(['connector', 'logits']);
          model.forward({ input_ids: inputIds, pixel_values: pixelValues }, { capture }).logits.dispose();
          capture.dispose();
          const cache = model.createCache();
          model.forward({ input_ids: inputIds, pixel_values: pixelValues }, { cache, lastOnly: true }).logits.dispose();
          cache.forEach((k) => k.dispose());
        };
        run();
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) run();
        assert.equal(tf.memory().numTensors, before);
        inputIds.dispose();
        pixelValues.dispose();
      });
    });
  }
});
