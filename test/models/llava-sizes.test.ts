// LLaVA with other sizes than the fixture, from random weights: vision_feature_layer as a list (with
// index 0 = the pre_layrnorm output) and strategy 'full', tied embeddings, other head counts / GQA
// ratios / image and patch sizes, the image_token_id spelling and the transformers ≥ 4.52 key layout.
// Loads, runs with the shapes the config implies, selects exactly the hidden states asked for, cached
// decoding equals the uncached forward, and repeated forwards leak nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf, initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { Capture } from '../../src/models/capture.ts';
import { parseLlavaConfig } from '../../src/models/llava/config.ts';
import { LLAVA_HF_LAYOUT, LLAVA_NEW_LAYOUT, LlavaModel, llavaWeightSpec, type LlavaKeyLayout } from '../../src/models/llava/model.ts';
import { randomTensors } from '../../src/models/random-weights.ts';
import { loadModel } from '../../src/models/registry.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';

interface Variant {
  name: string;
  config: Record<string, unknown>;
  layout: LlavaKeyLayout;
}

const VARIANTS: Variant[] = [
  {
    name: "layers [0, -1, 2], strategy 'full', tied (top level), 3 vision heads, GQA 3:1, 24 px / patch 6",
    layout: LLAVA_HF_LAYOUT,
    config: {
      architectures: ['LlavaForConditionalGeneration'], model_type: 'llava', image_token_index: 97,
      vision_feature_layer: [0, -1, 2], vision_feature_select_strategy: 'full', tie_word_embeddings: true,
      projector_hidden_act: 'gelu',
      vision_config: { hidden_size: 24, intermediate_size: 40, num_attention_heads: 3, num_hidden_layers: 3, image_size: 24, patch_size: 6 },
      text_config: {
        model_type: 'llama', hidden_size: 48, intermediate_size: 80, num_attention_heads: 6, num_key_value_heads: 2,
        num_hidden_layers: 2, vocab_size: 98, rms_norm_eps: 1e-5,
      },
    },
  },
  {
    name: "layer -1 (last, no post_layernorm), 'default', image_token_id spelling, silu projector, no projector bias, ≥4.52 keys",
    layout: LLAVA_NEW_LAYOUT,
    config: {
      architectures: ['LlavaForConditionalGeneration'], model_type: 'llava', image_token_id: 5, vision_feature_layer: -1,
      projector_hidden_act: 'silu', multimodal_projector_bias: false,
      vision_config: { hidden_size: 16, intermediate_size: 24, num_attention_heads: 2, num_hidden_layers: 2, image_size: 32, patch_size: 8, hidden_act: 'gelu' },
      text_config: { hidden_size: 32, intermediate_size: 48, num_attention_heads: 2, num_hidden_layers: 3, vocab_size: 60, tie_word_embeddings: true },
    },
  },
];

function writeCheckpoint(v: Variant, dir: string, seed: number): void {
  const config = parseLlavaConfig(v.config);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(v.config));
  // A larger std than real checkpoints so differences between positions are visible in the logits.
  writeSafetensors(path.join(dir, 'model.safetensors'), randomTensors(llavaWeightSpec(config, v.layout), { seed, dtype: 'BF16', std: 0.2 }),
    { format: 'pt' });
}

/** text, an image-token run per image, text; no text id equals the image token. */
function promptIds(imageToken: number, images: number, perImage: number, vocab: number): Int32Array {
  const ids: number[] = [];
  let next = 1;
  const text = () => {
    next = (next * 7 + 3) % vocab;
    if (next === imageToken) next = (next + 1) % vocab;
    return next;
  };
  ids.push(text(), text());
  for (let i = 0; i < images; i++) {
    ids.push(text());
    for (let j = 0; j < perImage; j++) ids.push(imageToken);
  }
  for (let i = 0; i < 4; i++) ids.push(text());
  return Int32Array.from(ids);
}

