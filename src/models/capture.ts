// Activation capture: a forward pass given a Capture records the named intermediates it is asked
// for (names as in FIXTURES.md: `vision.embeddings`, `vision.layers.{i}`, `vision.post_layernorm`,
// `connector.pixel_shuffle`, `connector`, `text.inputs_embeds`, `text.layers.{i}`, `text.norm`,
// `logits`). Recorded tensors belong to the capture; dispose() releases them.
import { tf } from '../backend/index.ts';

export class Capture {
  readonly tensors = new Map<string, tf.Tensor>();
  private readonly wanted: Set<string> | 'all';

  constructor(names: 'all' | Iterable<string> = 'all') {
    this.wanted = names === 'all' ? 'all' : new Set(names);
  }

  wants(name: string): boolean {
    return this.wanted === 'all' || this.wanted.has(name);
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
