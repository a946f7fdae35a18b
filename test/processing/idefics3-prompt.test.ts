import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fixture } from '../helpers/paths.ts';
import { loadTokenizer, renderChatTemplate, type Tokenizer } from '../../src/tokenizer/index.ts';
import {
  expandIdefics3Prompt, expandSmolvlmVideoPrompt, imagePromptString, numberToWords, hasVideoPart, mediaMarkers, SMOLVLM_VIDEO_CHAT_TEMPLATE, idefics3PromptTokens, loadIdefics3PromptConfig, type Idefics3PromptConfig,
} from '../../src/processing/idefics3-prompt.ts';
import { parseMessages, toTemplateMessages } from '../../src/processing/messages.ts';
import { TfvlmError } from '../../src/errors.ts';

const readJson = (...p: string[]) => JSON.parse(fs.readFileSync(fixture(...p), 'utf8'));

/** The processor path: messages → template → expansion → ids. */
function render(tok: Tokenizer, messages: unknown): string {
  return tok.applyChatTemplate(toTemplateMessages(parseMessages(messages).messages), { addGenerationPrompt: true });
}

describe('Idefics3 prompt: published SmolVLM-256M tokenizer (prompt_cases.json)', () => {
  let tok: Tokenizer;
  let cfg: Idefics3PromptConfig;
  const golden = readJson('smolvlm-256m-real-tokenizer', 'golden', 'prompt_cases.json');
  before(async () => {
    tok = await loadTokenizer(fixture('smolvlm-256m-real-tokenizer'));
    cfg = await loadIdefics3PromptConfig(fixture('smolvlm-256m-real-tokenizer'), tok.settings.extraSpecialTokens);
  });

  it('reads image_seq_len from processor_config.json', () => assert.equal(cfg.image_seq_len, golden.image_seq_len));

  for (const c of golden.cases) {
    it(c.name, () => {
      const prompt = render(tok, c.messages);
      assert.equal(prompt, c.prompt);
      const expanded = expandIdefics3Prompt(prompt, c.rows ?? [], c.cols ?? [], cfg);
      assert.equal(expanded, c.prompt_expanded);
      assert.deepEqual(tok.encode(expanded), c.input_ids);
    });
  }
});

describe('Idefics3 prompt: tiny-smolvlm cases.json', () => {
  let tok: Tokenizer;
  let cfg: Idefics3PromptConfig;
  const golden = readJson('tiny-smolvlm', 'golden', 'cases.json');
  before(async () => {
    tok = await loadTokenizer(fixture('tiny-smolvlm'));
    cfg = await loadIdefics3PromptConfig(fixture('tiny-smolvlm'), tok.settings.extraSpecialTokens);
  });

  for (const c of golden.cases.filter((c: { batch?: number }) => !c.batch)) {
    it(c.name, () => {
      const prompt = render(tok, c.messages);
      assert.equal(prompt, c.prompt);
      const expanded = expandIdefics3Prompt(prompt, c.image_rows, c.image_cols, cfg);
      assert.equal(expanded, c.prompt_expanded);
      const batch = tok.encodeBatch([expanded]);
      assert.deepEqual(batch.input_ids[0], c.input_ids);
      assert.deepEqual(batch.attention_mask[0], c.attention_mask);
      const tiles = c.image_rows.reduce((n: number, r: number, i: number) => n + (r === 0 ? 1 : r * c.image_cols[i] + 1), 0);
      assert.equal(tiles, c.num_tiles);
      assert.equal(c.input_ids.filter((id: number) => id === tok.tokenToId('<image>')).length, tiles * cfg.image_seq_len);
    });
  }

  it('batch_two_conversations: padded [B, T] with right padding, and with left padding', () => {
    const c = golden.cases.find((c: { name: string }) => c.name === 'batch_two_conversations');
    const prompts = c.messages.map((m: unknown) => render(tok, m));
    assert.deepEqual(prompts, c.prompt);
    const expanded = prompts.map((p: string, b: number) => expandIdefics3Prompt(p, c.image_rows[b], c.image_cols[b], cfg));
    assert.deepEqual(expanded, c.prompt_expanded);
    const right = tok.encodeBatch(expanded, { padding: 'longest' });
    assert.equal(c.padding_side, 'right');
    assert.deepEqual(right.input_ids, c.input_ids);
    assert.deepEqual(right.attention_mask, c.attention_mask);
    assert.deepEqual(right.attention_mask.map((r) => r.reduce((a, b) => a + b, 0)), c.seq_lens);
    const left = tok.encodeBatch(expanded, { padding: 'longest', paddingSide: 'left' });
    assert.deepEqual(left.input_ids, c.generate_left_padding.input_ids);
    assert.deepEqual(left.attention_mask, c.generate_left_padding.attention_mask);
  });
});

