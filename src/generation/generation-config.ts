// Generation settings: the checkpoint's generation_config.json (HF field names), overridden by
// what the caller asks for. Defaults are transformers' GenerationConfig defaults.
import { TfvlmError } from '../errors.ts';
import { host } from '../io/host.ts';
import type { SamplingOptions } from './sampler.ts';

/** The fields of generation_config.json that tfvlm uses. */
export interface GenerationConfigJson {
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number | null;
  repetition_penalty?: number;
  max_new_tokens?: number;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  bos_token_id?: number | null;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Token ids that end generation (eos_token_id, plus e.g. `<end_of_utterance>`). */
  eosTokenIds: number[];
  stopStrings: string[];
  seed: number;
}

export type GenerateOverrides = Partial<GenerateOptions>;

/** Every GenerateOptions field (the compiler checks the list is complete). */
export const GENERATE_OPTION_KEYS = Object.keys({
  doSample: true, temperature: true, topK: true, topP: true, minP: true, repetitionPenalty: true,
  maxNewTokens: true, eosTokenIds: true, stopStrings: true, seed: true,
} satisfies Record<keyof GenerateOptions, true>) as (keyof GenerateOptions)[];

export const DEFAULT_MAX_NEW_TOKENS = 256;

export function readGenerationConfig(modelDir: string): GenerationConfigJson {
  const h = host();
  const file = h.join(modelDir, 'generation_config.json');
  if (!h.exists(file)) return {};
  let config: GenerationConfigJson;
  try {
    const json = JSON.parse(h.readText(file)) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
    config = json as GenerationConfigJson;
  } catch (e) {
    throw new TfvlmError(`${file}: not valid generation config JSON (${(e as Error).message})`);
  }
  // Checked here, not at the first generate, so the message names the file.
  try {
    for (const field of ['eos_token_id', 'pad_token_id', 'bos_token_id'] as const) {
      const v = config[field];
      const ids = v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
      check(ids.every((id) => Number.isSafeInteger(id)), field, JSON.stringify(v), 'a token id, a list of token ids or null');
    }
    check(config.do_sample === undefined || config.do_sample === null || typeof config.do_sample === 'boolean', 'do_sample', config.do_sample, 'true or false');
    resolveGenerateOptions(config);
  } catch (e) {
    throw new TfvlmError(`${file}: ${(e as Error).message}`);
  }
  return config;
}

/** Merge: transformers defaults ← generation_config.json ← caller overrides; then validate. */
export function resolveGenerateOptions(
  config: GenerationConfigJson,
  overrides: GenerateOverrides = {},
  extraEosTokenIds: number[] = [],
): GenerateOptions {
  const eos = config.eos_token_id;
  const fromConfig = eos == null ? [] : Array.isArray(eos) ? eos : [eos];
  const options: GenerateOptions = {
    doSample: config.do_sample ?? false,
    temperature: config.temperature ?? 1,
    topK: config.top_k ?? 50,
    topP: config.top_p ?? 1,
    minP: config.min_p ?? 0,
    repetitionPenalty: config.repetition_penalty ?? 1,
    maxNewTokens: config.max_new_tokens ?? DEFAULT_MAX_NEW_TOKENS,
    eosTokenIds: [...new Set([...fromConfig, ...extraEosTokenIds])],
    stopStrings: [],
    seed: 0,
    ...definedOnly(overrides),
  };
  for (const key of Object.keys(options)) if (!GENERATE_OPTION_KEYS.includes(key as keyof GenerateOptions)) delete options[key as keyof GenerateOptions];
  check(Number.isInteger(options.maxNewTokens) && options.maxNewTokens >= 0, 'max_new_tokens', options.maxNewTokens, 'a whole number ≥ 0');
  check(options.temperature >= 0 && Number.isFinite(options.temperature), 'temperature', options.temperature, 'a finite number ≥ 0');
  check(Number.isInteger(options.topK) && options.topK >= 0, 'top_k', options.topK, 'a whole number ≥ 0');
  check(options.topP > 0 && options.topP <= 1, 'top_p', options.topP, 'in (0, 1]');
  check(options.minP >= 0 && options.minP <= 1, 'min_p', options.minP, 'in [0, 1]');
  check(options.repetitionPenalty > 0 && Number.isFinite(options.repetitionPenalty), 'repetition_penalty', options.repetitionPenalty, 'a finite number > 0');
  return options;
}

function check(ok: boolean, field: string, value: unknown, what: string): void {
  if (!ok) throw new TfvlmError(`generation option ${field} must be ${what}, got ${String(value)}`);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
