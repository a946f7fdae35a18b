import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { TfvlmError } from '../errors.ts';
import { isObject } from './files.ts';
import { SINGLE_SPECIAL_TOKEN_KEYS, type SingleSpecialTokenKey, type SpecialTokens, type TokenizerSettings } from './config.ts';
import { applyLibraryFixes } from './library-fixes.ts';
import { prepareTokenizerJson } from './tokenizer-json.ts';
import { renderChatTemplate, selectChatTemplate, type ChatTemplateOptions, type TemplateMessage } from './chat-template.ts';

export interface EncodeOptions {
  /** Run the post-processor (e.g. prepend `<s>`); transformers' default is true. */
  addSpecialTokens?: boolean;
}

export interface EncodeBatchOptions extends EncodeOptions {
  /** 'longest' (transformers `padding=True`), 'max_length', or false for no padding. Default 'longest'. */
  padding?: 'longest' | 'max_length' | false;
  /** Default: tokenizer_config.json `padding_side` (right when absent). */
  paddingSide?: 'left' | 'right';
  /** Length for padding 'max_length' and for truncation; default tokenizer_config.json `model_max_length`. */
  maxLength?: number;
  /** Cut sequences longer than maxLength on tokenizer_config.json `truncation_side`. Default false. */
  truncation?: boolean;
}

export interface BatchEncoding {
  input_ids: number[][];
  attention_mask: number[][];
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Default: tokenizer_config.json `clean_up_tokenization_spaces` (false when absent, as in transformers ≥ 4.45). */
  cleanUpTokenizationSpaces?: boolean;
}

type Json = Record<string, unknown>;

// transformers tokenization_utils_base.py clean_up_tokenization
function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',')
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

/** A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) with transformers' behaviour around it. */
export class Tokenizer {
  readonly settings: TokenizerSettings;
  readonly specialTokens: SpecialTokens;
  private readonly hf: HfTokenizer;
  private readonly specialIds = new Set<number>();
  private readonly endOfWordSuffix: string | null;
  private readonly decoderType: string | undefined;

  constructor(tokenizerJson: unknown, settings: TokenizerSettings) {
    const json = prepareTokenizerJson(tokenizerJson, settings);
    this.settings = settings;
    this.specialTokens = settings.specialTokens;
    const libConfig = {
      ...Object.fromEntries(SINGLE_SPECIAL_TOKEN_KEYS.filter((k) => settings.specialTokens[k]).map((k) => [k, settings.specialTokens[k]])),
      additional_special_tokens: settings.specialTokens.additional_special_tokens,
      clean_up_tokenization_spaces: false,
    };
    try {
      this.hf = new HfTokenizer(json, libConfig);
    } catch (err) {
      throw new TfvlmError(`tokenizer.json: cannot build the tokenizer (${(err as Error).message})`);
    }
    applyLibraryFixes(this.hf, json);
    for (const t of json.added_tokens as Array<{ id: number; special?: boolean }>) if (t.special) this.specialIds.add(t.id);
    for (const tok of this.allSpecialTokens()) {
      const id = this.tokenToId(tok);
      if (id !== undefined) this.specialIds.add(id);
    }
    const model = json.model as Json;
    this.endOfWordSuffix = typeof model.end_of_word_suffix === 'string' && model.end_of_word_suffix ? model.end_of_word_suffix : null;
    this.decoderType = isObject(json.decoder) ? (json.decoder.type as string) : undefined;
    // @huggingface/tokenizers reads much of the pipeline config lazily: one encode/decode here turns a
    // malformed post_processor / pre_tokenizer / decoder into a load error instead of a TypeError later.
    try {
      this.decode(this.encode('Hello world 12!'));
    } catch (err) {
      throw new TfvlmError(`tokenizer.json: the tokenizer fails on a test string (${(err as Error).message})`);
    }
  }

