// Inference kernels that do in one pass over the wasm heap what takes tfjs 3–8 small ops each
// (RMSNorm, rotary embedding, SiLU·up, the softmax and head merge of a one-token attention step).
// A decode step of a small model is thousands of such ops, each costing ~5–15 µs of engine and
// allocation overhead, more than the arithmetic. Elementwise steps round to float32 after every
// operation in the order the reference uses (transformers modeling_llama.py), so results match the
// op-by-op versions to the last bit except where noted. They have no gradients: callers use them
// only when fusedKernelsActive() (wasm backend, no gradient tape recording).
import * as tf from '@tensorflow/tfjs-core';
import { Toggle } from '../util/toggle.ts';
import { addRmsNormRow, rmsNormRow, rotaryValue, siluMulRange, softmaxStrided } from './fused-math.ts';

interface HeapTensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: string): HeapTensorInfo;
  typedArrayFromHeap(t: HeapTensorInfo): Float32Array;
}

const f32 = Math.fround;

const RMS_NORM = 'TfvlmRMSNorm';
const ADD_RMS_NORM = 'TfvlmAddRMSNorm';
const ROTARY = 'TfvlmRotary';
const SILU_MUL = 'TfvlmSiluMul';
const SOFTMAX_COLUMNS = 'TfvlmSoftmaxColumns';
const MERGE_GROUPED_HEADS = 'TfvlmMergeGroupedHeads';
const LINEAR = 'TfvlmLinear';
const LAYER_NORM = 'TfvlmLayerNorm';

let installed = false;
/** TFVLM_FUSED=0 turns the fused kernels off (A/B timing); withoutFusedKernels does it for one call. */
const fused = new Toggle(process.env.TFVLM_FUSED !== '0');

function engineState(): { gradientDepth: number } {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state;
}

/**
 * Elementwise kernels run in JavaScript, which beats tfjs's several wasm ops on small tensors (a
 * decode step's rows: 100 µs → 15 µs for a 768-wide LayerNorm) but not on large ones (a 1024-row
 * vision LayerNorm takes ~19 ms against ~10 ms op by op); callers use them up to this many values.
 */
export const FUSED_ELEMENTWISE_MAX = 1 << 15;

/** Whether the fused kernels can run now: wasm backend, kernels registered, no gradient tape open. */
export function fusedKernelsActive(): boolean {
  return fused.enabled && installed && tf.getBackend() === 'wasm' && engineState().gradientDepth === 0;
}

/** Whether an elementwise step over x takes its fused kernel: fused kernels active, float32, at most FUSED_ELEMENTWISE_MAX values. */
export function fusesElementwise(x: tf.Tensor): boolean {
  return x.dtype === 'float32' && x.size <= FUSED_ELEMENTWISE_MAX && fusedKernelsActive();
}

/** Runs fn with the fused kernels off (the op-by-op reference path), then restores the setting. */
export function withoutFusedKernels<T>(fn: () => T): T {
  return fused.without(fn);
}

function run(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
}

/** weight · x / sqrt(mean(x²) + eps) over the last axis (LlamaRMSNorm); the mean accumulates in float64. */
export function rmsNormFused(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  return run(RMS_NORM, { x, weight }, { eps }) as tf.Tensor;
}

/** [x + delta, RMSNorm(x + delta)] in one pass (a residual add and the next block's norm). */
export function addRmsNormFused(x: tf.Tensor, delta: tf.Tensor, weight: tf.Tensor, eps: number): [tf.Tensor, tf.Tensor] {
  return run(ADD_RMS_NORM, { x, delta, weight }, { eps }) as [tf.Tensor, tf.Tensor];
}

export interface RotaryLayout {
  /** Heads in x's last axis (x is [B, T, heads·D] or any shape of that size). */
  heads: number;
  headDim: number;
  /** Multiplies the rotated values (an attention scale folded into q). Default 1. */
  scale?: number;
}

