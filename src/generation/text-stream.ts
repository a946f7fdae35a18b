// Token loop → text: incremental decoding (never a broken UTF-8 sequence or a partial special
// token), stop strings matched across token boundaries, special tokens left out of the text.
import type { Tokenizer } from '../tokenizer/index.ts';
import { createStreamDecoder } from '../tokenizer/index.ts';
import { generateTokens, type GenerationTimings, type PromptBatch, type TokenLoopOptions, type TokenLoopResult, type TokenStep } from './generate.ts';
import { StopStringMatcher } from './stop-strings.ts';
import type { GenerativeModel } from '../models/decoder-model.ts';

export interface TextGenerationOptions extends TokenLoopOptions {
  stopStrings?: string[];
}

export interface TextGenerationResult {
  text: string;
  /** New token ids (the eos that ended generation included). */
  generatedIds: number[];
  timings: GenerationTimings;
  stopReason: TokenLoopResult['stopReason'] | 'stop_string';
}

/**
 * Streams the text of one sequence as it is generated; returns the whole result at the end. Leaving early
 * (break, return(), throw()) ends the token loop too, which frees its KV cache.
 */
export function streamText(
  model: GenerativeModel,
  tokenizer: Tokenizer,
  prompt: PromptBatch,
  options: TextGenerationOptions,
): AsyncGenerator<string, TextGenerationResult> {
  return textOfTokens(tokenizer, options.stopStrings ?? [], (stopped) =>
    generateTokens(model, prompt, { ...options, shouldStop: () => stopped() || (options.shouldStop?.() ?? false) }));
}

/**
 * The text of the token loop that `start` begins (one sequence), handed a check that says when a stop
 * string has been seen, which the loop must obey between tokens.
 */
export async function* textOfTokens(
  tokenizer: Tokenizer,
  stopStrings: readonly string[],
  start: (stopped: () => boolean) => AsyncGenerator<TokenStep, TokenLoopResult>,
): AsyncGenerator<string, TextGenerationResult> {
  const decoder = createStreamDecoder(tokenizer, { skipSpecialTokens: true });
  const stops = new StopStringMatcher(stopStrings);
  const loop = start(() => stops.stopped);
  let text = '';
  let finished = false;
  try {
    for (;;) {
      const r = await loop.next();
      if (r.done) {
        finished = true;
        const tail = stops.push(decoder.flush()) + stops.flush();
        if (tail) {
          text += tail;
          yield tail;
        }
        return {
          text,
          generatedIds: r.value.generated[0]!, // one sequence (generateTokens refuses an empty batch)
          timings: r.value.timings,
          stopReason: stops.stopped ? 'stop_string' : r.value.stopReason,
        };
      }
      const delta = stops.push(decoder.push(r.value.tokens[0]!));
      if (delta) {
        text += delta;
        yield delta;
      }
    }
  } finally {
    if (!finished) await loop.return(undefined as never);
  }
}
