// Checkpoint → tensors, addressed by checkpoint key. Each architecture writes its weight tree once, as
// a build function over a WeightSource (`w.linear('model.text_model.layers.0.self_attn.q_proj', …)`,
// every shape derived from its config). The same function gives:
// - the spec (every key and shape, a dry run that creates no tensor), against which the whole
//   checkpoint is checked before anything is read, every problem (missing / unexpected / wrong shape /
//   non-float) in one TfvlmError;
// - the loaded tree;
// - the slots: where the model holds each checkpoint tensor and in which layout, for training and
//   for writing checkpoints back.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { linearFromCheckpoint, type Linear } from '../layers/linear.ts';
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
}

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

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
const MAX_LISTED = 20;

/** The dry run: records keys and shapes, creates nothing (the values it returns are never used). */
class SpecRecorder implements WeightSource {
  readonly spec: WeightSpec = new Map();
  private readonly stub = {} as never;

  tensor(key: string, shape: number[]): tf.Tensor {
    this.spec.set(key, shape);
    return this.stub;
  }

  linear(prefix: string, inFeatures: number, outFeatures: number, bias: boolean): Linear {
    this.spec.set(`${prefix}.weight`, [outFeatures, inFeatures]);
    if (bias) this.spec.set(`${prefix}.bias`, [outFeatures]);
    return this.stub;
  }

  patchConv(prefix: string, outChannels: number, inChannels: number, kernel: number, bias: boolean): Linear {
    this.spec.set(`${prefix}.weight`, [outChannels, inChannels, kernel, kernel]);
    if (bias) this.spec.set(`${prefix}.bias`, [outChannels]);
    return this.stub;
  }

