// Quantized weights end to end on the tiny fixtures: quantizing at load in the kernels equals the
// float32 reference of the same dequantized weights; `quantizeCheckpoint` writes a folder in
// mlx-vlm's format that loads to the very same model; MLX-named float checkpoints load; broken
// quantized folders are refused naming the key or field.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend, tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { SafetensorsFile, writeSafetensors, type RawTensor } from '../../src/io/safetensors.ts';
import { loadModel, type LoadedModel } from '../../src/models/index.ts';
import { IDEFICS3_MLX_NAMES } from '../../src/models/idefics3/mlx-names.ts';
import type { ModelLoadOptions } from '../../src/models/load-options.ts';
import { quantizeCheckpoint } from '../../src/models/quantize-checkpoint.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const IDS = [1, 5, 9, 22, 7, 3, 11, 40];

async function logits(dir: string, options: ModelLoadOptions): Promise<Float32Array> {
  const model: LoadedModel = await loadModel(dir, options);
  try {
    const ids = tf.tensor2d([IDS], [1, IDS.length], 'int32');
    const { logits: out } = model.forward({ input_ids: ids });
    const values = Float32Array.from(out.dataSync() as Float32Array);
    tf.dispose([ids, out]);
    return values;
  } finally {
    model.dispose();
  }
}