describe('LLaVA with other sizes (random weights)', () => {
  const dirs: string[] = [];
  before(async () => { await initBackend(); });
  after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  for (const [vi, variant] of VARIANTS.entries()) {
    describe(variant.name, () => {
      let model: LlavaModel;
      before(async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-llava-'));
        dirs.push(dir);
        writeCheckpoint(variant, dir, 20 + vi);
        const loaded = await loadModel(dir);
        assert.ok(loaded instanceof LlavaModel);
        model = loaded;
      });
      after(() => model?.dispose());

      it('runs with the shapes the config implies and selects exactly the requested hidden states', () => {
        const c = model.config;
        const vc = c.vision_config, tc = c.text_config;
        const N = 2;
        const pixels = tf.randomNormal([N, vc.num_channels, vc.image_size, vc.image_size], 0, 1, 'float32', 3);
        const ids = promptIds(c.image_token_index, N, c.image_tokens, tc.vocab_size);
        const inputIds = tf.tensor2d(ids, [1, ids.length], 'int32');
        const capture = new Capture('all');
        const before = tf.memory().numTensors;
        const { logits } = model.forward({ input_ids: inputIds, pixel_values: pixels }, { capture });
        const S = vc.num_patches_per_side ** 2 + 1;
        assert.deepEqual(capture.get('vision.embeddings')!.shape, [N, S, vc.hidden_size]);
        for (let i = 0; i < vc.num_hidden_layers; i++) assert.deepEqual(capture.get(`vision.layers.${i}`)!.shape, [N, S, vc.hidden_size]);
        const width = vc.hidden_size * c.feature_layers.length;
        assert.deepEqual(capture.get('projector.input')!.shape, [N, c.image_tokens, width]);
        assert.deepEqual(capture.get('image_features')!.shape, [N, c.image_tokens, tc.hidden_size]);
        assert.deepEqual(logits.shape, [1, ids.length, tc.vocab_size]);
        // projector.input = concat over feature layers of hidden_states[k] (minus CLS with 'default').
        const skip = c.vision_feature_select_strategy === 'default' ? 1 : 0;
        const parts = c.feature_layers.map((k) => capture.get(k === 0 ? 'vision.pre_layrnorm' : `vision.layers.${k - 1}`)!);
        const expected = tf.tidy(() => tf.concat(parts.map((h) => tf.slice(h, [0, skip, 0], [-1, -1, -1])), -1));
        assertClose(capture.get('projector.input')!.dataSync(), expected.dataSync(), TOLERANCE.exact, 'projector.input');
        expected.dispose();
        logits.dispose();
        capture.dispose();
        assert.equal(tf.memory().numTensors, before, 'forward leaves no tensors behind');
        for (let i = 0; i < 2; i++) model.forward({ input_ids: inputIds, pixel_values: pixels }).logits.dispose();
        assert.equal(tf.memory().numTensors, before, 'repeated forwards leave no tensors behind');
        tf.dispose([pixels, inputIds]);
      });

      it('prefill + cached single-token steps equal the uncached forward', () => {
        const c = model.config;
        const vc = c.vision_config;
        const pixels = tf.randomNormal([1, vc.num_channels, vc.image_size, vc.image_size], 0, 1, 'float32', 4);
        const ids = promptIds(c.image_token_index, 1, c.image_tokens, c.text_config.vocab_size);
        const T = ids.length;
        const full = model.forward({ input_ids: tf.tensor2d(ids, [1, T], 'int32'), pixel_values: pixels }).logits;
        const V = c.text_config.vocab_size;
        const fullValues = full.dataSync() as Float32Array;
        const cache = model.createCache();
        const prefix = T - 3;
        const pre = model.forward({ input_ids: tf.tensor2d(ids.slice(0, prefix), [1, prefix], 'int32'), pixel_values: pixels }, { cache, lastOnly: true });
        assertClose(pre.logits.dataSync(), fullValues.subarray((prefix - 1) * V, prefix * V), TOLERANCE.float32, 'prefill last');
        pre.logits.dispose();
        for (let t = prefix; t < T; t++) {
          const step = model.forward({ input_ids: tf.tensor2d([ids[t]!], [1, 1], 'int32') }, { cache, lastOnly: true });
          assertClose(step.logits.dataSync(), fullValues.subarray(t * V, (t + 1) * V), TOLERANCE.float32, `step ${t}`);
          step.logits.dispose();
        }
        cache.forEach((k) => k.dispose());
        tf.dispose([full, pixels]);
      });

      it('refuses a token/feature count mismatch with both numbers', () => {
        const c = model.config;
        const vc = c.vision_config;
        const pixels = tf.zeros([1, vc.num_channels, vc.image_size, vc.image_size]);
        const ids = promptIds(c.image_token_index, 1, c.image_tokens - 1, c.text_config.vocab_size);
        const inputIds = tf.tensor2d(ids, [1, ids.length], 'int32');
        const before = tf.memory().numTensors;
        assert.throws(() => model.forward({ input_ids: inputIds, pixel_values: pixels }), (e: Error) =>
          e instanceof TfvlmError && e.message.includes(`${c.image_tokens - 1} image tokens`) && e.message.includes(`${c.image_tokens} feature rows`));
        assert.equal(tf.memory().numTensors, before, 'a refused merge leaves no tensors behind');
        tf.dispose([pixels, inputIds]);
      });
    });
  }
});

