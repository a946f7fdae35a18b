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
import type { SafetensorsDType } from '../io/dtypes.ts';
import type { Embedding } from '../layers/embedding.ts';
import { linearFromCheckpoint, type Linear } from '../layers/linear.ts';
import type { LayerNorm } from '../layers/layer-norm.ts';
import type { RMSNorm } from '../layers/rms-norm.ts';
import { WeightStore, type MatrixPlan, type PackedMatrix } from '../layers/weight-store.ts';
import type { WeightDType } from '../kernels/index.ts';
import { reportProgress, withProgress, type ProgressListener } from '../util/progress.ts';

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

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
const MAX_LISTED = 20;

/** A weight matrix the stored residence packs: rows [rowStart, rowStart + rows) of `key`, and its bias. */
interface MatrixKey {
  key: string;
  rowStart: number;
  rows: number;
  cols: number;
  biasKey?: string;
}

/** The dry run: records keys and shapes (and which are matrices), creates nothing (the values it returns are never used). */
class SpecRecorder implements WeightSource {
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
    this.matrices.push({ key: `${prefix}.weight`, rowStart: 0, rows: outFeatures, cols: inFeatures, biasKey: bias ? `${prefix}.bias` : undefined });
    return this.stub;
  }

  patchConv(prefix: string, outChannels: number, inChannels: number, kernel: number, bias: boolean): Linear {
    this.spec.set(`${prefix}.weight`, [outChannels, inChannels, kernel, kernel]);
    if (bias) this.spec.set(`${prefix}.bias`, [outChannels]);
    this.matrices.push({
      key: `${prefix}.weight`, rowStart: 0, rows: outChannels, cols: inChannels * kernel * kernel, biasKey: bias ? `${prefix}.bias` : undefined,
    });
    return this.stub;
  }

  packedLinears(weightKey: string, biasKey: string, inFeatures: number, outFeatures: number[]): Linear[] {
    const total = outFeatures.reduce((a, b) => a + b, 0);
    this.spec.set(weightKey, [total, inFeatures]);
    this.spec.set(biasKey, [total]);
    let rowStart = 0;
    for (const rows of outFeatures) {
      this.matrices.push({ key: weightKey, rowStart, rows, cols: inFeatures, biasKey });
      rowStart += rows;
    }
    return outFeatures.map(() => this.stub);
  }

  embedding(key: string, num: number, dim: number): Embedding {
    this.spec.set(key, [num, dim]);
    this.matrices.push({ key, rowStart: 0, rows: num, cols: dim });
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

const STORED_DTYPE: Record<string, WeightDType> = { F32: 'f32', BF16: 'bf16', F16: 'f16', F64: 'f32' };

/** The dtype a checkpoint tensor keeps in a kernel arena (F64 is narrowed to f32, as float32 residence does). */
function storedDType(dtype: SafetensorsDType): WeightDType {
  return STORED_DTYPE[dtype];
}

interface Recorded {
  key: string;
  hfShape: number[];
  layout: SlotLayout;
  order: number;
  linear?: Linear;
}

/**
 * Reads a checked checkpoint and notes, for each tensor it creates, the key and layout it came from.
 * With a store, matrices (linears, embeddings) go to the store in their checkpoint precision.
 */
class CheckpointSource implements WeightSource {
  readonly recorded = new Map<tf.Tensor, Recorded>();
  private bytesRead = 0;
  private readonly totalBytes: number;

  constructor(private readonly checkpoint: Checkpoint, private readonly spec: WeightSpec, private readonly source: string,
    private readonly store?: { store: WeightStore; plans: Map<string, MatrixPlan[]> }) {
    this.totalBytes = [...spec.keys()].reduce((a, k) => a + checkpoint.entry(k).byteLength, 0);
  }

  private advance(bytes: number): void {
    this.bytesRead += bytes;
    reportProgress('load', this.bytesRead, this.totalBytes, 'bytes');
  }

  private read(key: string): tf.Tensor {
    if (!this.spec.has(key)) throw new Error(`internal: weight '${key}' is not in the spec of ${this.source}`);
    const t = this.checkpoint.readTensor(key);
    this.advance(this.checkpoint.entry(key).byteLength);
    return t;
  }

  /** The next planned matrix of `key` into the store: rows [rowStart, rowStart + rows), bias rows alike. */
  private pack(key: string, rowStart: number, rows: number, cols: number, biasKey?: string): PackedMatrix {
    const { store, plans } = this.store!;
    const plan = plans.get(key)?.shift();
    if (!plan) throw new Error(`internal: matrix '${key}' was not planned`);
    const entry = this.checkpoint.entry(key);
    const elementBytes = entry.byteLength / entry.shape.reduce((a, b) => a * b, 1);
    const start = rowStart * cols * elementBytes;
    const read = (dst: Uint8Array) => {
      if (entry.dtype === 'F64') {
        const wide = this.checkpoint.readArray(key) as Float32Array;
        dst.set(new Uint8Array(wide.buffer, wide.byteOffset + rowStart * cols * 4, rows * cols * 4));
      } else {
        this.checkpoint.readBytesInto(key, dst, start);
      }
    };
    const bias = biasKey ? (this.checkpoint.readArray(biasKey) as Float32Array).slice(rowStart, rowStart + rows) : undefined;
    const packed = store.place(plan, key, read, bias);
    const biasBytes = biasKey ? rows * (this.checkpoint.entry(biasKey).byteLength / this.spec.get(biasKey)![0]) : 0;
    this.advance(rows * cols * elementBytes + biasBytes);
    return packed;
  }

  private note(t: tf.Tensor, key: string, layout: SlotLayout, linear?: Linear): void {
    this.recorded.set(t, { key, hfShape: this.spec.get(key)!, layout, order: this.recorded.size, linear });
  }

  tensor(key: string): tf.Tensor {
    const t = this.read(key);
    this.note(t, key, 'plain');
    return t;
  }

  linear(prefix: string, inFeatures: number, outFeatures: number, bias: boolean): Linear {
    if (this.store) {
      const packed = this.pack(`${prefix}.weight`, 0, outFeatures, inFeatures, bias ? `${prefix}.bias` : undefined);
      return { packed, inFeatures, outFeatures };
    }
    const l = linearFromCheckpoint(this.read(`${prefix}.weight`), bias ? this.read(`${prefix}.bias`) : undefined);
    this.note(l.weightT!, `${prefix}.weight`, 'transposed', l);
    if (l.bias) this.note(l.bias, `${prefix}.bias`, 'plain', l);
    return l;
  }

  patchConv(prefix: string, outChannels: number, inChannels: number, kernel: number, bias: boolean): Linear {
    const inFeatures = inChannels * kernel * kernel;
    if (this.store) {
      // [out, in, k, k] row-major is [out, in·k·k]: the same bytes.
      const packed = this.pack(`${prefix}.weight`, 0, outChannels, inFeatures, bias ? `${prefix}.bias` : undefined);
      return { packed, inFeatures, outFeatures: outChannels };
    }
    const conv = this.read(`${prefix}.weight`); // [out, in, k, k]
    const asLinear = tf.reshape(conv, [outChannels, inFeatures]);
    conv.dispose();
    const l = linearFromCheckpoint(asLinear, bias ? this.read(`${prefix}.bias`) : undefined);
    this.note(l.weightT!, `${prefix}.weight`, 'conv', l);
    if (l.bias) this.note(l.bias, `${prefix}.bias`, 'plain', l);
    return l;
  }

  packedLinears(weightKey: string, biasKey: string, inFeatures: number, outFeatures: number[]): Linear[] {
    if (this.store) {
      let rowStart = 0;
      return outFeatures.map((rows) => {
        const packed = this.pack(weightKey, rowStart, rows, inFeatures, biasKey);
        rowStart += rows;
        return { packed, inFeatures, outFeatures: rows };
      });
    }
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

  embedding(key: string, num: number, dim: number): Embedding {
    if (this.store) return { packed: this.pack(key, 0, num, dim), numEmbeddings: num, embeddingDim: dim };
    return { table: this.tensor(key) as tf.Tensor2D, numEmbeddings: num, embeddingDim: dim };
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
  /** Where matrices live (default 'float32'). */
  weights?: WeightsResidence;
  /** Receives 'load' progress (bytes). */
  onProgress?: ProgressListener;
}

export interface LoadedWeights<T> {
  weights: T;
  /** Where the tree holds each checkpoint tensor (float32 residence; empty for 'stored'). */
  slots: ParamSlot[];
  /** The arenas of a 'stored' load; the model disposes it with its tensors. */
  store?: WeightStore;
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
 * Checks the checkpoint against build's keys, then builds the tree from it: matrices as float32 tfjs
 * tensors, or in their checkpoint precision in a WeightStore ('stored'). `slots` lists where a
 * float32 tree holds each checkpoint tensor (tensors derived at load, like a packed projection's
 * parts, have none), in key order. If building fails, everything read so far is freed.
 */
export function loadWeights<T>(checkpoint: Checkpoint, build: (w: WeightSource) => T, options: LoadWeightsOptions = {}): LoadedWeights<T> {
  const recorder = new SpecRecorder();
  build(recorder);
  const spec = recorder.spec;
  checkCheckpoint(checkpoint, spec, options);
  let stored: { store: WeightStore; plans: Map<string, MatrixPlan[]> } | undefined;
  if ((options.weights ?? 'float32') === 'stored') {
    const plans = new Map<string, MatrixPlan[]>();
    const ordered = recorder.matrices.map((m): MatrixPlan => {
      const plan = { dtype: storedDType(checkpoint.entry(m.key).dtype), rows: m.rows, cols: m.cols, bias: m.biasKey !== undefined };
      plans.set(m.key, [...(plans.get(m.key) ?? []), plan]);
      return plan;
    });
    stored = { store: WeightStore.create(ordered), plans };
  }
  const source = new CheckpointSource(checkpoint, spec, options.source ?? checkpoint.source, stored);
  let weights: T;
  try {
    weights = withProgress(options.onProgress, () => build(source));
  } catch (e) {
    tf.dispose([...source.recorded.keys()]);
    stored?.store.dispose();
    throw e;
  }
  return { weights, slots: stored ? [] : slotsOf(weights, source.recorded), store: stored?.store };
}

/** The matrices a 'stored' load would pack, and the bytes of everything else, without reading any weight. */
export function residentBytes(checkpoint: Checkpoint, build: (w: WeightSource) => unknown, weights: WeightsResidence): number {
  const recorder = new SpecRecorder();
  build(recorder);
  let bytes = 0;
  const matrixKeys = new Set(recorder.matrices.map((m) => m.key));
  for (const [key, shape] of recorder.spec) {
    const n = shape.reduce((a, b) => a * b, 1);
    const dtype = checkpoint.has(key) ? checkpoint.entry(key).dtype : 'F32';
    bytes += weights === 'stored' && matrixKeys.has(key) ? n * (storedDType(dtype) === 'f32' ? 4 : 2) : n * 4;
  }
  return bytes;
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
