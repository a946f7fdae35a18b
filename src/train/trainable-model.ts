// One model seen as a function of its trainable tensors: which tensors train (projector, LoRA
// adapters or everything), the loss of a batch, and its gradients. The Trainer holds one; each
// data-parallel gradient worker holds a replica whose values are copied from it every step.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { Idefics3Model } from '../models/idefics3/model.ts';
import { Capture } from '../models/capture.ts';
import type { TrainBatch } from './batch.ts';
import { attentionSupervisionLoss, checkAttentionSupervision, supervisedAttentionName, type AttentionSupervision } from './attention-supervision.ts';
import { LoraAdapter } from './lora.ts';
import { maskedCrossEntropy } from './loss.ts';
import type { TrainableParam } from './optimizer.ts';
import { findArchitecture } from '../models/registry.ts';
import type { ParamSlot } from '../models/weights.ts';
import { withTiedHead } from './parameters.ts';

export type TrainableMode = 'projector' | 'lora' | 'all';

export interface TrainableSettings {
  trainable: TrainableMode;
  loraRank: number;
  loraAlpha: number;
  loraTargets: string;
  /** Regex over checkpoint keys kept frozen in projector/all mode (e.g. `^model\.vision_model\.`). */
  freeze?: string;
  /** Seeds the LoRA initialisation. */
  seed: number;
  /** Adds the supervised-attention loss of batches with attention targets (attention-supervision.ts). */
  attentionSupervision?: AttentionSupervision;
}

/**
 * The denominators of one optimizer step's objective, over all its batches (and workers): the
 * language-model loss is a mean over `supervised`, the supervised-attention loss over `attentionRows`.
 */
export interface StepTotals {
  supervised: number;
  attentionRows: number;
}

export class TrainableModel {
  readonly slots: ParamSlot[];
  readonly params: TrainableParam[];
  readonly lora?: LoraAdapter;
  private readonly variableToParam = new Map<string, string>();

  private readonly supervision?: AttentionSupervision;

  constructor(readonly model: Idefics3Model, s: TrainableSettings) {
    if (model.residence !== 'float32') {
      throw new TfvlmError("training needs the weights as float32 tfjs tensors (what gradients flow through): load the model with { weights: 'float32' }");
    }
    if (!['projector', 'lora', 'all'].includes(s.trainable)) throw new TfvlmError(`--trainable must be projector, lora or all, got '${s.trainable}'`);
    if (s.attentionSupervision) {
      const t = model.config.text_config;
      checkAttentionSupervision(s.attentionSupervision, t.num_hidden_layers, t.num_attention_heads);
      this.supervision = s.attentionSupervision;
    }
    this.slots = model.slots;
    const isProjectorKey = findArchitecture(model.config)!.isProjectorKey;
    if (s.trainable === 'lora') {
      this.lora = LoraAdapter.create(this.slots, { r: s.loraRank, alpha: s.loraAlpha, targetModules: s.loraTargets }, s.seed);
      this.params = this.lora.variables().map(({ name, variable }) => ({ name, variable, decay: true }));
    } else {
      const frozen = s.freeze ? new RegExp(s.freeze) : undefined;
      this.params = this.slots
        .filter((slot) => (s.trainable === 'all' || isProjectorKey(slot.key)) && !frozen?.test(slot.key))
        .map((slot) => {
          const old = slot.get();
          const variable = tf.variable(old, true);
          old.dispose();
          slot.set(variable);
          return { name: slot.key, variable, decay: slot.hfShape.length >= 2 };
        });
    }
    for (const p of this.params) this.variableToParam.set(p.variable.name, p.name);
  }

  /** `use(logits)` of a batch with the current weights (adapters attached); call inside tidy / variableGrads. */
  withLogits<T>(batch: TrainBatch, use: (logits: tf.Tensor) => T, capture?: Capture): T {
    return withTiedHead(this.model, () => {
      const detach = this.lora?.attach();
      try {
        const { logits } = this.model.forward({
          input_ids: batch.input_ids, attention_mask: batch.attention_mask,
          pixel_values: batch.pixel_values, pixel_attention_mask: batch.pixel_attention_mask,
        }, { capture });
        return use(logits);
      } finally {
        detach?.();
      }
    });
  }

