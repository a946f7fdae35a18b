// Random checkpoints for any registry architecture (what bench/make-random-checkpoint writes): the
// keys and shapes the config implies, the same values single-file or sharded and whether drawn
// eagerly or lazily, and the folder loads.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { findArchitecture, loadModel } from '../../src/models/registry.ts';
import { lazyRandomTensors, randomTensors, writeRandomCheckpoint } from '../../src/models/random-weights.ts';

const CONFIGS = {
  idefics3: {
    architectures: ['Idefics3ForConditionalGeneration'], model_type: 'idefics3', image_token_id: 99, scale_factor: 3,
    vision_config: { hidden_size: 16, intermediate_size: 24, num_attention_heads: 2, num_hidden_layers: 1, image_size: 45, patch_size: 7 },
    text_config: { hidden_size: 32, intermediate_size: 48, num_attention_heads: 4, num_hidden_layers: 2, vocab_size: 100 },
  },
  llava: {
    architectures: ['LlavaForConditionalGeneration'], model_type: 'llava', image_token_index: 60,
    vision_config: { hidden_size: 16, intermediate_size: 24, num_attention_heads: 2, num_hidden_layers: 2, image_size: 28, patch_size: 14 },
    text_config: { hidden_size: 32, intermediate_size: 48, num_attention_heads: 2, num_hidden_layers: 2, vocab_size: 64 },
  },
  llama: {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 48, num_attention_heads: 4,
    num_key_value_heads: 2, num_hidden_layers: 2, vocab_size: 50, tie_word_embeddings: true,
  },
} satisfies Record<string, Record<string, unknown>>;

describe('random checkpoints for every architecture', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-random-ckpt-'));
  before(() => initBackend());
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('lazy and eager draws give the same values', () => {
    const spec = findArchitecture(CONFIGS.llava)!.weightSpec(CONFIGS.llava);
    const eager = randomTensors(spec, { seed: 4, dtype: 'BF16' });
    const lazy = lazyRandomTensors(spec, { seed: 4, dtype: 'BF16' });
    for (const [key, t] of lazy) assert.deepEqual((t.data as () => ArrayBufferView)(), eager.get(key)!.data, key);
    const again = lazyRandomTensors(spec, { seed: 4 });
    const last = [...again.values()].at(-1)!;
    assert.throws(() => (last.data as () => ArrayBufferView)(), /out of order/);
  });

  for (const [name, config] of Object.entries(CONFIGS)) {
    it(`${name}: sharded = single file, every key of the spec, and it loads`, async () => {
      const single = path.join(tmp, `${name}-single`);
      const sharded = path.join(tmp, `${name}-sharded`);
      const a = writeRandomCheckpoint(config, single, { seed: 1, dtype: 'F16' });
      const b = writeRandomCheckpoint(config, sharded, { seed: 1, dtype: 'F16', maxShardBytes: 4000 });
      assert.equal(a.files.length, 1);
      assert.ok(b.files.length > 2, `${b.files.length} shards`);
      assert.equal(a.bytes, b.bytes);
      const spec = findArchitecture(config)!.weightSpec(config);
      assert.equal(a.keys, spec.size);
      const x = Checkpoint.open(single);
      const y = Checkpoint.open(sharded);
      try {
        assert.deepEqual(y.keys().sort(), [...spec.keys()].sort());
        for (const [key, shape] of spec) {
          assert.deepEqual(y.entry(key).shape, shape);
          assert.equal(y.entry(key).dtype, 'F16');
          assert.deepEqual(y.readArray(key), x.readArray(key), key);
        }
      } finally {
        x.close();
        y.close();
      }
      const model = await loadModel(sharded);
      model.dispose();
    });
  }

  it('a config of no known architecture is refused by name', () => {
    assert.throws(() => writeRandomCheckpoint({ model_type: 'mamba' }, path.join(tmp, 'x')), (e: unknown) =>
      e instanceof TfvlmError && /model_type 'mamba'/.test(e.message));
  });
});