  /** Number of ids (vocabulary + added tokens). */
  get vocabSize(): number {
    return this.hf.get_vocab(true).size;
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** The id of bos/eos/unk/pad/... from tokenizer_config.json, or undefined when not set. */
  specialTokenId(key: SingleSpecialTokenKey): number | undefined {
    const tok = this.specialTokens[key];
    return tok === undefined ? undefined : this.tokenToId(tok);
  }

  get bosTokenId(): number | undefined { return this.specialTokenId('bos_token'); }
  get eosTokenId(): number | undefined { return this.specialTokenId('eos_token'); }
  get padTokenId(): number | undefined { return this.specialTokenId('pad_token'); }
  get unkTokenId(): number | undefined { return this.specialTokenId('unk_token'); }

  /** Every special token string (single attributes, then additional_special_tokens), deduplicated. */
  allSpecialTokens(): string[] {
    const out: string[] = [];
    for (const k of SINGLE_SPECIAL_TOKEN_KEYS) {
      const t = this.specialTokens[k];
      if (t !== undefined && !out.includes(t)) out.push(t);
    }
    for (const t of this.specialTokens.additional_special_tokens) if (!out.includes(t)) out.push(t);
    return out;
  }

  /** True for ids that `skipSpecialTokens` removes (special added tokens and configured special tokens). */
  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  tokenize(text: string, opts: EncodeOptions = {}): string[] {
    return this.hf.tokenize(text, { add_special_tokens: opts.addSpecialTokens ?? false });
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TfvlmError(`tokenizer: encode expects a string, got ${typeof text}`);
    const { ids } = this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true });
    // A piece with no id and no unk token is dropped, as the Rust BPE does.
    return (ids as Array<number | undefined | null>).filter((id): id is number => id !== undefined && id !== null);
  }

  encodeBatch(texts: string[], opts: EncodeBatchOptions = {}): BatchEncoding {
    let rows = texts.map((t) => this.encode(t, opts));
    const maxLength = opts.maxLength ?? this.settings.model_max_length;
    if (opts.truncation) {
      if (maxLength === undefined) throw new TfvlmError('tokenizer: truncation needs maxLength (tokenizer_config.json has no model_max_length)');
      rows = rows.map((r) => r.length <= maxLength ? r
        : this.settings.truncation_side === 'left' ? r.slice(r.length - maxLength) : r.slice(0, maxLength));
    }
    const padding = opts.padding ?? 'longest';
    let target = 0;
    if (padding === 'longest') target = Math.max(0, ...rows.map((r) => r.length));
    else if (padding === 'max_length') {
      if (maxLength === undefined) throw new TfvlmError('tokenizer: padding "max_length" needs maxLength (tokenizer_config.json has no model_max_length)');
      target = maxLength;
    }
    const needsPad = padding !== false && rows.some((r) => r.length < target);
    const padId = this.padTokenId;
    if (needsPad && padId === undefined) {
      throw new TfvlmError('tokenizer: padding needs a pad token, but tokenizer_config.json sets no "pad_token"');
    }
    const sideLeft = (opts.paddingSide ?? this.settings.padding_side) === 'left';
    const input_ids: number[][] = [];
    const attention_mask: number[][] = [];
    for (const r of rows) {
      const n = padding === false ? 0 : Math.max(0, target - r.length);
      const pads = new Array<number>(n).fill(padId ?? 0);
      const zeros = new Array<number>(n).fill(0);
      const ones = new Array<number>(r.length).fill(1);
      input_ids.push(sideLeft ? [...pads, ...r] : [...r, ...pads]);
      attention_mask.push(sideLeft ? [...zeros, ...ones] : [...ones, ...zeros]);
    }
    return { input_ids, attention_mask };
  }

  /** Rust tokenizers `Tokenizer::decode`: unknown ids are dropped, special ones optionally skipped, then the decoder. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (const id of ids) {
      if (opts.skipSpecialTokens && this.specialIds.has(id)) continue;
      const tok = this.hf.id_to_token(id);
      if (tok !== undefined) tokens.push(tok);
    }
    if (tokens.length === 0) return '';
    let text = this.hf.decoder ? this.hf.decoder.decode(tokens) : tokens.join(' ');
    if (this.endOfWordSuffix && this.decoderType !== 'BPEDecoder') {
      // transformers CLIPTokenizerFast wraps the backend decode: suffix → space, then strip.
      text = text.replaceAll(this.endOfWordSuffix, ' ').trim();
    }
    if (opts.cleanUpTokenizationSpaces ?? this.settings.clean_up_tokenization_spaces) text = cleanUpTokenization(text);
    return text;
  }

  /** Renders messages with the checkpoint's chat template (see chat-template.ts). */
  applyChatTemplate(messages: TemplateMessage[], opts: ChatTemplateOptions = {}): string {
    const template = selectChatTemplate(this.settings.chatTemplates, opts);
    return renderChatTemplate(template, messages, this.specialTokens, opts);
  }

  get hasChatTemplate(): boolean {
    return Object.keys(this.settings.chatTemplates).length > 0;
  }
}
