import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/paths.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';
import { expandLlavaPrompt, llavaImageTokenCount, loadLlavaPromptConfig, type LlavaPromptConfig } from '../../src/processing/llava-prompt.ts';
import { TfvlmError } from '../../src/errors.ts';
import { renderChatTemplate } from '../../src/tokenizer/index.ts';

// The llava-hf/llava-1.5-*-hf chat_template (images first, then text, `{% generation %}` around assistant text).
const LLAVA_HF_TEMPLATE = "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

describe('LLaVA prompt: tiny-llava cases.json (raw prompts, no template)', () => {
  let tok: Tokenizer;
  let cfg: LlavaPromptConfig;
  const golden = JSON.parse(fs.readFileSync(fixture('tiny-llava', 'golden', 'cases.json'), 'utf8'));
  before(async () => {
    tok = await loadTokenizer(fixture('tiny-llava'));
    cfg = await loadLlavaPromptConfig(fixture('tiny-llava'), tok.settings.extraSpecialTokens);
  });

  it('49 tokens per image: (56/8)² + 1 - 1', () => {
    assert.deepEqual(cfg, { image_token: '<image>', patch_size: 8, num_additional_image_tokens: 1, vision_feature_select_strategy: 'default' });
    assert.equal(llavaImageTokenCount(56, 56, cfg), golden.num_image_tokens);
    assert.equal(llavaImageTokenCount(56, 56, { ...cfg, vision_feature_select_strategy: 'full' }), 50);
    assert.equal(llavaImageTokenCount(336, 336, { ...cfg, patch_size: 14, num_additional_image_tokens: 1 }), 576);
  });

  for (const c of golden.cases) {
    it(c.name, () => {
      const [, , height, width] = c.tensors.pixel_values;
      const expanded = expandLlavaPrompt(c.prompt, c.images.length, { height, width }, cfg);
      assert.equal(expanded, c.prompt_expanded);
      const batch = tok.encodeBatch([expanded]);
      assert.deepEqual(batch.input_ids[0], c.input_ids);
      assert.deepEqual(batch.attention_mask[0], c.attention_mask);
    });
  }

  it('marker/image count mismatch names both numbers', () => {
    assert.throws(() => expandLlavaPrompt('USER: <image>\n<image>\nHi', 1, { height: 56, width: 56 }, cfg),
      (e: Error) => e instanceof TfvlmError && /2 <image> marker\(s\) but 1 image\(s\)/.test(e.message));
  });

  it('legacy processor config (no patch_size) leaves the prompt unexpanded, as transformers 4.47 does', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-llava-'));
    const legacy = await loadLlavaPromptConfig(dir);
    assert.equal(legacy.patch_size, null);
    assert.equal(expandLlavaPrompt('USER: <image>\nHi', 1, { height: 336, width: 336 }, legacy), 'USER: <image>\nHi');
    assert.throws(() => llavaImageTokenCount(336, 336, legacy), /patch_size/);
    fs.writeFileSync(path.join(dir, 'processor_config.json'), JSON.stringify({ patch_size: 14, vision_feature_select_strategy: 'mean' }));
    await assert.rejects(loadLlavaPromptConfig(dir), /vision_feature_select_strategy/);
    fs.rmSync(dir, { recursive: true });
  });

  it('the llava-hf chat template renders the raw LLaVA-1.5 prompts of single_image and two_images', () => {
    const texts: Record<string, string> = { single_image: 'What is shown in this image?', two_images: 'Compare these two images.' };
    for (const c of golden.cases.filter((c: { name: string }) => c.name in texts)) {
      const content = [...c.images.map(() => ({ type: 'image' })), { type: 'text', text: texts[c.name] }];
      const prompt = renderChatTemplate(LLAVA_HF_TEMPLATE, [{ role: 'user', content }], tok.specialTokens, { addGenerationPrompt: true });
      assert.equal(prompt, c.prompt);
    }
  });
});
