// Logits processing for sampling, in the order transformers applies it (generation/utils.py
// _get_logits_processor: repetition penalty first, then temperature → top-k → top-p → min-p).
// Each function edits a Float32Array of one row's logits in place; removed tokens become -Infinity.
// Semantics follow transformers generation/logits_process.py.

/** RepetitionPenaltyLogitsProcessor: every token already in the sequence (prompt + generated). */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= logits.length) continue;
    const s = logits[id]!;
    logits[id] = s < 0 ? s * penalty : s / penalty;
  }
}

export function applyTemperature(logits: Float32Array, temperature: number): void {
  if (temperature === 1) return;
  for (let i = 0; i < logits.length; i++) logits[i]! /= temperature;
}

/** TopKLogitsWarper: keep the k largest (ties with the k-th kept, as `scores < topk[..., -1]`). */
export function applyTopK(logits: Float32Array, k: number): void {
  if (k <= 0 || k >= logits.length) return;
  const kth = sortedDescending(logits)[k - 1]!; // 0 < k < length
  for (let i = 0; i < logits.length; i++) if (logits[i]! < kth) logits[i] = -Infinity;
}

/**
 * TopPLogitsWarper: sort ascending, drop the tokens whose cumulative probability is ≤ 1 − top_p,
 * always keeping the most likely one.
 */
export function applyTopP(logits: Float32Array, topP: number): void {
  if (topP >= 1) return;
  const probs = softmax(logits);
  const order = Array.from(probs.keys()).sort((a, b) => probs[a]! - probs[b]!);
  let cumulative = 0;
  for (let r = 0; r < order.length - 1; r++) {
    const id = order[r]!;
    cumulative += probs[id]!;
    if (cumulative <= 1 - topP) logits[id] = -Infinity;
    else break;
  }
}

/** MinPLogitsWarper: drop tokens whose probability is below min_p × the top probability. */
export function applyMinP(logits: Float32Array, minP: number): void {
  if (minP <= 0) return;
  const probs = softmax(logits);
  let top = 0;
  for (const p of probs) top = Math.max(top, p);
  const threshold = minP * top;
  for (let i = 0; i < logits.length; i++) if (probs[i]! < threshold) logits[i] = -Infinity;
}

export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = logits[i] === -Infinity ? 0 : Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function sortedDescending(logits: Float32Array): Float32Array {
  return Float32Array.from(logits).sort().reverse();
}
