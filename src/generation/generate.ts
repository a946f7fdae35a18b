// The decoding loop: prefill the prompt once (images encoded once), then one token per step with
// a per-layer KV cache. Batched rows follow transformers' generate(): position ids from the
// attention mask (cumsum − 1), the first new token taken from the last column, finished rows
// continued with the pad id.
import { readsSync, tf, withComputeThreads } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { disposeKVCaches, type KVCache } from '../layers/kv-cache.ts';
import type { GenerateOptions } from './generation-config.ts';
import { Rng } from '../util/rng.ts';
import { isGreedy, sampleToken, type SamplingOptions } from './sampler.ts';
import type { GenerativeModel } from '../models/decoder-model.ts';
import { withProgress, type ProgressListener } from '../util/progress.ts';

/** A tokenised batch as the processor makes it (plain arrays). */
export interface PromptBatch {
  input_ids: number[][];
  attention_mask?: number[][];
  pixel_values?: Float32Array;
  pixelShape?: number[];
  pixel_attention_mask?: Uint8Array;
}

export interface GenerationTimings {
  /** Token embedding + vision encoder + connector + merge. */
  embedMs: number;
  /** Decoder over the prompt. */
  prefillMs: number;
  prefillTokens: number;
  /** All decode steps after the first token. */
  decodeMs: number;
  decodeTokens: number;
}

export interface TokenStep {
  /** 0 for the token picked from the prompt's logits. */
  step: number;
  /** The new token of each row (pad id for rows that had already finished). */
  tokens: number[];
  /** Rows that are finished after this step. */
  finished: boolean[];
}

export interface TokenLoopOptions extends Pick<GenerateOptions,
  'maxNewTokens' | 'eosTokenIds' | 'seed' | 'doSample' | 'temperature' | 'topK' | 'topP' | 'minP' | 'repetitionPenalty'> {
  /**
   * Threads for decode steps (default $TFVLM_DECODE_THREADS, else 1): one-token steps are many
   * small matmuls, where waking a second wasm thread costs more than it saves. Prefill and vision
   * use every thread.
   */
  decodeThreads?: number;
  /** Id that finished rows continue with (generation_config pad_token_id, else the first eos). */
  padTokenId?: number;
  /** Receives each step's raw logits [B, vocab] (for tests and research; costs a download per step). */
  onLogits?: (logits: Float32Array, step: number) => void;
  /** Stop early (e.g. a stop string was matched by the caller). */
  shouldStop?: () => boolean;
  /** Ends generation (stop reason `aborted`) before the prefill and between steps once it fires. */
  signal?: AbortSignal;
  /** Receives 'vision' and 'prefill' progress (layers done) during the first forward pass. */
  onProgress?: ProgressListener;
  /**
   * A KV cache that already holds earlier positions of this (single, unpadded) sequence: the prompt
   * is then only the new tokens. The cache is updated and left to its owner (not disposed).
   */
  cache?: KVCache[];
}

export interface TokenLoopResult {
  /** Generated ids per row (including the eos that ended the row). */
  generated: number[][];
  timings: GenerationTimings;
  /** What ended generation: every row hit eos, max_new_tokens, the context window, the caller, or the signal. */
  stopReason: 'eos' | 'max_new_tokens' | 'context' | 'stopped' | 'aborted';
}

/**
 * Generates token ids for a batch, yielding each step. The KV cache is created here and disposed at
 * the end (or when the consumer stops iterating).
 */
