// Where @huggingface/tokenizers 0.2.0 differs from the Rust `tokenizers` crate that transformers runs, patched on
// the built pipeline objects (matched to their tokenizer.json entries by position, not by class name):
// - ByteFallback decoder: Rust emits one U+FFFD per byte of an invalid run (decoders/byte_fallback.rs); the
//   library decodes the run with TextDecoder (one U+FFFD per maximal subpart).
// - Metaspace decoder: Rust drops every `▁` of the first token unless prepend_scheme is "never"
//   (decoders/metaspace.rs); the library replaces them and strips one leading space regardless.
// - Metaspace pre-tokenizer: the library ignores `split` (Rust default true: split before each `▁`) and the
//   legacy `add_prefix_space: false` (= prepend_scheme "never").
import { isObject } from './files.ts';

type Json = Record<string, unknown>;
type Piece = { decode_chain?: (t: string[]) => string[]; pre_tokenize_text?: (t: string, o?: unknown) => string[] };

const REPLACEMENT_CHAR = '\uFFFD';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function byteFallbackChain(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    try {
      out.push(strictUtf8.decode(Uint8Array.from(bytes)));
    } catch {
      for (let i = 0; i < bytes.length; i++) out.push(REPLACEMENT_CHAR);
    }
    bytes = [];
  };
  for (const tok of tokens) {
    const hex = tok.length === 6 ? /^<0x([0-9A-Fa-f]{2})>$/.exec(tok)?.[1] : undefined;
    if (hex !== undefined) bytes.push(parseInt(hex, 16));
    else {
      flush();
      out.push(tok);
    }
  }
  flush();
  return out;
}

function prependScheme(cfg: Json): string {
  if (typeof cfg.prepend_scheme === 'string') return cfg.prepend_scheme;
  if (cfg.add_prefix_space === false) return 'never';
  return 'always';
}

function patchDecoder(obj: Piece | null | undefined, cfg: unknown): void {
  if (!obj || !isObject(cfg)) return;
  if (cfg.type === 'Sequence' && Array.isArray(cfg.decoders)) {
    const subs = (obj as { decoders?: Piece[] }).decoders ?? [];
    cfg.decoders.forEach((c, i) => patchDecoder(subs[i], c));
  } else if (cfg.type === 'ByteFallback') {
    obj.decode_chain = byteFallbackChain;
  } else if (cfg.type === 'Metaspace') {
    const rep = typeof cfg.replacement === 'string' ? cfg.replacement : '\u2581';
    const dropFirst = prependScheme(cfg) !== 'never';
    obj.decode_chain = (tokens) => tokens.map((t, i) => (i === 0 && dropFirst ? t.replaceAll(rep, '') : t.replaceAll(rep, ' ')));
  }
}

function patchPreTokenizer(obj: Piece | null | undefined, cfg: unknown): void {
  if (!obj || !isObject(cfg)) return;
  if (cfg.type === 'Sequence' && Array.isArray(cfg.pretokenizers)) {
    const subs = (obj as { tokenizers?: Piece[] }).tokenizers ?? [];
    cfg.pretokenizers.forEach((c, i) => patchPreTokenizer(subs[i], c));
  } else if (cfg.type === 'Metaspace') {
    const rep = typeof cfg.replacement === 'string' ? cfg.replacement : '\u2581';
    const scheme = prependScheme(cfg);
    const split = cfg.split !== false;
    obj.pre_tokenize_text = (text: string, options?: unknown) => {
      const section = (options as { section_index?: number } | undefined)?.section_index;
      let s = text.replaceAll(' ', rep);
      if (!s.startsWith(rep) && (scheme === 'always' || (scheme === 'first' && section === 0))) s = rep + s;
      if (!split) return [s];
      // SplitDelimiterBehavior::MergedWithNext: each `▁` starts a new piece.
      return s.split(new RegExp(`(?=${rep.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})`, 'u')).filter((p) => p.length > 0);
    };
  }
}

/** Applies the fixes above to a built @huggingface/tokenizers Tokenizer, given its tokenizer.json. */
export function applyLibraryFixes(hf: { decoder: unknown; pre_tokenizer: unknown }, json: Json): void {
  patchDecoder(hf.decoder as Piece, json.decoder);
  patchPreTokenizer(hf.pre_tokenizer as Piece, json.pre_tokenizer);
}
