// The training loop: which tensors train (projector, LoRA adapters or everything), micro-batches
// with gradient accumulation, AdamW + warm-up/cosine schedule + clipping, evaluation, checkpoints
// (HF layout + optimizer state + step) and resume. Data order depends only on (seed, epoch), so a
// resumed run sees the same batches as an uninterrupted one.
import fs from 'node:fs';
import path from 'node:path';
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { Rng } from '../generation/rng.ts';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.ts';
import type { Idefics3Model } from '../models/idefics3/model.ts';
import { collate, disposeBatch, type LossWeighting, type TrainBatch } from './batch.ts';
import { copyModelFiles, writeModelWeights } from './checkpoint-files.ts';
import type { TrainExample } from './examples.ts';
import { installTrainingGradients } from './gradients.ts';
import { DEFAULT_LORA_TARGETS, LoraAdapter } from './lora.ts';
import { exactUnderTeacherForcing, maskedCrossEntropy } from './loss.ts';
import { AdamW, clipByGlobalNorm, type TrainableParam } from './optimizer.ts';
import { fromCheckpointLayout, idefics3Slots, syncTiedHead, withTiedHead, type ParamSlot } from './parameters.ts';
import { cosineWithWarmup } from './schedule.ts';

export type TrainableMode = 'projector' | 'lora' | 'all';

export interface TrainConfig {
  trainable: TrainableMode;
  epochs: number;
  /** Stop after this many optimizer steps (default: epochs × steps per epoch). */
  maxSteps?: number;
  lr: number;
  batchSize: number;
  gradAccum: number;
  seed: number;
  /** Warm-up as a fraction of the total steps (used when warmupSteps is not set). */
  warmupRatio: number;
  warmupSteps?: number;
  weightDecay: number;
  maxGradNorm: number;
  loraRank: number;
  loraAlpha: number;
  loraTargets: string;
  /** Regex over checkpoint keys kept frozen in projector/all mode (e.g. `^model\.vision_model\.`). */
  freeze?: string;
  /** 'token' (default): mean over assistant tokens; 'turn': every assistant turn weighs the same. */
  lossWeighting?: LossWeighting;
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  trainable: 'all', epochs: 1, lr: 1e-3, batchSize: 8, gradAccum: 1, seed: 0, warmupRatio: 0.03, weightDecay: 0.0,
  maxGradNorm: 1.0, loraRank: 8, loraAlpha: 16, loraTargets: DEFAULT_LORA_TARGETS,
};

export const OPTIMIZER_STATE_NAME = 'optimizer.safetensors';
export const TRAINER_STATE_NAME = 'trainer_state.json';

export interface StepResult {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Real tokens in the step's batches, and the sum of their loss weights (assistant tokens, or assistant turns with lossWeighting turn). */
  tokens: number;
  supervised: number;
}

export interface EvalResult {
  loss: number;
  /** Share of examples whose every assistant token is the argmax given the reference prefix. */
  exact: number;
  examples: number;
}

function isProjectorKey(key: string): boolean {
  return key.startsWith('model.connector.');
}

export class Trainer {
  readonly slots: ParamSlot[];
  readonly params: TrainableParam[];
  readonly lora?: LoraAdapter;
  readonly optimizer: AdamW;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  readonly warmupSteps: number;
  private readonly variableToParam = new Map<string, string>();

