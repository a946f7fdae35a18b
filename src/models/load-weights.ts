// Checkpoint → weight tree. The build function is run twice: once as a dry run (the spec: every key,
// shape and matrix), against which the whole checkpoint is checked before anything is read, and once
// to build the tree from the checkpoint:
// - matrices (linears, patch convs, embeddings) as float32 tfjs tensors ('float32' residence), or in
//   a WeightStore's kernel arenas ('stored'), in the checkpoint's float dtype or quantized;
// - everything else (norms, position tables, biases of float32 linears) as float32 tensors.
// The checkpoint may use transformers' names or MLX's, hold matrices as floats or in MLX's affine
// quantization, and a load may quantize float matrices as it goes (checkpoint-layout.ts,
// matrix-reader.ts). Every tensor is read once, a matrix at a time (a few panels at a time when
// quantizing), so a load never holds a full-precision copy of the model.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import type { SafetensorsDType } from '../io/dtypes.ts';
import type { QuantBits, QuantGroupSize, WeightDType } from '../kernels/index.ts';
import type { Embedding } from '../layers/embedding.ts';
import type { LayerNorm } from '../layers/layer-norm.ts';
import { linearFromCheckpoint, type Linear } from '../layers/linear.ts';
import type { RMSNorm } from '../layers/rms-norm.ts';
import { WeightStore, type MatrixPlan, type PackedMatrix, type StoredFormat } from '../layers/weight-store.ts';
import { dequantizeRows } from '../quant/mlx-affine.ts';
import type { QuantizationLookup } from '../quant/mlx-config.ts';
import { reportProgress, withProgress, type ProgressListener } from '../util/progress.ts';
import { checkpointLayout, expectedTensors, SAME_NAMES, type CheckpointLayout, type MlxNaming } from './checkpoint-layout.ts';
import { MatrixReader, QUANTIZE_CHUNK_BYTES, QuantizeWorkspace, type QuantizeAtLoad } from './matrix-reader.ts';
import {
  slotsOf, SpecRecorder, type MatrixKey, type ParamSlot, type Recorded, type SlotLayout, type WeightSource,
  type WeightSpec, type WeightsResidence,
} from './weights.ts';

export interface LoadWeightsOptions {
  /** Transformers keys that may be stored without being used (e.g. a stored lm_head when tied). */
  ignore?: (key: string) => boolean;
  /** Names the checkpoint in messages. */
  source?: string;
  /** Where matrices live (default 'float32'). */
  weights?: WeightsResidence;
  /** Receives 'load' progress (bytes). */
  onProgress?: ProgressListener;
  /** How MLX names this architecture's keys (default: as transformers does). */
  mlxNames?: MlxNaming;
  /** config.json's quantization block (quant/mlx-config.ts), for checkpoints stored quantized. */
  quantization?: QuantizationLookup;
  /** Quantize float matrices while loading. */
  quantize?: QuantizeAtLoad;
}

export interface LoadedWeights<T> {
  weights: T;
  /** Where the tree holds each checkpoint tensor (float32 residence; empty for 'stored'). */
  slots: ParamSlot[];
  /** The arenas of a 'stored' load; the model disposes it with its tensors. */
  store?: WeightStore;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
const MAX_LISTED = 20;
const STORED_DTYPE: Partial<Record<SafetensorsDType, WeightDType>> = { F32: 'f32', BF16: 'bf16', F16: 'f16', F64: 'f32' };
const NO_QUANTIZATION: QuantizationLookup = () => undefined;

/** The dtype a float checkpoint tensor keeps in a kernel arena (F64 is narrowed to f32, as float32 residence does). */
function storedDType(dtype: SafetensorsDType): WeightDType {
  const stored = STORED_DTYPE[dtype];
  if (stored === undefined) throw new Error(`internal: ${dtype} is not a float dtype (checkAgainst lets only float matrices through)`);
  return stored;
}

function listed(kind: string, items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).map((s) => `    ${s}`).join('\n');
  const more = items.length > MAX_LISTED ? `\n    … and ${items.length - MAX_LISTED} more` : '';
  return `  ${kind} (${items.length}):\n${shown}${more}`;
}

