// Idefics3 connector (transformers modeling_idefics3.py: Idefics3Connector.pixel_shuffle, Idefics3SimpleMLP):
// pixel shuffle by scale_factor s — only reshapes and transposes, in exactly transformers' order —
// then modality_projection.proj (Linear, no bias) to the text hidden size.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { linear, type Linear } from '../../layers/linear.ts';
import type { Capture } from '../capture.ts';

/** x [N, seq, D] with seq = n² → [N, seq/s², D·s²]. */
export function pixelShuffle(x: tf.Tensor, s: number): tf.Tensor {
  const [N, seq, D] = x.shape as [number, number, number]; // rank checked below
  const side = Math.round(Math.sqrt(seq));
  if (x.rank !== 3 || side * side !== seq || side % s !== 0) {
    throw new TfvlmError(`pixel shuffle: input must be [N, n², D] with n divisible by scale_factor ${s}, got [${x.shape}]`);
  }
  return tf.tidy(() => {
    let y = tf.reshape(x, [N, side, side / s, D * s]); // view(bsz, h, w/s, D·s)
    y = tf.transpose(y, [0, 2, 1, 3]); // [N, w/s, h, D·s]
    y = tf.reshape(y, [N, side / s, side / s, D * s * s]); // [N, w/s, h/s, D·s²]
    y = tf.transpose(y, [0, 2, 1, 3]); // [N, h/s, w/s, D·s²]
    return tf.reshape(y, [N, seq / (s * s), D * s * s]);
  });
}

export interface Idefics3ConnectorWeights {
  /** modality_projection.proj: [vision_hidden·s², text_hidden], no bias. */
  proj: Linear;
}

export function connectorForward(w: Idefics3ConnectorWeights, scaleFactor: number, imageHidden: tf.Tensor, capture?: Capture): tf.Tensor {
  return tf.tidy(() => {
    const shuffled = pixelShuffle(imageHidden, scaleFactor);
    capture?.record('connector.pixel_shuffle', shuffled);
    const out = linear(w.proj, shuffled);
    capture?.record('connector', out);
    return out;
  });
}
