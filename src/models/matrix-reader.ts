// Reads one weight matrix of a checkpoint row range by row range, whatever its storage (see
// checkpoint-layout.ts): raw rows in its float dtype, rows widened to float32, or rows quantized
// (read as stored, or quantized here when the load asks for it, the way MLX does). Conv weights
// stored channels-last come out in torch's [out, in·k·k] row order.
import { TfvlmError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { bf16ToF32, f16ToF32, type SafetensorsDType } from '../io/dtypes.ts';
import type { MlxFloatDType, MlxQuantization } from '../quant/mlx-affine.ts';
import { quantizeRowsFast } from '../quant/fast-quantize.ts';
import { KernelArena } from '../kernels/index.ts';
import { modulePath, type CheckpointLayout } from './checkpoint-layout.ts';
import type { MatrixKey } from './weights.ts';

export interface QuantizedRowsRead {
  /** uint32 words, rows · cols · bits / 32. */
  codes: Uint32Array;
  /** rows · cols / groupSize each, float32 (exact widenings of the stored dtype). */
  scales: Float32Array;
  biases: Float32Array;
}

/** How a load turns float matrices into quantized ones (MLX's affine quantizer). */
export interface QuantizeAtLoad {
  /** A matrix's quantization by MLX module path, kind and row length (quant/recipe.ts); undefined: stays float. */
  quantizationOf: (mlxPath: string, kind: MatrixKey['kind'], cols: number) => MlxQuantization | undefined;
}

/**
 * What a load that quantizes reuses from matrix to matrix: the quantizer's arena and the buffers
 * rows are read and widened into, so the load allocates them once (freed buffers of a few MiB
 * would otherwise stay in the process's heap).
 */
export class QuantizeWorkspace {
  private arena?: KernelArena;
  private buffer = new ArrayBuffer(0);

  get(): KernelArena {
    this.arena ??= KernelArena.create(QUANTIZE_CHUNK_BYTES + 2 ** 20);
    return this.arena;
  }

  /** Float32 room for n values followed by `rawBytes` bytes (the raw rows, widened in place). */
  floats(n: number): Float32Array {
    if (this.buffer.byteLength < 4 * n) this.buffer = new ArrayBuffer(4 * n);
    return new Float32Array(this.buffer, 0, n);
  }

  dispose(): void {
    this.arena?.dispose();
    this.arena = undefined;
    this.buffer = new ArrayBuffer(0);
  }
}

/** Float32 bytes of rows quantized per step (a few MiB: larger buys nothing, measured in fast-quantize.ts). */
export const QUANTIZE_CHUNK_BYTES = 4 * 2 ** 20;

const ELEMENT_BYTES: Partial<Record<SafetensorsDType, number>> = { F32: 4, BF16: 2, F16: 2, F64: 8 };

export class MatrixReader {
  /** The quantization the matrix runs with: as stored, or applied at load; undefined for floats. */
  readonly quantization?: MlxQuantization;
  /** True when the matrix is stored quantized (else its floats are read, and maybe quantized). */
  readonly storedQuantized: boolean;
  /** The stored float dtype (of the weight, or of the scales when stored quantized). */
  readonly dtype: SafetensorsDType;
  private readonly name: string;
  private readonly channelsLast: boolean;
  private wholeScales?: { scales: Float32Array; biases: Float32Array };

  constructor(private readonly checkpoint: Checkpoint, layout: CheckpointLayout, readonly m: MatrixKey,
    quantizeAtLoad?: QuantizeAtLoad, private readonly workspace?: QuantizeWorkspace) {
    this.name = layout.name(m.key);
    const stored = layout.quantization(m);
    this.storedQuantized = stored !== undefined;
    this.channelsLast = layout.convChannelsLast(m);
    if (stored) {
      this.quantization = stored;
      this.dtype = checkpoint.entry(`${modulePath(this.name)}.scales`).dtype;
    } else {
      this.dtype = checkpoint.entry(this.name).dtype;
      this.quantization = quantizeAtLoad?.quantizationOf(layout.mlxPath(m.key), m.kind, m.cols);
    }
  }

  /** Bytes of one stored float (loads read a matrix only after checking its dtype is a float one). */
  private get elementBytes(): number {
    const size = ELEMENT_BYTES[this.dtype];
    if (size === undefined) throw new Error(`internal: '${this.name}' is ${this.dtype}, not a float dtype`);
    return size;
  }

  /** Bytes the stored matrix occupies for `rows` rows (for progress). */
  storedBytes(rows: number): number {
    if (this.storedQuantized) {
      const q = this.quantization!;
      return rows * ((this.m.cols * q.bits) / 8 + 2 * (this.m.cols / q.groupSize) * this.elementBytes);
    }
    return rows * this.m.cols * this.elementBytes;
  }

  /** Raw rows in the stored float dtype (torch row order), into dst (rows · cols elements). F64 is not raw-readable. */
  readRawRows(dst: Uint8Array, rowStart: number, rows: number): void {
    if (this.storedQuantized || this.dtype === 'F64') throw new Error(`internal: '${this.name}' has no raw float rows`);
    const size = this.elementBytes;
    const rowBytes = this.m.cols * size;
    this.checkpoint.readBytesInto(this.name, dst, (this.m.rowStart + rowStart) * rowBytes);
    if (this.channelsLast) toChannelsFirst(dst, rows, this.m.conv!, size);
  }

  /** Rows widened to float32, into `out` when given (rows · cols values). */
  readFloatRows(rowStart: number, rows: number, out?: Float32Array): Float32Array {
    const cols = this.m.cols;
    const n = rows * cols;
    if (this.storedQuantized) throw new Error(`internal: '${this.name}' is quantized; dequantize its rows instead`);
    if (this.dtype === 'F64') {
      const all = this.checkpoint.readArray(this.name) as Float32Array;
      const values = all.subarray((this.m.rowStart + rowStart) * cols, (this.m.rowStart + rowStart + rows) * cols);
      const dst = out ?? new Float32Array(n);
      dst.set(values);
      if (this.channelsLast) toChannelsFirst(new Uint8Array(dst.buffer, dst.byteOffset, 4 * n), rows, this.m.conv!, 4);
      return dst;
    }
    const dst = out ?? new Float32Array(n);
    const size = this.elementBytes;
    // Raw 16-bit rows go in the upper half of dst and widen forward in place (dtypes.ts allows it).
    const raw = new Uint8Array(dst.buffer, dst.byteOffset + (4 - size) * n, size * n);
    this.readRawRows(raw, rowStart, rows);
    if (this.dtype === 'F32') return dst;
    const bits = new Uint16Array(raw.buffer, raw.byteOffset, n);
    return this.dtype === 'BF16' ? bf16ToF32(bits, dst) : f16ToF32(bits, dst);
  }

  /** Rows quantized: read as stored, or quantized now from the floats. */
  readQuantizedRows(rowStart: number, rows: number): QuantizedRowsRead {
    const q = this.quantization;
    if (!q) throw new Error(`internal: '${this.name}' is not quantized`);
    const cols = this.m.cols;
    if (!this.storedQuantized) {
      const scaleDType: MlxFloatDType = this.dtype === 'F64' ? 'F32' : (this.dtype as MlxFloatDType);
      return quantizeRowsFast(this.readFloatRows(rowStart, rows, this.workspace?.floats(rows * cols)), rows, cols, {
        ...q, scaleDType, mlxBackend: 'gpu', where: this.name, arena: this.workspace?.get(),
      });
    }
    const codes = new Uint32Array((rows * cols * q.bits) / 32);
    const rowBytes = (cols * q.bits) / 8;
    this.checkpoint.readBytesInto(this.name, new Uint8Array(codes.buffer), (this.m.rowStart + rowStart) * rowBytes);
    this.wholeScales ??= {
      scales: this.checkpoint.readArray(`${modulePath(this.name)}.scales`) as Float32Array,
      biases: this.checkpoint.readArray(`${modulePath(this.name)}.biases`) as Float32Array,
    };
    const groups = cols / q.groupSize;
    const from = (this.m.rowStart + rowStart) * groups;
    const to = from + rows * groups;
    const { scales, biases } = this.wholeScales;
    for (let i = from; i < to; i++) {
      if (!Number.isFinite(scales[i]) || !Number.isFinite(biases[i])) {
        throw new TfvlmError(`${this.checkpoint.source}: '${modulePath(this.name)}' has a non-finite scale or bias in group ${i}`);
      }
    }
    return { codes, scales: scales.slice(from, to), biases: biases.slice(from, to) };
  }
}

/** [rows, k, k, in] → [rows, in, k, k] per row, in place (elements of `size` bytes). */
function toChannelsFirst(bytes: Uint8Array, rows: number, conv: { in: number; kernel: number }, size: number): void {
  const { in: C, kernel: k } = conv;
  const per = C * k * k * size;
  const row = new Uint8Array(per);
  for (let r = 0; r < rows; r++) {
    const src = bytes.subarray(r * per, (r + 1) * per);
    for (let y = 0; y < k; y++) {
      for (let x = 0; x < k; x++) {
        for (let c = 0; c < C; c++) {
          const from = ((y * k + x) * C + c) * size;
          const to = ((c * k + y) * k + x) * size;
          for (let b = 0; b < size; b++) row[to + b] = src[from + b]!;
        }
      }
    }
    src.set(row);
  }
}
