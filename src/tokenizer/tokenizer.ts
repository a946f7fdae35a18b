import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { TfvlmError } from '../errors.ts';
import { isObject } from './files.ts';
import { SINGLE_SPECIAL_TOKEN_KEYS, type SingleSpecialTokenKey, type SpecialTokens, type TokenizerSettings } from './config.ts';
import { applyLibraryFixes } from './library-fixes.ts';
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

function splitMerge(m: string): [string, string] {
  const at = m.indexOf(' ');
  return [m.slice(0, at), m.slice(at + 1)];
}

/** Checks the fields @huggingface/tokenizers relies on, so a malformed file fails here with a clear message. */
export function validateTokenizerJson(raw: unknown, file = 'tokenizer.json'): Json {
  if (!isObject(raw)) throw new TfvlmError(`${file}: must be a JSON object`);
  const model = raw.model;
  if (!isObject(model)) throw new TfvlmError(`${file}: field "model" is missing or not an object`);
  const type = model.type;
  if (type !== undefined && !['BPE', 'WordPiece', 'Unigram'].includes(type as string)) {
    throw new TfvlmError(`${file}: field "model.type" ${JSON.stringify(type)} is not supported (BPE, WordPiece, Unigram)`);
  }
  if (type === 'Unigram') {
    if (!Array.isArray(model.vocab)) throw new TfvlmError(`${file}: field "model.vocab" must be a list of [piece, score] for Unigram`);
  } else {
    if (!isObject(model.vocab)) throw new TfvlmError(`${file}: field "model.vocab" is missing or not an object {token: id}`);
    const vocab = model.vocab as Record<string, unknown>;
    for (const tok in vocab) {
      const id = vocab[tok];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw new TfvlmError(`${file}: field "model.vocab" maps ${JSON.stringify(tok)} to ${JSON.stringify(id)}, not a non-negative integer id`);
      }
    }
  }
  if (type === 'BPE' || (type === undefined && 'merges' in model)) {
    if (!Array.isArray(model.merges)) throw new TfvlmError(`${file}: field "model.merges" must be a list`);
    const merges = model.merges as unknown[];
    const vocab = isObject(model.vocab) ? (model.vocab as Record<string, unknown>) : null;
    const prefixLen = typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix.length : 0;
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i];
      const ok = (typeof m === 'string' && m.includes(' ')) ||
        (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string');
      if (!ok) throw new TfvlmError(`${file}: field "model.merges[${i}]" must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
      // Rust BPE refuses merges whose parts or result are not in the vocabulary (MergeTokenOutOfVocabulary).
      if (vocab) {
        const [a, b] = typeof m === 'string' ? splitMerge(m) : (m as [string, string]);
        const joined = a + b.slice(prefixLen);
        for (const piece of [a, b, joined]) {
          if (!Object.hasOwn(vocab, piece)) throw new TfvlmError(`${file}: field "model.merges[${i}]" uses ${JSON.stringify(piece)}, which is not in "model.vocab"`);
        }
      }
    }
  }
  const added = raw.added_tokens ?? [];
  if (!Array.isArray(added)) throw new TfvlmError(`${file}: field "added_tokens" must be a list`);
  added.forEach((t, i) => {
    if (!isObject(t) || !Number.isInteger(t.id) || typeof t.content !== 'string') {
      throw new TfvlmError(`${file}: field "added_tokens[${i}]" must have an integer "id" and a string "content"`);
    }
  });
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
    const v = raw[key];
    if (v !== undefined && v !== null && !isObject(v)) throw new TfvlmError(`${file}: field "${key}" must be an object or null`);
  }
  return raw;
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
    const json: Json = { ...validateTokenizerJson(tokenizerJson) }; // shallow: only top-level keys are replaced
    for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) json[key] ??= null;
    json.added_tokens = registerMissingTokens(json, settings);
    const rebuilt = llamaPostProcessor(json, settings);
    if (rebuilt) json.post_processor = rebuilt;
    // transformers GPT2TokenizerFast.__init__: tokenizer_config add_prefix_space overrides a ByteLevel pre-tokenizer's.
    const pre = json.pre_tokenizer;
    if (settings.tokenizer_class && /^GPT2Tokenizer(Fast)?$/.test(settings.tokenizer_class) && settings.add_prefix_space !== undefined &&
        isObject(pre) && pre.type === 'ByteLevel' && (pre.add_prefix_space ?? false) !== settings.add_prefix_space) {
      json.pre_tokenizer = { ...pre, add_prefix_space: settings.add_prefix_space };
    }
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

/** transformers PreTrainedTokenizerFast.__init__ adds legacy added_tokens.json entries and configured special tokens
 *  that tokenizer.json does not already have as added tokens (as special added tokens, appended after the vocab). */
function registerMissingTokens(json: Json, settings: TokenizerSettings): Json[] {
  const added = [...(json.added_tokens as Json[] ?? [])];
  const model = json.model as Json;
  const vocab = isObject(model.vocab) ? (model.vocab as Record<string, number>) : null;
  const unigram = Array.isArray(model.vocab) ? (model.vocab as unknown[][]).map((p) => p[0] as string) : null;
  const has = (tok: string) => added.some((t) => t.content === tok);
  const vocabId = (tok: string): number | undefined => vocab ? vocab[tok] : unigram ? (unigram.indexOf(tok) >= 0 ? unigram.indexOf(tok) : undefined) : undefined;
  let nextId = unigram ? unigram.length : 0;
  for (const t of added) nextId = Math.max(nextId, (t.id as number) + 1);
  if (vocab) for (const tok in vocab) nextId = Math.max(nextId, vocab[tok] + 1);
  const specials = new Set<string>([
    ...SINGLE_SPECIAL_TOKEN_KEYS.map((k) => settings.specialTokens[k]).filter((t): t is string => t !== undefined),
    ...settings.specialTokens.additional_special_tokens,
  ]);
  const add = (tok: string, id: number | undefined) => {
    if (has(tok)) return;
    const existing = vocabId(tok);
    added.push({ id: existing ?? id ?? nextId++, content: tok, special: specials.has(tok), normalized: !specials.has(tok), lstrip: false, rstrip: false, single_word: false });
  };
  for (const [tok, id] of Object.entries(settings.legacyAddedTokens).sort((a, b) => a[1] - b[1])) add(tok, id);
  for (const tok of specials) add(tok, undefined);
  return added;
}

const BOS_EOS_CLASSES = /^(Llama|CodeLlama|Gemma)Tokenizer(Fast)?$/;

/** transformers LlamaTokenizerFast/GemmaTokenizerFast.update_post_processor: the post-processor is rebuilt from
 *  tokenizer_config.json add_bos_token (default true) / add_eos_token (default false), whatever tokenizer.json says. */
function llamaPostProcessor(json: Json, settings: TokenizerSettings): Json | null {
  if (!settings.tokenizer_class || !BOS_EOS_CLASSES.test(settings.tokenizer_class)) return null;
  const addBos = settings.add_bos_token ?? true;
  const addEos = settings.add_eos_token ?? false;
  const idOf = (tok: string | undefined, what: string): number => {
    const added = (json.added_tokens as Json[]).find((t) => t.content === tok);
    const model = json.model as Json;
    const id = added ? (added.id as number) : tok !== undefined && isObject(model.vocab) ? (model.vocab as Record<string, number>)[tok] : undefined;
    if (id === undefined) throw new TfvlmError(`tokenizer_config.json: ${what} is true but "${what.replace('add_', '')}" ${tok === undefined ? 'is not set' : `"${tok}" is not in the vocabulary`}`);
    return id;
  };
  const special: Record<string, Json> = {};
  const single: Json[] = [];
  const pair: Json[] = [];
  const bos = settings.specialTokens.bos_token;
  const eos = settings.specialTokens.eos_token;
  if (addBos) special[bos!] = { id: bos, ids: [idOf(bos, 'add_bos_token')], tokens: [bos] };
  if (addEos) special[eos!] = { id: eos, ids: [idOf(eos, 'add_eos_token')], tokens: [eos] };
  for (const [seq, typeId, out] of [['A', 0, single], ['A', 0, pair], ['B', 1, pair]] as const) {
    if (addBos) out.push({ SpecialToken: { id: bos, type_id: typeId } });
    out.push({ Sequence: { id: seq, type_id: typeId } });
    if (addEos) out.push({ SpecialToken: { id: eos, type_id: typeId } });
  }
  return { type: 'TemplateProcessing', single, pair, special_tokens: special };
}
