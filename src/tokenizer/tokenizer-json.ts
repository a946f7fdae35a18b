// tokenizer.json as transformers' fast tokenizers see it after __init__: validated, with legacy added tokens and
// configured special tokens registered, and the tokenizer-class overrides applied.
import { TfvlmError } from '../errors.ts';
import { isObject } from './files.ts';
import { SINGLE_SPECIAL_TOKEN_KEYS, type TokenizerSettings } from './config.ts';

type Json = Record<string, unknown>;

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

/** Validates and returns a shallow copy ready for @huggingface/tokenizers (only top-level keys are replaced). */
export function prepareTokenizerJson(raw: unknown, settings: TokenizerSettings): Json {
  const json: Json = { ...validateTokenizerJson(raw) };
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
  return json;
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
  if (vocab) for (const id of Object.values(vocab)) nextId = Math.max(nextId, id + 1);
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
