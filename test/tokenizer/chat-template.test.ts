import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/paths.ts';
import { loadTokenizer, renderChatTemplate, selectChatTemplate, type Tokenizer } from '../../src/tokenizer/index.ts';
import { TfvlmError } from '../../src/errors.ts';

const special = { bos_token: '<s>', eos_token: '</s>', additional_special_tokens: ['<image>'] };
const user = (text: string) => ({ role: 'user', content: [{ type: 'text', text }] });

describe('chat templates (transformers apply_chat_template semantics)', () => {
  let smol: Tokenizer;
  before(async () => { smol = await loadTokenizer(fixture('tiny-smolvlm')); });

  it('SmolVLM template: add_generation_prompt appends "Assistant:", otherwise not', () => {
    const msgs = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Hi' }] }];
    assert.equal(smol.applyChatTemplate(msgs, { addGenerationPrompt: true }), '<|im_start|>User:<image>Hi<end_of_utterance>\nAssistant:');
    assert.equal(smol.applyChatTemplate(msgs), '<|im_start|>User:<image>Hi<end_of_utterance>\n');
  });

  it('capitalize lower-cases the rest, as Python does', () => {
    assert.equal(smol.applyChatTemplate([{ role: 'USER', content: [{ type: 'text', text: 'x' }] }]), '<|im_start|>User: x<end_of_utterance>\n');
  });

  it('special tokens are template variables; extra variables override them', () => {
    const t = '{{ bos_token }}{% for m in messages %}{{ m.content[0].text }}{{ eos_token }}{% endfor %}{{ additional_special_tokens[0] }}';
    assert.equal(renderChatTemplate(t, [user('a'), user('b')], special), '<s>a</s>b</s><image>');
    assert.equal(renderChatTemplate(t, [user('a')], special, { variables: { eos_token: '<end>' } }), '<s>a<end><image>');
  });

  it('trim_blocks and lstrip_blocks are on, the trailing newline of the template is dropped', () => {
    const t = '{% for m in messages %}\n  {{ m.role }}\n  {% if true %}\nX\n  {% endif %}\n{% endfor %}\n';
    assert.equal(renderChatTemplate(t, [user('a'), user('b')], special), '  user\nX\n  user\nX\n');
  });

  it('{% generation %} blocks render their body (AssistantTracker)', () => {
    const t = "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}";
    assert.equal(renderChatTemplate(t, [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], special), 'q[a]');
  });

  it('tools are passed (tojson as json.dumps), tool_use template chosen when tools are given', () => {
    const templates = { default: 'D{{ tools }}', tool_use: '{{ tools | tojson }}' };
    const tools = [{ name: 'f', description: 'é' }];
    assert.equal(selectChatTemplate(templates, {}), 'D{{ tools }}');
    const t = selectChatTemplate(templates, { tools });
    assert.equal(renderChatTemplate(t, [user('a')], special, { tools }), '[{"name": "f", "description": "é"}]');
    assert.equal(selectChatTemplate(templates, { chatTemplate: 'default' }), 'D{{ tools }}');
    assert.throws(() => selectChatTemplate({}, {}), (e: Error) => e instanceof TfvlmError && /has none/.test(e.message));
    assert.throws(() => selectChatTemplate({ a: 'x' }, {}), /no "default"/);
  });

  it('raise_exception and parse errors become TfvlmError', () => {
    assert.throws(() => renderChatTemplate("{{ raise_exception('roles must alternate') }}", [user('a')], special),
      (e: Error) => e instanceof TfvlmError && /roles must alternate/.test(e.message));
    assert.throws(() => renderChatTemplate('{% for m in messages %}', [user('a')], special), (e: Error) => e instanceof TfvlmError && /cannot parse/.test(e.message));
  });

  it('continueFinalMessage cuts after the last message text', () => {
    const msgs = [...[user('Hi')], { role: 'assistant', content: [{ type: 'text', text: 'The answer is' }] }];
    assert.equal(smol.applyChatTemplate(msgs, { continueFinalMessage: true }), '<|im_start|>User: Hi<end_of_utterance>\nAssistant: The answer is');
    assert.throws(() => smol.applyChatTemplate(msgs, { continueFinalMessage: true, addGenerationPrompt: true }), /cannot both/);
  });

  it('template sources: chat_template.jinja > chat_template.json > tokenizer_config.json; named list in tokenizer_config', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-tpl-'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(fixture('tiny-llava', f), path.join(dir, f));
    const cfg = JSON.parse(fs.readFileSync(fixture('tiny-llava', 'tokenizer_config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, chat_template: [{ name: 'default', template: 'CFG' }, { name: 'rag', template: 'RAG' }] }));
    let tok = await loadTokenizer(dir);
    assert.equal(tok.applyChatTemplate([user('a')]), 'CFG');
    assert.equal(tok.applyChatTemplate([user('a')], { chatTemplate: 'rag' }), 'RAG');
    fs.writeFileSync(path.join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'JSON' }));
    tok = await loadTokenizer(dir);
    assert.equal(tok.applyChatTemplate([user('a')]), 'JSON');
    fs.writeFileSync(path.join(dir, 'chat_template.jinja'), 'JINJA{{ messages | length }}\n');
    tok = await loadTokenizer(dir);
    assert.equal(tok.applyChatTemplate([user('a')]), 'JINJA1');
    fs.writeFileSync(path.join(dir, 'chat_template.json'), JSON.stringify({ template: 'x' }));
    await assert.rejects(loadTokenizer(dir), /chat_template.json: field "chat_template" is missing/);
    fs.rmSync(dir, { recursive: true });
  });

  it('tiny-llava has no chat template: a clear error', async () => {
    const llava = await loadTokenizer(fixture('tiny-llava'));
    assert.equal(llava.hasChatTemplate, false);
    assert.throws(() => llava.applyChatTemplate([user('a')]), /has none/);
  });
});
