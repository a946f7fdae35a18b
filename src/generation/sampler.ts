// Picks the next token from one row of logits. A pure function of (logits, history, options, rng).
import { Rng } from '../util/rng.ts';
import {
  applyMinP, applyRepetitionPenalty, applyTemperature, applyTopK, applyTopP, argmax, softmax,
} from './logits-processors.ts';

export interface SamplingOptions {
  /** false (or temperature 0) = greedy argmax. */
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

export const GREEDY: SamplingOptions = {
  doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1,
};

export function isGreedy(o: SamplingOptions): boolean {
  return !o.doSample || o.temperature === 0;
}

/**
 * Returns the next token id. `logits` is modified in place. `history` is the whole sequence so
 * far (prompt + generated), used by the repetition penalty as transformers does.
 */
export function sampleToken(
  logits: Float32Array,
  history: readonly number[],
  options: SamplingOptions,
  rng: Rng,
): number {
  applyRepetitionPenalty(logits, history, options.repetitionPenalty);
  if (isGreedy(options)) return argmax(logits);
  applyTemperature(logits, options.temperature);
  applyTopK(logits, options.topK);
  applyTopP(logits, options.topP);
  applyMinP(logits, options.minP);
  return drawFrom(softmax(logits), rng);
}

/** Multinomial draw of one index from probabilities that sum to 1. */
export function drawFrom(probs: Float64Array, rng: Rng): number {
  const u = rng.next();
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cumulative += probs[i]!;
    last = i;
    if (u < cumulative) return i;
  }
  return last;
}
