// SentencePiece unigram (spiece.model read directly) and SiglipTokenizer against transformers 4.47.1's
// python SiglipTokenizer: golden tokens/ids/decoded text for punctuation, capitals, whitespace, unknown
// characters and a text ending in </s>; the batch padded to max_length equals the case's input_ids.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { SiglipTokenizer, canonicalizeText, parseModelProto, PieceType } from '../../src/tokenizer/sentencepiece-unigram.ts';
import { fixture } from '../helpers/paths.ts';

const DIR = fixture('tiny-siglip');
const json = (p: string) => JSON.parse(fs.readFileSync(fixture('tiny-siglip', 'golden', p), 'utf8'));

describe('SentencePiece ModelProto', () => {
  it('reads every piece, score and type as spiece_pieces.json lists them, and the nmt_nfkc normalizer', () => {
    const proto = parseModelProto(new Uint8Array(fs.readFileSync(fixture('tiny-siglip', 'spiece.model'))));
    const expected = json('spiece_pieces.json') as Array<[string, number, number]>;
    assert.equal(proto.pieces.length, expected.length);
    proto.pieces.forEach((p, i) => {
      const [piece, score, type] = expected[i]!;
      assert.equal(p.piece, piece);
      assert.equal(p.score, Math.fround(score));
      assert.equal(p.type, type);
    });
    assert.equal(proto.pieces[2]?.type, PieceType.UNKNOWN);
    assert.equal(proto.normalizer.name, 'nmt_nfkc');
    assert.ok((proto.normalizer.precompiledCharsmap?.length ?? 0) > 1000);
    assert.equal(proto.normalizer.removeExtraWhitespaces, true);
  });

  it('refuses a file that is not a model', () => {
    assert.throws(() => parseModelProto(new Uint8Array([0x0a, 0x50])), /truncated/);
  });
});

describe('SiglipTokenizer (tiny-siglip)', () => {
  let tok: SiglipTokenizer;
  before(() => {
    tok = SiglipTokenizer.load(DIR);
  });

  it('matches every golden tokenizer case: tokens, ids, decoded', () => {
    for (const c of json('tokenizer_cases.json') as Array<{ text: string; input_ids: number[]; tokens: string[]; decoded: string }>) {
      const ids = tok.encode(c.text);
      assert.deepEqual(ids.map((id) => tok.sp.idToPiece(id)), c.tokens, JSON.stringify(c.text));
      assert.deepEqual(ids, c.input_ids, JSON.stringify(c.text));
      assert.equal(tok.decode(ids), c.decoded, JSON.stringify(c.text));
    }
  });

  it('three_images_four_texts: padding=max_length gives the input_ids of the .inputs file', () => {
    const texts = json('cases.json').cases.find((c: { name: string }) => c.name === 'three_images_four_texts').texts;
    const f = SafetensorsFile.open(fixture('tiny-siglip', 'golden', 'three_images_four_texts.inputs.safetensors'));
    const [B, T] = f.entry('input_ids').shape;
    assert.ok(B !== undefined && T !== undefined, 'a 2-D input_ids');
    const flat = Array.from(f.readArray('input_ids') as ArrayLike<number | bigint>, Number);
    f.close();
    const expected = Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
    assert.deepEqual(tok.encodeBatch(texts).input_ids, expected);
  });

  it('canonicalize_text, unknown runs merged into one <unk>, truncation keeps </s>', () => {
    assert.equal(canonicalizeText('  a,  b!\tc\u3000 '), 'a b c');
    const ids = tok.encode('éé');
    assert.equal(ids.filter((i) => i === tok.sp.unkId).length, 1);
    const [long] = tok.encodeBatch(['a photo of a cat and a dog and a bird on the beach at sunset'], { truncation: true }).input_ids;
    assert.ok(long, 'one row');
    assert.equal(long.length, 16);
    assert.equal(long[15], tok.eosTokenId);
  });
});
