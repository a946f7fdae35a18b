// Weights that disagree with config.json: one TfvlmError naming the weight file and listing every
// missing / unexpected / wrong-shape / wrong-dtype key, thrown before any tensor is created.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { initBackend } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';
import { SafetensorsFile, writeSafetensors, type RawTensor } from '../../src/io/safetensors.ts';
import { loadModel } from '../../src/models/registry.ts';
import { BrokenModel, escaped, rejectsCleanly } from './broken-model.ts';

const Q = 'model.text_model.layers.0.self_attn.q_proj.weight';
const f32 = (shape: number[]): RawTensor => ({ dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

describe('weights that disagree with the config', () => {
  let model: BrokenModel;
  const original = new Map<string, RawTensor>();
  const weightsFile = () => new RegExp(`weights in ${escaped(model.file('model.safetensors'))} do not match the config`);

  before(async () => {
    await initBackend();
    model = new BrokenModel();
    const st = SafetensorsFile.open(model.original('model.safetensors'));
    for (const k of st.keys()) {
      const e = st.entry(k);
      original.set(k, { dtype: e.dtype, shape: e.shape, data: st.readBytes(k) });
    }
    st.close();
  });
  after(() => model.remove());

  const withWeights = (edit: (m: Map<string, RawTensor>) => void) => {
    const m = new Map(original);
    edit(m);
    model.set('model.safetensors', null);
    writeSafetensors(model.file('model.safetensors'), m);
  };

  it('one wrong shape', async () => {
    withWeights((m) => m.set(Q, f32([64, 32])));
    await rejectsCleanly(() => loadModel(model.dir), weightsFile(), /wrong shape \(1\):\n\s+model\.text_model\.layers\.0\.self_attn\.q_proj\.weight: checkpoint \[64, 32\], expected \[64, 64\]/);
  });

  it('several wrong, one missing, one extra: all listed in one error (also through Vlm.load)', async () => {
    withWeights((m) => {
      m.set(Q, f32([64, 32]));
      m.set('lm_head.weight', f32([500, 64]));
      m.delete('model.text_model.norm.weight');
      m.set('extra.weight', f32([2]));
    });
    for (const load of [() => loadModel(model.dir), () => Vlm.load(model.dir)]) {
      const msg = await rejectsCleanly(load, weightsFile(), /missing \(1\):\n\s+model\.text_model\.norm\.weight \[64\]/,
        /unexpected \(1\):\n\s+extra\.weight/, /wrong shape \(2\)/, /lm_head\.weight: checkpoint \[500, 64\], expected \[512, 64\]/);
      assert.match(msg, /q_proj\.weight: checkpoint \[64, 32\]/);
    }
  });

  it('an integer or bool tensor where a float weight belongs', async () => {
    withWeights((m) => {
      m.set(Q, { dtype: 'I32', shape: [64, 64], data: new Int32Array(64 * 64) });
      m.set('lm_head.weight', { dtype: 'BOOL', shape: [512, 64], data: new Uint8Array(512 * 64) });
    });
    await rejectsCleanly(() => loadModel(model.dir), weightsFile(), /wrong dtype \(2\):/, /q_proj\.weight: I32, expected a float dtype/, /lm_head\.weight: BOOL, expected a float dtype/);
  });

  it('flattened and 0-d weights', async () => {
    withWeights((m) => {
      m.set(Q, f32([64 * 64]));
      m.set('lm_head.weight', f32([]));
    });
    await rejectsCleanly(() => loadModel(model.dir), weightsFile(), /q_proj\.weight: checkpoint \[4096\], expected \[64, 64\]/, /lm_head\.weight: checkpoint \[\], expected \[512, 64\]/);
  });

  it('a checkpoint with no tensors lists the first missing keys and the count', async () => {
    withWeights((m) => m.clear());
    await rejectsCleanly(() => loadModel(model.dir), weightsFile(), /missing \(59\):/, /… and 39 more/);
  });

  it('F16 weights of the right shapes load (widened)', async () => {
    withWeights((m) => m.set(Q, { dtype: 'F16', shape: [64, 64], data: new Uint16Array(64 * 64) }));
    (await loadModel(model.dir)).dispose();
  });

  it('weight file missing, a directory, garbage, truncated', async () => {
    model.set('model.safetensors', null);
    await rejectsCleanly(() => loadModel(model.dir), new RegExp(escaped(model.dir)), /looked for model\.safetensors\.index\.json, model\.safetensors/);
    fs.mkdirSync(model.file('model.safetensors'));
    await rejectsCleanly(() => loadModel(model.dir), new RegExp(`safetensors ${escaped(model.file('model.safetensors'))}: not a regular file`));
    model.set('model.safetensors', 'garbage');
    await rejectsCleanly(() => loadModel(model.dir), /model\.safetensors: file is 7 bytes, shorter than the 8-byte header length/);
    model.set('model.safetensors', fs.readFileSync(model.original('model.safetensors')).subarray(0, 200_000));
    await rejectsCleanly(() => loadModel(model.dir), /model\.safetensors: tensor '[^']+': data_offsets \[\d+, \d+\] run past the data area/);
  });

  it('a shard index naming a missing shard, or with a bad weight_map', async () => {
    model.restoreAll();
    model.set('model.safetensors.index.json', '{"weight_map": {"lm_head.weight": "model-00002.safetensors"}}');
    await rejectsCleanly(() => loadModel(model.dir), /model\.safetensors\.index\.json: shard file not found .*model-00002\.safetensors \(e\.g\. for tensor 'lm_head\.weight'\)/);
    model.set('model.safetensors.index.json', '{"weight_map": 5}');
    await rejectsCleanly(() => loadModel(model.dir), /model\.safetensors\.index\.json: 'weight_map' is not an object/);
    model.set('model.safetensors.index.json', '{"weight_map": ');
    await rejectsCleanly(() => loadModel(model.dir), /model\.safetensors\.index\.json: cannot read as JSON/);
    model.set('model.safetensors.index.json', null);
  });
});