/** x·cos + rotate_half(x)·sin (apply_rotary_pos_emb) for x [B, T, heads·D], tables [B, 1, T, D] → [B, heads, T, D]. */
export function rotaryFused(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, layout: RotaryLayout): tf.Tensor {
  return run(ROTARY, { x, cos, sin }, { heads: layout.heads, headDim: layout.headDim, scale: layout.scale ?? 1, groups: 0 }) as tf.Tensor;
}

/**
 * The same for one position (T = 1), laid out per (batch, kv head) as [D, groups]: the query heads
 * that share a kv head side by side, the right operand of keys · q. Returns B·heads/groups tensors.
 */
export function rotaryGroupedFused(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, layout: RotaryLayout & { groups: number }): tf.Tensor[] {
  const out = run(ROTARY, { x, cos, sin }, { heads: layout.heads, headDim: layout.headDim, scale: layout.scale ?? 1, groups: layout.groups });
  return Array.isArray(out) ? out : [out];
}

/** silu(gate) · up (LlamaMLP with hidden_act silu). */
export function siluMulFused(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  return run(SILU_MUL, { gate, up }) as tf.Tensor;
}

/**
 * Softmax down each column of scores [C, g] over the first `valid` rows; rows from `valid` on come
 * out 0 (the unused tail of a preallocated cache, as if masked with −∞).
 */
export function softmaxColumnsFused(scores: tf.Tensor[], valid: number): tf.Tensor[] {
  const inputs: Record<string, tf.Tensor> = {};
  scores.forEach((s, i) => { inputs[`s${i}`] = s; });
  const out = run(SOFTMAX_COLUMNS, inputs, { valid });
  return Array.isArray(out) ? out : [out];
}

/**
 * Per (batch, kv head) outputs [D, groups] → [B, 1, H·D] with query head j·groups + g at columns
 * (j·groups + g)·D … (the transpose and merge of a one-token attention step).
 */
export function mergeGroupedHeadsFused(outs: tf.Tensor[], batch: number): tf.Tensor {
  const inputs: Record<string, tf.Tensor> = {};
  outs.forEach((o, i) => { inputs[`o${i}`] = o; });
  return run(MERGE_GROUPED_HEADS, inputs, { batch }) as tf.Tensor;
}

/**
 * x [..., in] · w [in, out] (+ bias [out]) as one kernel: the backend's XNNPACK matMul on x viewed
 * as [1, rows, in], without the reshapes around it (three engine ops fewer per projection).
 */
export function linearFused(x: tf.Tensor, w: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return run(LINEAR, bias ? { x, w, bias } : { x, w }) as tf.Tensor;
}

/** (x − mean) / sqrt(var + eps) · weight + bias over the last axis (torch LayerNorm); sums accumulate in float64. */
export function layerNormFused(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  return run(LAYER_NORM, { x, weight, bias }, { eps }) as tf.Tensor;
}

/**
 * A kernel's arguments. In names the inputs its wrapper above always passes, Opt those it may leave
 * out; the variadic kernels (inputs s0…, o0…) keep the default.
 */
type KernelArgs<In extends string = string, Opt extends string = never> = {
  inputs: Record<In, HeapTensorInfo> & Partial<Record<Opt, HeapTensorInfo>>;
  attrs: Record<string, unknown>;
  backend: WasmBackendLike;
};

/** A variadic kernel's inputs in the order of their index (s0, s1, … or o0, o1, …). */
function inputsInOrder(inputs: Record<string, HeapTensorInfo>): HeapTensorInfo[] {
  return Object.entries(inputs)
    .sort(([a], [b]) => Number(a.slice(1)) - Number(b.slice(1)))
    .map(([, t]) => t);
}

function rmsNormKernel({ inputs, attrs, backend }: KernelArgs<'x' | 'weight'>): HeapTensorInfo {
  const { x, weight } = inputs;
  const eps = attrs.eps as number;
  const out = backend.makeOutput([...x.shape], 'float32');
  const xv = backend.typedArrayFromHeap(x);
  const wv = backend.typedArrayFromHeap(weight);
  const ov = backend.typedArrayFromHeap(out);
  const D = x.shape[x.shape.length - 1]!;
  const rows = xv.length / D;
  for (let r = 0, o = 0; r < rows; r++, o += D) rmsNormRow(xv, o, wv, ov, o, D, eps);
  return out;
}