describe('LLaVA config', () => {
  it('applies the LlavaConfig defaults (llava-1.5 tower, -2, default, gelu, token 32000)', () => {
    const c = parseLlavaConfig({ model_type: 'llava' });
    assert.deepEqual([c.image_token_index, c.projector_hidden_act, c.vision_feature_layer, c.vision_feature_select_strategy,
      c.image_seq_length, c.multimodal_projector_bias, c.tie_word_embeddings], [32000, 'gelu', -2, 'default', 576, true, false]);
    const v = c.vision_config;
    assert.deepEqual([v.hidden_size, v.image_size, v.patch_size, v.num_hidden_layers, v.hidden_act, v.layer_norm_eps], [1024, 336, 14, 24, 'quick_gelu', 1e-5]);
    assert.deepEqual(c.feature_layers, [23]);
    assert.equal(c.image_tokens, 576);
  });

  it('the published llava-1.5-7b-hf config implies 576 image tokens from layer 23 and 7.06B parameters', () => {
    const c = parseLlavaConfig({
      architectures: ['LlavaForConditionalGeneration'], ignore_index: -100, image_token_index: 32000, model_type: 'llava',
      pad_token_id: 32001, projector_hidden_act: 'gelu', tie_word_embeddings: false, vocab_size: 32064,
      text_config: { architectures: ['LlamaForCausalLM'], max_position_embeddings: 4096, model_type: 'llama', rms_norm_eps: 1e-05, vocab_size: 32064 },
      vision_config: {
        hidden_size: 1024, image_size: 336, intermediate_size: 4096, model_type: 'clip_vision_model', num_attention_heads: 16,
        num_hidden_layers: 24, patch_size: 14, projection_dim: 768, vocab_size: 32000,
      },
      vision_feature_layer: -2, vision_feature_select_strategy: 'default',
    });
    assert.equal(c.image_tokens, 576);
    assert.deepEqual(c.feature_layers, [23]);
    let parameters = 0;
    for (const shape of llavaWeightSpec(c).values()) parameters += shape.reduce((a, b) => a * b, 1);
    assert.equal((parameters / 1e9).toFixed(2), '7.06');
  });

  it('names the field at fault', () => {
    assert.throws(() => parseLlavaConfig({ vision_feature_select_strategy: 'cls' }), /vision_feature_select_strategy must be 'default' or 'full'/);
    assert.throws(() => parseLlavaConfig({ vision_feature_layer: 30 }), /vision_feature_layer must index the 25 hidden states/);
    assert.throws(() => parseLlavaConfig({ vision_config: { model_type: 'siglip_vision_model' } }), /vision_config\.model_type 'siglip_vision_model' is not supported/);
  });
});
