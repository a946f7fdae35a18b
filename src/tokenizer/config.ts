import { TfvlmError } from '../errors.ts';
import { isObject } from './files.ts';

/** The special-token attributes transformers keeps (SpecialTokensMixin.SPECIAL_TOKENS_ATTRIBUTES), as strings. */
export interface SpecialTokens {
  bos_token?: string;
  eos_token?: string;
  unk_token?: string;
  sep_token?: string;
  pad_token?: string;
  cls_token?: string;
  mask_token?: string;
  additional_special_tokens: string[];
}

export const SINGLE_SPECIAL_TOKEN_KEYS = [
  'bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token',
] as const;
export type SingleSpecialTokenKey = (typeof SINGLE_SPECIAL_TOKEN_KEYS)[number];

/** What tokenizer_config.json (+ special_tokens_map.json, added_tokens.json, chat template files) say. */
export interface TokenizerSettings {
  specialTokens: SpecialTokens;
  /** `extra_special_tokens` (e.g. SmolVLM2's image_token / fake_image_token / global_image_token). */
  extraSpecialTokens: Record<string, string>;
  /** Legacy added_tokens.json entries (token → id), only used when tokenizer_config has no added_tokens_decoder. */
  legacyAddedTokens: Record<string, number>;
  padding_side: 'left' | 'right';
  truncation_side: 'left' | 'right';
  model_max_length: number | undefined;
  clean_up_tokenization_spaces: boolean;
  tokenizer_class: string | undefined;
  /** tokenizer_config.json flags that Llama/Gemma fast tokenizers turn into their post-processor. */
  add_bos_token: boolean | undefined;
  add_eos_token: boolean | undefined;
  /** GPT2TokenizerFast forces this onto a top-level ByteLevel pre-tokenizer. */
  add_prefix_space: boolean | undefined;
  /** Chat templates by name ('default' is the unnamed one); processor files first, then tokenizer_config. */
  chatTemplates: Record<string, string>;
}

type Json = Record<string, unknown>;

/** An AddedToken is serialised either as a string or as `{content, lstrip, ...}`. */
function tokenContent(value: unknown, file: string, field: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  throw new TfvlmError(`${file}: field "${field}" must be a string or an object with a string "content"`);
}

function tokenList(value: unknown, file: string, field: string): string[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new TfvlmError(`${file}: field "${field}" must be a list of tokens`);
  return value.map((v, i) => tokenContent(v, file, `${field}[${i}]`)!).filter((v) => v !== undefined);
}

function side(value: unknown, file: string, field: string): 'left' | 'right' {
  if (value === undefined || value === null) return 'right';
  if (value === 'left' || value === 'right') return value;
  throw new TfvlmError(`${file}: field "${field}" must be "left" or "right", got ${JSON.stringify(value)}`);
}

function chatTemplatesOf(value: unknown, file: string, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value === 'string') return { default: value };
  // transformers saves several named templates as [{name, template}, ...]
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    value.forEach((t, i) => {
      if (!isObject(t) || typeof t.name !== 'string' || typeof t.template !== 'string') {
        throw new TfvlmError(`${file}: field "${field}[${i}]" must be {"name": string, "template": string}`);
      }
      out[t.name] = t.template;
    });
    return out;
  }
  throw new TfvlmError(`${file}: field "${field}" must be a string or a list of {name, template}`);
}

export interface SettingsSources {
  tokenizerConfig: Json;
  specialTokensMap?: unknown;
  addedTokens?: unknown;
  chatTemplateJson?: unknown;
  chatTemplateJinja?: string;
}

/** transformers 4.47 tokenization_utils_base.py `_from_pretrained`: special_tokens_map.json and added_tokens.json
 *  only count when tokenizer_config.json has no `added_tokens_decoder` (the legacy layout). */
export function resolveSettings(src: SettingsSources): TokenizerSettings {
  const cfgFile = 'tokenizer_config.json';
  const cfg = src.tokenizerConfig;
  const legacy = !('added_tokens_decoder' in cfg);

  const specialTokens: SpecialTokens = { additional_special_tokens: tokenList(cfg.additional_special_tokens, cfgFile, 'additional_special_tokens') };
  for (const key of SINGLE_SPECIAL_TOKEN_KEYS) {
    const v = tokenContent(cfg[key], cfgFile, key);
    if (v !== undefined) specialTokens[key] = v;
  }

  let legacyAddedTokens: Record<string, number> = {};
  if (legacy) {
    if (src.specialTokensMap !== undefined) {
      const mapFile = 'special_tokens_map.json';
      if (!isObject(src.specialTokensMap)) throw new TfvlmError(`${mapFile}: must be a JSON object`);
      for (const key of SINGLE_SPECIAL_TOKEN_KEYS) {
        const v = tokenContent(src.specialTokensMap[key], mapFile, key);
        if (v !== undefined) specialTokens[key] = v;
      }
      if ('additional_special_tokens' in src.specialTokensMap) {
        specialTokens.additional_special_tokens = tokenList(src.specialTokensMap.additional_special_tokens, mapFile, 'additional_special_tokens');
      }
    }
    if (src.addedTokens !== undefined) {
      if (!isObject(src.addedTokens)) throw new TfvlmError('added_tokens.json: must be a JSON object {token: id}');
      for (const [tok, id] of Object.entries(src.addedTokens)) {
        if (!Number.isInteger(id) || (id as number) < 0) throw new TfvlmError(`added_tokens.json: id of "${tok}" must be a non-negative integer`);
      }
      legacyAddedTokens = src.addedTokens as Record<string, number>;
    }
  }

  const extraSpecialTokens: Record<string, string> = {};
  if (isObject(cfg.extra_special_tokens)) {
    for (const [k, v] of Object.entries(cfg.extra_special_tokens)) {
      const c = tokenContent(v, cfgFile, `extra_special_tokens.${k}`);
      if (c !== undefined) extraSpecialTokens[k] = c;
    }
  }

  // Processor-level templates (chat_template.jinja, then chat_template.json) win over the tokenizer's.
  let chatTemplates = chatTemplatesOf(cfg.chat_template, cfgFile, 'chat_template');
  if (src.chatTemplateJson !== undefined) {
    if (!isObject(src.chatTemplateJson)) throw new TfvlmError('chat_template.json: must be a JSON object with "chat_template"');
    const t = chatTemplatesOf(src.chatTemplateJson.chat_template, 'chat_template.json', 'chat_template');
    if (Object.keys(t).length === 0) throw new TfvlmError('chat_template.json: field "chat_template" is missing');
    chatTemplates = t;
  }
  if (src.chatTemplateJinja !== undefined) chatTemplates = { default: src.chatTemplateJinja };

  const maxLen = cfg.model_max_length;
  return {
    specialTokens,
    extraSpecialTokens,
    legacyAddedTokens,
    padding_side: side(cfg.padding_side, cfgFile, 'padding_side'),
    truncation_side: side(cfg.truncation_side, cfgFile, 'truncation_side'),
    // transformers writes int(1e30) for "no limit"
    model_max_length: typeof maxLen === 'number' && maxLen < 1e15 ? maxLen : undefined,
    clean_up_tokenization_spaces: cfg.clean_up_tokenization_spaces === true,
    tokenizer_class: typeof cfg.tokenizer_class === 'string' ? cfg.tokenizer_class : undefined,
    add_bos_token: typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : undefined,
    add_eos_token: typeof cfg.add_eos_token === 'boolean' ? cfg.add_eos_token : undefined,
    add_prefix_space: typeof cfg.add_prefix_space === 'boolean' ? cfg.add_prefix_space : undefined,
    chatTemplates,
  };
}
