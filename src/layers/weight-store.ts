// Weights kept in their checkpoint precision (f32, bf16, f16) outside the tfjs heap. tfjs-wasm has
// one heap of at most 4 GiB, holding every f32 weight plus XNNPACK's packed copy; here each weight
// matrix lives once, in a kernel arena (a shared WebAssembly.Memory of up to 4 GiB, as many as the
// model needs), in the panel layout the linear kernels read (src/kernels/). Activations stay tfjs
// tensors; a linear copies its input into the arena's scratch, runs the kernel, and copies out.
//
// Loading: each matrix's row-major bytes are read from the checkpoint straight into its slot, then
// packed in place chunk by chunk through the scratch (a panel of 8 rows occupies the same bytes as
// those 8 rows), so nothing is held twice and peak memory during load is the arenas themselves.
import { TfvlmError } from '../errors.ts';
import { KernelArena, packedBytes, type WeightDType } from '../kernels/index.ts';

/** A weight [rows, cols] (torch Linear [out, in], Embedding [vocab, dim]) packed in an arena. */
export interface PackedMatrix {
  readonly arena: KernelArena;
  /** Byte offset of the panels. */
  readonly offset: number;
  readonly dtype: WeightDType;
  readonly rows: number;
  readonly cols: number;
  /** Byte offset of a float32 bias [rows], when the linear has one. */
  readonly biasOffset?: number;
  /** The arena's scratch (shared by its matrices; kernels run one at a time) for inputs and outputs. */
  readonly scratch: { offset: number; bytes: number };
}

/** One matrix to place: its stored dtype, shape, and whether a bias goes with it. */
export interface MatrixPlan {
  dtype: WeightDType;
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
  return align(packedBytes(m.dtype, m.rows, m.cols)) + (m.bias ? align(m.rows * 4) : 0);
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
        throw new TfvlmError(`a ${p.rows}×${p.cols} ${p.dtype} weight (${bytes} bytes) is larger than one kernel arena (${maxArenaBytes} bytes)`);
      }
      const last = sizes.length - 1;
      if (last >= 0 && sizes[last] + bytes + scratchBytes <= maxArenaBytes) {
        sizes[last] += bytes;
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

  /**
   * Places the next planned matrix and fills it: `read(dst, start)` must fill dst with the matrix's
   * row-major bytes from byte `start` (a checkpoint read); `bias` is copied in as float32.
   * `name` identifies the tensor in errors.
   */
  place(plan: MatrixPlan, name: string, read: (dst: Uint8Array, start: number) => void, bias?: Float32Array): PackedMatrix {
    if (this.disposed) throw new TfvlmError('the weight store was disposed');
    const index = this.assignment[this.next];
    if (index === undefined) throw new Error(`internal: weight '${name}' was not planned`);
    this.next++;
    const state = this.arenas[index];
    const { arena } = state;
    const offset = state.used;
    state.used += align(packedBytes(plan.dtype, plan.rows, plan.cols));
    let biasOffset: number | undefined;
    if (plan.bias) {
      if (!bias || bias.length !== plan.rows) throw new Error(`internal: weight '${name}' needs a bias of ${plan.rows}`);
      biasOffset = state.used;
      state.used += align(plan.rows * 4);
      arena.f32(biasOffset, plan.rows).set(bias);
    }
    if (state.used > state.scratch) throw new Error(`internal: arena ${index} overflows at '${name}'`);
    const elementBytes = plan.dtype === 'f32' ? 4 : 2;
    const rowBytes = plan.cols * elementBytes;
    read(arena.view(offset, plan.rows * rowBytes), 0);
    if (plan.dtype === 'f16' && !arena.allFiniteF16(offset, plan.rows * plan.cols)) {
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
      arena.pack(plan.dtype, state.scratch, offset + rows0 * rowBytes, rows1 - rows0, plan.cols);
    }
    return {
      arena, offset, dtype: plan.dtype, rows: plan.rows, cols: plan.cols, biasOffset,
      scratch: { offset: state.scratch, bytes: state.scratchBytes },
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const a of this.arenas) a.arena.dispose();
  }
}
