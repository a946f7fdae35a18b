// The training loop over a TrainableModel (projector, LoRA adapters or everything): micro-batches
// with gradient accumulation, optionally split with data-parallel gradient workers, AdamW +
// warm-up/cosine schedule + clipping, evaluation, checkpoints (HF layout + optimizer state + step)
// and resume. Data order depends only on (seed, epoch), so a
// resumed run sees the same batches as an uninterrupted one.
import fs from 'node:fs';
import path from 'node:path';
import { tf, withComputeThreads } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { Rng } from '../util/rng.ts';
import { sweepStaleTemporaries, writeFolderAtomic } from '../io/atomic-write.ts';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.ts';
import type { Idefics3Model } from '../models/idefics3/model.ts';
import { checkAttentionTargets, type AttentionSupervision } from './attention-supervision.ts';
import { collate, disposeBatch, lossWeights, type LossWeighting, type TrainBatch } from './batch.ts';
import type { GradientWorkers } from './gradient-workers.ts';
import { copyModelFiles, writeModelWeights } from './checkpoint-files.ts';
import type { TrainExample } from './examples.ts';
import { installTrainingGradients } from './gradients.ts';
import { DEFAULT_LORA_TARGETS, LoraAdapter } from './lora.ts';
import { exactUnderTeacherForcing, maskedCrossEntropy } from './loss.ts';
import { AdamW, clipByGlobalNorm, type TrainableParam } from './optimizer.ts';
import { fromCheckpointLayout, type ParamSlot } from '../models/weights.ts';
import { syncTiedHead } from './parameters.ts';
import { cosineWithWarmup } from './schedule.ts';
import { TrainableModel, type TrainableMode } from './trainable-model.ts';

export type { TrainableMode };

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
  /** Batch examples of similar length together (less padding), as transformers' group_by_length. */
  groupByLength?: boolean;
  /**
   * Teach one text layer's heads where to look: examples' attentionTargets add weight × −log(attention
   * mass on the target keys) to the objective (attention-supervision.ts). The reported training loss
   * is then that objective; eval loss stays the language-model loss.
   */
  attentionSupervision?: AttentionSupervision;
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

export class Trainer {
  /** The model's trainable tensors, loss and gradients. */
  readonly trainableModel: TrainableModel;
  readonly optimizer: AdamW;
  private workers?: GradientWorkers;
  private orderCache?: { epoch: number; order: number[] };
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  readonly warmupSteps: number;

  constructor(
    readonly model: Idefics3Model,
    readonly baseDir: string,
    readonly train: readonly TrainExample[],
    readonly config: TrainConfig,
    readonly padTokenId: number,
  ) {
    installTrainingGradients();
    const c = config;
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
    if (c.attentionSupervision) {
      train.forEach((e, i) => e.attentionTargets && checkAttentionTargets(e.attentionTargets, e.input_ids.length, `training example ${i + 1}`));
    }
    this.trainableModel = new TrainableModel(model, c);
    this.optimizer = new AdamW(this.params, { weightDecay: c.weightDecay });
  }

  get slots(): ParamSlot[] {
    return this.trainableModel.slots;
  }

  get params(): TrainableParam[] {
    return this.trainableModel.params;
  }

  get lora(): LoraAdapter | undefined {
    return this.trainableModel.lora;
  }

  get step(): number {
    return this.optimizer.step;
  }

