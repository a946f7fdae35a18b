// Packed linears over one input as one product (packed-stack.ts): when the parts lie back to back
// they run as one stacked matrix, and every output is bit for bit what its part alone gives
// (packedMatvecRows), for float and quantized formats and 1–9 rows; parts that cannot stack (a
// bias, a ragged part before the last, a matrix between them, another format or width) run one by
// one with the same bits.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/index.ts';
import { f32ToBf16 } from '../../src/io/dtypes.ts';
import { packedMatvecRows } from '../../src/layers/packed-matmul.ts';
import { PackedStack, stackedMatrix } from '../../src/layers/packed-stack.ts';
import { WeightStore, type MatrixPlan, type PackedMatrix, type StoredFormat } from '../../src/layers/weight-store.ts';
import { gaussianSource } from '../../src/models/random-weights.ts';
import { quantizeRows } from '../../src/quant/mlx-affine.ts';

interface Part {
  rows: number;
  cols: number;
  format: StoredFormat;
  bias?: boolean;
}

/** Places the parts in order in one store (so they are back to back unless a bias sits between). */
function place(parts: Part[], seed: number): { store: WeightStore; matrices: PackedMatrix[] } {
  const plans: MatrixPlan[] = parts.map((p) => ({ format: p.format, rows: p.rows, cols: p.cols, bias: p.bias ?? false }));
  const store = WeightStore.create(plans);
  const matrices = plans.map((plan, i) => {
    const normal = gaussianSource(seed + i);
    const values = Float32Array.from({ length: plan.rows * plan.cols }, () => normal());
    const bias = plan.bias ? Float32Array.from({ length: plan.rows }, () => normal()) : undefined;
    const f = plan.format;
    if (f.kind === 'quantized') {
      const q = quantizeRows(values, plan.rows, plan.cols, { bits: f.bits, groupSize: f.groupSize, scaleDType: 'F32', mlxBackend: 'cpu' });
      const perRow = { codes: (plan.cols * f.bits) / 32, groups: plan.cols / f.groupSize };
      return store.placeQuantized(plan, `w${i}`, (rowStart, rows) => ({
        codes: q.codes.subarray(rowStart * perRow.codes, (rowStart + rows) * perRow.codes),
        scales: q.scales.subarray(rowStart * perRow.groups, (rowStart + rows) * perRow.groups),
        biases: q.biases.subarray(rowStart * perRow.groups, (rowStart + rows) * perRow.groups),
      }), bias);
    }
    const bytes = f.dtype === 'f32' ? new Uint8Array(values.buffer) : new Uint8Array(f32ToBf16(values).buffer);
    if (f.dtype === 'f16') throw new Error('test: f16 not generated here');
    return store.place(plan, `w${i}`, (dst, start) => dst.set(bytes.subarray(start, start + dst.length)), bias);
  });
  return { store, matrices };
}

/** The parts one by one, side by side per row: what the stack must give, bit for bit. */
function separately(matrices: PackedMatrix[], x: Float32Array, n: number): Float32Array {
  const width = matrices.reduce((a, m) => a + m.rows, 0);
  const out = new Float32Array(n * width);
  let column = 0;
  for (const m of matrices) {
    const y = packedMatvecRows(m, x, n);
    for (let r = 0; r < n; r++) out.set(y.subarray(r * m.rows, (r + 1) * m.rows), r * width + column);
    column += m.rows;
  }
  return out;
}

function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const [ua, ub] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  const i = ua.findIndex((v, j) => v !== ub[j]);
  assert.equal(i, -1, `${what}: output ${i} differs (${a[i]} against ${b[i]})`);
}

function check(parts: Part[], expectStacked: boolean, what: string): void {
  const { store, matrices } = place(parts, 40);
  try {
    const stack = new PackedStack(matrices);
    assert.equal(stack.isStacked, expectStacked, `${what}: stacked`);
    assert.equal(stack.rows, parts.reduce((a, p) => a + p.rows, 0));
    const normal = gaussianSource(7);
    for (const n of [1, 2, 9]) {
      const x = Float32Array.from({ length: n * parts[0]!.cols }, () => normal());
      const out = new Float32Array(n * stack.rows).fill(NaN);
      stack.matvecRows(x, n, out);
      assertSameBits(out, separately(matrices, x, n), `${what}, ${n} rows`);
    }
  } finally {
    store.dispose();
  }
}

const bf16: StoredFormat = { kind: 'float', dtype: 'bf16' };
const f32: StoredFormat = { kind: 'float', dtype: 'f32' };
const q4: StoredFormat = { kind: 'quantized', bits: 4, groupSize: 32 };
const q8: StoredFormat = { kind: 'quantized', bits: 8, groupSize: 64 };

describe('packed stack: several linears over one input as one product', () => {
  before(() => initBackend());

  for (const [name, format] of [['bf16', bf16], ['f32', f32], ['q4/32', q4], ['q8/64', q8]] as const) {
    it(`${name}: q, k, v back to back stack, and give each part's bits (last part ragged: 21 rows)`, () => {
      check([{ rows: 48, cols: 64, format }, { rows: 16, cols: 64, format }, { rows: 21, cols: 64, format }], true, name);
    });
  }

  it('an odd number of panels before a part (panel pairs straddle the parts) still gives each part its bits', () => {
    check([{ rows: 24, cols: 40, format: bf16 }, { rows: 40, cols: 40, format: bf16 }], true, '3 + 5 panels');
  });

  it('parts that cannot stack run one by one, with the same bits', () => {
    check([{ rows: 12, cols: 32, format: bf16 }, { rows: 16, cols: 32, format: bf16 }], false, 'ragged first part');
    check([{ rows: 16, cols: 32, format: bf16, bias: true }, { rows: 16, cols: 32, format: bf16 }], false, 'a bias');
    check([{ rows: 16, cols: 32, format: bf16 }, { rows: 16, cols: 32, format: f32 }], false, 'two formats');
  });

  it('stackedMatrix refuses parts that are not back to back or not of one width', () => {
    const { store, matrices } = place([
      { rows: 16, cols: 32, format: bf16 }, { rows: 8, cols: 32, format: bf16 }, { rows: 8, cols: 32, format: bf16 }, { rows: 8, cols: 64, format: bf16 },
    ], 3);
    try {
      const [a, b, c, wide] = matrices as [PackedMatrix, PackedMatrix, PackedMatrix, PackedMatrix];
      assert.equal(stackedMatrix([a, b, c])?.rows, 32);
      assert.equal(stackedMatrix([a, c]), undefined, 'a matrix between them');
      assert.equal(stackedMatrix([b, a]), undefined, 'out of order');
      assert.equal(stackedMatrix([c, wide]), undefined, 'another width');
      assert.equal(stackedMatrix([]), undefined);
    } finally {
      store.dispose();
    }
  });
});
