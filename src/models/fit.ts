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
import { residentBytes, type WeightSource, type WeightsResidence } from './weights.ts';

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

export function checkModelFits(checkpoint: Checkpoint, build: (w: WeightSource) => unknown, residence: WeightsResidence,
  text: Pick<LlamaConfig, 'num_hidden_layers' | 'num_key_value_heads' | 'head_dim' | 'max_position_embeddings'>): void {
  const weights = residentBytes(checkpoint, build, residence);
  const tokens = Math.min(NOMINAL_CONTEXT, text.max_position_embeddings);
  const kv = kvCacheBytes(text, tokens);
  const what = checkpoint.source;
  if (residence === 'float32' && tf.getBackend() === 'wasm') {
    const matrices = residentBytes(checkpoint, build, 'stored');
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
