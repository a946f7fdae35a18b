// How far a quantized model's next-token distributions are from the full-precision model's, position
// by position (teacher forcing: both read the same tokens). What llama.cpp's --kl-divergence reports:
// KL(P_full ‖ P_quant) in nats from log-softmax in float64, its mean, 99th percentile and maximum,
// and how often the two pick the same greedy token; plus the largest logit difference.

/** log-softmax of `logits[offset .. offset + n)` in float64. */
export function logSoftmax(logits: ArrayLike<number>, offset = 0, n = logits.length - offset): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i]! - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logits[offset + i]! - logZ;
  return out;
}

/** KL(P ‖ Q) = Σ p (log p − log q) in nats, from two rows of log-probabilities. */
export function klFromLogProbs(logP: Float64Array, logQ: Float64Array): number {
  if (logP.length !== logQ.length) throw new Error(`klFromLogProbs: ${logP.length} vs ${logQ.length} entries`);
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const lp = logP[i]!;
    if (lp === -Infinity) continue; // p = 0 contributes nothing
    kl += Math.exp(lp) * (lp - logQ[i]!);
  }
  return kl;
}

/** KL(softmax(p) ‖ softmax(q)) in nats for one row of logits each. */
export function klDivergence(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  return klFromLogProbs(logSoftmax(pLogits), logSoftmax(qLogits));
}

/** Index of the largest entry of `x[offset .. offset + n)` (the first one on ties, as argMax does). */
export function argmax(x: ArrayLike<number>, offset = 0, n = x.length - offset): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[offset + i]! > x[offset + best]!) best = i;
  return best;
}

/** How many positions pick the same token. */
export function agreementCount(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`agreementCount: ${a.length} vs ${b.length} tokens`);
  return a.reduce((n, t, i) => n + (t === b[i] ? 1 : 0), 0);
}

/** The q-th quantile (0..1) with linear interpolation between order statistics (numpy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((x, y) => x - y);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (pos - lo) * (s[hi]! - s[lo]!); // 0 ≤ lo ≤ hi < s.length for q in [0, 1]
}

export interface LogitComparison {
  positions: number;
  /** Positions where argmax(quant) == argmax(full). */
  agree: number;
  agreement: number;
  /** KL(P_full ‖ P_quant) per position, nats. */
  kl: number[];
  mean_kl: number;
  p99_kl: number;
  max_kl: number;
  /** max over every position and vocabulary entry of |logit_full − logit_quant|. */
  max_abs_dlogit: number;
  full_argmax: number[];
  quant_argmax: number[];
}

/**
 * Compares two [positions, vocab] blocks of logits (row-major) from the same inputs: the reference
 * (full precision) and the candidate (quantized).
 */
export function compareLogits(full: ArrayLike<number>, quant: ArrayLike<number>, vocab: number): LogitComparison {
  if (full.length !== quant.length) throw new Error(`compareLogits: ${full.length} vs ${quant.length} logits`);
  if (full.length % vocab !== 0) throw new Error(`compareLogits: ${full.length} logits is not a multiple of vocab ${vocab}`);
  const positions = full.length / vocab;
  const kl: number[] = [];
  const fullArgmax: number[] = [];
  const quantArgmax: number[] = [];
  let maxAbs = 0;
  for (let p = 0; p < positions; p++) {
    const o = p * vocab;
    kl.push(klFromLogProbs(logSoftmax(full, o, vocab), logSoftmax(quant, o, vocab)));
    fullArgmax.push(argmax(full, o, vocab));
    quantArgmax.push(argmax(quant, o, vocab));
    for (let i = 0; i < vocab; i++) maxAbs = Math.max(maxAbs, Math.abs(full[o + i]! - quant[o + i]!));
  }
  const agree = agreementCount(fullArgmax, quantArgmax);
  return {
    positions,
    agree,
    agreement: positions === 0 ? 0 : agree / positions,
    kl,
    mean_kl: kl.reduce((a, b) => a + b, 0) / Math.max(1, positions),
    p99_kl: quantile(kl, 0.99),
    max_kl: kl.reduce((a, b) => Math.max(a, b), 0),
    max_abs_dlogit: maxAbs,
    full_argmax: fullArgmax,
    quant_argmax: quantArgmax,
  };
}

/** How many items' answers are exactly the same string, and their share. */
export function sameAnswers(reference: readonly string[], candidate: readonly string[]): { same: number; total: number; fraction: number } {
  if (reference.length !== candidate.length) throw new Error(`sameAnswers: ${reference.length} vs ${candidate.length} answers`);
  const same = reference.filter((r, i) => r === candidate[i]).length;
  return { same, total: reference.length, fraction: reference.length === 0 ? 0 : same / reference.length };
}
