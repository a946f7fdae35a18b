// AdamW with decoupled weight decay (torch.optim.AdamW) and global-norm gradient clipping
// (torch.nn.utils.clip_grad_norm_). State lives in tensors keyed by parameter name so it can be
// saved with a checkpoint and restored on resume.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface TrainableParam {
  name: string;
  variable: tf.Variable;
  /** Weight decay applies (matrices yes; biases, norms no — as transformers' Trainer groups them). */
  decay: boolean;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Optimizer steps taken. */
  step = 0;
  private readonly m = new Map<string, tf.Tensor>();
  private readonly v = new Map<string, tf.Tensor>();

  constructor(readonly params: readonly TrainableParam[], opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.0;
    for (const p of params) {
      this.m.set(p.name, tf.zerosLike(p.variable));
      this.v.set(p.name, tf.zerosLike(p.variable));
    }
  }

  /** Applies one update with gradients by parameter name (not disposed here). */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    this.step++;
    const t = this.step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    for (const p of this.params) {
      const g = grads[p.name];
      if (!g) throw new TfvlmError(`optimizer: no gradient for ${p.name}`);
      const [m, v] = tf.tidy(() => [
        tf.add(tf.mul(this.m.get(p.name)!, this.beta1), tf.mul(g, 1 - this.beta1)),
        tf.add(tf.mul(this.v.get(p.name)!, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)),
      ]);
      this.m.get(p.name)!.dispose();
      this.v.get(p.name)!.dispose();
      this.m.set(p.name, m);
      this.v.set(p.name, v);
      tf.tidy(() => {
        const decayed = p.decay && this.weightDecay > 0 ? tf.mul(p.variable, 1 - lr * this.weightDecay) : p.variable;
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), this.eps);
        p.variable.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), lr / bc1)));
      });
    }
  }

  /** State tensors `<name>.exp_avg` / `<name>.exp_avg_sq` (owned by the optimizer). */
  stateTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const p of this.params) {
      out.set(`${p.name}.exp_avg`, this.m.get(p.name)!);
      out.set(`${p.name}.exp_avg_sq`, this.v.get(p.name)!);
    }
    return out;
  }

  /** Restores state saved by stateTensors (takes copies). */
  loadState(step: number, read: (key: string) => tf.Tensor): void {
    for (const p of this.params) {
      for (const [suffix, map] of [['exp_avg', this.m], ['exp_avg_sq', this.v]] as const) {
        const t = read(`${p.name}.${suffix}`);
        if (t.shape.join(',') !== p.variable.shape.join(',')) {
          throw new TfvlmError(`optimizer state ${p.name}.${suffix}: shape [${t.shape}], parameter [${p.variable.shape}]`);
        }
        map.get(p.name)!.dispose();
        map.set(p.name, t);
      }
    }
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** Scales gradients in place so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): number {
  const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))));
  const total = norm.dataSync()[0]!;
  norm.dispose();
  if (maxNorm > 0 && total > maxNorm) {
    const scale = maxNorm / (total + 1e-6);
    for (const [k, old] of Object.entries(grads)) {
      grads[k] = tf.mul(old, scale);
      old.dispose();
    }
  }
  return total;
}
