// Checkpoint → tensors, addressed by checkpoint key. Each architecture writes its weight tree once, as
// a build function over a WeightSource (`w.linear('model.text_model.layers.0.self_attn.q_proj', …)`,
// every shape derived from its config). The same function gives:
// - the spec (every key and shape, a dry run that creates no tensor), against which the whole
//   checkpoint is checked before anything is read, every problem (missing / unexpected / wrong shape /
//   non-float) in one TfvlmError;
// - the loaded tree (load-weights.ts, which also reads MLX names and quantized matrices);
// - the slots: where the model holds each checkpoint tensor and in which layout, for training and
//   for writing checkpoints back.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { Embedding } from '../layers/embedding.ts';
import type { Linear } from '../layers/linear.ts';
import type { LayerNorm } from '../layers/layer-norm.ts';
import type { RMSNorm } from '../layers/rms-norm.ts';

/** checkpoint key → expected shape, in a stable order. */
export type WeightSpec = Map<string, number[]>;

/** What a weight tree is built from: each tensor named by its checkpoint key and the shape the config implies. */
export interface WeightSource {
  tensor(key: string, shape: number[]): tf.Tensor;
  /** torch.nn.Linear `prefix.weight` [out, in] (+ `prefix.bias` [out]). */
  linear(prefix: string, inFeatures: number, outFeatures: number, bias: boolean): Linear;
  /** A conv2d with kernel = stride (`prefix.weight` [out, in, k, k]) as a Linear over flattened (C, y, x) patches. */
  patchConv(prefix: string, outChannels: number, inChannels: number, kernel: number, bias: boolean): Linear;
  /** A packed projection (torch MultiheadAttention `in_proj_weight` [Σout, in] + `in_proj_bias`) split into Linears. */
  packedLinears(weightKey: string, biasKey: string, inFeatures: number, outFeatures: number[]): Linear[];
  layerNorm(prefix: string, dim: number, eps: number): LayerNorm;
  rmsNorm(prefix: string, dim: number, eps: number): RMSNorm;
  /** torch.nn.Embedding `key` [num, dim]. */
  embedding(key: string, num: number, dim: number): Embedding;
}

/**
 * Where a model keeps its weight matrices: 'stored' in the checkpoint's precision in kernel arenas
 * outside the tfjs heap (inference, any size); 'float32' widened into tfjs tensors (training, the
 * reference path, backends without the kernels). Vectors (norms, biases of unpacked layers,
 * position embeddings) are float32 tfjs tensors either way.
 */
export type WeightsResidence = 'stored' | 'float32';

/** How the model holds a checkpoint tensor: as is, transposed ([in, out]), or a conv as a transposed Linear. */
export type SlotLayout = 'plain' | 'transposed' | 'conv';

/** One checkpoint tensor of a loaded model: its key, its checkpoint shape, and where the model holds it. */
export interface ParamSlot {
  /** Checkpoint key, e.g. `model.text_model.layers.0.self_attn.q_proj.weight`. */
  key: string;
  /** Shape in the checkpoint. */
  hfShape: number[];
  layout: SlotLayout;
  get(): tf.Tensor;
  set(t: tf.Tensor): void;
  /** The Linear this slot belongs to (weight and bias slots of linears), for LoRA. */
  linear?: Linear;
}

export type MatrixKind = 'linear' | 'conv' | 'packed' | 'embedding';

/** A weight matrix of the build: rows [rowStart, rowStart + rows) of `key` (a [rows, cols] view), and its bias. */
export interface MatrixKey {
  key: string;
  rowStart: number;
  rows: number;
  cols: number;
  kind: MatrixKind;
  biasKey?: string;
  /** conv: [out, in, k, k] in torch's layout. */
  conv?: { out: number; in: number; kernel: number };
}

/** What the loader notes for each tensor it creates, to find its slot in the tree afterwards. */
export interface Recorded {
  key: string;
  hfShape: number[];
  layout: SlotLayout;
  order: number;
  linear?: Linear;
}

/** The dry run: records keys and shapes (and which are matrices), creates nothing (the values it returns are never used). */
export class SpecRecorder implements WeightSource {
  readonly spec: WeightSpec = new Map();
  readonly matrices: MatrixKey[] = [];
  private readonly stub = {} as never;

  tensor(key: string, shape: number[]): tf.Tensor {
    this.spec.set(key, shape);
    return this.stub;
  }

  linear(prefix: string, inFeatures: number, outFeatures: number, bias: boolean): Linear {
    this.spec.set(`${prefix}.weight`, [outFeatures, inFeatures]);
    if (bias) this.spec.set(`${prefix}.bias`, [outFeatures]);
    this.matrices.push({ key: `${prefix}.weight`, rowStart: 0, rows: outFeatures, cols: inFeatures, kind: 'linear', biasKey: bias ? `${prefix}.bias` : undefined });
    return this.stub;
  }