describe('Idefics3 prompt expansion rules', () => {
  const cfg: Idefics3PromptConfig = { image_seq_len: 2, ...idefics3PromptTokens() };

  it('split image: tiles row-major, "\\n" after each row, then "\\n" + global block', () => {
    assert.equal(
      imagePromptString(2, 1, cfg),
      '<fake_token_around_image><row_1_col_1><image><image>\n' +
      '<fake_token_around_image><row_2_col_1><image><image>\n' +
      '\n<fake_token_around_image><global-img><image><image><fake_token_around_image>',
    );
    assert.equal(imagePromptString(0, 0, cfg), '<fake_token_around_image><global-img><image><image><fake_token_around_image>');
  });

  it('several images are consumed in prompt order', () => {
    const out = expandIdefics3Prompt('a<image>b<image>c', [0, 1], [0, 2], cfg);
    assert.equal(out, `a${imagePromptString(0, 0, cfg)}b${imagePromptString(1, 2, cfg)}c`);
    assert.equal(expandIdefics3Prompt('no images', [], [], cfg), 'no images');
  });

  it('marker/image count mismatch names both numbers', () => {
    assert.throws(() => expandIdefics3Prompt('<image><image>', [0], [0], cfg), (e: Error) =>
      e instanceof TfvlmError && /2 <image> marker\(s\) but 1 image\(s\)/.test(e.message));
    assert.throws(() => expandIdefics3Prompt('text', [1], [1], cfg), /0 <image> marker\(s\) but 1 image/);
    assert.throws(() => expandIdefics3Prompt('<image>', [1], [1, 2], cfg), /cols must list one entry per image/);
    assert.throws(() => expandIdefics3Prompt('<image>', [-1], [1], cfg), /rows\[0\] must be a non-negative integer/);
  });

  it('SmolVLM (model_type smolvlm) takes token strings from tokenizer extra_special_tokens; Idefics3 does not', () => {
    const extra = { image_token: '<img>', fake_image_token: '<fake>', global_image_token: '<g>' };
    assert.deepEqual(idefics3PromptTokens(extra, 'smolvlm'), { image_token: '<img>', fake_image_token: '<fake>', global_image_token: '<g>', video_token: '<video>' });
    assert.equal(idefics3PromptTokens({ video_token: '<vid>' }, 'smolvlm').video_token, '<vid>');
    assert.deepEqual(idefics3PromptTokens(extra, 'idefics3'), idefics3PromptTokens());
    const smol: Idefics3PromptConfig = { image_seq_len: 1, ...idefics3PromptTokens(extra, 'smolvlm') };
    assert.equal(expandIdefics3Prompt('x<img>', [0], [0], smol), 'x<fake><g><img><fake>');
  });

  it('image_seq_len derived from config.json when processor_config.json lacks it; missing both is an error', async () => {
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-prompt-'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'idefics3', scale_factor: 4, vision_config: { image_size: 512, patch_size: 16 } }));
    assert.equal((await loadIdefics3PromptConfig(dir)).image_seq_len, 64);
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    await assert.rejects(loadIdefics3PromptConfig(dir), /image_seq_len/);
    fs.writeFileSync(path.join(dir, 'processor_config.json'), '{"image_seq_len": ');
    await assert.rejects(loadIdefics3PromptConfig(dir), /processor_config.json: not valid JSON/);
    fs.rmSync(dir, { recursive: true });
  });

  it('SmolVLM2 video: intro with frame count in words and H:MM:SS duration, per-frame timestamps, outro', () => {
    const one = imagePromptString(0, 0, cfg);
    const out = expandSmolvlmVideoPrompt('User: <video>Describe', [{ timestamps: [0, 75.5], duration: 3725.9 }], 2, cfg);
    assert.equal(out, 'User: You are provided the following series of two frames from a 1:02:05 [H:MM:SS] video.\n' +
      `\nFrame from 00:00:${one}\nFrame from 01:15:${one}\n\nDescribe`);
    assert.deepEqual([0, 13, 21, 64, 100, 105, 999].map(numberToWords),
      ['zero', 'thirteen', 'twenty-one', 'sixty-four', 'one hundred', 'one hundred and five', 'nine hundred and ninety-nine']);
    assert.throws(() => expandSmolvlmVideoPrompt('<video><video>', [{ timestamps: [], duration: 1 }], 1, cfg), /2 <video> marker\(s\) but 1 video/);
  });

  it('SmolVLM renders conversations with a video with its default template (video → <video>)', () => {
    const msgs = toTemplateMessages(parseMessages([{ role: 'user', content: [{ type: 'video', path: 'v.mp4' }, { type: 'text', text: 'What happens?' }] }]).messages);
    assert.equal(hasVideoPart([{ content: 'text only' }, { content: [{ type: 'image' }] }]), false);
    assert.equal(hasVideoPart(msgs), true);
    assert.equal(renderChatTemplate(SMOLVLM_VIDEO_CHAT_TEMPLATE, msgs, { additional_special_tokens: [] }, { addGenerationPrompt: true }),
      '<|im_start|>User: <video>What happens?<end_of_utterance>\nAssistant:');
  });

  it('mediaMarkers lists image and video markers in prompt order', () => {
    assert.deepEqual(mediaMarkers('a<video>b<image><image>c<video>', cfg), ['video', 'image', 'image', 'video']);
    assert.deepEqual(mediaMarkers('no media', cfg), []);
    assert.deepEqual(mediaMarkers('<vid><img>', { image_token: '<img>', video_token: '<vid>' }), ['video', 'image']);
  });
});