  constructor(
    readonly model: Idefics3Model,
    readonly baseDir: string,
    readonly train: readonly TrainExample[],
    readonly config: TrainConfig,
    readonly padTokenId: number,
  ) {
    installTrainingGradients();
    const c = config;
    if (!['projector', 'lora', 'all'].includes(c.trainable)) throw new TfvlmError(`--trainable must be projector, lora or all, got '${c.trainable}'`);
    for (const [name, v] of [['batch-size', c.batchSize], ['grad-accum', c.gradAccum]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new TfvlmError(`--${name} must be a positive integer, got ${v}`);
    }
    if (c.lossWeighting !== undefined && !['token', 'turn'].includes(c.lossWeighting)) {
      throw new TfvlmError(`--loss-weighting must be token or turn, got '${String(c.lossWeighting)}'`);
    }
    if (!(c.lr > 0)) throw new TfvlmError(`--lr must be positive, got ${c.lr}`);
    const perStep = c.batchSize * c.gradAccum;
    this.stepsPerEpoch = Math.floor(train.length / perStep);
    if (this.stepsPerEpoch === 0) {
      throw new TfvlmError(`${train.length} training examples do not fill one step of batch-size ${c.batchSize} × grad-accum ${c.gradAccum}`);
    }
    this.totalSteps = c.maxSteps ?? Math.max(1, Math.round(c.epochs * this.stepsPerEpoch));
    this.warmupSteps = c.warmupSteps ?? Math.round(c.warmupRatio * this.totalSteps);
    this.slots = idefics3Slots(model);
    if (c.trainable === 'lora') {
      this.lora = LoraAdapter.create(this.slots, { r: c.loraRank, alpha: c.loraAlpha, targetModules: c.loraTargets }, c.seed);
      this.params = this.lora.variables().map(({ name, variable }) => ({ name, variable, decay: true }));
    } else {
      const frozen = c.freeze ? new RegExp(c.freeze) : undefined;
      this.params = this.slots
        .filter((s) => (c.trainable === 'all' || isProjectorKey(s.key)) && !frozen?.test(s.key))
        .map((s) => {
          const old = s.get();
          const variable = tf.variable(old, true);
          old.dispose();
          s.set(variable);
          return { name: s.key, variable, decay: s.hfShape.length >= 2 };
        });
    }
    for (const p of this.params) this.variableToParam.set(p.variable.name, p.name);
    this.optimizer = new AdamW(this.params, { weightDecay: c.weightDecay });
  }

  get step(): number {
    return this.optimizer.step;
  }

  /** Examples of micro-batch `micro` (0..gradAccum−1) of optimizer step `step`. */
  microBatch(step: number, micro: number): TrainExample[] {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    const order = shuffled(this.train.length, this.config.seed * 1_000_003 + epoch);
    const start = ((step % this.stepsPerEpoch) * this.config.gradAccum + micro) * this.config.batchSize;
    return order.slice(start, start + this.config.batchSize).map((i) => this.train[i]);
  }

  /** `use(logits)` of a batch with the current weights (adapters attached); call inside tidy / variableGrads. */
  private withLogits<T>(batch: TrainBatch, use: (logits: tf.Tensor) => T): T {
    return withTiedHead(this.model, () => {
      const detach = this.lora?.attach();
      try {
        const { logits } = this.model.forward({
          input_ids: batch.input_ids, attention_mask: batch.attention_mask,
          pixel_values: batch.pixel_values, pixel_attention_mask: batch.pixel_attention_mask,
        });
        return use(logits);
      } finally {
        detach?.();
      }
    });
  }

  /** Loss of a batch with the current weights; call inside tidy / variableGrads. */
  private batchLoss(batch: TrainBatch): tf.Scalar {
    return this.withLogits(batch, (logits) => maskedCrossEntropy(logits, batch.targets, batch.weights));
  }

  private collate(examples: readonly TrainExample[]): TrainBatch {
    return collate(examples, this.padTokenId, this.config.lossWeighting ?? 'token');
  }

  /**
   * Loss of `examples` as one batch and its gradient for every trainable parameter (by name), with
   * the current weights; nothing is updated. The caller disposes the gradients.
   */
  gradients(examples: readonly TrainExample[]): { loss: number; grads: Map<string, tf.Tensor> } {
    const batch = this.collate(examples);
    try {
      const { loss, grads } = this.accumulateGradients([batch], () => 1);
      return { loss, grads: new Map(this.params.map((p) => [p.name, grads[p.name]])) };
    } finally {
      disposeBatch(batch);
    }
  }

  /**
   * Σ over batches of share(batch) × the batch's loss, and its gradient for every trainable
   * parameter (by name; zeros where the loss does not depend on it). The caller disposes the gradients.
   */
  private accumulateGradients(batches: readonly TrainBatch[], share: (b: TrainBatch) => number): { loss: number; grads: Record<string, tf.Tensor> } {
    const vars = this.params.map((p) => p.variable);
    const grads: Record<string, tf.Tensor> = {};
    let loss = 0;
    try {
      for (const b of batches) {
        const { value, grads: g } = tf.variableGrads(() => tf.mul(this.batchLoss(b), share(b)) as tf.Scalar, vars);
        loss += value.dataSync()[0];
        value.dispose();
        for (const [varName, t] of Object.entries(g)) {
          const name = this.variableToParam.get(varName)!;
          const prev = grads[name];
          grads[name] = prev ? tf.add(prev, t) : t;
          if (prev) {
            prev.dispose();
            t.dispose();
          }
        }
      }
      for (const p of this.params) if (!grads[p.name]) grads[p.name] = tf.zerosLike(p.variable);
      return { loss, grads };
    } catch (e) {
      tf.dispose(Object.values(grads));
      throw e;
    }
  }

  /** Loss of `examples` as one batch with the current weights. */
  loss(examples: readonly TrainExample[]): number {
    const batch = this.collate(examples);
    try {
      return tf.tidy(() => this.batchLoss(batch).dataSync()[0]);
    } finally {
      disposeBatch(batch);
    }
  }

  /**
   * One optimizer step over gradAccum micro-batches; the loss is the mean over all their supervised tokens.
   * `progress` (0..1) places the step on the schedule instead of step / totalSteps (time-budgeted runs).
   */
  trainStep(progress?: number): StepResult {
    const step = this.step;
    const examples = Array.from({ length: this.config.gradAccum }, (_, k) => this.microBatch(step, k));
    const batches = examples.map((ex) => this.collate(ex));
    const supervised = batches.reduce((n, b) => n + b.supervised, 0);
    const tokens = batches.reduce((n, b) => n + b.tokens, 0);
    let grads: Record<string, tf.Tensor> = {};
    try {
      const { loss, grads: summed } = this.accumulateGradients(batches, (b) => b.supervised / supervised);
      grads = summed;
      const gradNorm = clipByGlobalNorm(grads, this.config.maxGradNorm);
      const at = progress === undefined ? step : Math.max(step, Math.min(1, progress) * this.totalSteps);
      const lr = cosineWithWarmup(at, this.config.lr, this.warmupSteps, this.totalSteps);
      this.optimizer.apply(grads, lr);
      return { step: this.step, loss, lr, gradNorm, tokens, supervised };
    } finally {
      tf.dispose(Object.values(grads));
      batches.forEach(disposeBatch);
    }
  }

  /** Loss and teacher-forced exact match over examples (no gradients). */
  evaluate(examples: readonly TrainExample[], batchSize = this.config.batchSize): EvalResult {
    let weighted = 0;
    let supervised = 0;
    let exact = 0;
    for (let i = 0; i < examples.length; i += batchSize) {
      const b = this.collate(examples.slice(i, i + batchSize));
      try {
        tf.tidy(() => this.withLogits(b, (logits) => {
          weighted += maskedCrossEntropy(logits, b.targets, b.weights).dataSync()[0] * b.supervised;
          supervised += b.supervised;
          exact += exactUnderTeacherForcing(logits, b.targets, b.weights, b.input_ids.shape[0]).filter(Boolean).length;
        }));
      } finally {
        disposeBatch(b);
      }
    }
    return { loss: supervised ? weighted / supervised : NaN, exact: examples.length ? exact / examples.length : 0, examples: examples.length };
  }

  /** A resumable checkpoint: model files + weights (or adapter) + optimizer state + trainer_state.json. */
  saveCheckpoint(dir: string, extra: Record<string, unknown> = {}): void {
    this.saveModel(dir);
    const state = this.optimizer.stateTensors();
    writeSafetensors(path.join(dir, OPTIMIZER_STATE_NAME), state, { format: 'pt' });
    const trainerState = {
      global_step: this.step,
      epoch: this.step / this.stepsPerEpoch,
      max_steps: this.totalSteps,
      trainable: this.config.trainable,
      seed: this.config.seed,
      // The data order is a function of (seed, epoch); the step fixes the position within it.
      rng: { seed: this.config.seed, epoch: Math.floor(this.step / this.stepsPerEpoch), position: this.step % this.stepsPerEpoch },
      config: this.config,
      ...extra,
    };
    fs.writeFileSync(path.join(dir, TRAINER_STATE_NAME), `${JSON.stringify(trainerState, null, 2)}\n`);
  }

  /**
   * The trained model as a Hugging Face folder: full weights for projector/all; for LoRA the PEFT
   * adapter, or (merge) the base weights with the adapter folded in.
   */
  saveModel(dir: string, opts: { merge?: boolean; floatDType?: 'F32' | 'BF16' | 'F16' } = {}): void {
    copyModelFiles(this.baseDir, dir);
    if (this.lora && !opts.merge) {
      this.lora.save(dir, path.resolve(this.baseDir));
      return;
    }
    if (this.lora) {
      const detach = this.lora.attach();
      const adapted = this.lora.modules.map((m) => m.linear.weightT);
      try {
        writeModelWeights(dir, this.slots, opts.floatDType);
      } finally {
        detach();
        tf.dispose(adapted);
      }
      return;
    }
    writeModelWeights(dir, this.slots, opts.floatDType);
  }

  /** Restores trainable weights, optimizer state and step from a checkpoint written by saveCheckpoint. */
  resume(dir: string): void {
    const stateFile = path.join(dir, TRAINER_STATE_NAME);
    let state: { global_step?: unknown; trainable?: unknown };
    try {
      state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    } catch (e) {
      throw new TfvlmError(`${stateFile}: cannot read trainer state (${(e as Error).message})`);
    }
    if (state.trainable !== this.config.trainable) {
      throw new TfvlmError(`${stateFile}: checkpoint trained '${String(state.trainable)}', this run trains '${this.config.trainable}'`);
    }
    const step = Number(state.global_step);
    if (!Number.isInteger(step) || step < 0) throw new TfvlmError(`${stateFile}: global_step must be a non-negative integer`);
    if (this.lora) {
      const loaded = LoraAdapter.load(this.slots, dir);
      try {
        const byName = new Map(loaded.variables().map((v) => [v.name, v.variable]));
        for (const p of this.params) {
          const src = byName.get(p.name);
          if (!src) throw new TfvlmError(`${dir}: adapter has no ${p.name}`);
          p.variable.assign(src);
        }
      } finally {
        loaded.dispose();
      }
    } else {
      const file = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
      try {
        const bySlot = new Map(this.slots.map((s) => [s.key, s]));
        for (const p of this.params) {
          const raw = file.readTensor(p.name);
          const t = fromCheckpointLayout(bySlot.get(p.name)!, raw);
          raw.dispose();
          p.variable.assign(t);
          t.dispose();
        }
      } finally {
        file.close();
      }
    }
    const opt = SafetensorsFile.open(path.join(dir, OPTIMIZER_STATE_NAME));
    try {
      this.optimizer.loadState(step, (key) => {
        if (!opt.has(key)) throw new TfvlmError(`${dir}/${OPTIMIZER_STATE_NAME}: missing ${key}`);
        return opt.readTensor(key);
      });
    } finally {
      opt.close();
    }
  }

  /** After training: the model's own tensors are plain again and a tied head matches embed_tokens. */
  finish(opts: { merge?: boolean } = {}): void {
    if (this.lora && opts.merge) this.lora.merge();
    syncTiedHead(this.model);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.lora?.dispose();
  }
}

/** A permutation of 0..n−1 (Fisher–Yates) determined by seed. */
export function shuffled(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
