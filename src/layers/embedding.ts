// Token embedding lookup (torch.nn.Embedding): rows of weight [V, hidden] gathered by id.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

/** ids int32 [...] → [..., hidden]. Ids outside [0, V) throw (tfjs would read garbage). */
export function embed(weight: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const vocab = weight.shape[0];
  if (ids.dtype !== 'int32') throw new TfvlmError(`input_ids must be int32, got ${ids.dtype}`);
  const values = ids.dataSync();
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 0 || values[i] >= vocab) {
      throw new TfvlmError(`input_ids: id ${values[i]} at flat index ${i} is outside the vocabulary [0, ${vocab})`);
    }
  }
  return tf.tidy(() => tf.reshape(tf.gather(weight, tf.reshape(ids, [-1])), [...ids.shape, weight.shape[1]]));
}