  packedLinears(weightKey: string, biasKey: string, inFeatures: number, outFeatures: number[]): Linear[] {
    const total = outFeatures.reduce((a, b) => a + b, 0);
    this.spec.set(weightKey, [total, inFeatures]);
    this.spec.set(biasKey, [total]);
    return outFeatures.map(() => this.stub);
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

interface Recorded {
  key: string;
  hfShape: number[];
  layout: SlotLayout;
  order: number;
  linear?: Linear;
}

/** Reads a checked checkpoint and notes, for each tensor it creates, the key and layout it came from. */
class CheckpointSource implements WeightSource {
  readonly recorded = new Map<tf.Tensor, Recorded>();

  constructor(private readonly checkpoint: Checkpoint, private readonly spec: WeightSpec, private readonly source: string) {}

  private read(key: string): tf.Tensor {
    if (!this.spec.has(key)) throw new Error(`internal: weight '${key}' is not in the spec of ${this.source}`);
    return this.checkpoint.readTensor(key);
  }

  private note(t: tf.Tensor, key: string, layout: SlotLayout, linear?: Linear): void {
    this.recorded.set(t, { key, hfShape: this.spec.get(key)!, layout, order: this.recorded.size, linear });
  }

  tensor(key: string): tf.Tensor {
    const t = this.read(key);
    this.note(t, key, 'plain');
    return t;
  }

  linear(prefix: string, _in: number, _out: number, bias: boolean): Linear {
    const l = linearFromCheckpoint(this.read(`${prefix}.weight`), bias ? this.read(`${prefix}.bias`) : undefined);
    this.note(l.weightT, `${prefix}.weight`, 'transposed', l);
    if (l.bias) this.note(l.bias, `${prefix}.bias`, 'plain', l);
    return l;
  }

  patchConv(prefix: string, outChannels: number, inChannels: number, kernel: number, bias: boolean): Linear {
    const conv = this.read(`${prefix}.weight`); // [out, in, k, k]
    const asLinear = tf.reshape(conv, [outChannels, inChannels * kernel * kernel]);
    conv.dispose();
    const l = linearFromCheckpoint(asLinear, bias ? this.read(`${prefix}.bias`) : undefined);
    this.note(l.weightT, `${prefix}.weight`, 'conv', l);
    if (l.bias) this.note(l.bias, `${prefix}.bias`, 'plain', l);
    return l;
  }

  packedLinears(weightKey: string, biasKey: string, _in: number, outFeatures: number[]): Linear[] {
    const w = this.read(weightKey);
    const b = this.read(biasKey);
    const ws = tf.split(w, outFeatures, 0);
    const bs = tf.split(b, outFeatures, 0);
    tf.dispose([w, b]);
    return ws.map((x, i) => linearFromCheckpoint(x, bs[i]));
  }

  layerNorm(prefix: string, _dim: number, eps: number): LayerNorm {
    return { weight: this.tensor(`${prefix}.weight`) as tf.Tensor1D, bias: this.tensor(`${prefix}.bias`) as tf.Tensor1D, eps };
  }

  rmsNorm(prefix: string, _dim: number, eps: number): RMSNorm {
    return { weight: this.tensor(`${prefix}.weight`) as tf.Tensor1D, eps };
  }
}

function listed(kind: string, items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).map((s) => `    ${s}`).join('\n');
  const more = items.length > MAX_LISTED ? `\n    … and ${items.length - MAX_LISTED} more` : '';
  return `  ${kind} (${items.length}):\n${shown}${more}`;
}

export interface LoadWeightsOptions {
  /** Checkpoint keys that may be present without being used (e.g. a stored lm_head when tied). */
  ignore?: (key: string) => boolean;
  /** Names the checkpoint in messages. */
  source?: string;
}

/** Compares a checkpoint with a spec; throws one TfvlmError listing every problem. */
export function checkCheckpoint(checkpoint: Checkpoint, spec: WeightSpec, options: LoadWeightsOptions = {}): void {
  const source = options.source ?? checkpoint.source;
  const missing: string[] = [];
  const wrongShape: string[] = [];
  const wrongDtype: string[] = [];
  for (const [key, shape] of spec) {
    if (!checkpoint.has(key)) {
      missing.push(`${key} [${shape.join(', ')}]`);
      continue;
    }
    const entry = checkpoint.entry(key);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      wrongShape.push(`${key}: checkpoint [${entry.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (!FLOAT_DTYPES.has(entry.dtype)) wrongDtype.push(`${key}: ${entry.dtype}, expected a float dtype`);
  }
  const unexpected = checkpoint.keys().filter((k) => !spec.has(k) && !(options.ignore?.(k) ?? false));
  if (missing.length || unexpected.length || wrongShape.length || wrongDtype.length) {
    const parts = [
      missing.length ? listed('missing', missing) : '',
      unexpected.length ? listed('unexpected', unexpected) : '',
      wrongShape.length ? listed('wrong shape', wrongShape) : '',
      wrongDtype.length ? listed('wrong dtype', wrongDtype) : '',
    ].filter(Boolean);
    throw new TfvlmError(`weights in ${source} do not match the config:\n${parts.join('\n')}`);
  }
}

/**
 * Checks the checkpoint against build's keys, then builds the tree from it. `slots` lists where the
 * tree holds each checkpoint tensor (tensors derived at load, like a packed projection's parts, have
 * none), in key order. If building fails, every tensor read so far is disposed.
 */
export function loadWeights<T>(checkpoint: Checkpoint, build: (w: WeightSource) => T, options: LoadWeightsOptions = {}): { weights: T; slots: ParamSlot[] } {
  const spec = weightSpec(build);
  checkCheckpoint(checkpoint, spec, options);
  const source = new CheckpointSource(checkpoint, spec, options.source ?? checkpoint.source);
  let weights: T;
  try {
    weights = build(source);
  } catch (e) {
    tf.dispose([...source.recorded.keys()]);
    throw e;
  }
  return { weights, slots: slotsOf(weights, source.recorded) };
}

/** Finds, in the tree, the object field holding each recorded tensor; slots in the order the tensors were read. */
function slotsOf(tree: unknown, recorded: Map<tf.Tensor, Recorded>): ParamSlot[] {
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
    const w = slot.layout === 'conv' ? tf.reshape(t, [slot.hfShape[0], t.size / slot.hfShape[0]]) : t;
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
