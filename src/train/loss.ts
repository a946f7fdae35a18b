// Causal LM loss over the supervised positions only (transformers ForCausalLMLoss with labels −100
// outside the assistant tokens): mean over weighted positions of −log p(target).
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

/** logits [B, T, V]; targets/weights [B·T] → scalar mean loss (sum of weights must be > 0). */
export function maskedCrossEntropy(logits: tf.Tensor, targets: Int32Array, weights: Float32Array): tf.Scalar {
  const V = logits.shape[logits.rank - 1]!;
  const N = logits.size / V;
  if (targets.length !== N || weights.length !== N) {
    throw new TfvlmError(`loss: ${N} logit rows but ${targets.length} targets and ${weights.length} weights`);
  }
  let total = 0;
  for (const w of weights) total += w;
  if (total === 0) throw new TfvlmError('loss: the batch has no supervised (assistant) tokens');
  return tf.tidy(() => {
    const logp = tf.logSoftmax(tf.reshape(logits, [N, V])); // [N, V]
    const pick = tf.oneHot(tf.tensor1d(targets, 'int32'), V); // [N, V]
    const nll = tf.neg(tf.sum(tf.mul(logp, pick), 1)); // [N]
    return tf.div(tf.sum(tf.mul(nll, tf.tensor1d(weights))), total) as tf.Scalar;
  });
}

/** Per-example: is the argmax at every supervised position the target (= greedy decoding reproduces it)? */
export function exactUnderTeacherForcing(logits: tf.Tensor, targets: Int32Array, weights: Float32Array, batch: number): boolean[] {
  const V = logits.shape[logits.rank - 1]!;
  const N = logits.size / V;
  const T = N / batch;
  const arg = tf.tidy(() => tf.argMax(tf.reshape(logits, [N, V]), 1));
  const best = arg.dataSync();
  arg.dispose();
  const out: boolean[] = [];
  for (let b = 0; b < batch; b++) {
    let ok = true;
    for (let t = 0; t < T; t++) if (weights[b * T + t] && best[b * T + t] !== targets[b * T + t]) ok = false;
    out.push(ok);
  }
  return out;
}
