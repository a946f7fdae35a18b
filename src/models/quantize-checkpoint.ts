// `tfvlm quantize`: a model folder → the same model with MLX's affine quantization, as mlx-vlm's
// `convert --quantize` writes it (docs/notes/mlx-quantization.md §7): MLX key names, the layers
// mlx-vlm quantizes stored as `.weight` uint32 codes + `.scales` + `.biases` in the weights' dtype,
// everything else as stored (patch convolutions channels-last, as MLX keeps them), files marked
// {"format": "mlx"}, config.json with the "quantization" block. The folder loads here without
// re-quantizing and in mlx-vlm. One matrix is read and quantized at a time.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';
import { Checkpoint } from '../io/checkpoint.ts';
import { writeCheckpointWeights } from '../io/checkpoint-writer.ts';
import { DTYPE_BYTES, f32ToBf16, f32ToF16, type SafetensorsDType } from '../io/dtypes.ts';
import type { RawTensor } from '../io/safetensors.ts';
import { checkQuantizationParams, type MlxFloatDType, type MlxQuantization } from '../quant/mlx-affine.ts';
import { parseQuantizationConfig } from '../quant/mlx-config.ts';
import { quantizationFor, VISION_BITS } from '../quant/recipe.ts';
import { reportProgress, withProgress, type ProgressListener } from '../util/progress.ts';
import { checkpointLayout, modulePath } from './checkpoint-layout.ts';
import { checkCheckpoint } from './load-weights.ts';
import { MatrixReader } from './matrix-reader.ts';
import { readConfigJson } from './read-config.ts';
import { architectureOf } from './registry.ts';
import { SpecRecorder, type MatrixKey } from './weights.ts';

/** mlx-lm's shard limit (MAX_FILE_SIZE_GB = 5). */
const MAX_SHARD_BYTES = 5 * 2 ** 30;
const WEIGHT_FILES = /(\.safetensors|^model\.safetensors\.index\.json)$/;

export interface QuantizeCheckpointOptions extends MlxQuantization {
  onProgress?: ProgressListener;
}

export interface QuantizedCheckpoint {
  /** MLX module paths quantized, and transformers keys kept as stored. */
  quantized: string[];
  kept: string[];
  files: string[];
  totalBytes: number;
}

/** The stored bytes of float32 `values` in `dtype` (scales and biases keep the weights' dtype). */
function floatBytes(values: Float32Array, dtype: MlxFloatDType): ArrayBufferView {
  return dtype === 'BF16' ? f32ToBf16(values) : dtype === 'F16' ? f32ToF16(values) : values;
}

/** [rows, in, k, k] → [rows, k, k, in] (MLX's conv layout), elements of `size` bytes. */
function toChannelsLast(bytes: Uint8Array, rows: number, conv: { in: number; kernel: number }, size: number): Uint8Array {
  const { in: C, kernel: k } = conv;
  const per = C * k * k * size;
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < k; y++) {
        for (let x = 0; x < k; x++) {
          const from = r * per + ((c * k + y) * k + x) * size;
          const to = r * per + ((y * k + x) * C + c) * size;
          out.set(bytes.subarray(from, from + size), to);
        }
      }
    }
  }
  return out;
}

/** A float matrix's rows in torch's order as stored bytes (F64 narrowed to F32, as it is written). */
function torchOrderRows(reader: MatrixReader, size: number): Uint8Array {
  const { rows, cols } = reader.m;
  if (reader.dtype === 'F64') return new Uint8Array(reader.readFloatRows(0, rows).buffer);
  const bytes = new Uint8Array(rows * cols * size);
  reader.readRawRows(bytes, 0, rows);
  return bytes;
}

