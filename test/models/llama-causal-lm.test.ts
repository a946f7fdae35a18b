// Text-only Llama checkpoints (LlamaForCausalLM: SmolLM2, Vicuna, TinyLlama) on the decoder the
// image-text models use. The checkpoint is tiny-smolvlm's text model saved in LlamaForCausalLM's layout
// (`model.*`, `lm_head`), so its logits must equal tiny-smolvlm's on the same text-only ids (the
// decoder those goldens check); with tied embeddings lm_head is absent and read from embed_tokens.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';
import { SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.ts';
import { LlamaForCausalLM } from '../../src/models/llama/causal-lm.ts';
import { Capture, Idefics3Model, loadModel } from '../../src/models/index.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const SOURCE = fixture('tiny-smolvlm');
const TEXT_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt', 'chat_template.json', 'generation_config.json'];

/** tiny-smolvlm's text model as a LlamaForCausalLM folder (optionally with tied embeddings). */
function writeTextOnly(dir: string, tied: boolean): void {
  fs.mkdirSync(dir, { recursive: true });
  const smol = JSON.parse(fs.readFileSync(path.join(SOURCE, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    ...smol.text_config, model_type: 'llama', architectures: ['LlamaForCausalLM'], tie_word_embeddings: tied,
  }));
  for (const f of TEXT_FILES) fs.copyFileSync(path.join(SOURCE, f), path.join(dir, f));
  const src = SafetensorsFile.open(path.join(SOURCE, 'model.safetensors'));
  const tensors = new Map<string, tf.Tensor>();
  for (const key of src.keys()) {
    if (key.startsWith('model.text_model.')) tensors.set(`model.${key.slice('model.text_model.'.length)}`, src.readTensor(key));
    if (key === 'lm_head.weight' && !tied) tensors.set(key, src.readTensor(key));
  }
  src.close();
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' }, { floatDType: 'BF16' });
  tf.dispose([...tensors.values()]);
}

describe('LlamaForCausalLM (text-only Llama)', () => {
  let tmp: string;
  before(async () => {
    await initBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-llama-'));
    writeTextOnly(path.join(tmp, 'llama'), false);
    writeTextOnly(path.join(tmp, 'llama-tied'), true);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('loads through the registry and gives the logits of the same decoder inside tiny-smolvlm', async () => {
    const llama = await loadModel(path.join(tmp, 'llama'), { weights: 'float32' });
    assert.ok(llama instanceof LlamaForCausalLM);
    const smol = await Idefics3Model.load(SOURCE, { weights: 'float32' });
    const ids = tf.tensor2d([[1, 300, 301, 17, 42, 2, 99]], [1, 7], 'int32');
    const a = llama.forward({ input_ids: ids }).logits;
    const b = smol.forward({ input_ids: ids }).logits;
    assert.deepEqual(a.shape, [1, 7, 512]);
    assertClose(a.dataSync() as Float32Array, b.dataSync() as Float32Array, TOLERANCE.exact, 'logits');
    tf.dispose([ids, a, b]);
    assert.deepEqual(llama.slots.map((s) => s.key).slice(0, 2), ['model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight']);
    llama.dispose();
    smol.dispose();
  });

  it('with tied embeddings, lm_head is read from embed_tokens', async () => {
    const tied = await LlamaForCausalLM.load(path.join(tmp, 'llama-tied'), { weights: 'float32' });
    const ids = tf.tensor2d([[1, 300, 301]], [1, 3], 'int32');
    const capture = new Capture(['text.norm']);
    const logits = tied.forward({ input_ids: ids }, { capture }).logits;
    // logits = norm(h) · embed_tokensᵀ
    const expected = tf.tidy(() => tf.matMul(tf.reshape(capture.get('text.norm')!, [3, 64]), tied.text.weights.embed_tokens.table!, false, true));
    assertClose(logits.dataSync() as Float32Array, expected.dataSync() as Float32Array, TOLERANCE.float32);
    assert.ok(!tied.slots.some((s) => s.key === 'lm_head.weight'));
    tf.dispose([ids, logits, expected]);
    capture.dispose();
    tied.dispose();
  });

  it('generates from chat messages through Vlm and the CLI; images are refused by name', async () => {
    const vlm = await Vlm.load(path.join(tmp, 'llama'));
    const out = await vlm.generate({ messages: [{ role: 'user', content: 'Hello there' }] }, { maxNewTokens: 4, doSample: false, eosTokenIds: [] });
    assert.equal(out.generatedIds.length, 4);
    assert.ok(out.prompt.includes('Hello there'));
    await assert.rejects(vlm.generate({ messages: [{ role: 'user', content: [{ type: 'image', image: fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png') }] }] }),
      /a text-only model takes no images or videos/);
    const chat = vlm.conversation();
    const first = await chat.say('Hi', { maxNewTokens: 2 });
    const second = await chat.say('Again', { maxNewTokens: 2 });
    assert.ok(second.input_ids.length - chat.lastPrefillTokens >= first.input_ids.length,
      `the first turn's ${first.input_ids.length} prompt tokens come from the cache (prefilled ${chat.lastPrefillTokens} of ${second.input_ids.length})`);
    chat.dispose();
    vlm.dispose();
    const bin = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
    const r = spawnSync(process.execPath, [bin, 'generate', '--model', path.join(tmp, 'llama'), '--prompt', 'Hello', '--max-new-tokens', '3', '--json', '-q'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).generated_ids.length, 3);
  });
});
