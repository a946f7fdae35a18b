// Token embedding lookup (torch.nn.Embedding): rows of weight [V, hidden] gathered by id. The table
// is a float32 tfjs tensor (reference path, training) or the checkpoint's [V, hidden] in its stored
// precision in a kernel arena (weight-store.ts), whose rows are widened as they are read.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { packedRows } from './packed-matmul.ts';
import type { PackedMatrix } from './weight-store.ts';

export interface Embedding {
  /** [V, hidden] float32. */
  table?: tf.Tensor2D;
  /** [V, hidden] in the checkpoint's precision. */
  packed?: PackedMatrix;
  numEmbeddings: number;
  embeddingDim: number;
}

/** ids int32 [...] → [..., hidden]. Ids outside [0, V) throw (tfjs would read garbage). */
export function embed(embedding: Embedding, ids: tf.Tensor): tf.Tensor {
  const vocab = embedding.numEmbeddings;
  if (ids.dtype !== 'int32') throw new TfvlmError(`input_ids must be int32, got ${ids.dtype}`);
  const values = ids.dataSync();
  for (let i = 0; i < values.length; i++) {
    const id = values[i]!;
    if (id < 0 || id >= vocab) {
      throw new TfvlmError(`input_ids: id ${id} at flat index ${i} is outside the vocabulary [0, ${vocab})`);
    }
  }
  const shape = [...ids.shape, embedding.embeddingDim];
  if (embedding.packed) return tf.tensor(packedRows(embedding.packed, values), shape, 'float32');
  const table = embedding.table!;
  return tf.tidy(() => tf.reshape(tf.gather(table, tf.reshape(ids, [-1])), shape));
}