  /**
   * The training objective of a batch with the current weights: the language-model loss, plus with
   * attention supervision weight × the supervised-attention loss of its attention targets. Call
   * inside tidy / variableGrads.
   */
  batchLoss(batch: TrainBatch): tf.Scalar {
    const capture = this.captureFor(batch);
    try {
      return this.batchShare(batch, capture, { supervised: batch.supervised, attentionRows: batch.attentionRows });
    } finally {
      capture?.dispose();
    }
  }

  /** Holds the supervised layer's attention probabilities (when the batch has targets); it must outlive the gradient computation. */
  private captureFor(batch: TrainBatch): Capture | undefined {
    return this.supervision && batch.attentionTargets ? new Capture([supervisedAttentionName(this.supervision)]) : undefined;
  }

  /** The batch's part of a step's objective: each loss summed over the batch and divided by the step's total. */
  private batchShare(batch: TrainBatch, capture: Capture | undefined, totals: StepTotals): tf.Scalar {
    const s = this.supervision;
    return this.withLogits(batch, (logits) => {
      const lm = tf.mul(maskedCrossEntropy(logits, batch.targets, batch.weights), batch.supervised / totals.supervised) as tf.Scalar;
      if (!s || !capture) return lm;
      const aux = attentionSupervisionLoss(capture.get(supervisedAttentionName(s))!, batch.attentionTargets!, s.heads);
      return aux ? tf.add(lm, tf.mul(aux, (s.weight * batch.attentionRows) / totals.attentionRows)) as tf.Scalar : lm;
    }, capture);
  }

  /**
   * The step objective's part from these batches (their shares of `totals`, see batchShare), and its
   * gradient for every trainable parameter (by name; zeros where the loss does not depend on it).
   * The caller disposes the gradients.
   */
  accumulateGradients(batches: readonly TrainBatch[], totals: StepTotals): { loss: number; grads: Record<string, tf.Tensor> } {
    const vars = this.params.map((p) => p.variable);
    const grads: Record<string, tf.Tensor> = {};
    let loss = 0;
    try {
      for (const b of batches) {
        if (b.supervised === 0) continue; // adds nothing, and maskedCrossEntropy refuses a batch without targets
        const capture = this.captureFor(b);
        let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
        try {
          result = tf.variableGrads(() => this.batchShare(b, capture, totals), vars);
        } finally {
          capture?.dispose();
        }
        const { value, grads: g } = result;
        loss += value.dataSync()[0]!;
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

  /**
   * A hash of every frozen tensor's values by checkpoint key. Gradient workers load their frozen
   * weights from the model folder; comparing these catches a model changed in memory since.
   */
  frozenFingerprints(): Record<string, number> {
    const trainable = new Set(this.lora ? [] : this.params.map((p) => p.name));
    const out: Record<string, number> = {};
    for (const slot of this.slots) {
      if (trainable.has(slot.key)) continue;
      out[slot.key] = fingerprint(slot.get().dataSync() as Float32Array); // get() is the model's own tensor
    }
    return out;
  }

  /** The trainable tensors' values by name (copies). */
  values(): Record<string, Float32Array> {
    return Object.fromEntries(this.params.map((p) => [p.name, p.variable.dataSync() as Float32Array]));
  }

  /** Sets every trainable tensor from `values` (as values() returns them), checking names and sizes. */
  setValues(values: Readonly<Record<string, Float32Array>>): void {
    for (const p of this.params) {
      const v = values[p.name];
      if (!v) throw new TfvlmError(`trainable values: no ${p.name}`);
      if (v.length !== p.variable.size) throw new TfvlmError(`trainable values: ${p.name} has ${v.length} values, the tensor [${p.variable.shape}] ${p.variable.size}`);
      const t = tf.tensor(v, p.variable.shape, 'float32');
      p.variable.assign(t);
      t.dispose();
    }
  }
}

/** FNV-1a over the 32-bit words of the values (bit-exact: any changed value changes it, almost surely). */
function fingerprint(values: Float32Array): number {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  return h >>> 0;
}