  /** Examples of micro-batch `micro` (0..gradAccum−1) of optimizer step `step`. */
  microBatch(step: number, micro: number): TrainExample[] {
    const order = this.epochOrder(Math.floor(step / this.stepsPerEpoch));
    const start = ((step % this.stepsPerEpoch) * this.config.gradAccum + micro) * this.config.batchSize;
    return order.slice(start, start + this.config.batchSize).map((i) => this.train[i]!); // order: a permutation of train's indices
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
      if (batch.supervised === 0) throw new TfvlmError('gradients: the examples have no assistant tokens to learn');
      const { loss, grads } = this.trainableModel.accumulateGradients([batch], { supervised: batch.supervised, attentionRows: batch.attentionRows });
      return { loss, grads: new Map(this.params.map((p) => [p.name, grads[p.name]!])) }; // one gradient per param
    } finally {
      disposeBatch(batch);
    }
  }

  /** Loss of `examples` as one batch with the current weights. */
  loss(examples: readonly TrainExample[]): number {
    const batch = this.collate(examples);
    try {
      return tf.tidy(() => this.trainableModel.batchLoss(batch).dataSync()[0]!);
    } finally {
      disposeBatch(batch);
    }
  }

  /**
   * The example order of an epoch: a seeded shuffle; with groupByLength, each run of 50 steps'
   * examples is then sorted longest first, so a batch holds similar lengths and little padding
   * (transformers' LengthGroupedSampler, megabatches of 50 batches).
   */
  private epochOrder(epoch: number): number[] {
    if (this.orderCache?.epoch === epoch) return this.orderCache.order;
    const order = shuffled(this.train.length, this.config.seed * 1_000_003 + epoch);
    if (this.config.groupByLength) {
      const mega = 50 * this.config.batchSize * this.config.gradAccum;
      for (let i = 0; i < order.length; i += mega) {
        const chunk = order.slice(i, i + mega).sort((a, b) => this.train[b]!.input_ids.length - this.train[a]!.input_ids.length);
        order.splice(i, chunk.length, ...chunk);
      }
    }
    this.orderCache = { epoch, order };
    return order;
  }

  /** Spread each step's examples over these workers too (see trainStepAsync); the caller closes them. */
  attachWorkers(workers: GradientWorkers | undefined): void {
    this.workers = workers;
  }

  private stepExamples(step: number): TrainExample[][] {
    return Array.from({ length: this.config.gradAccum }, (_, k) => this.microBatch(step, k));
  }

  /**
   * One optimizer step over gradAccum micro-batches; the loss is the mean over all their supervised tokens.
   * `progress` (0..1) places the step on the schedule instead of step / totalSteps (time-budgeted runs).
   */
  trainStep(progress?: number): StepResult {
    const step = this.step;
    const batches = this.stepExamples(step).map((ex) => this.collate(ex));
    const supervised = batches.reduce((n, b) => n + b.supervised, 0);
    const tokens = batches.reduce((n, b) => n + b.tokens, 0);
    try {
      if (supervised === 0) throw new TfvlmError(`step ${step}: its examples have no assistant tokens to learn`);
      const totals = { supervised, attentionRows: batches.reduce((n, b) => n + b.attentionRows, 0) };
      const { loss, grads } = this.trainableModel.accumulateGradients(batches, totals);
      return this.applyGradients(step, progress, loss, grads, tokens, supervised);
    } finally {
      batches.forEach(disposeBatch);
    }
  }

  /**
   * The same step as trainStep, with each micro-batch split between this thread (computing on one
   * thread) and the attached gradient workers; without workers, trainStep itself.
   */
  async trainStepAsync(progress?: number): Promise<StepResult> {
    const workers = this.workers;
    if (!workers) return this.trainStep(progress);
    const step = this.step;
    const weighting = this.config.lossWeighting ?? 'token';
    const micro = this.stepExamples(step);
    const all = micro.flat();
    const supervised = all.reduce((n, e) => n + lossWeights(e, weighting).supervised, 0);
    const tokens = all.reduce((n, e) => n + e.input_ids.length, 0);
    if (supervised === 0) throw new TfvlmError(`step ${step}: its examples have no assistant tokens to learn`);
    // shards[0] is this thread's, shards[i] worker i−1's: a contiguous slice of every micro-batch.
    const shards: TrainExample[][][] = Array.from({ length: workers.size + 1 }, () => []);
    for (const examples of micro) {
      splitEvenly(examples, shards.length).forEach((part, i) => {
        if (part.length > 0) shards[i]!.push(part); // splitEvenly: shards.length parts
      });
    }
    const totals = { supervised, attentionRows: all.reduce((n, e) => n + (e.attentionTargets?.length ?? 0), 0) };
    const remote = workers.compute(this.trainableModel.values(), shards.slice(1), totals);
    remote.catch(() => undefined); // awaited below; this keeps an early local failure from leaving it unhandled
    const batches = shards[0]!.map((ex) => this.collate(ex));
    try {
      const own = withComputeThreads(1, () => this.trainableModel.accumulateGradients(batches, totals));
      let loss = own.loss;
      try {
        for (const r of await remote) {
          loss += r.loss;
          for (const [name, values] of Object.entries(r.grads)) {
            const prev = own.grads[name];
            if (!prev) throw new TfvlmError(`step ${step}: a gradient worker returned a gradient for unknown parameter ${name}`);
            own.grads[name] = tf.tidy(() => tf.add(prev, tf.tensor(values, prev.shape, 'float32')));
            prev.dispose();
          }
        }
      } catch (e) {
        tf.dispose(Object.values(own.grads));
        throw e;
      }
      return this.applyGradients(step, progress, loss, own.grads, tokens, supervised);
    } finally {
      batches.forEach(disposeBatch);
    }
  }

  /** Clips, schedules and applies the step's summed gradients (disposing them). */
  private applyGradients(
    step: number, progress: number | undefined, loss: number, grads: Record<string, tf.Tensor>, tokens: number, supervised: number,
  ): StepResult {
    try {
      const gradNorm = clipByGlobalNorm(grads, this.config.maxGradNorm);
      const at = progress === undefined ? step : Math.max(step, Math.min(1, progress) * this.totalSteps);
      const lr = cosineWithWarmup(at, this.config.lr, this.warmupSteps, this.totalSteps);
      this.optimizer.apply(grads, lr);
      return { step: this.step, loss, lr, gradNorm, tokens, supervised };
    } finally {
      tf.dispose(Object.values(grads));
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
        tf.tidy(() => this.trainableModel.withLogits(b, (logits) => {
          weighted += maskedCrossEntropy(logits, b.targets, b.weights).dataSync()[0]! * b.supervised;
          supervised += b.supervised;
          exact += exactUnderTeacherForcing(logits, b.targets, b.weights, b.input_ids.shape[0]).filter(Boolean).length;
        }));
      } finally {
        disposeBatch(b);
      }
    }
    return { loss: supervised ? weighted / supervised : NaN, exact: examples.length ? exact / examples.length : 0, examples: examples.length };
  }

  /**
   * A resumable checkpoint: model files + weights (or adapter) + optimizer state + trainer_state.json,
   * written into a temporary folder, fsynced and renamed to `dir`, so `dir` is complete or absent.
   */
  saveCheckpoint(dir: string, extra: Record<string, unknown> = {}): void {
    sweepStaleTemporaries(path.dirname(path.resolve(dir)));
    writeFolderAtomic(dir, (tmp) => {
      this.saveModel(tmp);
      writeSafetensors(path.join(tmp, OPTIMIZER_STATE_NAME), this.optimizer.stateTensors(), { format: 'pt' });
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
      fs.writeFileSync(path.join(tmp, TRAINER_STATE_NAME), `${JSON.stringify(trainerState, null, 2)}\n`);
    });
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

/** `items` in `parts` contiguous slices whose lengths differ by at most one (earlier ones longer). */
export function splitEvenly<T>(items: readonly T[], parts: number): T[][] {
  const base = Math.floor(items.length / parts);
  const extra = items.length % parts;
  const out: T[][] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const n = base + (i < extra ? 1 : 0);
    out.push(items.slice(start, start + n));
    start += n;
  }
  return out;
}

/** A permutation of 0..n−1 (Fisher–Yates) determined by seed. */
export function shuffled(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