  patchConv(prefix: string, outChannels: number, inChannels: number, kernel: number, bias: boolean): Linear {
    this.spec.set(`${prefix}.weight`, [outChannels, inChannels, kernel, kernel]);
    if (bias) this.spec.set(`${prefix}.bias`, [outChannels]);
    this.matrices.push({
      key: `${prefix}.weight`, rowStart: 0, rows: outChannels, cols: inChannels * kernel * kernel, kind: 'conv',
      biasKey: bias ? `${prefix}.bias` : undefined, conv: { out: outChannels, in: inChannels, kernel },
    });
    return this.stub;
  }

  packedLinears(weightKey: string, biasKey: string, inFeatures: number, outFeatures: number[]): Linear[] {
    const total = outFeatures.reduce((a, b) => a + b, 0);
    this.spec.set(weightKey, [total, inFeatures]);
    this.spec.set(biasKey, [total]);
    let rowStart = 0;
    for (const rows of outFeatures) {
      this.matrices.push({ key: weightKey, rowStart, rows, cols: inFeatures, kind: 'packed', biasKey });
      rowStart += rows;
    }
    return outFeatures.map(() => this.stub);
  }

  embedding(key: string, num: number, dim: number): Embedding {
    this.spec.set(key, [num, dim]);
    this.matrices.push({ key, rowStart: 0, rows: num, cols: dim, kind: 'embedding' });
    return this.stub;
  }

  layerNorm(prefix: string, dim: number): LayerNorm {
    this.spec.set(`${prefix}.weight`, [dim]);
    this.spec.set(`${prefix}.bias`, [dim]);
    return this.stub;
  }

  rmsNorm(prefix: string, dim: number): RMSNorm {
    this.spec.set(`${prefix}.weight`, [dim]);
    return this.stub;
  }
}

/** Every checkpoint key (and shape) `build` reads, in order. */
export function weightSpec(build: (w: WeightSource) => unknown): WeightSpec {
  const recorder = new SpecRecorder();
  build(recorder);
  return recorder.spec;
}

/** Finds, in the tree, the object field holding each recorded tensor; slots in the order the tensors were read. */
export function slotsOf(tree: unknown, recorded: Map<tf.Tensor, Recorded>): ParamSlot[] {
  const found: { r: Recorded; slot: ParamSlot }[] = [];
  const seen = new Set<unknown>();
  const walk = (obj: unknown): void => {
    if (obj === null || typeof obj !== 'object' || seen.has(obj) || obj instanceof tf.Tensor) return;
    seen.add(obj);
    for (const [field, value] of Object.entries(obj as Record<string, unknown>)) {
      const r = value instanceof tf.Tensor ? recorded.get(value) : undefined;
      if (!r) {
        walk(value);
        continue;
      }
      const holder = obj as Record<string, unknown>;
      found.push({
        r,
        slot: {
          key: r.key, hfShape: r.hfShape, layout: r.layout, linear: r.linear,
          get: () => holder[field] as tf.Tensor,
          set: (t) => { holder[field] = t; },
        },
      });
    }
  };
  walk(tree);
  return found.sort((a, b) => a.r.order - b.r.order).map((f) => f.slot);
}

/** In-model tensor → checkpoint layout (new tensor). */
export function toCheckpointLayout(slot: ParamSlot, t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    if (slot.layout === 'plain') return tf.clone(t);
    const w = tf.transpose(t); // [out, in]
    return slot.layout === 'conv' ? tf.reshape(w, slot.hfShape) : w;
  });
}

/** Checkpoint layout → in-model tensor (new tensor). */
export function fromCheckpointLayout(slot: ParamSlot, t: tf.Tensor): tf.Tensor {
  if (t.shape.length !== slot.hfShape.length || t.shape.some((d, i) => d !== slot.hfShape[i])) {
    throw new TfvlmError(`${slot.key}: shape [${t.shape}] does not match the model's [${slot.hfShape}]`);
  }
  return tf.tidy(() => {
    if (slot.layout === 'plain') return tf.clone(t);
    const out = slot.hfShape[0]!; // a conv weight is [out, in, k, k]
    const w = slot.layout === 'conv' ? tf.reshape(t, [out, t.size / out]) : t;
    return tf.transpose(w);
  });
}

/** key → tensor in checkpoint layout (new tensors, owned by the caller). */
export function checkpointTensors(slots: readonly ParamSlot[]): Map<string, tf.Tensor> {
  return new Map(slots.map((s) => [s.key, toCheckpointLayout(s, s.get())]));
}

/** Disposes every tensor found in a (nested) weights object. */
export function disposeTree(tree: unknown, seen = new Set<unknown>()): void {
  if (tree === null || typeof tree !== 'object' || seen.has(tree)) return;
  seen.add(tree);
  if (tree instanceof tf.Tensor) {
    tree.dispose();
    return;
  }
  for (const v of Object.values(tree as Record<string, unknown>)) disposeTree(v, seen);
}
