import type { Tokenizer } from './tokenizer.ts';

export interface StreamDecoder {
  /** Adds one generated id; returns the text that became final (may be ''). */
  push(id: number): string;
  /** Returns whatever is still held back (end of generation). */
  flush(): string;
}

const REPLACEMENT = '\uFFFD';

/**
 * Incremental detokenizer (the prefix/read-offset scheme of text-generation-inference):
 * decode a short window of ids with one already-emitted token of context and emit only what
 * lies past the context. Text is held back while it ends in U+FFFD (an incomplete UTF-8
 * sequence split over byte-level or byte-fallback tokens). Special tokens are single ids, so
 * they are emitted whole or, with skipSpecialTokens, not at all. The deltas concatenate to
 * `tokenizer.decode(allIds)`; flush() reconciles against a full decode to guarantee it.
 */
export function createStreamDecoder(tokenizer: Tokenizer, opts: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
  const decodeOpts = { skipSpecialTokens: opts.skipSpecialTokens ?? false };
  const ids: number[] = [];
  let prefixOffset = 0; // window start: context already emitted
  let readOffset = 0; // ids before this are fully emitted
  let emitted = '';

  return {
    push(id: number): string {
      ids.push(id);
      const prefixText = tokenizer.decode(ids.slice(prefixOffset, readOffset), decodeOpts);
      const newText = tokenizer.decode(ids.slice(prefixOffset), decodeOpts);
      if (newText.length <= prefixText.length || newText.endsWith(REPLACEMENT) || !newText.startsWith(prefixText)) return '';
      const delta = newText.slice(prefixText.length);
      prefixOffset = readOffset;
      readOffset = ids.length;
      emitted += delta;
      return delta;
    },
    flush(): string {
      const full = tokenizer.decode(ids, decodeOpts);
      // Never un-emit: if a decoder rewrote earlier text (it does not for byte-level/Metaspace), emit only the tail.
      const rest = full.startsWith(emitted) ? full.slice(emitted.length) : full.slice(Math.min(emitted.length, full.length));
      emitted += rest;
      prefixOffset = readOffset = ids.length;
      return rest;
    },
  };
}
