// Weights kept in their checkpoint precision (f32, bf16, f16) outside the tfjs heap. tfjs-wasm has
// one heap of at most 4 GiB, holding every f32 weight plus XNNPACK's packed copy; here each weight
// matrix lives once, in a kernel arena (a shared WebAssembly.Memory of up to 4 GiB, as many as the
// model needs), in the panel layout the linear kernels read (src/kernels/). Activations stay tfjs
// tensors; a linear copies its input into the arena's scratch, runs the kernel, and copies out.
//
// Loading: each matrix's row-major bytes are read from the checkpoint straight into its slot, then
// packed in place chunk by chunk through the scratch (a panel of 8 rows occupies the same bytes as
// those 8 rows), so nothing is held twice and peak memory during load is the arenas themselves.
// Quantized matrices (MLX's affine codes, scales and biases) are handed over a few panels at a time
// and packed from the scratch into their qpanel-8 slot, so a load that quantizes holds no more than
// one chunk of floats beside the arenas.
import { TfvlmError } from '../errors.ts';
import {
  KernelArena, packedBytes, quantizedBytes, type QuantBits, type QuantGroupSize, type WeightDType,
} from '../kernels/index.ts';

/** How a matrix is kept in its arena: floats of one dtype (panel-8), or MLX affine codes (qpanel-8). */
export type StoredFormat =
  | { kind: 'float'; dtype: WeightDType }
  | { kind: 'quantized'; bits: QuantBits; groupSize: QuantGroupSize };

/** 'bf16', 'q4/64', …: a format in messages and reports. */
export function formatName(f: StoredFormat): string {
  return f.kind === 'float' ? f.dtype : `q${f.bits}/${f.groupSize}`;
}

/** Bytes a [rows, cols] matrix takes in `format`. */
export function formatBytes(f: StoredFormat, rows: number, cols: number): number {
  return f.kind === 'float' ? packedBytes(f.dtype, rows, cols) : quantizedBytes(f.bits, f.groupSize, rows, cols);
}

/** Rows of a quantized matrix as MLX stores them: codes (uint32 words), scales and biases widened to f32. */
export interface QuantizedRowsChunk {
  codes: Uint32Array;
  scales: Float32Array;
  biases: Float32Array;
}

/** A weight [rows, cols] (torch Linear [out, in], Embedding [vocab, dim]) packed in an arena. */
export interface PackedMatrix {
  readonly arena: KernelArena;
  /** Byte offset of the panels. */
  readonly offset: number;
  readonly format: StoredFormat;
  readonly rows: number;
  readonly cols: number;
  /** Byte offset of a float32 bias [rows], when the linear has one. */
  readonly biasOffset?: number;
  /** The arena's scratch (shared by its matrices; kernels run one at a time) for inputs and outputs. */
  readonly scratch: { offset: number; bytes: number };
}

/** One matrix to place: its stored format, shape, and whether a bias goes with it. */
export interface MatrixPlan {
  format: StoredFormat;
  rows: number;
  cols: number;
  bias: boolean;
}

/** Scratch per arena (default), for a linear's input and output rows and for packing at load. */
export const SCRATCH_BYTES = 32 * 2 ** 20;
const ALIGN = 64;

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** Bytes a matrix (and its bias) takes in an arena. */
export function matrixBytes(m: MatrixPlan): number {
  return align(formatBytes(m.format, m.rows, m.cols)) + (m.bias ? align(m.rows * 4) : 0);
}

interface ArenaState {
  arena: KernelArena;
  /** Next free byte for matrices. */
  used: number;
  /** Where the scratch starts (after the matrices planned for this arena). */
  scratch: number;
  scratchBytes: number;
}

export class WeightStore {
  private readonly arenas: ArenaState[];
  /** Which arena each planned matrix goes to, in plan order. */
  private readonly assignment: number[];
  private next = 0;
  private disposed = false;

  private constructor(arenas: ArenaState[], assignment: number[]) {
    this.arenas = arenas;
    this.assignment = assignment;
  }

