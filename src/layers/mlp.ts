// Feed-forward blocks: Llama's gated MLP down(act(gate(x)) · up(x)) (modeling_llama.py LlamaMLP)
// and the plain fc1 → act → fc2 MLP (modeling_siglip.py SiglipMLP, CLIP).
import { tf } from '../backend/index.ts';
import { linear, type Linear } from './linear.ts';
import { silu, type Activation } from './activations.ts';
import { fusesElementwise, siluMulFused } from '../backend/fused-kernels.ts';

export interface GatedMLP {
  gate: Linear;
  up: Linear;
  down: Linear;
  act: Activation;
}

export function gatedMlp(m: GatedMLP, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const gate = linear(m.gate, x);
    const up = linear(m.up, x);
    const h = m.act === silu && fusesElementwise(gate) ? siluMulFused(gate, up) : tf.mul(m.act(gate), up);
    return linear(m.down, h);
  });
}

export interface MLP {
  fc1: Linear;
  fc2: Linear;
  act: Activation;
}

export function mlp(m: MLP, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => linear(m.fc2, m.act(linear(m.fc1, x))));
}
