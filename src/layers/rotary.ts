// Rotary position embeddings, Llama layout (transformers modeling_llama.py: rotate_half,
// apply_rotary_pos_emb; modeling_rope_utils.py: default and linear rope parameters).
// cos/sin are computed on the host in the float32 steps torch uses:
// inv_freq = 1 / θ^(2i/d) (f32), freqs = inv_freq · position (f32), emb = [freqs, freqs].
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

export interface RopeScaling {
  type?: string;
  rope_type?: string;
  factor?: number;
  [k: string]: unknown;
}

export interface RotaryConfig {
  /** Rotated dims per head (head_dim · partial_rotary_factor); must be even. */
  dim: number;
  rope_theta: number;
  rope_scaling?: RopeScaling | null;
}

const f32 = Math.fround;

/** Validates rope_scaling and returns the linear factor (1 when none). */
export function ropeScalingFactor(scaling: RopeScaling | null | undefined, field = 'rope_scaling'): number {
  if (scaling === null || scaling === undefined) return 1;
  const kind = scaling.rope_type ?? scaling.type;
  if (kind === 'default') return 1;
  if (kind !== 'linear') {
    throw new TfvlmError(
      `${field}: rope type '${String(kind)}' is not supported (supported: null, {"type"|"rope_type": "linear", "factor": f})`,
    );
  }
  const factor = scaling.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    throw new TfvlmError(`${field}.factor must be a number ≥ 1 for linear scaling, got ${JSON.stringify(factor)}`);
  }
  return factor;
}

/** inv_freq [dim/2] as float32, divided by the linear factor (transformers 4.47 _compute_linear_scaling_rope_parameters). */
export function inverseFrequencies(cfg: RotaryConfig): Float32Array {
  const { dim, rope_theta } = cfg;
  if (!Number.isInteger(dim) || dim <= 0 || dim % 2 !== 0) {
    throw new TfvlmError(`rotary dim must be a positive even integer, got ${dim}`);
  }
  const factor = ropeScalingFactor(cfg.rope_scaling);
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const exponent = f32((2 * i) / dim);
    const inv = f32(1 / f32(Math.pow(rope_theta, exponent)));
    out[i] = factor === 1 ? inv : f32(inv / factor);
  }
  return out;
}

export interface RotaryTables {
  /** [B, 1, T, dim] */
  cos: tf.Tensor4D;
  /** [B, 1, T, dim] */
  sin: tf.Tensor4D;
}

/** cos/sin tables for positions [B][T] (row-major flat array of length B·T). */
export function rotaryTables(invFreq: Float32Array, positions: ArrayLike<number>, batch: number, seqLen: number): RotaryTables {
  if (positions.length !== batch * seqLen) {
    throw new TfvlmError(`rotary positions: expected ${batch}×${seqLen} values, got ${positions.length}`);
  }
  const half = invFreq.length;
  const dim = 2 * half;
  const cos = new Float32Array(batch * seqLen * dim);
  const sin = new Float32Array(batch * seqLen * dim);
  for (let p = 0; p < batch * seqLen; p++) {
    const pos = f32(positions[p]!);
    for (let i = 0; i < half; i++) {
      const angle = f32(invFreq[i]! * pos);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * dim + i] = c;
      cos[p * dim + half + i] = c;
      sin[p * dim + i] = s;
      sin[p * dim + half + i] = s;
    }
  }
  return {
    cos: tf.tensor4d(cos, [batch, 1, seqLen, dim]),
    sin: tf.tensor4d(sin, [batch, 1, seqLen, dim]),
  };
}

/** [x1, x2] → [−x2, x1] on the last axis. */
export function rotateHalf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [x1, x2] = tf.split(x, 2, x.rank - 1) as [tf.Tensor, tf.Tensor]; // two halves
    return tf.concat([tf.neg(x2), x1], x.rank - 1);
  });
}

/** x [B, H, T, D] · cos + rotate_half(x) · sin, tables [B, 1, T, D]. */
export function applyRotary(x: tf.Tensor, tables: RotaryTables): tf.Tensor {
  return tf.tidy(() => tf.add(tf.mul(x, tables.cos), tf.mul(rotateHalf(x), tables.sin)));
}
