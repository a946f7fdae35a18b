// tfjs-backend-wasm's Slice kernel (used by its Unpack and SplitV) copies the whole input out of the
// wasm heap (backend.readSync) before taking each slice, so unstacking n rows costs n full copies.
// Attention unstacks q/k/v per head (12 copies of a 3 MB tensor per vision layer), and the gradients
// of stack/concat are unstack/split. These replacements read the input through a heap view instead —
// same results, no copy. Installed once when the wasm backend starts (wasm.ts).
import * as tf from '@tensorflow/tfjs-core';
import { fastPathsVerified } from './tfjs-versions.ts';

interface WasmTensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: string): WasmTensorInfo;
  typedArrayFromHeap(t: WasmTensorInfo): Float32Array | Int32Array | Uint8Array;
}

function strides(shape: readonly number[]): number[] {
  const out = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1] * shape[i + 1]!;
  return out;
}

/** x[begin : begin + size] as a new wasm tensor, read through views of the heap. */
function sliceFromHeap(backend: WasmBackendLike, x: WasmTensorInfo, begin: readonly number[], size: readonly number[]): WasmTensorInfo {
  const out = backend.makeOutput([...size], x.dtype);
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return out;
  // Views are taken after makeOutput: allocating may have grown (replaced) the heap buffer.
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0) {
    ov[0] = xv[0]!;
    return out;
  }
  const st = strides(x.shape);
  // Trailing dims taken whole merge with the last partial one into one contiguous run per row.
  let d0 = rank - 1;
  while (d0 > 0 && size[d0] === x.shape[d0]) d0--;
  const inner = size[d0]! * st[d0]!;
  const rows = total / inner;
  const idx = new Array(d0).fill(0);
  for (let r = 0; r < rows; r++) {
    let off = begin[d0]! * st[d0]!;
    for (let d = 0; d < d0; d++) off += (begin[d]! + idx[d]) * st[d]!;
    if (inner < 16) {
      for (let i = 0; i < inner; i++) ov[r * inner + i] = xv[off + i]!;
    } else {
      ov.set(xv.subarray(off, off + inner), r * inner);
    }
    for (let d = d0 - 1; d >= 0; d--) {
      if (++idx[d] < size[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

let installed = false;

/**
 * Re-registers wasm Slice, Unpack and SplitV with heap-view versions, and runs single (batch 1) BatchMatMul with
 * transposed operands as transpose + plain matMul (only the plain single case reaches XNNPACK; matMul
 * gradients are all transposed products). Idempotent; no-op off wasm, and unless the wasm start
 * found the tfjs release these were verified on (tfjs-versions.ts).
 */
export function installWasmHeapKernels(): void {
  if (installed || tf.getBackend() !== 'wasm' || !fastPathsVerified()) return;
  const originals = new Map(['Slice', 'Unpack', 'SplitV', 'BatchMatMul', 'Transpose'].map((k) => [k, tf.getKernel(k, 'wasm')]));
  if ([...originals.values()].some((k) => !k)) return;
  const replace = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    const original = originals.get(kernelName)!;
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      kernelName, backendName: 'wasm',
      kernelFunc: (args) => {
        const x = Object.values(args.inputs)[0] as unknown as WasmTensorInfo;
        return x.dtype === 'string' ? original.kernelFunc(args) : kernelFunc(args);
      },
    });
  };
  replace('Slice', ({ inputs, attrs, backend }) => {
    const x = inputs.x as unknown as WasmTensorInfo;
    const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
    // Always [begin, size], each of x's rank.
    const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo, begin, size) as [number[], number[]];
    return sliceFromHeap(backend as unknown as WasmBackendLike, x, b, s) as unknown as tf.TensorInfo;
  });
  replace('Unpack', ({ inputs, attrs, backend }) => {
    const x = inputs.value as unknown as WasmTensorInfo;
    let axis = (attrs as unknown as { axis: number }).axis;
    if (axis < 0) axis += x.shape.length;
    const outShape = x.shape.filter((_, i) => i !== axis);
    const begin = new Array(x.shape.length).fill(0);
    const size = x.shape.slice();
    size[axis] = 1;
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < x.shape[axis]!; i++) {
      begin[axis] = i;
      const o = sliceFromHeap(backend as unknown as WasmBackendLike, x, begin, size);
      outs.push({ dataId: o.dataId as tf.DataId, dtype: o.dtype as tf.DataType, shape: outShape });
    }
    return outs;
  });
  replace('SplitV', ({ inputs, attrs, backend }) => {
    const x = inputs.x as unknown as WasmTensorInfo;
    const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!; // one axis in, one (checked, non-negative) out
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = x.shape.slice();
      size[ax] = s;
      const o = sliceFromHeap(backend as unknown as WasmBackendLike, x, begin, size);
      begin[ax] += s;
      return o as unknown as tf.TensorInfo;
    });
  });
  const matMul = originals.get('BatchMatMul')!;
  const transpose = originals.get('Transpose')!;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul', backendName: 'wasm',
    kernelFunc: (args) => {
      const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const single = (x: tf.TensorInfo) => x.shape.slice(0, -2).every((d) => d === 1);
      if ((!transposeA && !transposeB) || !single(a) || !single(b)) return matMul.kernelFunc(args);
      const flip = (x: tf.TensorInfo) => {
        const perm = x.shape.map((_, i) => i);
        perm.splice(-2, 2, perm.length - 1, perm.length - 2);
        return transpose.kernelFunc({ inputs: { x }, attrs: { perm }, backend: args.backend }) as tf.TensorInfo;
      };
      const a2 = transposeA ? flip(a) : a;
      const b2 = transposeB ? flip(b) : b;
      try {
        return matMul.kernelFunc({ ...args, inputs: { a: a2, b: b2 }, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
      } finally {
        const backend = args.backend as unknown as { disposeData(id: object): void };
        if (a2 !== a) backend.disposeData(a2.dataId);
        if (b2 !== b) backend.disposeData(b2.dataId);
      }
    },
  });
  installed = true;
}
