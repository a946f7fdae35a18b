// A hand-made Llama-style tokenizer.json (the layout of llava-1.5 / Llama-2 `tokenizer.json`: Prepend + Replace
// normalizer, BPE with byte_fallback, decoder Replace ▁ → " ", ByteFallback, Fuse, Strip) and its Metaspace variant.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer, createStreamDecoder, resolveSettings } from '../../src/tokenizer/index.ts';

const pieces = ['▁', 'H', 'e', 'l', 'o', 'w', 'r', 'd', 'll', '▁H', '▁w', 'llo', '▁▁'];
const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
pieces.forEach((p, i) => { vocab[p] = 259 + i; });
const id = (t: string): number => {
  const i = vocab[t];
  if (i === undefined) throw new Error(`no token '${t}' in the test vocab`);
  return i;
};
const model = {
  type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
  fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: ['l l', '▁ H', '▁ ▁', '▁ w', 'll o'],
};
const added = ['<unk>', '<s>', '</s>'].map((content, i) => ({ id: i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
const bos = {
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
  pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
};
const settings = resolveSettings({ tokenizerConfig: { added_tokens_decoder: {}, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' } });

const legacyLlama = new Tokenizer({
  version: '1.0', added_tokens: added, model, post_processor: bos, pre_tokenizer: null,
  normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
  decoder: { type: 'Sequence', decoders: [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ] },
}, settings);

const metaspaceLlama = new Tokenizer({
  version: '1.0', added_tokens: added, model, post_processor: bos, normalizer: null,
  pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
  decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }, { type: 'Fuse' }] },
}, settings);

describe('sentencepiece-style BPE (byte fallback, ▁)', () => {
  for (const [name, tok] of [['Prepend/Replace normalizer', legacyLlama], ['Metaspace pre-tokenizer', metaspaceLlama]] as const) {
    it(`${name}: ▁ prefix, merges, <s>, byte fallback for unknown characters, lossless decode`, () => {
      const ids = tok.encode('Hello world');
      assert.deepEqual(ids, [1, id('▁H'), id('e'), id('llo'), id('▁w'), id('o'), id('r'), id('l'), id('d')]);
      assert.equal(tok.decode(ids), '<s> Hello world');
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'Hello world');
      const zh = tok.encode('Hello 你', { addSpecialTokens: false });
      assert.deepEqual(zh.slice(-4), [id('▁'), id('<0xE4>'), id('<0xBD>'), id('<0xA0>')]);
      assert.equal(tok.decode(zh), 'Hello 你');
      assert.equal(tok.decode(tok.encode('He  world', { addSpecialTokens: false })), 'He  world');
    });

    it(`${name}: an incomplete byte run decodes to one U+FFFD per byte (Rust ByteFallback)`, () => {
      assert.equal(tok.decode([id('▁H'), id('<0xE4>'), id('<0xBD>')]), 'H\uFFFD\uFFFD');
      assert.equal(tok.decode([id('▁H'), id('<0xE4>'), id('<0xBD>'), id('<0xA0>')]), 'H你');
    });

    it(`${name}: streaming holds a byte run until the character is complete`, () => {
      const ids = tok.encode('Hello 你 world', { addSpecialTokens: false });
      const dec = createStreamDecoder(tok);
      const deltas = ids.map((i) => dec.push(i));
      for (const d of deltas) assert.ok(!d.includes('\uFFFD'));
      assert.equal(deltas.join('') + dec.flush(), 'Hello 你 world');
      assert.equal(deltas.join(''), tok.decode(ids));
    });
  }

  it('Metaspace decoder drops every ▁ of the first token (prepend_scheme first), as Rust does', () => {
    assert.equal(metaspaceLlama.decode([id('▁▁'), id('H')]), 'H');
    assert.equal(metaspaceLlama.decode([id('H'), id('▁▁'), id('H')]), 'H  H');
  });

  it('Metaspace pre-tokenizer with split: true splits before each ▁ (no merge across words)', () => {
    const split = new Tokenizer({
      version: '1.0', added_tokens: added, model, post_processor: null, normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    }, settings);
    // "▁He▁▁w" splits as ["▁He", "▁", "▁w"]: the "▁▁" merge cannot apply across the split
    assert.deepEqual(split.encode('He  w'), [id('▁H'), id('e'), id('▁'), id('▁w')]);
    assert.equal(split.decode(split.encode('He  w')), 'He  w');
    assert.deepEqual(metaspaceLlama.encode('He  w', { addSpecialTokens: false }), [id('▁H'), id('e'), id('▁▁'), id('w')]);
  });

  it('Llama tokenizer classes rebuild the post-processor from add_bos_token / add_eos_token', () => {
    const json = {
      version: '1.0', added_tokens: added, model, post_processor: bos, pre_tokenizer: null,
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      decoder: null,
    };
    const base = { added_tokens_decoder: {}, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', tokenizer_class: 'LlamaTokenizer' };
    const he = [id('▁H'), id('e')];
    assert.deepEqual(new Tokenizer(json, resolveSettings({ tokenizerConfig: base })).encode('He'), [1, ...he]);
    const eosOnly = new Tokenizer(json, resolveSettings({ tokenizerConfig: { ...base, add_bos_token: false, add_eos_token: true } }));
    assert.deepEqual(eosOnly.encode('He'), [...he, 2]);
    assert.deepEqual(eosOnly.encode('He', { addSpecialTokens: false }), he);
    // other classes keep tokenizer.json's post-processor
    const gpt2 = new Tokenizer(json, resolveSettings({ tokenizerConfig: { ...base, tokenizer_class: 'GPT2Tokenizer', add_bos_token: false } }));
    assert.deepEqual(gpt2.encode('He'), [1, ...he]);
  });
});
