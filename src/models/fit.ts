// Whether a model fits, decided before anything is allocated: the bytes its weights will hold where
// they live (residentBytes), a KV cache for a nominal context, and working memory, against the
// memory available (backend/memory-budget.ts). With float32 residence on tfjs-wasm the weights also
// share one heap of at most 4 GiB with a second, XNNPACK-packed copy of every matrix: that is
// checked too, so a large model gets a named error instead of an emscripten abort mid-load.
import { tf } from '../backend/index.ts';
import { checkFits } from '../backend/memory-budget.ts';
import { TfvlmError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import type { LlamaConfig } from './llama/config.ts';
import { residentBytes, type LoadWeightsOptions } from './load-weights.ts';
import type { WeightSource } from './weights.ts';

/** Context the load-time check reserves a KV cache for (capped by max_position_embeddings). */
export const NOMINAL_CONTEXT = 1024;
/** Activations, tfjs heap, kernel scratch, tokenizer: a floor measured with the 256M model. */
export const WORKING_BYTES = 512e6;
/** tfjs-wasm's heap cannot grow past 4 GiB (wasm32). */
const WASM_HEAP_BYTES = 2 ** 32;

/** float32 KV cache bytes for `tokens` positions of one sequence. */
export function kvCacheBytes(c: Pick<LlamaConfig, 'num_hidden_layers' | 'num_key_value_heads' | 'head_dim'>, tokens: number): number {
  return 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4 * tokens;
}

export function checkModelFits(checkpoint: Checkpoint, build: (w: WeightSource) => unknown, load: LoadWeightsOptions,
  text: Pick<LlamaConfig, 'num_hidden_layers' | 'num_key_value_heads' | 'head_dim' | 'max_position_embeddings'>): void {
  const residence = load.weights ?? 'float32';
  const weights = residentBytes(checkpoint, build, residence, load);
  const tokens = Math.min(NOMINAL_CONTEXT, text.max_position_embeddings);
  const kv = kvCacheBytes(text, tokens);
  const what = checkpoint.source;
  if (residence === 'float32' && tf.getBackend() === 'wasm') {
    const matrices = residentBytes(checkpoint, build, 'stored', load);
    const heap = weights + Math.min(weights, matrices * 2) + kv;
    if (heap > WASM_HEAP_BYTES) {
      const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
      throw new TfvlmError(
        `${what} does not fit with weights 'float32': tfjs-wasm's heap holds at most ${gb(WASM_HEAP_BYTES)}, and this model ` +
        `needs ${gb(weights)} of float32 weights + about ${gb(Math.min(weights, matrices * 2))} for XNNPACK's packed copies + ` +
        `a KV cache of ${gb(kv)} (${tokens} tokens). Load it with weights 'stored' (the default), which keeps the ` +
        'weights in their checkpoint precision outside that heap.',
      );
    }
  }
  checkFits({
    what,
    parts: [
      { name: `weights (${residence})`, bytes: weights },
      { name: `KV cache (${tokens} tokens)`, bytes: kv },
      { name: 'working memory', bytes: WORKING_BYTES },
    ],
  });
}

/**
 * Whether a prompt fits in tfjs-wasm's heap, where the KV cache and activations live (the weights
 * do not, with stored residence): the cache for its new positions (new prompt tokens + tokens to
 * generate) and the prefill's activations (hidden states, MLP, one attention head's scores at a
 * time), against the heap's 4 GiB less what its tensors hold now. Other backends: no check.
 */
export function checkPromptFits(
  c: Pick<LlamaConfig, 'num_hidden_layers' | 'num_key_value_heads' | 'head_dim' | 'hidden_size' | 'intermediate_size'>,
  p: { batch: number; promptTokens: number; cachedTokens: number; newTokens: number },
): void {
  if (tf.getBackend() !== 'wasm') return;
  const { batch: B, promptTokens: T, cachedTokens, newTokens } = p;
  const S = cachedTokens + T + newTokens;
  const kv = B * kvCacheBytes(c, T + newTokens);
  const activations = 4 * B * T * (8 * c.hidden_size + 3 * c.intermediate_size) + 3 * 4 * B * T * S;
  const free = WASM_HEAP_BYTES - tf.memory().numBytes;
  if (kv + activations <= free) return;
  const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
  throw new TfvlmError(
    `a prompt of ${T} tokens${B > 1 ? ` × ${B} rows` : ''} with ${newTokens} to generate${cachedTokens ? ` after ${cachedTokens} cached` : ''} ` +
    `needs a KV cache of ${gb(kv)} + about ${gb(activations)} of activations in tfjs-wasm's heap, which has ${gb(free)} free ` +
    '(4 GiB at most): shorten the prompt, lower max_new_tokens, or turn image splitting off',
  );
}
