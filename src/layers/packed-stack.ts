// Several packed linears over the same input (q, k, v; gate, up) as one product: output row r is
// the parts' outputs for input row r side by side. When the parts lie back to back in one arena
// (the weight store places a layer's matrices in order, so they usually do), they are one packed
// matrix stacked by rows, and one kernel call over all their panels replaces one call per part:
// fewer thread-pool round trips per decode step. A panel's sums do not depend on its neighbours
// (kernels/linear.c, matvec_rows), so each output is the bits its part alone gives.
import { paddedColumns } from '../kernels/index.ts';
import { packedMatvecRows } from './packed-matmul.ts';
import { formatBytes, formatName, type PackedMatrix } from './weight-store.ts';

/**
 * The parts as one matrix [Σ rows, cols], when that is the same panels: one arena and format, the
 * same cols, no biases (each bias sits after its own matrix), back to back, and every part but the
 * last a whole number of panels (8 rows) so no padding row falls between them.
 */
export function stackedMatrix(parts: readonly PackedMatrix[]): PackedMatrix | undefined {
  const [first] = parts;
  if (!first) return undefined;
  let end = first.offset;
  for (const [i, m] of parts.entries()) {
    const whole = i === parts.length - 1 || m.rows === paddedColumns(m.rows);
    if (m.arena !== first.arena || formatName(m.format) !== formatName(first.format) || m.cols !== first.cols || m.biasOffset !== undefined || m.offset !== end || !whole) {
      return undefined;
    }
    end += formatBytes(m.format, m.rows, m.cols);
  }
  return { ...first, rows: parts.reduce((a, m) => a + m.rows, 0) };
}

export class PackedStack {
  /** Outputs per row: Σ parts' rows. */
  readonly rows: number;
  private readonly stacked: PackedMatrix | undefined;
  /** Each part's output, when the parts run one by one. */
  private partOutputs: Float32Array[] = [];

  constructor(private readonly parts: readonly PackedMatrix[]) {
    this.rows = parts.reduce((a, m) => a + m.rows, 0);
    this.stacked = stackedMatrix(parts);
  }

  /** Whether one kernel call does all parts. */
  get isStacked(): boolean {
    return this.stacked !== undefined;
  }

  /** x [n, cols] → out [n, rows]: each row as packedMatvecRows gives it for each part. */
  matvecRows(x: Float32Array, n: number, out: Float32Array): void {
    if (this.stacked) {
      packedMatvecRows(this.stacked, x, n, out);
      return;
    }
    let column = 0;
    for (const [i, m] of this.parts.entries()) {
      if ((this.partOutputs[i]?.length ?? 0) < n * m.rows) this.partOutputs[i] = new Float32Array(n * m.rows);
      const y = this.partOutputs[i]!.subarray(0, n * m.rows);
      packedMatvecRows(m, x, n, y);
      for (let r = 0; r < n; r++) out.set(y.subarray(r * m.rows, (r + 1) * m.rows), r * this.rows + column);
      column += m.rows;
    }
  }
}
