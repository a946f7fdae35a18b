import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fixture } from '../helpers/paths.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';

interface TokenizerCase { text: string; input_ids: number[]; tokens: string[]; decoded: string }

// tiny-siglip has only spiece.model (no tokenizer.json), so it is not covered by this module.
const FOLDERS = ['smolvlm-256m-real-tokenizer', 'tiny-smolvlm', 'tiny-llava', 'tiny-clip'];

for (const folder of FOLDERS) {
  describe(`tokenizer goldens: ${folder}`, () => {
    let tok: Tokenizer;
    const cases: TokenizerCase[] = JSON.parse(fs.readFileSync(fixture(folder, 'golden', 'tokenizer_cases.json'), 'utf8'));
    before(async () => { tok = await loadTokenizer(fixture(folder)); });

    for (const c of cases) {
      it(`encodes, names and decodes ${JSON.stringify(c.text).slice(0, 50)}`, () => {
        const ids = tok.encode(c.text);
        assert.deepEqual(ids, c.input_ids);
        assert.deepEqual(ids.map((id) => tok.idToToken(id)), c.tokens);
        assert.deepEqual(c.tokens.map((t) => tok.tokenToId(t)), c.input_ids);
        assert.equal(tok.decode(c.input_ids), c.decoded);
      });
    }
  });
}

describe('special tokens', () => {
  it('tiny-smolvlm: ids from FIXTURES.md, eos from tokenizer_config.json', async () => {
    const tok = await loadTokenizer(fixture('tiny-smolvlm'));
    assert.equal(tok.unkTokenId, 0);
    assert.equal(tok.bosTokenId, 1);
    assert.equal(tok.padTokenId, 2);
    assert.equal(tok.eosTokenId, 511);
    assert.equal(tok.tokenToId('<image>'), 510);
    assert.equal(tok.tokenToId('<fake_token_around_image>'), 509);
    assert.equal(tok.tokenToId('<global-img>'), 472);
    assert.equal(tok.tokenToId('<row_6_col_6>'), 508);
    assert.deepEqual(tok.specialTokens.additional_special_tokens, ['<fake_token_around_image>', '<image>', '<end_of_utterance>']);
    assert.equal(tok.vocabSize, 512);
    assert.ok(tok.isSpecialId(510) && tok.isSpecialId(473) && !tok.isSpecialId(300));
  });

  it('real SmolVLM: tokenizer_config.json (has added_tokens_decoder) wins over special_tokens_map.json for eos', async () => {
    const tok = await loadTokenizer(fixture('smolvlm-256m-real-tokenizer'));
    assert.equal(tok.specialTokens.eos_token, '<end_of_utterance>');
    assert.equal(tok.eosTokenId, 49279);
    assert.equal(tok.specialTokens.pad_token, '<|im_end|>');
    assert.equal(tok.padTokenId, 2);
  });

  it('tiny-llava: <s> prepended by the post-processor only with addSpecialTokens', async () => {
    const tok = await loadTokenizer(fixture('tiny-llava'));
    assert.equal(tok.bosTokenId, 1);
    assert.equal(tok.eosTokenId, 2);
    assert.equal(tok.padTokenId, 500);
    assert.equal(tok.settings.padding_side, 'left');
    const withBos = tok.encode('Hello');
    assert.equal(withBos[0], 1);
    assert.deepEqual(tok.encode('Hello', { addSpecialTokens: false }), withBos.slice(1));
  });

  it('skipSpecialTokens drops special ids only', async () => {
    const tok = await loadTokenizer(fixture('tiny-smolvlm'));
    const ids = tok.encode('<|im_start|>User:<image>Hi<end_of_utterance>\nAssistant:');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'User:Hi\nAssistant:');
    const clip = await loadTokenizer(fixture('tiny-clip'));
    assert.equal(clip.decode(clip.encode('a photo of a cat'), { skipSpecialTokens: true }), 'a photo of a cat');
    assert.equal(tok.decode([]), '');
  });
});

describe('encodeBatch', () => {
  it('pads right by default with the pad id and a 0 mask; left on request; max_length', async () => {
    const tok = await loadTokenizer(fixture('tiny-smolvlm'));
    const a = tok.encode('Hello world');
    const b = tok.encode('Hi');
    const right = tok.encodeBatch(['Hello world', 'Hi']);
    assert.deepEqual(right.input_ids, [a, [...b, ...new Array(a.length - b.length).fill(2)]]);
    assert.deepEqual(right.attention_mask[1], [...b.map(() => 1), ...new Array(a.length - b.length).fill(0)]);
    const left = tok.encodeBatch(['Hello world', 'Hi'], { paddingSide: 'left' });
    assert.deepEqual(left.input_ids[1], [...new Array(a.length - b.length).fill(2), ...b]);
    assert.deepEqual(left.attention_mask[1], [...new Array(a.length - b.length).fill(0), ...b.map(() => 1)]);
    const fixed = tok.encodeBatch(['Hi'], { padding: 'max_length', maxLength: 6 });
    assert.equal(fixed.input_ids[0]?.length, 6);
    const cut = tok.encodeBatch(['Hello world'], { truncation: true, maxLength: 1, padding: false });
    assert.deepEqual(cut.input_ids, [a.slice(0, 1)]);
  });

  it('tiny-llava pads on the left (tokenizer_config.json padding_side) with <pad>', async () => {
    const tok = await loadTokenizer(fixture('tiny-llava'));
    const r = tok.encodeBatch(['USER: Hello there ASSISTANT:', 'Hi']);
    const [, hiIds] = r.input_ids;
    const [, hiMask] = r.attention_mask;
    assert.ok(hiIds && hiMask, 'a second row');
    assert.equal(hiIds[0], 500);
    assert.equal(hiMask[0], 0);
    assert.equal(hiIds.at(-1), tok.encode('Hi').at(-1));
  });
});

describe('tokenizer_config.json overrides transformers applies', () => {
  it('GPT2Tokenizer add_prefix_space: true forces a prefix space on the ByteLevel pre-tokenizer', async () => {
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-aps-'));
    fs.copyFileSync(fixture('tiny-llava', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    const cfg = JSON.parse(fs.readFileSync(fixture('tiny-llava', 'tokenizer_config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, add_prefix_space: true }));
    const spaced = await loadTokenizer(dir);
    const plain = await loadTokenizer(fixture('tiny-llava'));
    assert.deepEqual(spaced.encode('Hello', { addSpecialTokens: false }), plain.encode(' Hello', { addSpecialTokens: false }));
    fs.rmSync(dir, { recursive: true });
  });
});

