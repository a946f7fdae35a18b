// SentencePiece unigram models read straight from `spiece.model` (a protobuf ModelProto), and the
// SigLIP tokenizer built on one (transformers 4.47 tokenization_siglip.py SiglipTokenizer, which has no
// fast version). Implemented here rather than through @huggingface/tokenizers because that library's
// Precompiled normalizer ignores the charsmap (it approximates it with String.normalize('NFKC')).
// References: sentencepiece normalizer.cc (Normalize, NormalizePrefix, DecodePrecompiledCharsMap),
// unigram_model.cc (PopulateNodes: unk score = min_score − 10; Viterbi), sentencepiece_processor.cc
// (consecutive unknown pieces are merged into one), darts.h (double-array commonPrefixSearch).
import { host } from '../io/host.ts';
import { TfvlmError } from '../errors.ts';

export const SPIECE_UNDERLINE = '\u2581';

export enum PieceType { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 }

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface NormalizerSpec {
  name: string;
  precompiledCharsmap: Uint8Array | undefined;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface ModelProto {
  pieces: SentencePiece[];
  normalizer: NormalizerSpec;
  /** trainer_spec.model_type: 1 unigram, 2 bpe, 3 word, 4 char. */
  modelType: number;
}

class ProtoReader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly what: string) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new TfvlmError(`${this.what}: truncated protobuf varint`);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new TfvlmError(`${this.what}: malformed protobuf varint`);
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new TfvlmError(`${this.what}: truncated protobuf field (${n} bytes)`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  float32(): number {
    if (this.pos + 4 > this.buf.length) throw new TfvlmError(`${this.what}: truncated protobuf float`);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  /** Reads a tag; returns [field, wireType]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new TfvlmError(`${this.what}: unsupported protobuf wire type ${wire}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Parses the fields of sentencepiece_model.proto that encoding needs. */
export function parseModelProto(buf: Uint8Array, what = 'spiece.model'): ModelProto {
  const r = new ProtoReader(buf, what);
  const pieces: SentencePiece[] = [];
  const normalizer: NormalizerSpec = {
    name: '', precompiledCharsmap: undefined, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true,
  };
  let modelType = 1;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === 2) {
      const p = new ProtoReader(r.bytes(), what);
      const sp: SentencePiece = { piece: '', score: 0, type: PieceType.NORMAL };
      while (!p.done) {
        const [f, w] = p.tag();
        if (f === 1 && w === 2) sp.piece = utf8.decode(p.bytes());
        else if (f === 2 && w === 5) sp.score = p.float32();
        else if (f === 3 && w === 0) sp.type = p.varint();
        else p.skip(w);
      }
      pieces.push(sp);
    } else if (field === 2 && wire === 2) {
      const t = new ProtoReader(r.bytes(), what);
      while (!t.done) {
        const [f, w] = t.tag();
        if (f === 3 && w === 0) modelType = t.varint();
        else t.skip(w);
      }
    } else if (field === 3 && wire === 2) {
      const n = new ProtoReader(r.bytes(), what);
      while (!n.done) {
        const [f, w] = n.tag();
        if (f === 1 && w === 2) normalizer.name = utf8.decode(n.bytes());
        else if (f === 2 && w === 2) normalizer.precompiledCharsmap = n.bytes();
        else if (f === 3 && w === 0) normalizer.addDummyPrefix = n.varint() !== 0;
        else if (f === 4 && w === 0) normalizer.removeExtraWhitespaces = n.varint() !== 0;
        else if (f === 5 && w === 0) normalizer.escapeWhitespaces = n.varint() !== 0;
        else n.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
  if (pieces.length === 0) throw new TfvlmError(`${what}: no pieces (not a SentencePiece model?)`);
  return { pieces, normalizer, modelType };
}

const dartsOffset = (unit: number) => (unit >>> 10) << ((unit & (1 << 9)) >>> 6);

/** Darts-clone double array over the charsmap's UTF-8 keys (darts.h DoubleArrayImpl::commonPrefixSearch). */
class DoubleArray {
  /** offset() of the root unit; an empty array has none (0, so every lookup misses). */
  private readonly rootOffset: number;

  constructor(private readonly units: Uint32Array) {
    const root = units[0];
    this.rootOffset = root === undefined ? 0 : dartsOffset(root);
  }

  /** Longest key that is a prefix of bytes[start..]: [length, value] or undefined. */
  longestPrefix(bytes: Uint8Array, start: number): [number, number] | undefined {
    const u = this.units;
    let id = this.rootOffset;
    let best: [number, number] | undefined;
    for (let i = start; i < bytes.length; i++) {
      const c = bytes[i]!;
      id ^= c;
      if (id >= u.length) return best;
      const unit = u[id]!;
      if ((unit & ((1 << 31) | 0xff)) >>> 0 !== c) return best;
      id ^= dartsOffset(unit);
      // A unit with the has-leaf bit set always has its value unit at id (darts.h invariant).
      if ((unit >>> 8) & 1) best = [i + 1 - start, u[id]! & 0x7fffffff];
    }
    return best;
  }
}

function utf8CharLength(b: number): number {
  if (b < 0x80) return 1;
  if (b >= 0xf0) return 4;
  if (b >= 0xe0) return 3;
  if (b >= 0xc0) return 2;
  return 1;
}

const encoder = new TextEncoder();

/** A SentencePiece unigram model: normalizer (precompiled charsmap + whitespace rules) and Viterbi segmentation. */
export class SentencePieceUnigram {
  readonly pieces: SentencePiece[];
  readonly unkId: number;
  private readonly normalizerSpec: NormalizerSpec;
  private readonly trie: DoubleArray | undefined;
  private readonly normalizedBlob: Uint8Array | undefined;
  private readonly vocab = new Map<string, number>();
  private readonly reserved = new Map<string, number>();
  private readonly minScore: number;
  private readonly maxScore: number;
  private readonly maxPieceChars: number;

  constructor(proto: ModelProto, opts: { addDummyPrefix?: boolean } = {}, readonly source = 'spiece.model') {
    if (proto.modelType !== 1) throw new TfvlmError(`${source}: trainer_spec.model_type ${proto.modelType} is not unigram (1)`);
    this.pieces = proto.pieces;
    this.normalizerSpec = { ...proto.normalizer, addDummyPrefix: opts.addDummyPrefix ?? proto.normalizer.addDummyPrefix };
    let unk = -1;
    let min = Infinity;
    let max = -Infinity;
    let maxChars = 1;
    proto.pieces.forEach((p, id) => {
      if (p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED || p.type === PieceType.UNUSED) {
        this.vocab.set(p.piece, id);
        maxChars = Math.max(maxChars, [...p.piece].length);
      } else {
        this.reserved.set(p.piece, id);
      }
      if (p.type === PieceType.UNKNOWN) unk = id;
      if (p.type === PieceType.NORMAL) {
        min = Math.min(min, p.score);
        max = Math.max(max, p.score);
      }
    });
    if (unk < 0) throw new TfvlmError(`${source}: no piece of type UNKNOWN`);
    this.unkId = unk;
    this.minScore = min;
    this.maxScore = max;
    this.maxPieceChars = maxChars;
    const blob = proto.normalizer.precompiledCharsmap;
    if (blob && blob.length > 0) {
      if (blob.length < 4) throw new TfvlmError(`${source}: precompiled_charsmap is too short`);
      const trieSize = new DataView(blob.buffer, blob.byteOffset, 4).getUint32(0, true);
      if (4 + trieSize > blob.length || trieSize % 4 !== 0) throw new TfvlmError(`${source}: precompiled_charsmap trie size ${trieSize} is invalid`);
      const units = new Uint32Array(trieSize / 4);
      const view = new DataView(blob.buffer, blob.byteOffset + 4, trieSize);
      for (let i = 0; i < units.length; i++) units[i] = view.getUint32(i * 4, true);
      this.trie = new DoubleArray(units);
      this.normalizedBlob = blob.subarray(4 + trieSize);
    }
  }

  static fromFile(file: string, opts: { addDummyPrefix?: boolean } = {}): SentencePieceUnigram {
    let buf: Uint8Array;
    try {
      buf = host().readBytes(file);
    } catch (e) {
      throw new TfvlmError(`${file}: cannot read SentencePiece model (${(e as Error).message})`);
    }
    return new SentencePieceUnigram(parseModelProto(new Uint8Array(buf), file), opts, file);
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  pieceToId(piece: string): number {
    return this.reserved.get(piece) ?? this.vocab.get(piece) ?? this.unkId;
  }

  idToPiece(id: number): string | undefined {
    return this.pieces[id]?.piece;
  }

  /** normalizer.cc NormalizePrefix: the replacement for the longest charsmap rule at bytes[pos..], or one UTF-8 char. */
  private normalizePrefix(bytes: Uint8Array, pos: number): [Uint8Array, number] {
    const hit = this.trie?.longestPrefix(bytes, pos);
    if (hit && this.normalizedBlob) {
      const [len, value] = hit;
      let end = value;
      while (end < this.normalizedBlob.length && this.normalizedBlob[end] !== 0) end++;
      return [this.normalizedBlob.subarray(value, end), len];
    }
    const len = Math.min(utf8CharLength(bytes[pos]!), bytes.length - pos);
    return [bytes.subarray(pos, pos + len), len];
  }

  /** normalizer.cc Normalize: charsmap, whitespace rules, spaces escaped as ▁. */
  normalize(text: string): string {
    const spec = this.normalizerSpec;
    const bytes = encoder.encode(text);
    const out: number[] = [];
    const SPACE = 0x20;
    const WS = [...encoder.encode(SPIECE_UNDERLINE)];
    let pos = 0;
    if (spec.removeExtraWhitespaces) {
      while (pos < bytes.length) {
        const [rep, len] = this.normalizePrefix(bytes, pos);
        if (!(rep.length === 1 && rep[0] === SPACE)) break;
        pos += len;
      }
    }
    if (pos >= bytes.length) return '';
    if (spec.addDummyPrefix) out.push(...(spec.escapeWhitespaces ? WS : [SPACE]));
    let prevSpace = spec.removeExtraWhitespaces;
    while (pos < bytes.length) {
      const [rep, len] = this.normalizePrefix(bytes, pos);
      let i = 0;
      if (prevSpace) while (i < rep.length && rep[i] === SPACE) i++;
      if (i < rep.length) {
        for (; i < rep.length; i++) {
          if (spec.escapeWhitespaces && rep[i] === SPACE) out.push(...WS);
          else out.push(rep[i]!);
        }
        prevSpace = rep[rep.length - 1] === SPACE;
      }
      pos += len;
      if (!spec.removeExtraWhitespaces) prevSpace = false;
    }
    let s = utf8.decode(new Uint8Array(out));
    if (spec.removeExtraWhitespaces) {
      const ws = spec.escapeWhitespaces ? SPIECE_UNDERLINE : ' ';
      while (s.endsWith(ws)) s = s.slice(0, -ws.length);
    }
    return s;
  }

  /** Viterbi segmentation of an already normalized string; consecutive unknown characters become one piece. */
  segment(normalized: string): Array<{ piece: string; id: number }> {
    const chars = [...normalized];
    const n = chars.length;
    if (n === 0) return [];
    const unkScore = Math.fround(this.minScore - 10);
    const bestScore = new Float64Array(n + 1);
    const bestStart = new Int32Array(n + 1).fill(-1);
    const bestId = new Int32Array(n + 1).fill(-1);
    for (let start = 0; start < n; start++) {
      if (start > 0 && bestStart[start]! < 0) continue;
      const base = bestScore[start]!;
      let hasSingle = false;
      let piece = '';
      for (let len = 1; len <= Math.min(this.maxPieceChars, n - start); len++) {
        piece += chars[start + len - 1];
        const id = this.vocab.get(piece);
        if (id === undefined) continue;
        const p = this.pieces[id]!;
        if (p.type === PieceType.UNUSED) continue;
        const score = p.type === PieceType.USER_DEFINED ? len * this.maxScore + 1 : p.score;
        const cand = Math.fround(base + score);
        const end = start + len;
        if (bestStart[end]! < 0 || cand > bestScore[end]!) {
          bestScore[end] = cand;
          bestStart[end] = start;
          bestId[end] = id;
        }
        if (len === 1) hasSingle = true;
      }
      if (!hasSingle) {
        const cand = Math.fround(base + unkScore);
        if (bestStart[start + 1]! < 0 || cand > bestScore[start + 1]!) {
          bestScore[start + 1] = cand;
          bestStart[start + 1] = start;
          bestId[start + 1] = this.unkId;
        }
      }
    }
    const out: Array<{ piece: string; id: number }> = [];
    for (let end = n; end > 0; end = bestStart[end]!) {
      out.push({ piece: chars.slice(bestStart[end]!, end).join(''), id: bestId[end]! });
    }
    out.reverse();
    const merged: Array<{ piece: string; id: number }> = [];
    for (const p of out) {
      const last = merged[merged.length - 1];
      if (last && p.id === this.unkId && last.id === this.unkId) last.piece += p.piece;
      else merged.push({ ...p });
    }
    return merged;
  }

  /** SentencePieceProcessor.encode(text, out_type=str) → pieces with ids. */
  encode(text: string): Array<{ piece: string; id: number }> {
    return this.segment(this.normalize(text));
  }

  /** SentencePieceProcessor.decode of pieces: concatenated, ▁ → space, the first piece's leading space dropped. */
  decodePieces(pieces: string[]): string {
    const text = pieces.join('');
    return (text.startsWith(SPIECE_UNDERLINE) ? text.slice(1) : text).replaceAll(SPIECE_UNDERLINE, ' ');
  }
}

// Python str.isspace characters (re's \s and str.strip in transformers' canonicalize_text).
const PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`, 'g');
const PY_WS_LEAD = new RegExp(`^[${PY_WS}]+`);
const PY_WS_TRAIL = new RegExp(`[${PY_WS}]+$`);
// Python string.punctuation
const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

const pyStrip = (s: string) => s.replace(PY_WS_LEAD, '').replace(PY_WS_TRAIL, '');

/** SiglipTokenizer.canonicalize_text: remove ASCII punctuation, collapse whitespace runs, strip. */
export function canonicalizeText(text: string): string {
  return pyStrip(text.replace(ASCII_PUNCTUATION, '').replace(PY_WS_RUN, ' '));
}

export interface SiglipEncodeBatchOptions {
  /** 'max_length' (what SigLIP was trained with; the default), 'longest' or false. */
  padding?: 'max_length' | 'longest' | false;
  /** Default tokenizer_config.json model_max_length. */
  maxLength?: number;
  /** Cut to maxLength (keeping the final `</s>`). Default false. */
  truncation?: boolean;
}

interface AddedToken {
  content: string;
  lstrip: boolean;
  rstrip: boolean;
}

/**
 * transformers SiglipTokenizer: lower-case (except special tokens), split on added tokens, per segment
 * canonicalize_text, then SentencePiece with the dummy prefix off and `▁` put in front of the text;
 * `</s>` appended unless present; padded with `</s>`.
 */
export class SiglipTokenizer {
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkToken: string;
  private readonly added: AddedToken[];
  private readonly unkLength: number;

  constructor(
    readonly sp: SentencePieceUnigram,
    readonly config: { model_max_length: number; do_lower_case: boolean; eos_token: string; pad_token: string; unk_token: string; added: AddedToken[] },
  ) {
    this.eosTokenId = sp.pieceToId(config.eos_token);
    this.padTokenId = sp.pieceToId(config.pad_token);
    this.unkToken = config.unk_token;
    this.added = config.added.slice().sort((a, b) => b.content.length - a.content.length);
    this.unkLength = sp.encode(this.unkToken).length;
  }

  /** A folder with spiece.model and tokenizer_config.json (tokenizer_class SiglipTokenizer). */
  static load(dir: string): SiglipTokenizer {
    const h = host();
    const configPath = h.join(dir, 'tokenizer_config.json');
    let raw: Record<string, unknown> = {};
    if (h.exists(configPath)) {
      try {
        raw = JSON.parse(h.readText(configPath));
      } catch (e) {
        throw new TfvlmError(`${configPath}: cannot parse (${(e as Error).message})`);
      }
    }
    const str = (v: unknown, d: string) => (typeof v === 'string' ? v : (v as { content?: unknown })?.content as string | undefined) ?? d;
    const eos = str(raw.eos_token, '</s>');
    const unk = str(raw.unk_token, '<unk>');
    const pad = str(raw.pad_token, '</s>');
    const decoderMap = (raw.added_tokens_decoder ?? {}) as Record<string, { content: string; lstrip?: boolean; rstrip?: boolean }>;
    const added: AddedToken[] = Object.values(decoderMap).map((t) => ({ content: t.content, lstrip: !!t.lstrip, rstrip: !!t.rstrip }));
    for (const t of [eos, unk, pad]) if (!added.some((a) => a.content === t)) added.push({ content: t, lstrip: false, rstrip: false });
    const maxLen = typeof raw.model_max_length === 'number' && raw.model_max_length < 1e12 ? raw.model_max_length : 64;
    const sp = SentencePieceUnigram.fromFile(h.join(dir, 'spiece.model'), { addDummyPrefix: false });
    return new SiglipTokenizer(sp, {
      model_max_length: maxLen, do_lower_case: raw.do_lower_case !== false, eos_token: eos, pad_token: pad, unk_token: unk, added,
    });
  }

  get modelMaxLength(): number {
    return this.config.model_max_length;
  }

  private isSpecial(piece: string): boolean {
    return this.added.some((a) => a.content === piece);
  }

  /** SiglipTokenizer.tokenize: token strings, without the final `</s>`. */
  tokenize(text: string): string[] {
    let s = SPIECE_UNDERLINE + text.replaceAll(SPIECE_UNDERLINE, ' ');
    // Split on added tokens (longest first), keeping them.
    const segments: string[] = [];
    while (s.length > 0) {
      let at = -1;
      let tok: AddedToken | undefined;
      for (const a of this.added) {
        const i = s.indexOf(a.content);
        if (i >= 0 && (at < 0 || i < at)) {
          at = i;
          tok = a;
        }
      }
      if (!tok) {
        segments.push(s);
        break;
      }
      if (at > 0) segments.push(s.slice(0, at));
      segments.push(tok.content);
      s = s.slice(at + tok.content.length);
    }
    // AddedToken lstrip/rstrip eat the whitespace next to them (tokenization_utils.py tokenize).
    for (let i = 0; i < segments.length; i++) {
      const a = this.added.find((t) => t.content === segments[i]);
      if (!a) continue;
      const next = segments[i + 1];
      if (a.rstrip && next !== undefined && !this.isSpecial(next)) segments[i + 1] = next.replace(PY_WS_LEAD, '');
      const prev = segments[i - 1];
      if (a.lstrip && prev !== undefined && !this.isSpecial(prev)) segments[i - 1] = prev.replace(PY_WS_TRAIL, '');
    }
    const tokens: string[] = [];
    for (const seg of segments) {
      if (!seg) continue;
      if (this.isSpecial(seg)) {
        tokens.push(seg);
        continue;
      }
      const lowered = this.config.do_lower_case ? seg.toLowerCase() : seg;
      const canon = canonicalizeText(lowered);
      const pieces = this.sp.encode(this.unkToken + canon).map((p) => p.piece);
      tokens.push(...(pieces.length >= this.unkLength ? pieces.slice(this.unkLength) : pieces));
    }
    const second = tokens[1];
    if (second !== undefined && tokens[0] === SPIECE_UNDERLINE && this.isSpecial(second)) tokens.shift();
    return tokens;
  }

  /** Ids with `</s>` appended unless the text already ends with it. */
  encode(text: string): number[] {
    const ids = this.tokenize(text).map((t) => this.sp.pieceToId(t));
    if (ids.length === 0 || ids[ids.length - 1] !== this.eosTokenId) ids.push(this.eosTokenId);
    return ids;
  }

  /** Batch encoding; attention_mask is returned for callers that want it (SigLIP's model ignores padding). */
  encodeBatch(texts: string[], opts: SiglipEncodeBatchOptions = {}): { input_ids: number[][]; attention_mask: number[][] } {
    const padding = opts.padding ?? 'max_length';
    const maxLength = opts.maxLength ?? this.modelMaxLength;
    let rows = texts.map((t) => this.encode(t));
    if (opts.truncation) rows = rows.map((r) => (r.length > maxLength ? [...r.slice(0, maxLength - 1), this.eosTokenId] : r));
    const target = padding === 'max_length' ? Math.max(maxLength, ...rows.map((r) => r.length))
      : padding === 'longest' ? Math.max(...rows.map((r) => r.length)) : 0;
    return {
      input_ids: rows.map((r) => [...r, ...new Array(Math.max(0, target - r.length)).fill(this.padTokenId)]),
      attention_mask: rows.map((r) => [...new Array(r.length).fill(1), ...new Array(Math.max(0, target - r.length)).fill(0)]),
    };
  }

  /** SiglipTokenizer.convert_tokens_to_string of the ids' pieces (special tokens kept). */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    let out = '';
    let sub: string[] = [];
    let prevSpecial = false;
    for (const id of ids) {
      const piece = this.sp.idToPiece(id) ?? this.unkToken;
      if (this.isSpecial(piece)) {
        if (opts.skipSpecialTokens) continue;
        if (!prevSpecial) out += ' ';
        out += this.sp.decodePieces(sub) + piece;
        prevSpecial = true;
        sub = [];
      } else {
        sub.push(piece);
        prevSpecial = false;
      }
    }
    out += this.sp.decodePieces(sub);
    return pyStrip(out);
  }
}
