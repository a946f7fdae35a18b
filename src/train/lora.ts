// LoRA adapters (peft tuners/lora/layer.py): W' = W + (alpha / r)·B·A on chosen Linear layers,
// A [r, in] ~ kaiming-uniform(a=√5) = U(−1/√in, 1/√in), B [out, r] = 0. The adapted weight is formed
// inside the forward (the model reads Linear.weightT), so gradients reach A and B only. Saved as peft
// does: adapter_model.safetensors (`base_model.model.<module>.lora_A.weight`) + adapter_config.json.
import fs from 'node:fs';
import path from 'node:path';
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { Rng } from '../util/rng.ts';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.ts';
import { weightTOf, type Linear } from '../layers/linear.ts';
import {
  ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, adaptedWeightT, loraTargets, peftKey, readLoraPair, readLoraSettings, type LoraSettings,
} from '../models/lora-adapter.ts';
import type { ParamSlot } from '../models/weights.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';

export { ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, type LoraSettings };

/** peft's regex form of target_modules (re.fullmatch on module names): the text model's attention and MLP projections. */
export const DEFAULT_LORA_TARGETS = String.raw`.*text_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))`;

interface LoraModule {
  name: string;
  linear: Linear;
  /** [r, in] */
  A: tf.Variable;
  /** [out, r] */
  B: tf.Variable;
}

export class LoraAdapter {
  private constructor(readonly settings: LoraSettings, readonly modules: LoraModule[]) {}

  get scaling(): number {
    return this.settings.alpha / this.settings.r;
  }

  /** Fresh adapters (A random from seed, B zero: the adapted model starts equal to the base). */
  static create(slots: readonly ParamSlot[], settings: LoraSettings, seed: number): LoraAdapter {
    if (!Number.isInteger(settings.r) || settings.r <= 0) throw new TfvlmError(`LoRA rank must be a positive integer, got ${settings.r}`);
    const rng = new Rng(seed);
    const modules = loraTargets(slots, settings.targetModules).map(({ name, linear }) => {
      const bound = 1 / Math.sqrt(linear.inFeatures);
      const a = Float32Array.from({ length: settings.r * linear.inFeatures }, () => (2 * rng.next() - 1) * bound);
      return {
        name, linear,
        A: tf.variable(tf.tensor2d(a, [settings.r, linear.inFeatures]), true),
        B: tf.variable(tf.zeros([linear.outFeatures, settings.r]), true),
      };
    });
    return new LoraAdapter(settings, modules);
  }

  /** Reads adapter_config.json + adapter_model.safetensors for a model's slots. */
  static load(slots: readonly ParamSlot[], dir: string): LoraAdapter {
    const settings = readLoraSettings(dir);
    const file = SafetensorsFile.open(path.join(dir, ADAPTER_WEIGHTS_NAME));
    const modules: LoraModule[] = [];
    try {
      for (const { name, linear } of loraTargets(slots, settings.targetModules)) {
        const { A, B } = readLoraPair(file, dir, name, settings.r, linear);
        modules.push({ name, linear, A: tf.variable(A, true), B: tf.variable(B, true) });
        tf.dispose([A, B]);
      }
      return new LoraAdapter(settings, modules);
    } catch (e) {
      for (const m of modules) tf.dispose([m.A, m.B]);
      throw e;
    } finally {
      file.close();
    }
  }

  /** name → variable, for the optimizer (`<module>.lora_A` / `<module>.lora_B`). */
  variables(): { name: string; variable: tf.Variable }[] {
    return this.modules.flatMap((m) => [
      { name: `${m.name}.lora_A`, variable: m.A },
      { name: `${m.name}.lora_B`, variable: m.B },
    ]);
  }

  /** Wᵀ + s·Aᵀ·Bᵀ = (W + s·B·A)ᵀ, [in, out]. */
  private adaptedT(m: LoraModule, base: tf.Tensor): tf.Tensor2D {
    return adaptedWeightT(base, m.A, m.B, this.scaling);
  }

  /**
   * Points every adapted Linear at its adapted weight until the returned function is called.
   * Call inside tf.tidy / variableGrads (the adapted weights are intermediate tensors).
   */
  attach(): () => void {
    const saved = this.modules.map((m) => ({ m, base: weightTOf(m.linear, 'LoRA') }));
    for (const { m, base } of saved) m.linear.weightT = this.adaptedT(m, base);
    return () => { for (const { m, base } of saved) m.linear.weightT = base; };
  }

  /** Folds the adapters into the base weights for good (peft merge_and_unload); the adapter stays usable for saving. */
  merge(): void {
    for (const m of this.modules) {
      const base = weightTOf(m.linear, 'LoRA');
      const merged = tf.keep(this.adaptedT(m, base));
      base.dispose();
      m.linear.weightT = merged;
    }
  }

  save(dir: string, baseModel = ''): void {
    fs.mkdirSync(dir, { recursive: true });
    const tensors = new Map<string, tf.Tensor>();
    for (const m of this.modules) {
      tensors.set(peftKey(m.name, 'lora_A'), m.A);
      tensors.set(peftKey(m.name, 'lora_B'), m.B);
    }
    writeSafetensors(path.join(dir, ADAPTER_WEIGHTS_NAME), tensors, { format: 'pt' });
    const config = {
      alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: baseModel, bias: 'none', fan_in_fan_out: false,
      inference_mode: true, init_lora_weights: true, layers_pattern: null, layers_to_transform: null, lora_alpha: this.settings.alpha,
      lora_dropout: 0.0, modules_to_save: null, peft_type: 'LORA', r: this.settings.r, rank_pattern: {}, revision: null,
      target_modules: this.settings.targetModules, task_type: null, use_dora: false, use_rslora: false,
    };
    writeFileAtomic(path.join(dir, ADAPTER_CONFIG_NAME), `${JSON.stringify(config, null, 2)}\n`);
  }

  dispose(): void {
    for (const m of this.modules) {
      m.A.dispose();
      m.B.dispose();
    }
  }
}
