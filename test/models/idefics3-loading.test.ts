// Loading: config parsing (defaults, validation naming the field) and weight checks that list every
// missing / unexpected / wrong-shape tensor in one error.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { idefics3WeightSpec, loadModel, parseIdefics3Config } from '../../src/models/index.ts';
import { randomTensors } from '../../src/models/random-weights.ts';
import { fixture } from '../helpers/paths.ts';

const tinyConfig = () => JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'config.json'), 'utf8'));

describe('Idefics3 config', () => {
  it('fills transformers defaults and derived values', () => {
    const c = parseIdefics3Config(tinyConfig());
    assert.equal(c.text_config.rope_theta, 100000);
    assert.equal(c.text_config.head_dim, 16);
    assert.equal(c.text_config.num_key_value_heads, 2);
    assert.equal(c.text_config.hidden_act, 'silu');
    assert.equal(c.text_config.attention_bias, false);
    assert.equal(c.text_config.rope_scaling, null);
    assert.equal(c.vision_config.hidden_act, 'gelu_pytorch_tanh');
    assert.equal(c.vision_config.layer_norm_eps, 1e-6);
    assert.equal(c.vision_config.num_channels, 3);
    assert.equal(c.image_seq_len, 16);
    assert.equal(c.tie_word_embeddings, false);
    // (the default 224 px / patch 32 grid is 7×7, which scale_factor 2 cannot shuffle; give a valid size)
    const bare = parseIdefics3Config({ model_type: 'idefics3', vision_config: { image_size: 448 } });
    assert.equal(bare.scale_factor, 2);
    assert.equal(bare.image_token_id, 128257);
    assert.equal(bare.vision_config.hidden_size, 1152);
    assert.equal(bare.vision_config.patch_size, 32);
    assert.equal(bare.text_config.rms_norm_eps, 1e-5);
    const real = parseIdefics3Config(JSON.parse(fs.readFileSync(fixture('smolvlm-256m-real-tokenizer', 'config.json'), 'utf8')));
    assert.equal(real.image_seq_len, 64);
    assert.equal(real.text_config.head_dim, 64);
  });

  it('rejects inconsistent sizes with a TfvlmError naming the field', () => {
    const cases: [(c: any) => void, RegExp][] = [
      [(c) => { c.text_config.num_key_value_heads = 3; }, /text_config\.num_key_value_heads/],
      [(c) => { c.vision_config.num_attention_heads = 5; }, /vision_config\.num_attention_heads/],
      [(c) => { c.vision_config.hidden_size = -1; }, /vision_config\.hidden_size/],
      [(c) => { c.scale_factor = 3; }, /scale_factor/],
      [(c) => { c.vision_config.patch_size = 1000; }, /vision_config\.patch_size/],
      [(c) => { c.text_config.rope_scaling = { rope_type: 'yarn', factor: 4 }; }, /rope_scaling/],
      [(c) => { c.text_config.hidden_act = 'tanhh'; }, /text_config\.hidden_act/],
    ];
    for (const [edit, pattern] of cases) {
      const raw = tinyConfig();
      edit(raw);
      assert.throws(() => parseIdefics3Config(raw), (e: Error) => e instanceof TfvlmError && pattern.test(e.message), String(pattern));
    }
  });
});

describe('Idefics3 weight spec', () => {
  it('the real SmolVLM-256M-Instruct config implies its published key layout and size', () => {
    const c = parseIdefics3Config(JSON.parse(fs.readFileSync(fixture('smolvlm-256m-real-tokenizer', 'config.json'), 'utf8')));
    const spec = idefics3WeightSpec(c);
    const expect: Record<string, number[]> = {
      'model.vision_model.embeddings.patch_embedding.weight': [768, 3, 16, 16],
      'model.vision_model.embeddings.position_embedding.weight': [1024, 768],
      'model.vision_model.encoder.layers.11.mlp.fc2.bias': [768],
      'model.vision_model.post_layernorm.weight': [768],
      'model.connector.modality_projection.proj.weight': [576, 12288],
      'model.text_model.embed_tokens.weight': [49280, 576],
      'model.text_model.layers.29.self_attn.k_proj.weight': [192, 576],
      'model.text_model.layers.29.mlp.down_proj.weight': [576, 1536],
      'model.text_model.norm.weight': [576],
      'lm_head.weight': [49280, 576],
    };
    for (const [key, shape] of Object.entries(expect)) assert.deepEqual(spec.get(key), shape, key);
    assert.equal(spec.has('model.text_model.layers.0.self_attn.q_proj.bias'), false);
    assert.equal(spec.size, 471);
    let params = 0;
    for (const shape of spec.values()) params += shape.reduce((a, b) => a * b, 1);
    assert.ok(Math.abs(params / 1e6 - 256.5) < 0.1, `${params} parameters`);
  });
});

describe('random Idefics3 weights', () => {
  it('draw each tensor with std, or with stdOf(key) where it gives one', () => {
    const spec = idefics3WeightSpec(parseIdefics3Config(JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'config.json'), 'utf8'))));
    const sd = (t: { data: unknown }) => {
      const v = t.data as Float32Array;
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    };
    const pos = 'model.vision_model.embeddings.position_embedding.weight';
    const tensors = randomTensors(spec, { seed: 3, std: 0.05, stdOf: (k) => (k === pos ? 1 : undefined) });
    assert.ok(Math.abs(sd(tensors.get(pos)!) - 1) < 0.1, `position embedding std ${sd(tensors.get(pos)!)}`);
    const other = [...tensors.entries()].find(([k, t]) => k !== pos && (t.data as Float32Array).length > 1000)!;
    assert.ok(Math.abs(sd(other[1]) - 0.05) < 0.005, `${other[0]} std ${sd(other[1])}`);
  });
});

describe('Idefics3 weight loading', () => {
  let dir: string;
  before(async () => {
    await initBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-load-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lists every missing, unexpected and wrong-shape weight in one error', async () => {
    const raw = tinyConfig();
    const tensors = randomTensors(idefics3WeightSpec(parseIdefics3Config(raw)), { seed: 1 });
    tensors.delete('model.text_model.layers.1.mlp.up_proj.weight');
    tensors.delete('lm_head.weight');
    tensors.set('model.text_model.layers.0.self_attn.k_proj.weight', { dtype: 'F32', shape: [64, 64], data: new Float32Array(64 * 64) });
    tensors.set('model.vision_model.extra.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(raw));
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    await assert.rejects(loadModel(dir), (e: Error) => {
      assert.ok(e instanceof TfvlmError, String(e));
      for (const key of ['model.text_model.layers.1.mlp.up_proj.weight', 'lm_head.weight', 'model.vision_model.extra.weight']) {
        assert.match(e.message, new RegExp(key.replace(/\./g, '\\.')));
      }
      assert.match(e.message, /missing \(2\)/);
      assert.match(e.message, /unexpected \(1\)/);
      assert.match(e.message, /k_proj\.weight: checkpoint \[64, 64\], expected \[32, 64\]/);
      return true;
    });
  });

  it('unknown model types and missing folders give clear errors', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-load-'));
    fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ model_type: 'mamba', architectures: ['MambaForCausalLM'] }));
    await assert.rejects(loadModel(other), (e: Error) => e instanceof TfvlmError && /mamba/.test(e.message));
    await assert.rejects(loadModel(path.join(other, 'nope')), TfvlmError);
    fs.rmSync(other, { recursive: true, force: true });
  });
});
