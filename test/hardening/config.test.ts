// config.json with missing, absurd or mistyped fields: loadModel and Vlm.load both refuse it with a
// TfvlmError naming config.json and the field, before any weight is read or tensor allocated.
import { describe, it, before, after } from 'node:test';
import fs from 'node:fs';
import { initBackend } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';
import { loadModel } from '../../src/models/registry.ts';
import { BrokenModel, escaped, rejectsCleanly } from './broken-model.ts';

type Edit = (c: any) => void;

/** [what, edit of the tiny-smolvlm config.json (or its whole text), field named in the message, reason]. */
const CASES: Array<[string, Edit | string, RegExp]> = [
  ['not JSON', '{"model_type": ', /cannot read config \(/],
  ['empty file', '', /cannot read config/],
  ['a JSON array', '[]', /must be a JSON object, got an array/],
  ['no model_type or architectures', (c) => { delete c.model_type; delete c.architectures; }, /model_type 'undefined' .* is not supported \(supported model_type: idefics3/],
  ['unknown model_type', (c) => { c.model_type = 'gpt9'; c.architectures = ['Gpt9ForCausalLM']; }, /model_type 'gpt9' .* is not supported/],
  ['negative hidden_size', (c) => { c.text_config.hidden_size = -64; }, /text_config\.hidden_size must be a positive integer, got -64/],
  ['zero hidden_size', (c) => { c.text_config.hidden_size = 0; }, /text_config\.hidden_size must be a positive integer, got 0/],
  ['non-integer hidden_size', (c) => { c.text_config.hidden_size = 64.5; }, /text_config\.hidden_size must be a positive integer, got 64\.5/],
  ['string hidden_size', (c) => { c.text_config.hidden_size = '64'; }, /text_config\.hidden_size must be a positive integer, got "64"/],
  ['negative intermediate_size', (c) => { c.text_config.intermediate_size = -1; }, /text_config\.intermediate_size must be a positive integer/],
  ['heads not dividing hidden_size', (c) => { c.text_config.num_attention_heads = 3; c.text_config.num_key_value_heads = 3; delete c.text_config.head_dim; },
    /text_config\.num_attention_heads must divide hidden_size \(64\)/],
  ['num_key_value_heads not dividing num_attention_heads', (c) => { c.text_config.num_key_value_heads = 3; },
    /text_config\.num_key_value_heads must divide num_attention_heads \(4\), got 3/],
  ['zero num_key_value_heads', (c) => { c.text_config.num_key_value_heads = 0; }, /text_config\.num_key_value_heads must be a positive integer/],
  ['odd head_dim', (c) => { c.text_config.head_dim = 15; }, /text_config\.head_dim must be even/],
  ['vision heads not dividing hidden_size', (c) => { c.vision_config.num_attention_heads = 5; }, /vision_config\.num_attention_heads must divide hidden_size \(32\)/],
  ['patch_size above image_size', (c) => { c.vision_config.patch_size = 65; }, /vision_config\.patch_size must be at most image_size \(64\), got 65/],
  ['zero patch_size', (c) => { c.vision_config.patch_size = 0; }, /vision_config\.patch_size must be a positive integer/],
  ['scale_factor not dividing the patch grid', (c) => { c.scale_factor = 3; }, /scale_factor must divide the patches per side/],
  ['huge vocab_size (1e12): refused, nothing allocated', (c) => { c.text_config.vocab_size = 1e12; }, /text_config\.vocab_size must be at most 2147483647, got 1000000000000/],
  ['vocab_size 1e300', (c) => { c.text_config.vocab_size = 1e300; }, /text_config\.vocab_size must be at most/],
  ['num_hidden_layers 1e9 (would build a billion-layer weight spec)', (c) => { c.text_config.num_hidden_layers = 1e9; }, /text_config\.num_hidden_layers must be at most 10000/],
  ['vision num_hidden_layers 1e9', (c) => { c.vision_config.num_hidden_layers = 1e9; }, /vision_config\.num_hidden_layers must be at most 10000/],
  ['zero max_position_embeddings', (c) => { c.text_config.max_position_embeddings = 0; }, /text_config\.max_position_embeddings must be a positive integer/],
  ['unknown hidden_act', (c) => { c.text_config.hidden_act = 'magic'; }, /text_config\.hidden_act: activation 'magic' is not supported/],
  ['unknown vision hidden_act', (c) => { c.vision_config.hidden_act = 'magic'; }, /vision_config\.hidden_act: activation 'magic' is not supported/],
  ['hidden_act a number', (c) => { c.text_config.hidden_act = 5; }, /text_config\.hidden_act must be a string, got 5/],
  ['unknown rope_scaling type', (c) => { c.text_config.rope_scaling = { type: 'yarn', factor: 2 }; }, /text_config\.rope_scaling: rope type 'yarn' is not supported/],
  ['rope_scaling a string', (c) => { c.text_config.rope_scaling = 'linear'; }, /text_config\.rope_scaling must be null or an object/],
  ['linear rope factor < 1', (c) => { c.text_config.rope_scaling = { type: 'linear', factor: 0.5 }; }, /rope_scaling\.factor must be a number ≥ 1/],
  ['negative rope_theta', (c) => { c.text_config.rope_theta = -1; }, /text_config\.rope_theta must be a positive number/],
  ['string rms_norm_eps', (c) => { c.text_config.rms_norm_eps = 'x'; }, /text_config\.rms_norm_eps must be a positive number, got "x"/],
  ['image_token_id a string', (c) => { c.image_token_id = 'x'; }, /image_token_id must be an integer, got "x"/],
  ['image_token_id outside the vocabulary', (c) => { c.image_token_id = 1e6; }, /image_token_id must be a token id below text_config\.vocab_size \(512\), got 1000000/],
  ['negative image_token_id', (c) => { c.image_token_id = -1; }, /image_token_id must be a token id below/],
  ['text_config a string', (c) => { c.text_config = 'llama'; }, /text_config must be a JSON object, got "llama"/],
  ['vision_config a number', (c) => { c.vision_config = 5; }, /vision_config must be a JSON object, got 5/],
  ['unsupported text model_type', (c) => { c.text_config.model_type = 'mistral'; }, /text_config\.model_type 'mistral' is not supported/],
  ['architectures a string', (c) => { c.architectures = 'Idefics3ForConditionalGeneration'; }, /architectures must be a list of strings/],
  ['eos_token_id list of strings', (c) => { c.text_config.eos_token_id = ['a']; }, /text_config\.eos_token_id must be an integer, a list of integers or null/],
  ['tie_word_embeddings a string', (c) => { c.tie_word_embeddings = 'yes'; }, /tie_word_embeddings must be true or false, got "yes"/],
];

describe('hostile config.json', () => {
  let model: BrokenModel;
  before(async () => {
    await initBackend();
    model = new BrokenModel();
  });
  after(() => model.remove());

  const write = (edit: Edit | string) => {
    if (typeof edit === 'string') model.set('config.json', edit);
    else model.editJson('config.json', edit);
  };

  for (const [what, edit, field] of CASES) {
    it(`${what}: loadModel and Vlm.load name config.json and the field`, async () => {
      write(edit);
      const file = new RegExp(escaped(model.file('config.json')));
      await rejectsCleanly(() => loadModel(model.dir), file, field);
      await rejectsCleanly(() => Vlm.load(model.dir), file, field);
    });
  }

  it('config.json that is JSON null', async () => {
    write('null');
    await rejectsCleanly(() => loadModel(model.dir), new RegExp(escaped(model.file('config.json'))), /must be a JSON object/);
  });

  it('no config.json at all', async () => {
    model.set('config.json', null);
    await rejectsCleanly(() => Vlm.load(model.dir), new RegExp(escaped(model.dir)), /no config\.json/);
    await rejectsCleanly(() => loadModel(model.dir), /config\.json: cannot read config \(ENOENT/);
  });

  it('config.json is a directory', async () => {
    model.set('config.json', null);
    fs.mkdirSync(model.file('config.json'));
    await rejectsCleanly(() => loadModel(model.dir), /config\.json: cannot read config \(EISDIR/);
    model.set('config.json', null);
  });
});