  /**
   * Arenas for these matrices, first fit in order, each holding at most maxArenaBytes (4 GiB, the
   * wasm32 limit, less the kernels' own scratch) with its scratch. Matrices must then be placed in the same order.
   */
  static create(plans: MatrixPlan[], options: { maxArenaBytes?: number; scratchBytes?: number } = {}): WeightStore {
    const maxArenaBytes = options.maxArenaBytes ?? KernelArena.maxBytes();
    const scratchBytes = options.scratchBytes ?? SCRATCH_BYTES;
    const sizes: number[] = [];
    const assignment: number[] = [];
    for (const p of plans) {
      const bytes = matrixBytes(p);
      if (bytes + scratchBytes > maxArenaBytes) {
        throw new TfvlmError(`a ${p.rows}×${p.cols} ${formatName(p.format)} weight (${bytes} bytes) is larger than one kernel arena (${maxArenaBytes} bytes)`);
      }
      const last = sizes.at(-1);
      if (last !== undefined && last + bytes + scratchBytes <= maxArenaBytes) {
        sizes[sizes.length - 1] = last + bytes;
      } else {
        sizes.push(bytes);
      }
      assignment.push(sizes.length - 1);
    }
    const arenas: ArenaState[] = [];
    try {
      for (const bytes of sizes.length ? sizes : [0]) {
        arenas.push({ arena: KernelArena.create(bytes + scratchBytes), used: 0, scratch: bytes, scratchBytes });
      }
    } catch (e) {
      for (const a of arenas) a.arena.dispose();
      throw e;
    }
    return new WeightStore(arenas, assignment);
  }

  /** Bytes of all arenas (matrices + scratch). */
  get bytes(): number {
    return this.arenas.reduce((a, s) => a + s.arena.bytes, 0);
  }

  /** The next planned slot: its arena and offsets (bias copied in). */
  private allocate(plan: MatrixPlan, name: string, bias?: Float32Array): { state: ArenaState; offset: number; biasOffset?: number } {
    if (this.disposed) throw new TfvlmError('the weight store was disposed');
    const index = this.assignment[this.next];
    if (index === undefined) throw new Error(`internal: weight '${name}' was not planned`);
    this.next++;
    const state = this.arenas[index];
    if (!state) throw new Error(`internal: weight '${name}' is planned for arena ${index}, which does not exist`);
    const offset = state.used;
    state.used += align(formatBytes(plan.format, plan.rows, plan.cols));
    let biasOffset: number | undefined;
    if (plan.bias) {
      if (!bias || bias.length !== plan.rows) throw new Error(`internal: weight '${name}' needs a bias of ${plan.rows}`);
      biasOffset = state.used;
      state.used += align(plan.rows * 4);
      state.arena.f32(biasOffset, plan.rows).set(bias);
    }
    if (state.used > state.scratch) throw new Error(`internal: arena ${index} overflows at '${name}'`);
    return { state, offset, biasOffset };
  }

  private matrix(plan: MatrixPlan, state: ArenaState, offset: number, biasOffset?: number): PackedMatrix {
    return {
      arena: state.arena, offset, format: plan.format, rows: plan.rows, cols: plan.cols, biasOffset,
      scratch: { offset: state.scratch, bytes: state.scratchBytes },
    };
  }

