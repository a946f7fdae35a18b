import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/paths.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { TfvlmError } from '../../src/errors.ts';

const isTfvlm = (re: RegExp) => (e: Error) => e instanceof TfvlmError && re.test(e.message);

describe('tokenizer loading errors', () => {
  let dir: string;
  const good = JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'tokenizer.json'), 'utf8'));
  const goodConfig = fs.readFileSync(fixture('tiny-smolvlm', 'tokenizer_config.json'), 'utf8');
  const write = (name: string, value: unknown) =>
    fs.writeFileSync(path.join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  const withModel = (patch: Record<string, unknown>) => ({ ...good, model: { ...good.model, ...patch } });

  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-tok-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('missing folder, a file instead of a folder, missing files', async () => {
    await assert.rejects(loadTokenizer(path.join(dir, 'nope')), isTfvlm(/tokenizer folder not found/));
    write('x.txt', 'x');
    await assert.rejects(loadTokenizer(path.join(dir, 'x.txt')), isTfvlm(/expected a folder/));
    await assert.rejects(loadTokenizer(dir), isTfvlm(/tokenizer\.json: file not found/));
    write('tokenizer.json', good);
    await assert.rejects(loadTokenizer(dir), isTfvlm(/tokenizer_config\.json: file not found/));
    write('tokenizer_config.json', goodConfig);
    assert.equal((await loadTokenizer(dir)).vocabSize, 512);
  });

  it('malformed tokenizer.json: each names the file and the field', async () => {
    write('tokenizer_config.json', goodConfig);
    const cases: Array<[unknown, RegExp]> = [
      [JSON.stringify(good).slice(0, 500), /tokenizer\.json: not valid JSON/],
      ['', /tokenizer\.json: not valid JSON/],
      [[1, 2], /tokenizer\.json: must be a JSON object/],
      [{ ...good, model: undefined }, /field "model" is missing/],
      [withModel({ type: 'Magic' }), /field "model\.type" "Magic" is not supported/],
      [withModel({ vocab: [1, 2] }), /field "model\.vocab" is missing or not an object/],
      [withModel({ vocab: { a: 'x' } }), /field "model\.vocab" maps "a" to "x"/],
      [withModel({ merges: 'a b' }), /field "model\.merges" must be a list/],
      [withModel({ merges: ['ab'] }), /field "model\.merges\[0\]" must be "a b" or \["a", "b"\]/],
      [withModel({ merges: [...good.model.merges, ['Ġ', 'zz']] }), /field "model\.merges\[\d+\]" uses "zz", which is not in "model\.vocab"/],
      [{ ...good, added_tokens: [{ content: '<x>' }] }, /field "added_tokens\[0\]" must have an integer "id"/],
      [{ ...good, added_tokens: {} }, /field "added_tokens" must be a list/],
      [{ ...good, decoder: 'ByteLevel' }, /field "decoder" must be an object or null/],
      [withModel({ type: 'Unigram', vocab: {} }), /"model\.vocab" must be a list of \[piece, score\]/],
    ];
    for (const [value, re] of cases) {
      write('tokenizer.json', value);
      await assert.rejects(loadTokenizer(dir), isTfvlm(re), String(re));
    }
  });

  it('malformed tokenizer_config.json / special_tokens_map.json / added_tokens.json', async () => {
    write('tokenizer.json', good);
    const cfg = JSON.parse(goodConfig);
    write('tokenizer_config.json', '{"bos_token": ');
    await assert.rejects(loadTokenizer(dir), isTfvlm(/tokenizer_config\.json: not valid JSON/));
    write('tokenizer_config.json', []);
    await assert.rejects(loadTokenizer(dir), isTfvlm(/tokenizer_config\.json: must be a JSON object/));
    write('tokenizer_config.json', { ...cfg, padding_side: 'middle' });
    await assert.rejects(loadTokenizer(dir), isTfvlm(/field "padding_side" must be "left" or "right"/));
    write('tokenizer_config.json', { ...cfg, eos_token: 5 });
    await assert.rejects(loadTokenizer(dir), isTfvlm(/field "eos_token" must be a string/));
    const { added_tokens_decoder: _drop, ...legacy } = cfg;
    write('tokenizer_config.json', legacy);
    write('special_tokens_map.json', '[]');
    await assert.rejects(loadTokenizer(dir), isTfvlm(/special_tokens_map\.json: must be a JSON object/));
    write('special_tokens_map.json', { eos_token: { content: '<|im_end|>' } });
    write('added_tokens.json', { '<new>': -1 });
    await assert.rejects(loadTokenizer(dir), isTfvlm(/added_tokens\.json: id of "<new>"/));
    // legacy layout: special_tokens_map.json overrides tokenizer_config.json, added_tokens.json adds tokens
    write('added_tokens.json', { '<new>': 512 });
    const tok = await loadTokenizer(dir);
    assert.equal(tok.eosTokenId, 2);
    assert.deepEqual(tok.encode('a<new>b').includes(512), true);
    fs.rmSync(path.join(dir, 'special_tokens_map.json'));
    fs.rmSync(path.join(dir, 'added_tokens.json'));
  });

  it('padding without a pad token is a clear error; encode of a non-string too', async () => {
    write('tokenizer.json', good);
    const { pad_token: _p, ...noPad } = JSON.parse(goodConfig);
    write('tokenizer_config.json', noPad);
    const tok = await loadTokenizer(dir);
    assert.throws(() => tok.encodeBatch(['a', 'abc']), isTfvlm(/sets no "pad_token"/));
    assert.deepEqual(tok.encodeBatch(['abc']).input_ids.length, 1);
    assert.throws(() => tok.encode(3 as unknown as string), isTfvlm(/encode expects a string/));
  });
});
