// Activation capture: a forward pass given a Capture records the named intermediates it is asked
// for (names as in FIXTURES.md: `vision.embeddings`, `vision.layers.{i}`, `vision.post_layernorm`,
// `connector.pixel_shuffle`, `connector`, `text.inputs_embeds`, `text.layers.{i}`, `text.norm`,
// `logits`). Recorded tensors belong to the capture; dispose() releases them.
//
// Attention probabilities (transformers' `output_attentions`) are recorded as
// `{vision,text}.layers.{i}.attn_weights` [B, H, T, S] when asked for by name; 'all' leaves them
// out, since one layer of a 1000-token prompt alone holds H·T² values.
import { tf } from '../backend/index.ts';

const ATTENTION_WEIGHTS = '.attn_weights';

export class Capture {
  readonly tensors = new Map<string, tf.Tensor>();
  private readonly wanted: Set<string> | 'all';

  constructor(names: 'all' | Iterable<string> = 'all') {
    this.wanted = names === 'all' ? 'all' : new Set(names);
  }

  wants(name: string): boolean {
    return this.wanted === 'all' ? !name.endsWith(ATTENTION_WEIGHTS) : this.wanted.has(name);
  }

  /** Keeps a copy of t under name (if wanted); safe inside tf.tidy. A later record replaces an earlier one. */
  record(name: string, t: tf.Tensor): void {
    if (!this.wants(name)) return;
    this.tensors.get(name)?.dispose();
    this.tensors.set(name, tf.keep(tf.clone(t)));
  }

  get(name: string): tf.Tensor | undefined {
    return this.tensors.get(name);
  }

  /** Requested names that no forward pass produced. */
  missing(): string[] {
    return this.wanted === 'all' ? [] : [...this.wanted].filter((n) => !this.tensors.has(n));
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

/** The attention-probability hook for layer `layerName` (e.g. `text.layers.3`), or undefined if not wanted. */
export function attentionRecorder(capture: Capture | undefined, layerName: string): ((weights: tf.Tensor) => void) | undefined {
  const name = `${layerName}${ATTENTION_WEIGHTS}`;
  return capture?.wants(name) ? (weights) => capture.record(name, weights) : undefined;
}
