import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/paths.ts';
import { createStreamDecoder, loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';

const CORPUS = [
  'Hello world! How are you today?',
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX.',
  '   leading, trailing and    inner runs   ',
  'tabs\tand\t\ttabs\nnew\n\n\nlines\r\nCRLF \u00a0nbsp\u2003em-space',
  '0123456789 3.14159 1,000,000 -42 +7e10 2024-11-27',
  '你好世界，東京は晴れ。한국어 텍스트',
  'emoji 😀🎉 family 👩‍👩‍👧 flag 🏳️‍🌈 skin 👍🏽 keycap 1️⃣',
  'combining: e\u0301 a\u0308 n\u0303 Z\u0324\u0354\u0367\u0311\u0313 precomposed: é ä ñ',
  'Arabic مرحبا بالعالم Hebrew שלום עולם Devanagari नमस्ते',
  'def f(x):\n    return x ** 2  # square\n\n\tif (a && b) { c[0] = "q\\"s"; }',
  "It's we'll they've I'd can't won't",
  'special inside text: <image>x<end_of_utterance>y<|im_start|>z</s><s><|endoftext|>',
  '<fake_token_around_image><row_1_col_2><image><image>\n<global-img>',
  'literal byte-token text <0xE4> and ▁ metaspace char',
  'control \u0001\u0007 chars and \u200b zero width',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '',
  ' ',
  '\n',
];

/** Streams ids through the incremental decoder; checks every delta, returns their concatenation. */
function stream(tok: Tokenizer, ids: number[], skipSpecialTokens: boolean, validInput: boolean): string {
  const dec = createStreamDecoder(tok, { skipSpecialTokens });
  let out = '';
  for (const id of ids) {
    const d = dec.push(id);
    if (validInput) assert.ok(!d.includes('\uFFFD'), `delta ${JSON.stringify(d)} contains U+FFFD`);
    out += d;
  }
  const rest = dec.flush();
  if (validInput) assert.ok(!rest.includes('\uFFFD'));
  return out + rest;
}

// Byte-level BPE without normalizer is lossless: decode(encode(x)) === x (llava: without the added <s>).
const LOSSLESS: Array<[string, boolean]> = [['smolvlm-256m-real-tokenizer', true], ['tiny-smolvlm', true], ['tiny-llava', false]];

for (const [folder, addSpecial] of LOSSLESS) {
  describe(`round trip and streaming: ${folder}`, () => {
    let tok: Tokenizer;
    before(async () => { tok = await loadTokenizer(fixture(folder)); });

    it('decode(encode(x)) === x on the corpus', () => {
      for (const text of CORPUS) assert.equal(tok.decode(tok.encode(text, { addSpecialTokens: addSpecial })), text, JSON.stringify(text));
    });

    it('streamed deltas concatenate to decode(ids), never holding U+FFFD, with and without special tokens', () => {
      for (const text of CORPUS) {
        const ids = tok.encode(text);
        assert.equal(stream(tok, ids, false, true), tok.decode(ids));
        assert.equal(stream(tok, ids, true, true), tok.decode(ids, { skipSpecialTokens: true }));
      }
    });

    it('a character split over byte tokens is held back until complete', () => {
      const ids = tok.encode('😀', { addSpecialTokens: false });
      assert.ok(ids.length > 1, 'the emoji spans several byte-level tokens');
      const dec = createStreamDecoder(tok);
      const deltas = ids.map((id) => dec.push(id));
      assert.deepEqual(deltas.slice(0, -1).join(''), '');
      assert.equal(deltas.at(-1), '😀');
      assert.equal(dec.flush(), '');
    });

    it('generated garbage bytes: the stream still equals decode(ids) after flush', () => {
      // ids of lone UTF-8 lead/continuation bytes, as a random model may emit
      const bytes = ['Ã', 'Ģ', 'ä', 'ĺ'].map((t) => tok.tokenToId(t)).filter((x): x is number => x !== undefined);
      const ids = [...tok.encode('ok ', { addSpecialTokens: false }), ...bytes, ...tok.encode(' end', { addSpecialTokens: false })];
      assert.equal(stream(tok, ids, false, false), tok.decode(ids));
    });
  });
}

describe('agreement: tiny-clip (lossy: NFC, whitespace collapse, lower-case)', () => {
  let tok: Tokenizer;
  before(async () => { tok = await loadTokenizer(fixture('tiny-clip')); });

  it('encode(decode(encode(x))) === encode(x), decoded text is the normalised words, streaming agrees', () => {
    for (const text of CORPUS) {
      const ids = tok.encode(text);
      const decoded = tok.decode(ids, { skipSpecialTokens: true });
      // (skipping special tokens also drops the <|endoftext|> written inside the text itself)
      if (!text.includes('<|')) assert.deepEqual(tok.encode(decoded), ids, JSON.stringify(text));
      assert.equal(decoded.replace(/\s+/g, ''), decoded.normalize('NFC').toLowerCase().replace(/\s+/g, ''));
      assert.equal(stream(tok, ids, false, !text.includes('\uFFFD')), tok.decode(ids));
      assert.equal(stream(tok, ids, true, true), decoded);
    }
  });
});