function addRmsNormKernel({ inputs, attrs, backend }: KernelArgs<'x' | 'delta' | 'weight'>): HeapTensorInfo[] {
  const { x, delta, weight } = inputs;
  const eps = attrs.eps as number;
  const sum = backend.makeOutput([...x.shape], 'float32');
  const out = backend.makeOutput([...x.shape], 'float32');
  const xv = backend.typedArrayFromHeap(x);
  const dv = backend.typedArrayFromHeap(delta);
  const wv = backend.typedArrayFromHeap(weight);
  const sv = backend.typedArrayFromHeap(sum);
  const ov = backend.typedArrayFromHeap(out);
  const D = x.shape[x.shape.length - 1]!;
  const rows = xv.length / D;
  for (let r = 0, o = 0; r < rows; r++, o += D) addRmsNormRow(xv, dv, wv, sv, ov, o, D, eps);
  return [sum, out];
}

function rotaryKernel({ inputs, attrs, backend }: KernelArgs<'x' | 'cos' | 'sin'>): HeapTensorInfo | HeapTensorInfo[] {
  const { x, cos, sin } = inputs;
  const n = attrs.heads as number;
  const D = attrs.headDim as number;
  const scale = attrs.scale as number;
  // groups 0: one output [B, n, T, D]; else (T = 1) B·n/groups outputs [D, groups].
  const groups = attrs.groups as number;
  const B = cos.shape[0]!; // cos is [B, 1, T, D]
  const T = cos.shape[2]!;
  const kv = groups ? n / groups : 0;
  const outs = groups
    ? Array.from({ length: B * kv }, () => backend.makeOutput([D, groups], 'float32'))
    : [backend.makeOutput([B, n, T, D], 'float32')];
  const xv = backend.typedArrayFromHeap(x);
  const cv = backend.typedArrayFromHeap(cos);
  const sv = backend.typedArrayFromHeap(sin);
  const ovs = outs.map((o) => backend.typedArrayFromHeap(o));
  const half = D / 2;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tab = (b * T + t) * D;
      for (let h = 0; h < n; h++) {
        const src = ((b * T + t) * n + h) * D;
        const j = groups ? Math.floor(h / groups) : 0;
        const ov = groups ? ovs[b * kv + j]! : ovs[0]!;
        const base = groups ? h - j * groups : ((b * n + h) * T + t) * D;
        const step = groups || 1;
        for (let d = 0; d < D; d++) {
          const rotated = d < half ? -xv[src + d + half]! : xv[src + d - half]!;
          ov[base + d * step] = rotaryValue(xv[src + d]!, rotated, cv[tab + d]!, sv[tab + d]!, scale);
        }
      }
    }
  }
  return groups ? outs : outs[0]!;
}

function siluMulKernel({ inputs, backend }: KernelArgs<'gate' | 'up'>): HeapTensorInfo {
  const { gate, up } = inputs;
  const out = backend.makeOutput([...gate.shape], 'float32');
  const gv = backend.typedArrayFromHeap(gate);
  const uv = backend.typedArrayFromHeap(up);
  const ov = backend.typedArrayFromHeap(out);
  siluMulRange(gv, uv, ov, gv.length);
  return out;
}

function softmaxColumnsKernel({ inputs, attrs, backend }: KernelArgs): HeapTensorInfo[] {
  const valid = attrs.valid as number;
  const scores = inputsInOrder(inputs);
  const outs = scores.map((s) => backend.makeOutput([...s.shape], 'float32'));
  scores.forEach((s, i) => {
    const C = s.shape[0]!; // s is [C, g]
    const g = s.shape[1]!;
    const sv = backend.typedArrayFromHeap(s);
    const ov = backend.typedArrayFromHeap(outs[i]!);
    for (let c = 0; c < g; c++) softmaxStrided(sv, ov, c, g, valid, C);
  });
  return outs;
}

