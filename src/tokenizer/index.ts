// Hugging Face tokenizers as transformers 4.47 loads and runs them. The BPE/normalizer/pre-tokenizer pipeline is
// @huggingface/tokenizers; chat templates are @huggingface/jinja. What this module adds around them:
// transformers' special-token resolution (tokenizer_config.json vs special_tokens_map.json / added_tokens.json),
// Rust-parity decode (special-token skipping, ByteFallback/Metaspace fixes in library-fixes.ts, CLIP's `</w>`),
// Llama-class post-processor rebuilding, padding/truncation, chat-template selection and variables, and a
// streaming decoder.
import { TfvlmError } from '../errors.ts';
import { host } from '../io/host.ts';
import { isObject, readJsonFile, readTextFile } from './files.ts';
import { resolveSettings } from './config.ts';
import { Tokenizer } from './tokenizer.ts';

export { Tokenizer } from './tokenizer.ts';
export { validateTokenizerJson } from './tokenizer-json.ts';
export type { EncodeOptions, EncodeBatchOptions, BatchEncoding, DecodeOptions } from './tokenizer.ts';
export { createStreamDecoder } from './stream-decoder.ts';
export type { StreamDecoder } from './stream-decoder.ts';
export { renderChatTemplate, selectChatTemplate } from './chat-template.ts';
export type { ChatTemplateOptions, TemplateMessage } from './chat-template.ts';
export { resolveSettings } from './config.ts';
export type { SpecialTokens, TokenizerSettings } from './config.ts';

/**
 * Loads a tokenizer folder: tokenizer.json (required), tokenizer_config.json (required), and when present
 * special_tokens_map.json, added_tokens.json, chat_template.jinja / chat_template.json.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  let stat;
  try {
    stat = host().stat(dir);
  } catch {
    stat = undefined;
  }
  if (stat === undefined) throw new TfvlmError(`${dir}: tokenizer folder not found`);
  if (stat.kind !== 'directory') throw new TfvlmError(`${dir}: expected a folder holding tokenizer.json and tokenizer_config.json`);

  const [tokenizerJson, tokenizerConfig, specialTokensMap, addedTokens, chatTemplateJson, chatTemplateJinja] = await Promise.all([
    readJsonFile(dir, 'tokenizer.json', true),
    readJsonFile(dir, 'tokenizer_config.json', true),
    readJsonFile(dir, 'special_tokens_map.json', false),
    readJsonFile(dir, 'added_tokens.json', false),
    readJsonFile(dir, 'chat_template.json', false),
    readTextFile(dir, 'chat_template.jinja', false),
  ]);
  if (!isObject(tokenizerConfig)) throw new TfvlmError(`${dir}/tokenizer_config.json: must be a JSON object`);
  try {
    const settings = resolveSettings({ tokenizerConfig, specialTokensMap, addedTokens, chatTemplateJson, chatTemplateJinja });
    return new Tokenizer(tokenizerJson, settings);
  } catch (err) {
    // The validators name the file ("tokenizer.json: field ..."); add the folder so the message names the input.
    if (err instanceof TfvlmError && /^[\w.-]+\.json: /.test(err.message)) throw new TfvlmError(`${host().join(dir, '/')}${err.message}`);
    throw err;
  }
}