  /**
   * Places the next planned matrix (a float format) and fills it: `read(dst, start)` must fill dst
   * with the matrix's row-major bytes from byte `start` (a checkpoint read); `bias` is copied in as
   * float32. `name` identifies the tensor in errors.
   */
  place(plan: MatrixPlan, name: string, read: (dst: Uint8Array, start: number) => void, bias?: Float32Array): PackedMatrix {
    if (plan.format.kind !== 'float') throw new Error(`internal: '${name}' is quantized; use placeQuantized`);
    const { dtype } = plan.format;
    const { state, offset, biasOffset } = this.allocate(plan, name, bias);
    const { arena } = state;
    const elementBytes = dtype === 'f32' ? 4 : 2;
    const rowBytes = plan.cols * elementBytes;
    read(arena.view(offset, plan.rows * rowBytes), 0);
    if (dtype === 'f16' && !arena.allFiniteF16(offset, plan.rows * plan.cols)) {
      throw new TfvlmError(
        `weight '${name}' (f16) holds inf or NaN values, which the 16-bit kernels cannot carry; load it with weights 'float32'`,
      );
    }
    // Pack in place: copy a run of whole panels' rows to the scratch, pack them back over themselves.
    const panelBytes = 8 * rowBytes;
    const panelsPerChunk = Math.max(1, Math.floor(state.scratchBytes / panelBytes));
    const panels = Math.ceil(plan.rows / 8);
    if (panelBytes > state.scratchBytes) {
      throw new TfvlmError(`weight '${name}': rows of ${plan.cols} values are too long for the packing scratch`);
    }
    const bytes = arena.view(0, arena.bytes);
    for (let p0 = 0; p0 < panels; p0 += panelsPerChunk) {
      const p1 = Math.min(panels, p0 + panelsPerChunk);
      const rows0 = p0 * 8;
      const rows1 = Math.min(plan.rows, p1 * 8);
      bytes.copyWithin(state.scratch, offset + rows0 * rowBytes, offset + rows1 * rowBytes);
      // The scratch holds rows [rows0, rows1): pack them as a (rows1 − rows0)-row matrix into panels p0…
      arena.pack(dtype, state.scratch, offset + rows0 * rowBytes, rows1 - rows0, plan.cols);
    }
    return this.matrix(plan, state, offset, biasOffset);
  }

  /** Rows per call of placeQuantized's `read`: whole panels whose codes, scales and biases fit the scratch. */
  quantizedChunkRows(plan: MatrixPlan): number {
    if (plan.format.kind !== 'quantized') throw new Error('internal: not a quantized plan');
    const { bits, groupSize } = plan.format;
    const scratchBytes = Math.min(...this.arenas.map((a) => a.scratchBytes));
    const panelBytes = 8 * (align((plan.cols * bits) / 8) + 2 * align((plan.cols / groupSize) * 4));
    const panels = Math.floor(scratchBytes / panelBytes);
    if (panels < 1) throw new TfvlmError(`a quantized row of ${plan.cols} values is too long for the packing scratch`);
    return panels * 8;
  }

  /**
   * Places the next planned matrix (a quantized format): `read(rowStart, rows)` gives rows
   * [rowStart, rowStart + rows) as MLX stores them, in chunks of quantizedChunkRows(plan) rows
   * (fewer when maxChunkRows says so, rounded down to whole panels); each chunk goes through the
   * scratch into its panels.
   */
  placeQuantized(plan: MatrixPlan, name: string, read: (rowStart: number, rows: number) => QuantizedRowsChunk,
    bias?: Float32Array, maxChunkRows = Infinity): PackedMatrix {
    if (plan.format.kind !== 'quantized') throw new Error(`internal: '${name}' is not quantized; use place`);
    const { bits, groupSize } = plan.format;
    const chunkRows = Math.min(this.quantizedChunkRows(plan), Math.max(8, Math.floor(maxChunkRows / 8) * 8));
    const { state, offset, biasOffset } = this.allocate(plan, name, bias);
    const { arena } = state;
    const K = plan.cols;
    const panelBytes = quantizedBytes(bits, groupSize, 8, K);
    for (let r0 = 0; r0 < plan.rows; r0 += chunkRows) {
      const rows = Math.min(chunkRows, plan.rows - r0);
      const chunk = read(r0, rows);
      const groups = (rows * K) / groupSize;
      if (chunk.codes.length !== (rows * K * bits) / 32 || chunk.scales.length !== groups || chunk.biases.length !== groups) {
        throw new Error(`internal: '${name}' rows ${r0}+${rows}: a quantized chunk of the wrong size`);
      }
      const codesAt = state.scratch;
      const scalesAt = codesAt + align(chunk.codes.byteLength);
      const biasesAt = scalesAt + align(groups * 4);
      arena.view(codesAt, chunk.codes.byteLength).set(new Uint8Array(chunk.codes.buffer, chunk.codes.byteOffset, chunk.codes.byteLength));
      arena.f32(scalesAt, groups).set(chunk.scales);
      arena.f32(biasesAt, groups).set(chunk.biases);
      arena.packQuantized(bits, groupSize, codesAt, scalesAt, biasesAt, offset + (r0 / 8) * panelBytes, rows, K);
    }
    return this.matrix(plan, state, offset, biasOffset);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const a of this.arenas) a.arena.dispose();
  }
}
