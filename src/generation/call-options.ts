// The options of a generate / stream / conversation call, and the check that refuses names that are
// not options (a misspelt `maxTokens` would otherwise be ignored without a word).
import { TfvlmError } from '../errors.ts';
import { PROCESS_OPTION_KEYS, type ProcessOptions } from '../processing/processor.ts';
import { GENERATE_OPTION_KEYS, type GenerateOverrides } from './generation-config.ts';
import type { TokenLoopOptions } from './generate.ts';

export interface GenerateCallOptions extends GenerateOverrides, ProcessOptions, Pick<TokenLoopOptions, 'onLogits' | 'decodeThreads' | 'onProgress'> {
  /**
   * Ends the call cleanly once it fires: media loading stops, generation stops before the prefill or
   * after the current token, and the result keeps the text so far with stopReason `aborted`.
   */
  signal?: AbortSignal;
}

const CALL_OPTION_KEYS: string[] = [...GENERATE_OPTION_KEYS, ...PROCESS_OPTION_KEYS, 'onLogits', 'decodeThreads', 'onProgress', 'signal'];

/** Refuses keys that are not options, naming the ones that are. */
export function checkCallOptions(options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TfvlmError(`generation options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!CALL_OPTION_KEYS.includes(key)) {
      throw new TfvlmError(`unknown option "${key}" (options: ${CALL_OPTION_KEYS.join(', ')})`);
    }
  }
  const signal = (options as GenerateCallOptions).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TfvlmError('option "signal" must be an AbortSignal');
}
