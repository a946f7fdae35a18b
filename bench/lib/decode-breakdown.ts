// Where a decode step's time goes: its matrix-vector products alone (every decoder and LM-head
// weight times one row, nothing else), on one thread and on the whole pool, and what every other
// kernel of the step costs as tfjs dispatch (kernels per token × the time of a trivial kernel).
import { tf, withComputeThreads } from '../../src/backend/index.ts';
import type { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { kernelThreads } from '../../src/kernels/index.ts';
import { linear, type Linear } from '../../src/layers/linear.ts';
import { time } from './measure.ts';

export interface DecodeBreakdown {
  /** Weight matrices a decode step multiplies (projections of every layer + LM head). */
  matmuls_per_token: number;
  /** Those products alone, one after another, per thread count tried. */
  matmul_ms: { threads: number; ms: number }[];
  /** Kernels tfjs runs per decode step (all ops, matMuls included), at short context. */
  kernels_per_token: number;
  /** Median time of a trivial kernel (adding two [1, hidden] vectors): the per-kernel dispatch cost. */
  dispatch_us: number;
}

/** Every Linear (an object with inFeatures and a weightT or packed weight) under `tree`. */
function linearsIn(tree: unknown, out: Linear[] = [], seen = new Set<unknown>()): Linear[] {
  if (tree === null || typeof tree !== 'object' || seen.has(tree) || tree instanceof tf.Tensor) return out;
  seen.add(tree);
  const l = tree as Partial<Linear>;
  if (typeof l.inFeatures === 'number' && (l.weightT || l.packed)) {
    out.push(l as Linear);
    return out;
  }
  for (const v of Object.values(tree as Record<string, unknown>)) linearsIn(v, out, seen);
  return out;
}

/** Runs `step` (one decode token) under tf.profile and returns how many kernels it ran. */
async function kernelsIn(step: () => Promise<void>): Promise<number> {
  const info = await tf.profile(async () => {
    await step();
    return tf.scalar(0);
  });
  tf.dispose(info.result);
  return info.kernels.length;
}

export async function measureDecodeBreakdown(
  model: Idefics3Model,
  decodeTokens: (n: number) => Promise<void>,
  { threads, quick }: { threads: number[]; quick: boolean },
): Promise<DecodeBreakdown> {
  const layers = linearsIn([model.text.weights.layers, model.text.lmHead]);
  const rows = layers.map((l) => tf.randomNormal([1, l.inFeatures], 0, 1, 'float32', 5) as tf.Tensor2D);
  const runs = quick ? 5 : 15;
  const products = () => layers.forEach((l, i) => linear(l, rows[i]!).dispose()); // rows: one per layer
  // Stored weights run on the kernel pool's threads whatever tfjs uses; float32 ones on tfjs's.
  const matmul_ms = layers[0]?.packed
    ? [{ threads: kernelThreads().threads, ms: time(products, { warmup: 2, runs }).ms }]
    : threads.map((n) => ({ threads: n, ms: withComputeThreads(n, () => time(products, { warmup: 2, runs }).ms) }));
  tf.dispose(rows);

  // Kernels of n + 1 tokens minus those of 1 token: the prompt's kernels cancel out.
  const few = 1;
  const more = quick ? 3 : 5;
  const kernels = ((await kernelsIn(() => decodeTokens(few + more))) - (await kernelsIn(() => decodeTokens(few)))) / more;

  const hidden = model.config.text_config.hidden_size;
  const a = tf.randomNormal([1, hidden]);
  const b = tf.randomNormal([1, hidden]);
  const calls = 2000;
  const dispatch = withComputeThreads(1, () => time(() => {
    for (let i = 0; i < calls; i++) tf.add(a, b).dispose();
  }, { warmup: 1, runs: quick ? 3 : 7 }).ms) / calls;
  tf.dispose([a, b]);
  return { matmuls_per_token: layers.length, matmul_ms, kernels_per_token: kernels, dispatch_us: dispatch * 1000 };
}