/** Last-position logits through the KV-cache path (matrix–vector kernels). */
async function decodeLogits(dir: string, options: ModelLoadOptions): Promise<Float32Array> {
  const model: LoadedModel = await loadModel(dir, options);
  try {
    const ids = tf.tensor2d([IDS], [1, IDS.length], 'int32');
    const cache = model.createCache();
    const prompt = tf.slice(ids, [0, 0], [1, IDS.length - 1]);
    const first = model.forward({ input_ids: prompt }, { cache, lastOnly: true });
    const last = tf.slice(ids, [0, IDS.length - 1], [1, 1]);
    const { logits: out } = model.forward({ input_ids: last }, { cache, lastOnly: true });
    const values = Float32Array.from(out.dataSync() as Float32Array);
    tf.dispose([ids, prompt, first.logits, last, out]);
    for (const c of cache) c.dispose();
    return values;
  } finally {
    model.dispose();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('quantized weights on the tiny fixtures', () => {
  let tmp: string;
  before(async () => {
    await initBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-quant-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const name of ['tiny-smolvlm', 'tiny-llava']) {
    for (const [dtype, groupSize] of [['q8', 32], ['q4', 64]] as const) {
      it(`${name} ${dtype}/${groupSize}: the kernels equal the float32 reference of the same weights, prefill and decode`, async () => {
        const before = tf.memory().numTensors;
        const dir = fixture(name);
        const stored = await logits(dir, { dtype, groupSize });
        const reference = await logits(dir, { dtype, groupSize, weights: 'float32' });
        assertClose(stored, reference, TOLERANCE.float32, `${name} ${dtype} prefill`);
        assertClose(await decodeLogits(dir, { dtype, groupSize }), await decodeLogits(dir, { dtype, groupSize, weights: 'float32' }),
          TOLERANCE.float32, `${name} ${dtype} decode`);
        // Quantizing changes the answer, by more at 4 bits than at 8.
        const full = await logits(dir, {});
        assert.ok(maxAbsDiff(stored, full) > 0, 'quantized logits differ from full precision');
        assert.equal(tf.memory().numTensors, before);
      });
    }
  }

  it('q8 changes the logits less than q4', async () => {
    const dir = fixture('tiny-smolvlm');
    const full = await logits(dir, {});
    const q8 = maxAbsDiff(await logits(dir, { dtype: 'q8', groupSize: 32 }), full);
    const q4 = maxAbsDiff(await logits(dir, { dtype: 'q4', groupSize: 32 }), full);
    assert.ok(q8 < q4 / 4, `q8 ${q8} vs q4 ${q4}`);
  });

  for (const name of ['tiny-smolvlm', 'tiny-llava']) {
    it(`${name}: quantize → save → load gives the logits of quantizing at load, in mlx-vlm's format`, async () => {
      const out = path.join(tmp, `${name}-q4`);
      const result = quantizeCheckpoint(fixture(name), out, { bits: 4, groupSize: 32 });
      const vision = result.quantized.filter((p) => /vision/.test(p));
      assert.ok(vision.length > 0 && result.quantized.length > vision.length);
      assert.ok(result.kept.some((k) => k.endsWith('patch_embedding.weight')), 'the patch convolution stays as stored');
      const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      // The vision tower's linears at 8 bits, as per-layer entries (MLX's format for mixed bits).
      assert.deepEqual(config.quantization, {
        group_size: 32, bits: 4, mode: 'affine', ...Object.fromEntries(vision.map((p) => [p, { group_size: 32, bits: 8 }])),
      });
      assert.deepEqual(config.quantization_config, config.quantization);
      for (const f of ['tokenizer.json', 'preprocessor_config.json', 'README.md']) assert.ok(fs.existsSync(path.join(out, f)), f);
      const file = SafetensorsFile.open(path.join(out, 'model.safetensors'));
      try {
        assert.deepEqual(file.metadata, { format: 'mlx' });
        const q = result.quantized[0];
        assert.equal(file.entry(`${q}.weight`).dtype, 'U32');
        const conv = file.keys().find((k) => k.endsWith('patch_embedding.weight'))!;
        const shape = file.entry(conv).shape;
        assert.equal(shape[1], shape[2], `${conv} is [O, kH, kW, I]: ${shape}`);
      } finally {
        file.close();
      }
      assert.deepEqual(await logits(out, {}), await logits(fixture(name), { dtype: 'q4', groupSize: 32 }));
    });
  }

  it('idefics3 keys are renamed as mlx-vlm names them, and back', () => {
    const pairs = [
      ['model.text_model.layers.0.mlp.up_proj.weight', 'language_model.layers.0.mlp.up_proj.weight'],
      ['lm_head.weight', 'language_model.lm_head.weight'],
      ['model.vision_model.embeddings.patch_embedding.weight', 'vision_model.embeddings.patch_embedding.weight'],
      ['model.connector.modality_projection.proj.weight', 'connector.modality_projection.proj.weight'],
    ] as const;
    for (const [hf, mlx] of pairs) {
      assert.equal(IDEFICS3_MLX_NAMES.mlx(hf), mlx);
      assert.equal(IDEFICS3_MLX_NAMES.hf(mlx), hf);
    }
  });

  it('a float checkpoint under MLX names with channels-last convs loads equal to the transformers one', async () => {
    const out = path.join(tmp, 'mlx-float');
    fs.mkdirSync(out);
    const src = fixture('tiny-smolvlm');
    for (const f of fs.readdirSync(src)) {
      if (!f.endsWith('.safetensors') && fs.statSync(path.join(src, f)).isFile()) fs.copyFileSync(path.join(src, f), path.join(out, f));
    }
    const ckpt = Checkpoint.open(src);
    const tensors = new Map<string, RawTensor>();
    try {
      for (const key of ckpt.keys()) {
        const e = ckpt.entry(key);
        let data = ckpt.readArray(key) as Float32Array;
        let shape = e.shape;
        if (e.shape.length === 4) {
          const [O, I, k] = e.shape;
          const t = tf.tensor4d(data, [O!, I!, k!, k!]); // 4-D: checked above
          const hwc = tf.transpose(t, [0, 2, 3, 1]);
          data = Float32Array.from(hwc.dataSync() as Float32Array);
          shape = hwc.shape;
          tf.dispose([t, hwc]);
        }
        tensors.set(IDEFICS3_MLX_NAMES.mlx(key), { dtype: 'F32', shape, data });
      }
    } finally {
      ckpt.close();
    }
    writeSafetensors(path.join(out, 'model.safetensors'), tensors, { format: 'mlx' });
    assert.deepEqual(await logits(out, {}), await logits(src, {}));
  });

  describe('broken quantized folders are refused naming what is wrong', () => {
    let good: string;
    before(() => {
      good = path.join(tmp, 'good-q8');
      quantizeCheckpoint(fixture('tiny-smolvlm'), good, { bits: 8, groupSize: 32 });
    });

    const copyWith = (label: string, edit: (dir: string) => void) => {
      const dir = path.join(tmp, label);
      fs.cpSync(good, dir, { recursive: true });
      edit(dir);
      return dir;
    };
    const editConfig = (dir: string, f: (c: Record<string, unknown>) => void) => {
      const file = path.join(dir, 'config.json');
      const c = JSON.parse(fs.readFileSync(file, 'utf8'));
      f(c);
      fs.writeFileSync(file, JSON.stringify(c));
    };
    /** Rewrites model.safetensors with `edit` applied to its tensors. */
    const editTensors = (dir: string, edit: (t: Map<string, RawTensor>) => void) => {
      const file = path.join(dir, 'model.safetensors');
      const f = SafetensorsFile.open(file);
      const tensors = new Map<string, RawTensor>();
      try {
        for (const k of f.keys()) tensors.set(k, { dtype: f.entry(k).dtype, shape: f.entry(k).shape, data: f.readBytes(k) });
      } finally {
        f.close();
      }
      edit(tensors);
      writeSafetensors(file, tensors, { format: 'mlx' });
    };
    const refuses = async (dir: string, pattern: RegExp) => {
      const before = tf.memory().numTensors;
      await assert.rejects(loadModel(dir), (e: unknown) => e instanceof TfvlmError && pattern.test(e.message));
      assert.equal(tf.memory().numTensors, before);
    };

    it('scales of the wrong shape', async () => {
      const key = 'language_model.layers.0.mlp.down_proj.scales';
      const dir = copyWith('bad-scales', (d) => editTensors(d, (t) => {
        const s = t.get(key)!;
        const [rows, cols] = s.shape;
        assert.ok(rows !== undefined && cols !== undefined, `${key} is not 2-D`);
        t.set(key, { ...s, shape: [rows / 2, cols * 2] });
      }));
      await refuses(dir, /wrong shape[\s\S]*language_model\.layers\.0\.mlp\.down_proj\.scales: checkpoint \[32, 8\], expected \[64, 4\]/);
    });

    it('bits 3', async () => {
      const dir = copyWith('bits-3', (d) => editConfig(d, (c) => { c.quantization = { group_size: 32, bits: 3 }; delete c.quantization_config; }));
      await refuses(dir, /quantization.*bits 3 is not supported \(4 or 8\)/);
    });

    it('a group size that does not divide a row', async () => {
      const dir = copyWith('group-128', (d) => editConfig(d, (c) => { c.quantization = { group_size: 128, bits: 8 }; delete c.quantization_config; }));
      await refuses(dir, /model\.safetensors: [\w.]+: a row of (32|64) values is not a whole number of groups of 128/);
    });

    it('codes stored as floats', async () => {
      const key = 'language_model.layers.1.self_attn.k_proj.weight';
      const dir = copyWith('f32-codes', (d) => editTensors(d, (t) => { t.set(key, { ...t.get(key)!, dtype: 'F32' }); }));
      await refuses(dir, /wrong dtype[\s\S]*language_model\.layers\.1\.self_attn\.k_proj\.weight: F32, expected U32 quantized codes/);
    });

    it('a missing biases tensor', async () => {
      const key = 'language_model.embed_tokens.biases';
      const dir = copyWith('no-biases', (d) => editTensors(d, (t) => { t.delete(key); }));
      await refuses(dir, /missing[\s\S]*language_model\.embed_tokens\.biases/);
    });

    it('a non-finite scale', async () => {
      const key = 'language_model.layers.0.mlp.up_proj.scales';
      const dir = copyWith('nan-scale', (d) => editTensors(d, (t) => {
        const s = t.get(key)!;
        const values = new Float32Array((s.data as Uint8Array).slice().buffer);
        values[5] = NaN;
        t.set(key, { ...s, data: values });
      }));
      await refuses(dir, /language_model\.layers\.0\.mlp\.up_proj' has a non-finite scale or bias/);
    });

    it('quantizing an already quantized folder', () => {
      assert.throws(() => quantizeCheckpoint(good, path.join(tmp, 'twice'), { bits: 4, groupSize: 64 }),
        (e: unknown) => e instanceof TfvlmError && /already quantized/.test(e.message));
    });
  });

  it('dtype and groupSize are checked', async () => {
    await assert.rejects(loadModel(fixture('tiny-smolvlm'), { dtype: 'q3' as never }), /dtype must be one of auto, q8, q4, got 'q3'/);
    await assert.rejects(loadModel(fixture('tiny-smolvlm'), { dtype: 'q4', groupSize: 48 }), /groupSize 48 is not supported/);
  });
});