function mergeGroupedHeadsKernel({ inputs, attrs, backend }: KernelArgs): HeapTensorInfo {
  const B = attrs.batch as number;
  const heads = inputsInOrder(inputs);
  const kv = heads.length / B;
  const D = heads[0]!.shape[0]!; // each is [D, g]
  const g = heads[0]!.shape[1]!;
  const out = backend.makeOutput([B, 1, kv * g * D], 'float32');
  const ov = backend.typedArrayFromHeap(out);
  heads.forEach((h, i) => {
    const iv = backend.typedArrayFromHeap(h);
    const b = Math.floor(i / kv);
    const j = i - b * kv;
    for (let gi = 0; gi < g; gi++) {
      const dst = (b * kv * g + j * g + gi) * D;
      for (let d = 0; d < D; d++) ov[dst + d] = iv[d * g + gi]!;
    }
  });
  return out;
}

function layerNormKernel({ inputs, attrs, backend }: KernelArgs<'x' | 'weight' | 'bias'>): HeapTensorInfo {
  const { x, weight, bias } = inputs;
  const eps = attrs.eps as number;
  const out = backend.makeOutput([...x.shape], 'float32');
  const xv = backend.typedArrayFromHeap(x);
  const wv = backend.typedArrayFromHeap(weight);
  const bv = backend.typedArrayFromHeap(bias);
  const ov = backend.typedArrayFromHeap(out);
  const D = x.shape[x.shape.length - 1]!;
  const rows = xv.length / D;
  for (let r = 0, o = 0; r < rows; r++, o += D) {
    let sum = 0;
    for (let d = 0; d < D; d++) sum += xv[o + d]!;
    const mean = f32(sum / D);
    let ss = 0;
    for (let d = 0; d < D; d++) {
      const c = f32(xv[o + d]! - mean);
      ss += c * c;
    }
    const inv = f32(1 / Math.sqrt(f32(f32(ss / D) + eps)));
    for (let d = 0; d < D; d++) ov[o + d] = f32(f32(f32(f32(xv[o + d]! - mean) * inv) * wv[d]!) + bv[d]!);
  }
  return out;
}

function linearKernel({ inputs, backend }: KernelArgs<'x' | 'w', 'bias'>): HeapTensorInfo {
  const { x, w, bias } = inputs;
  const K = w.shape[0]!; // w is [K, N]
  const N = w.shape[1]!;
  const rows = x.shape.reduce((a, b) => a * b, 1) / K;
  const matMul = tf.getKernel('_FusedMatMul', 'wasm')!;
  const out = matMul.kernelFunc({
    inputs: {
      a: { dataId: x.dataId, shape: [1, rows, K], dtype: 'float32' },
      b: { dataId: w.dataId, shape: [1, K, N], dtype: 'float32' },
      ...(bias ? { bias } : {}),
    } as unknown as tf.NamedTensorInfoMap,
    attrs: { transposeA: false, transposeB: false, activation: 'linear' },
    backend: backend as unknown as tf.KernelBackend,
  }) as tf.TensorInfo;
  return { dataId: out.dataId, shape: [...x.shape.slice(0, -1), N], dtype: 'float32' };
}

/** Registers the kernels for the wasm backend (once; wasm.ts calls it at start). */
export function installFusedKernels(): void {
  if (installed) return;
  const kernels: [string, (args: never) => HeapTensorInfo | HeapTensorInfo[]][] = [
    [RMS_NORM, rmsNormKernel], [ADD_RMS_NORM, addRmsNormKernel], [ROTARY, rotaryKernel], [SILU_MUL, siluMulKernel],
    [SOFTMAX_COLUMNS, softmaxColumnsKernel], [MERGE_GROUPED_HEADS, mergeGroupedHeadsKernel], [LINEAR, linearKernel],
    [LAYER_NORM, layerNormKernel],
  ];
  for (const [kernelName, fn] of kernels) {
    if (tf.getKernel(kernelName, 'wasm')) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc });
  }
  installed = true;
}