function dryRun(build: (w: WeightSource) => unknown): SpecRecorder {
  const recorder = new SpecRecorder();
  build(recorder);
  return recorder;
}

function layoutOf(checkpoint: Checkpoint, recorder: SpecRecorder, options: LoadWeightsOptions): CheckpointLayout {
  return checkpointLayout(checkpoint, recorder.spec, options.mlxNames ?? SAME_NAMES, options.quantization ?? NO_QUANTIZATION);
}

/**
 * Compares a checkpoint with a spec (in the checkpoint's naming and storage); throws one TfvlmError
 * listing every missing, unexpected, wrongly shaped or wrongly typed tensor.
 */
function checkAgainst(checkpoint: Checkpoint, spec: WeightSpec, matrices: MatrixKey[], layout: CheckpointLayout,
  options: LoadWeightsOptions): void {
  const source = options.source ?? checkpoint.source;
  const expected = expectedTensors(spec, matrices, layout);
  const missing: string[] = [];
  const wrongShape: string[] = [];
  const wrongDtype: string[] = [];
  for (const [key, { shape, kind }] of expected) {
    if (!checkpoint.has(key)) {
      missing.push(`${key} [${shape.join(', ')}]`);
      continue;
    }
    const entry = checkpoint.entry(key);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      wrongShape.push(`${key}: checkpoint [${entry.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (kind === 'codes' && entry.dtype !== 'U32') wrongDtype.push(`${key}: ${entry.dtype}, expected U32 quantized codes`);
    if (kind === 'float' && !FLOAT_DTYPES.has(entry.dtype)) wrongDtype.push(`${key}: ${entry.dtype}, expected a float dtype`);
  }
  const ignored = (k: string) => {
    if (!options.ignore) return false;
    const hf = layout.hfName(k);
    return options.ignore(k) || (hf !== undefined && options.ignore(hf));
  };
  const unexpected = checkpoint.keys().filter((k) => !expected.has(k) && !ignored(k));
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

/** Checks a checkpoint against build's keys without reading any weight. */
export function checkCheckpoint(checkpoint: Checkpoint, build: (w: WeightSource) => unknown, options: LoadWeightsOptions = {}): void {
  const recorder = dryRun(build);
  checkAgainst(checkpoint, recorder.spec, recorder.matrices, layoutOf(checkpoint, recorder, options), options);
}

/** The arena format a matrix is kept in. */
function formatOf(reader: MatrixReader): StoredFormat {
  const q = reader.quantization;
  if (q) return { kind: 'quantized', bits: q.bits as QuantBits, groupSize: q.groupSize as QuantGroupSize };
  return { kind: 'float', dtype: storedDType(reader.dtype) };
}

/** Builds the tree from a checked checkpoint, noting for each tensor it creates the key and layout it came from. */
class CheckpointSource implements WeightSource {
  readonly recorded = new Map<tf.Tensor, Recorded>();
  private bytesRead = 0;
  private readonly totalBytes: number;
  /** The matrices of the build, in the order it asks for them, each with its reader (and plan when stored). */
  private readonly queue: { reader: MatrixReader; plan?: MatrixPlan }[];

  constructor(private readonly checkpoint: Checkpoint, private readonly spec: WeightSpec, private readonly layout: CheckpointLayout,
    readers: MatrixReader[], private readonly store?: WeightStore, plans?: MatrixPlan[]) {
    this.queue = readers.map((reader, i) => ({ reader, plan: plans?.[i] }));
    const matrixBytes = readers.reduce((a, r) => a + r.storedBytes(r.m.rows), 0);
    const matrixKeys = new Set(readers.map((r) => r.m.key));
    const otherBytes = [...spec.keys()].filter((k) => !matrixKeys.has(k))
      .reduce((a, k) => a + checkpoint.entry(layout.name(k)).byteLength, 0);
    this.totalBytes = matrixBytes + otherBytes;
  }

  private advance(bytes: number): void {
    this.bytesRead += bytes;
    reportProgress('load', this.bytesRead, this.totalBytes, 'bytes');
  }

  private read(key: string): tf.Tensor {
    if (!this.spec.has(key)) throw new Error(`internal: weight '${key}' is not in the spec`);
    const name = this.layout.name(key);
    const t = this.checkpoint.readTensor(name);
    this.advance(this.checkpoint.entry(name).byteLength);
    return t;
  }

  private readFloats(key: string): Float32Array {
    const name = this.layout.name(key);
    const values = this.checkpoint.readArray(name) as Float32Array;
    this.advance(this.checkpoint.entry(name).byteLength);
    return values;
  }

  private next(key: string): { reader: MatrixReader; plan?: MatrixPlan } {
    const item = this.queue.shift();
    if (!item || item.reader.m.key !== key) throw new Error(`internal: matrix '${key}' was not planned here`);
    return item;
  }

  /** The next matrix, `key`, as float32 rows [out, in] in torch's order (dequantized if it runs quantized). */
  private matrixValues(key: string): tf.Tensor2D {
    const { reader } = this.next(key);
    const { rows, cols } = reader.m;
    let values: Float32Array;
    if (reader.quantization) {
      const { codes, scales, biases } = reader.readQuantizedRows(0, rows);
      values = dequantizeRows(codes, scales, biases, rows, cols, { ...reader.quantization, where: this.layout.name(key) });
    } else {
      values = reader.readFloatRows(0, rows);
    }
    this.advance(reader.storedBytes(rows));
    return tf.tensor2d(values, [rows, cols]);
  }

  /** The next matrix, `key`, into the store (bias rows sliced alike). */
  private pack(key: string): PackedMatrix {
    const { reader, plan } = this.next(key);
    if (!plan) throw new Error(`internal: matrix '${key}' was not planned`);
    const { m } = reader;
    const bias = m.biasKey ? this.readBias(m.biasKey, m.rowStart, m.rows) : undefined;
    const name = this.layout.name(key);
    if (plan.format.kind === 'quantized') {
      // Quantizing here: a few MiB of float rows at a time.
      const maxRows = reader.storedQuantized ? Infinity : QUANTIZE_CHUNK_BYTES / (4 * m.cols);
      return this.store!.placeQuantized(plan, name, (rowStart, rows) => {
        const chunk = reader.readQuantizedRows(rowStart, rows);
        this.advance(reader.storedBytes(rows));
        return chunk;
      }, bias, maxRows);
    }
    const packed = this.store!.place(plan, name, (dst) => reader.readRawRows(dst, 0, m.rows), bias);
    this.advance(reader.storedBytes(m.rows));
    return packed;
  }

  private readBias(biasKey: string, rowStart: number, rows: number): Float32Array {
    const name = this.layout.name(biasKey);
    const all = this.checkpoint.readArray(name) as Float32Array;
    // A packed projection's bias is read once per part; count its bytes with its first part.
    if (rowStart === 0) this.advance(this.checkpoint.entry(name).byteLength);
    return all.slice(rowStart, rowStart + rows);
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
    const weightKey = `${prefix}.weight`;
    if (this.store) return { packed: this.pack(weightKey), inFeatures, outFeatures };
    const l = linearFromCheckpoint(this.matrixValues(weightKey), bias ? this.read(`${prefix}.bias`) : undefined);
    this.note(l.weightT!, weightKey, 'transposed', l);
    if (l.bias) this.note(l.bias, `${prefix}.bias`, 'plain', l);
    return l;
  }

  patchConv(prefix: string, outChannels: number, inChannels: number, kernel: number, bias: boolean): Linear {
    const weightKey = `${prefix}.weight`;
    const inFeatures = inChannels * kernel * kernel;
    // [out, in, k, k] row-major is [out, in·k·k]: the same bytes (the reader reorders MLX's [out, k, k, in]).
    if (this.store) return { packed: this.pack(weightKey), inFeatures, outFeatures: outChannels };
    const l = linearFromCheckpoint(this.matrixValues(weightKey), bias ? this.read(`${prefix}.bias`) : undefined);
    this.note(l.weightT!, weightKey, 'conv', l);
    if (l.bias) this.note(l.bias, `${prefix}.bias`, 'plain', l);
    return l;
  }

  packedLinears(weightKey: string, biasKey: string, inFeatures: number, outFeatures: number[]): Linear[] {
    if (this.store) return outFeatures.map((rows) => ({ packed: this.pack(weightKey), inFeatures, outFeatures: rows }));
    const parts = outFeatures.map(() => this.matrixValues(weightKey));
    const biases = tf.split(tf.tensor1d(this.readFloats(biasKey)), outFeatures, 0);
    return parts.map((w, i) => linearFromCheckpoint(w, biases[i]));
  }

  layerNorm(prefix: string, _dim: number, eps: number): LayerNorm {
    return { weight: this.tensor(`${prefix}.weight`) as tf.Tensor1D, bias: this.tensor(`${prefix}.bias`) as tf.Tensor1D, eps };
  }

  rmsNorm(prefix: string, _dim: number, eps: number): RMSNorm {
    return { weight: this.tensor(`${prefix}.weight`) as tf.Tensor1D, eps };
  }

  embedding(key: string, num: number, dim: number): Embedding {
    if (this.store) return { packed: this.pack(key), numEmbeddings: num, embeddingDim: dim };
    const table = this.matrixValues(key);
    this.note(table, key, 'plain');
    return { table, numEmbeddings: num, embeddingDim: dim };
  }
}

/**
 * Checks the checkpoint against build's keys, then builds the tree from it: matrices as float32 tfjs
 * tensors, or in a WeightStore ('stored') in their checkpoint precision or quantized. `slots` lists
 * where a float32 tree holds each checkpoint tensor (tensors derived at load, like a packed
 * projection's parts, have none), in key order. If building fails, everything read so far is freed.
 */
export function loadWeights<T>(checkpoint: Checkpoint, build: (w: WeightSource) => T, options: LoadWeightsOptions = {}): LoadedWeights<T> {
  const recorder = dryRun(build);
  const layout = layoutOf(checkpoint, recorder, options);
  checkAgainst(checkpoint, recorder.spec, recorder.matrices, layout, options);
  const workspace = new QuantizeWorkspace();
  const readers = recorder.matrices.map((m) => new MatrixReader(checkpoint, layout, m, options.quantize, workspace));
  let store: WeightStore | undefined;
  let plans: MatrixPlan[] | undefined;
  if ((options.weights ?? 'float32') === 'stored') {
    plans = readers.map((r) => ({ format: formatOf(r), rows: r.m.rows, cols: r.m.cols, bias: r.m.biasKey !== undefined }));
    store = WeightStore.create(plans);
  }
  const source = new CheckpointSource(checkpoint, recorder.spec, layout, readers, store, plans);
  let weights: T;
  try {
    weights = withProgress(options.onProgress, () => build(source));
  } catch (e) {
    tf.dispose([...source.recorded.keys()]);
    store?.dispose();
    throw e;
  } finally {
    workspace.dispose();
  }
  return { weights, slots: store ? [] : slotsOf(weights, source.recorded), store };
}

/** Bytes the loaded weights take (arenas for a 'stored' load's matrices, float32 for the rest), without reading any weight. */
export function residentBytes(checkpoint: Checkpoint, build: (w: WeightSource) => unknown, weights: WeightsResidence,
  options: Pick<LoadWeightsOptions, 'mlxNames' | 'quantization' | 'quantize'> = {}): number {
  const recorder = dryRun(build);
  const layout = layoutOf(checkpoint, recorder, options);
  const matrixBytes = new Map<string, number>();
  for (const m of recorder.matrices) {
    if (weights !== 'stored' || !checkpoint.has(layout.name(m.key))) continue;
    const reader = new MatrixReader(checkpoint, layout, m, options.quantize);
    // The checkpoint is not checked yet: a matrix of a non-float dtype (refused by the load) counts 2 bytes.
    const q = reader.quantization;
    const perWeight = q ? q.bits / 8 + 8 / q.groupSize : STORED_DTYPE[reader.dtype] === 'f32' ? 4 : 2;
    matrixBytes.set(m.key, (matrixBytes.get(m.key) ?? 0) + m.rows * m.cols * perWeight);
  }
  let bytes = 0;
  for (const [key, shape] of recorder.spec) bytes += matrixBytes.get(key) ?? shape.reduce((a, b) => a * b, 1) * 4;
  return bytes;
}
