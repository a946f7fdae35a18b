// Broken tokenizer / processor / generation files in a model folder: Vlm.load names the file (with
// its folder) and the field. (test/tokenizer/errors.test.ts covers loadTokenizer field by field.)
import { describe, it, before, after } from 'node:test';
import fs from 'node:fs';
import { initBackend } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { readGenerationConfig } from '../../src/generation/generation-config.ts';
import { BrokenModel, escaped, rejectsCleanly, rejectsWith } from './broken-model.ts';

// Vlm.load loads the model and the processor in parallel and does not dispose the model when the
// processor or generation_config.json fails (src/engine.ts), so these go through VlmProcessor.load /
// loadTokenizer / readGenerationConfig for the no-leak check, and through Vlm.load for the message.
const ENGINE_LEAK = 'src/engine.ts Vlm.load keeps the loaded model when VlmProcessor.load or readGenerationConfig throws (59 tensors left)';

describe('hostile tokenizer and processor files', () => {
  let model: BrokenModel;
  const tok = JSON.parse(fs.readFileSync(new BrokenModel().original('tokenizer.json'), 'utf8'));
  const inFolder = (name: string) => new RegExp(escaped(model.file(name)));

  before(async () => {
    await initBackend();
    model = new BrokenModel();
  });
  after(() => model.remove());

  const TOKENIZER_JSON: Array<[string, string | null, RegExp]> = [
    ['not JSON', 'nope', /not valid JSON/],
    ['truncated', JSON.stringify(tok).slice(0, 1000), /not valid JSON/],
    ['empty', '', /not valid JSON/],
    ['a JSON array', '[]', /must be a JSON object/],
    ['missing model', JSON.stringify({ ...tok, model: undefined }), /field "model" is missing or not an object/],
    ['model a string', JSON.stringify({ ...tok, model: 'BPE' }), /field "model" is missing or not an object/],
    ['vocab a string', JSON.stringify({ ...tok, model: { ...tok.model, vocab: 'x' } }), /field "model\.vocab" is missing or not an object/],
    ['merges of numbers', JSON.stringify({ ...tok, model: { ...tok.model, merges: [1, 2] } }), /field "model\.merges\[0\]" must be "a b"/],
    ['added token id a string', JSON.stringify({ ...tok, added_tokens: [{ id: 'x', content: 'a' }] }), /field "added_tokens\[0\]" must have an integer "id"/],
    ['unknown normalizer type', JSON.stringify({ ...tok, normalizer: { type: 'Weird' } }), /cannot build the tokenizer \(Unknown Normalizer type: Weird\)/],
    ['unknown pre_tokenizer type', JSON.stringify({ ...tok, pre_tokenizer: { type: 'Weird' } }), /Unknown PreTokenizer type: Weird/],
    ['invalid Split regex', JSON.stringify({ ...tok, pre_tokenizer: { type: 'Split', pattern: { Regex: '(' }, behavior: 'Isolated' } }), /Invalid regular expression/],
    ['a directory', null, /is a directory, expected a file/],
  ];
  for (const [what, content, field] of TOKENIZER_JSON) {
    it(`tokenizer.json ${what}`, async () => {
      model.set('tokenizer.json', content);
      if (content === null) fs.mkdirSync(model.file('tokenizer.json'));
      await rejectsCleanly(() => loadTokenizer(model.dir), inFolder('tokenizer.json'), field);
      await rejectsCleanly(() => VlmProcessor.load(model.dir), inFolder('tokenizer.json'), field);
      model.restoreAll();
    });
  }

  const cfg = JSON.parse(fs.readFileSync(new BrokenModel().original('tokenizer_config.json'), 'utf8'));
  const TOKENIZER_CONFIG: Array<[string, string | null, RegExp]> = [
    ['missing', null, /file not found/],
    ['not JSON', '{', /not valid JSON/],
    ['a JSON array', '[1]', /must be a JSON object/],
    ['bos_token a number', JSON.stringify({ ...cfg, bos_token: 5 }), /field "bos_token" must be a string or an object/],
    ['padding_side "middle"', JSON.stringify({ ...cfg, padding_side: 'middle' }), /field "padding_side" must be "left" or "right"/],
    ['chat_template a number', JSON.stringify({ ...cfg, chat_template: 5 }), /field "chat_template" must be a string or a list/],
    ['extra_special_tokens of numbers', JSON.stringify({ ...cfg, extra_special_tokens: { image_token: 5 } }), /field "extra_special_tokens\.image_token"/],
  ];
  for (const [what, content, field] of TOKENIZER_CONFIG) {
    it(`tokenizer_config.json ${what}`, async () => {
      model.set('tokenizer_config.json', content);
      await rejectsCleanly(() => VlmProcessor.load(model.dir), inFolder('tokenizer_config.json'), field);
      model.restoreAll();
    });
  }

  const OTHER: Array<[string, string, RegExp]> = [
    ['chat_template.json', '{', /not valid JSON/],
    ['chat_template.json', '{"chat_template": 5}', /field "chat_template" must be a string or a list/],
    ['preprocessor_config.json', '{', /invalid JSON/],
    ['preprocessor_config.json', '{"image_processor_type": "Foo"}', /unsupported image_processor_type "Foo"/],
    ['processor_config.json', '{"image_seq_len": -3}', /field "image_seq_len" missing or not a positive integer/],
  ];
  for (const [file, content, field] of OTHER) {
    it(`${file}: ${content}`, async () => {
      model.set(file, content);
      await rejectsCleanly(() => VlmProcessor.load(model.dir), inFolder(file), field);
      model.restoreAll();
    });
  }

  const pre = JSON.parse(fs.readFileSync(new BrokenModel().original('preprocessor_config.json'), 'utf8'));
  const PREPROCESSOR: Array<[Record<string, unknown>, RegExp]> = [
    [{ size: 'big' }, /field "size" must be an integer or an object/],
    [{ size: { longest_edge: -1 } }, /field "size" must hold positive integers/],
    [{ max_image_size: { longest_edge: 0 } }, /field "max_image_size" must hold positive integers/],
    [{ max_image_size: { longest_edge: 1e9 } }, /field "max_image_size" must hold sizes of at most 4096 pixels/],
    [{ image_mean: [1] }, /field "image_std" must have as many entries as image_mean/],
    [{ image_std: [0, 0, 0] }, /field "image_std" must not contain 0/],
    [{ rescale_factor: 'x' }, /field "rescale_factor" must be a finite number/],
    [{ resample: 99 }, /field "resample" must be a PIL resampling filter/],
    [{ do_resize: 'yes' }, /field "do_resize" must be true or false/],
  ];
  for (const [patch, field] of PREPROCESSOR) {
    it(`preprocessor_config.json ${JSON.stringify(patch)}`, async () => {
      model.set('preprocessor_config.json', JSON.stringify({ ...pre, ...patch }));
      await rejectsCleanly(() => VlmProcessor.load(model.dir), inFolder('preprocessor_config.json'), field);
      model.restoreAll();
    });
  }

  it('generation_config.json: bad JSON or values name the file at load', async () => {
    for (const [content, field] of [
      ['{', /not valid generation config JSON/],
      ['{"temperature": "hot"}', /temperature must be a finite number ≥ 0, got hot/],
      ['{"top_p": 2}', /top_p must be in \(0, 1\]/],
      ['{"eos_token_id": ["a"]}', /eos_token_id must be a token id, a list of token ids or null/],
      ['{"do_sample": "yes"}', /do_sample must be true or false/],
    ] as const) {
      model.set('generation_config.json', content);
      await rejectsCleanly(() => readGenerationConfig(model.dir), inFolder('generation_config.json'), field);
      await rejectsWith(() => Vlm.load(model.dir), inFolder('generation_config.json'), field);
    }
    model.restoreAll();
  });

  it('Vlm.load gives the same messages for broken tokenizer files', async () => {
    model.set('tokenizer.json', '[]');
    await rejectsWith(() => Vlm.load(model.dir), inFolder('tokenizer.json'), /must be a JSON object/);
    model.set('tokenizer_config.json', '{');
    await rejectsWith(() => Vlm.load(model.dir), inFolder('tokenizer_config.json'), /not valid JSON/);
    model.restoreAll();
  });

  it('Vlm.load leaves no tensors when the processor files are broken', async () => {
    model.set('tokenizer.json', '[]');
    await rejectsCleanly(() => Vlm.load(model.dir), inFolder('tokenizer.json'));
    model.restoreAll();
  });
});