/** Writes `sourceDir` quantized into `outDir` (which must not exist or be empty). */
export function quantizeCheckpoint(sourceDir: string, outDir: string, options: QuantizeCheckpointOptions): QuantizedCheckpoint {
  const q: MlxQuantization = { bits: options.bits, groupSize: options.groupSize };
  checkQuantizationParams(q, 'quantize');
  if (fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0) {
    throw new TfvlmError(`quantize: ${outDir} exists and is not empty; give a new folder`);
  }
  if (path.resolve(outDir) === path.resolve(sourceDir)) throw new TfvlmError('quantize: --out must differ from the model folder');
  const arch = architectureOf(sourceDir);
  const { raw } = readConfigJson(sourceDir);
  const checkpoint = Checkpoint.open(sourceDir);
  try {
    const build = arch.weightBuild(raw, checkpoint);
    const names = arch.mlxNames(checkpoint);
    const stored = parseQuantizationConfig(raw);
    checkCheckpoint(checkpoint, build, { mlxNames: names, quantization: stored, ignore: () => true });
    const recorder = new SpecRecorder();
    build(recorder);
    const layout = checkpointLayout(checkpoint, recorder.spec, names, stored);
    const matrices = new Map<string, MatrixKey[]>();
    for (const m of recorder.matrices) matrices.set(m.key, [...(matrices.get(m.key) ?? []), m]);
    const quantizationOf = (p: string, kind: MatrixKey['kind'], cols: number) => quantizationFor(p, kind, cols, q);
    /** Per-layer config entries (MLX module path → params) where a layer's differ from the top level's. */
    const perLayer: Record<string, { group_size: number; bits: number }> = {};

    const tensors = new Map<string, RawTensor>();
    const quantized: string[] = [];
    const kept: string[] = [];
    let done = 0;
    const total = [...recorder.spec.keys()].reduce((a, k) => a + checkpoint.entry(layout.name(k)).byteLength, 0);
    const advance = (key: string) => {
      done += checkpoint.entry(layout.name(key)).byteLength;
      reportProgress('quantize', Math.min(done, total), total, 'bytes');
    };
    const copies = new Map((arch.mlxTiedCopies?.(raw) ?? []).map(([from, to]) => [from, to]));
    for (const [key, shape] of recorder.spec) {
      const parts = matrices.get(key);
      const m = parts?.length === 1 ? parts[0] : undefined;
      const reader = m && new MatrixReader(checkpoint, layout, m, { quantizationOf });
      if (reader?.storedQuantized) {
        throw new TfvlmError(`quantize: ${checkpoint.source} is already quantized ('${layout.name(key)}'); quantize the full-precision model`);
      }
      const mlxKey = names.mlx(key);
      const dtype: SafetensorsDType = checkpoint.entry(layout.name(key)).dtype === 'F64' ? 'F32' : checkpoint.entry(layout.name(key)).dtype;
      if (m && reader?.quantization) {
        const mq = reader.quantization;
        const scaleDType = dtype as MlxFloatDType;
        let chunk: ReturnType<MatrixReader['readQuantizedRows']> | undefined;
        const get = () => {
          if (!chunk) {
            chunk = reader.readQuantizedRows(0, m.rows);
            advance(key);
          }
          return chunk;
        };
        const base = modulePath(mlxKey);
        if (mq.bits !== q.bits || mq.groupSize !== q.groupSize) perLayer[base] = { group_size: mq.groupSize, bits: mq.bits };
        const groups = [m.rows, m.cols / mq.groupSize];
        tensors.set(mlxKey, { dtype: 'U32', shape: [m.rows, (m.cols * mq.bits) / 32], data: () => get().codes });
        tensors.set(`${base}.scales`, { dtype: scaleDType, shape: groups, data: () => floatBytes(get().scales, scaleDType) });
        tensors.set(`${base}.biases`, {
          dtype: scaleDType, shape: groups,
          data: () => {
            const { biases } = get();
            chunk = undefined; // written last: free the matrix
            return floatBytes(biases, scaleDType);
          },
        });
        quantized.push(base);
        const copy = copies.get(key);
        if (copy) {
          const copyBase = modulePath(names.mlx(copy));
          for (const suffix of ['weight', 'scales', 'biases']) tensors.set(`${copyBase}.${suffix}`, tensors.get(`${base}.${suffix}`)!);
          quantized.push(copyBase);
        }
        continue;
      }
      kept.push(key);
      if (m?.conv && reader) {
        const size = DTYPE_BYTES[dtype];
        const { out, in: C, kernel } = m.conv;
        tensors.set(mlxKey, {
          dtype, shape: [out, kernel, kernel, C],
          data: () => {
            advance(key);
            return toChannelsLast(torchOrderRows(reader, size), m.rows, m.conv!, size);
          },
        });
        continue;
      }
      const name = layout.name(key);
      tensors.set(mlxKey, {
        dtype, shape,
        data: () => {
          advance(key);
          if (checkpoint.entry(name).dtype === 'F64') return checkpoint.readArray(name) as Float32Array;
          const b = new Uint8Array(checkpoint.entry(name).byteLength);
          checkpoint.readBytesInto(name, b, 0);
          return b;
        },
      });
    }

    fs.mkdirSync(outDir, { recursive: true });
    const written = withProgress(options.onProgress, () =>
      writeCheckpointWeights(outDir, tensors, { maxShardBytes: MAX_SHARD_BYTES, metadata: { format: 'mlx' } }));
    const block = { group_size: q.groupSize, bits: q.bits, mode: 'affine', ...perLayer };
    const config = { ...(raw as Record<string, unknown>), quantization: block, quantization_config: block };
    writeFileAtomic(path.join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    for (const file of fs.readdirSync(sourceDir)) {
      const from = path.join(sourceDir, file);
      if (file === 'config.json' || file === 'README.md' || WEIGHT_FILES.test(file) || !fs.statSync(from).isFile()) continue;
      fs.copyFileSync(from, path.join(outDir, file));
    }
    writeFileAtomic(path.join(outDir, 'README.md'), modelCard(sourceDir, q, quantized, kept));
    return { quantized, kept, files: written.files, totalBytes: written.totalBytes };
  } finally {
    checkpoint.close();
  }
}

function modelCard(sourceDir: string, q: MlxQuantization, quantized: string[], kept: string[]): string {
  const list = (items: string[]) => items.map((k) => `- \`${k}\``).join('\n');
  return `# ${path.basename(path.resolve(sourceDir))}, ${q.bits}-bit\n\n`
    + `Quantized by \`tfvlm quantize\` with MLX's affine group quantization: ${q.bits} bits, groups of ${q.groupSize} `
    + `values along each row, scales and biases in the weights' dtype (w ≈ scale·q + bias). The files are in mlx-vlm's `
    + `format (MLX key names, \`{"format": "mlx"}\`), so they load in tfvlm and in mlx-vlm.\n\n`
    + `The linears and embeddings of the language model and the projector are quantized to ${q.bits} bits, as mlx-vlm `
    + `quantizes them; the vision tower's linears to ${Math.max(VISION_BITS, q.bits)} bits (mlx-vlm leaves them in 16 bits; `
    + `config.json gives them per-layer entries where their bits differ). The patch convolution, norms, biases and `
    + `position tables keep the original dtype.\n\n`
    + `## Quantized (${quantized.length})\n\n${list(quantized)}\n\n## Kept as stored (${kept.length})\n\n${list(kept)}\n`;
}