export async function* generateTokens(
  model: GenerativeModel,
  prompt: PromptBatch,
  options: TokenLoopOptions,
): AsyncGenerator<TokenStep, TokenLoopResult> {
  const B = prompt.input_ids.length;
  const T = prompt.input_ids[0]?.length ?? 0;
  if (B === 0 || T === 0) throw new TfvlmError('generate: the prompt is empty');
  if (prompt.input_ids.some((row) => row.length !== T)) throw new TfvlmError('generate: input_ids rows differ in length (pad the batch)');
  const cached = options.cache?.[0]?.offset ?? 0;
  if (options.cache && (B !== 1 || prompt.attention_mask?.[0]?.some((m) => m === 0))) {
    throw new TfvlmError('generate: continuing a cached sequence needs one unpadded row');
  }
  if (cached + T >= model.maxPositions) {
    throw new TfvlmError(
      `generate: the prompt has ${cached + T} tokens${cached ? ` (${cached} cached)` : ''} but the context window (max_position_embeddings) is ${model.maxPositions}`,
    );
  }
  const maxNew = Math.min(options.maxNewTokens, model.maxPositions - cached - T);
  model.checkPromptFits({ batch: B, promptTokens: T, cachedTokens: cached, newTokens: Math.max(0, maxNew) });
  const mask = options.cache
    ? [new Array<number>(cached + T).fill(1)]
    : (prompt.attention_mask ?? prompt.input_ids.map((row) => row.map(() => 1))).map((row) => [...row]);
  const history = prompt.input_ids.map((row) => [...row]);
  const generated: number[][] = Array.from({ length: B }, () => []);
  const finished = new Array<boolean>(B).fill(false);
  const eos = new Set(options.eosTokenIds);
  const pad = options.padTokenId ?? options.eosTokenIds[0] ?? 0;
  const rng = new Rng(options.seed);
  const decodeThreads = options.decodeThreads ?? (Number(process.env.TFVLM_DECODE_THREADS) || 1);
  const timings: GenerationTimings = { embedMs: 0, prefillMs: 0, prefillTokens: B * T, decodeMs: 0, decodeTokens: 0 };
  // A cache made here holds exactly this call's positions (a 7B model's is 0.5 MB per position).
  const cache: KVCache[] = options.cache ?? model.createCache(T + Math.max(0, maxNew));
  let stopReason: TokenLoopResult['stopReason'] = 'max_new_tokens';
  try {
    if (options.signal?.aborted) return { generated, timings: { ...timings, prefillTokens: 0 }, stopReason: 'aborted' };
    if (maxNew === 0) return { generated, timings, stopReason: options.maxNewTokens === 0 ? 'max_new_tokens' : 'context' };
    let t0 = performance.now();
    const positions = options.cache ? Int32Array.from({ length: T }, (_, t) => cached + t) : prefillPositions(mask);
    const { logits, embedMs } = prefillPrompt(model, prompt, cache, { mask, positions, onProgress: options.onProgress });
    const samplers = () => history.map((h, b) => ({ history: h, rng, sampling: options, done: finished[b]! }));
    const syncReads = readsSync();
    let tokens = syncReads ? pickTokens(logits, samplers(), pad, options.onLogits, 0)
      : await pickTokensAsync(logits, samplers(), pad, options.onLogits, 0);
    timings.embedMs = embedMs;
    timings.prefillMs = performance.now() - t0 - embedMs;

    for (let step = 0; ; step++) {
      for (let b = 0; b < B; b++) {
        if (finished[b]) continue;
        const token = tokens[b]!;
        generated[b]!.push(token);
        history[b]!.push(token);
        if (eos.has(token)) finished[b] = true;
      }
      yield { step, tokens, finished: [...finished] };
      if (finished.every(Boolean)) {
        stopReason = 'eos';
        break;
      }
      if (options.signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
      if (options.shouldStop?.()) {
        stopReason = 'stopped';
        break;
      }
      if (step + 1 >= maxNew) {
        stopReason = maxNew < options.maxNewTokens ? 'context' : 'max_new_tokens';
        break;
      }
      t0 = performance.now();
      for (const row of mask) row.push(1);
      const positions = mask.map((row) => row.reduce((a, m) => a + m, 0) - 1);
      const stepTokens = tokens;
      const stepLogits = (): tf.Tensor => {
        const stepEmbeds = tf.tidy(() => model.embed({ input_ids: tf.tensor2d(stepTokens, [B, 1], 'int32') }));
        try {
          return model.decodeLast(stepEmbeds, mask.flat(), positions, cache);
        } finally {
          stepEmbeds.dispose();
        }
      };
      // The whole step on decodeThreads: an op on the full pool (the embedding gather, argMax) wakes
      // XNNPACK's other threads, which then spin against this one.
      tokens = syncReads
        ? withComputeThreads(decodeThreads, () => pickTokens(stepLogits(), samplers(), pad, options.onLogits, step + 1))
        : await pickTokensAsync(stepLogits(), samplers(), pad, options.onLogits, step + 1);
      timings.decodeMs += performance.now() - t0;
      timings.decodeTokens += B;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { generated, timings, stopReason };
  } finally {
    if (!options.cache) disposeKVCaches(cache);
  }
}

/**
 * The prompt through the model: token embeddings with the images merged (the vision encoder runs
 * here), then the decoder over them, PREFILL_CHUNK positions per pass, into `cache`. Returns the
 * logits of the last position [B, 1, V] and the milliseconds the embedding took. `mask` and
 * `positions` default to one unpadded row's.
 */
export function prefillPrompt(
  model: GenerativeModel,
  prompt: PromptBatch,
  cache: KVCache[],
  opts: { mask?: number[][]; positions?: Int32Array; onProgress?: ProgressListener } = {},
): { logits: tf.Tensor; embedMs: number } {
  const B = prompt.input_ids.length;
  const T = prompt.input_ids[0]?.length ?? 0;
  const mask = opts.mask ?? prompt.input_ids.map((row) => row.map(() => 1));
  const t0 = performance.now();
  const embeds = withProgress(opts.onProgress, () => tf.tidy(() =>
    model.embed({
      input_ids: tf.tensor2d(prompt.input_ids.flat(), [B, T], 'int32'),
      ...(prompt.pixel_values && prompt.pixelShape
        ? {
            pixel_values: tf.tensor(prompt.pixel_values, prompt.pixelShape, 'float32'),
            ...(prompt.pixel_attention_mask
              // [B, tiles, C, H, W] → [B, tiles, H, W]
              ? { pixel_attention_mask: tf.tensor(prompt.pixel_attention_mask, prompt.pixelShape.filter((_, i) => i !== 2), 'bool') }
              : {}),
          }
        : {}),
    }),
  ));
  const embedMs = performance.now() - t0;
  try {
    return { logits: prefillInChunks(model, embeds, mask, opts.positions ?? prefillPositions(mask), cache, opts.onProgress), embedMs };
  } finally {
    embeds.dispose();
  }
}

/**
 * Checks a prompt for a sequence of its own (continuous batching): one unpadded, non-empty row that
 * leaves room in the context window. Returns its length.
 */
export function checkSequencePrompt(prompt: PromptBatch, maxPositions: number): number {
  const [row, ...others] = prompt.input_ids;
  if (!row || others.length > 0) throw new TfvlmError(`generate: a batched sequence takes one prompt row, got ${prompt.input_ids.length}`);
  if (row.length === 0) throw new TfvlmError('generate: the prompt is empty');
  if (prompt.attention_mask && (prompt.attention_mask.length !== 1 || prompt.attention_mask[0]?.some((m) => m !== 1))) {
    throw new TfvlmError('generate: a batched sequence takes an unpadded prompt (attention_mask all 1)');
  }
  if (row.length >= maxPositions) {
    throw new TfvlmError(`generate: the prompt has ${row.length} tokens but the context window (max_position_embeddings) is ${maxPositions}`);
  }
  return row.length;
}

/**
 * Prompt positions per prefill pass. A long prompt runs through the decoder in passes of this many
 * positions over the growing cache: the same attention and the same rows, with activations bounded
 * by the pass (a 7B model's 593-position prefill held ~0.5 GB of attention scores and MLP rows at
 * once). Large enough that the matrix products stay as efficient as one pass.
 */
export const PREFILL_CHUNK = 256;

/** Logits of the last prompt position after running embeds [B, T, H] through the decoder, PREFILL_CHUNK positions per pass. */
function prefillInChunks(model: GenerativeModel, embeds: tf.Tensor, mask: number[][], positions: Int32Array, cache: KVCache[],
  onProgress: ProgressListener | undefined): tf.Tensor {
  const [B, T] = embeds.shape as [number, number, number];
  const masked = mask[0]!.length - T; // positions already in the cache (mask has B ≥ 1 rows)
  if (T <= PREFILL_CHUNK) return withProgress(onProgress, () => model.decodeLast(embeds, mask.flat(), positions, cache));
  const passes = Math.ceil(T / PREFILL_CHUNK);
  let logits: tf.Tensor | undefined;
  for (let pass = 0; pass < passes; pass++) {
    const t0 = pass * PREFILL_CHUNK;
    const n = Math.min(PREFILL_CHUNK, T - t0);
    // Progress over all passes: each reports its layers.
    const listener: ProgressListener | undefined = onProgress
      && ((e) => onProgress(e.stage === 'prefill' ? { ...e, done: pass * e.total + e.done, total: passes * e.total } : e));
    const part = tf.slice(embeds, [0, t0, 0], [B, n, -1]);
    try {
      const partMask = mask.flatMap((row) => row.slice(0, masked + t0 + n));
      const partPositions = Int32Array.from({ length: B * n }, (_, i) => positions[Math.floor(i / n) * T + t0 + (i % n)]!);
      logits?.dispose();
      logits = withProgress(listener, () => model.decodeLast(part, partMask, partPositions, cache));
    } finally {
      part.dispose();
    }
  }
  return logits!;
}

/** transformers generate(): position_ids = cumsum(attention_mask) − 1, and 1 where the mask is 0. */
export function prefillPositions(mask: number[][]): Int32Array {
  const T = mask[0]?.length ?? 0;
  const out = new Int32Array(mask.length * T);
  mask.forEach((row, b) => {
    let seen = 0;
    row.forEach((m, t) => {
      seen += m;
      out[b * T + t] = m === 0 ? 1 : seen - 1;
    });
  });
  return out;
}

/** What picks one row's next token: its sequence so far, its sampler settings and random stream. */
export interface RowSampler {
  /** Prompt and generated ids (the repetition penalty reads them). */
  readonly history: readonly number[];
  readonly sampling: SamplingOptions;
  readonly rng: Rng;
  /** A finished row: it gets the pad id. */
  readonly done?: boolean;
}

/** What a step downloads (the on-device argMax ids, or the logits) and how it turns them into tokens. */
interface TokenReadout {
  tensor: tf.Tensor;
  tokens(values: ArrayLike<number>): number[];
}

function tokenReadout(
  logits: tf.Tensor,
  rows: readonly RowSampler[],
  pad: number,
  onLogits: ((logits: Float32Array, step: number) => void) | undefined,
  step: number,
): TokenReadout {
  const B = logits.shape[0] ?? 0;
  const V = logits.shape[2] ?? 0;
  if (rows.length !== B) throw new Error(`internal: ${rows.length} row samplers for logits [${logits.shape}]`);
  const onDevice = !onLogits && rows.every((r) => r.done || (isGreedy(r.sampling) && r.sampling.repetitionPenalty === 1));
  if (onDevice) {
    return {
      tensor: tf.tidy(() => tf.argMax(tf.reshape(logits, [B, V]), -1)),
      tokens: (ids) => Array.from(ids, (id, b) => (rows[b]!.done ? pad : id)),
    };
  }
  return {
    tensor: logits,
    tokens: (values) => {
      const all = values as Float32Array;
      onLogits?.(Float32Array.from(all), step);
      return rows.map((r, b) => (r.done ? pad : sampleToken(all.slice(b * V, (b + 1) * V), r.history, r.sampling, r.rng)));
    },
  };
}

/**
 * Next token per row from logits [B, 1, V]; disposes the logits. Greedy rows without a repetition
 * penalty take an argMax on the backend (no download of the logits) unless a row samples or
 * onLogits wants them.
 */
export function pickTokens(
  logits: tf.Tensor,
  rows: readonly RowSampler[],
  pad: number,
  onLogits?: (logits: Float32Array, step: number) => void,
  step = 0,
): number[] {
  try {
    const readout = tokenReadout(logits, rows, pad, onLogits, step);
    try {
      return readout.tokens(readout.tensor.dataSync());
    } finally {
      if (readout.tensor !== logits) readout.tensor.dispose();
    }
  } finally {
    logits.dispose();
  }
}

/** pickTokens, downloading with tensor.data(): for backends that cannot read synchronously (readsSync()). */
export async function pickTokensAsync(
  logits: tf.Tensor,
  rows: readonly RowSampler[],
  pad: number,
  onLogits?: (logits: Float32Array, step: number) => void,
  step = 0,
): Promise<number[]> {
  try {
    const readout = tokenReadout(logits, rows, pad, onLogits, step);
    try {
      return readout.tokens(await readout.tensor.data());
    } finally {
      if (readout.tensor !== logits) readout.tensor.dispose();
    }
  } finally {
    logits.dispose();
  }
}
