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
import type { ParamSlot } from '../models/weights.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';

export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';
export const ADAPTER_CONFIG_NAME = 'adapter_config.json';

/** peft's regex form of target_modules (re.fullmatch on module names): the text model's attention and MLP projections. */
export const DEFAULT_LORA_TARGETS = String.raw`.*text_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))`;

export interface LoraSettings {
  r: number;
  alpha: number;
  /** Regex (full match) over module names, as peft's string target_modules. */
  targetModules: string;
}

interface LoraModule {
  name: string;
  linear: Linear;
  /** [r, in] */
  A: tf.Variable;
  /** [out, r] */
  B: tf.Variable;
}

function peftKey(module: string, which: 'lora_A' | 'lora_B'): string {
  return `base_model.model.${module}.${which}.weight`;
}

export class LoraAdapter {
  private constructor(readonly settings: LoraSettings, readonly modules: LoraModule[]) {}

  get scaling(): number {
    return this.settings.alpha / this.settings.r;
  }

  /** Linear modules of the model whose names fully match the target regex. */
  private static targets(slots: readonly ParamSlot[], targetModules: string): { name: string; linear: Linear }[] {
    const re = new RegExp(`^(?:${targetModules})$`);
    const out = slots
      .filter((s) => s.linear && s.key.endsWith('.weight') && s.layout === 'transposed')
      .map((s) => ({ name: s.key.slice(0, -'.weight'.length), linear: s.linear! }))
      .filter((m) => re.test(m.name));
    if (out.length === 0) throw new TfvlmError(`LoRA: target_modules ${JSON.stringify(targetModules)} matches no Linear of the model`);
    return out;
  }

  /** Fresh adapters (A random from seed, B zero: the adapted model starts equal to the base). */
  static create(slots: readonly ParamSlot[], settings: LoraSettings, seed: number): LoraAdapter {
    if (!Number.isInteger(settings.r) || settings.r <= 0) throw new TfvlmError(`LoRA rank must be a positive integer, got ${settings.r}`);
    const rng = new Rng(seed);
    const modules = LoraAdapter.targets(slots, settings.targetModules).map(({ name, linear }) => {
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
    const configFile = path.join(dir, ADAPTER_CONFIG_NAME);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    } catch (e) {
      throw new TfvlmError(`${configFile}: cannot read adapter config (${(e as Error).message})`);
    }
    if (raw.peft_type !== 'LORA') throw new TfvlmError(`${configFile}: peft_type ${JSON.stringify(raw.peft_type)} is not LORA`);
    const targets = raw.target_modules;
    const targetModules = typeof targets === 'string' ? targets
      : Array.isArray(targets) ? `(.*\\.)?(${targets.map((t) => String(t).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})` : '';
    const settings: LoraSettings = { r: Number(raw.r), alpha: Number(raw.lora_alpha), targetModules };
    const file = SafetensorsFile.open(path.join(dir, ADAPTER_WEIGHTS_NAME));
    try {
      const modules = LoraAdapter.targets(slots, targetModules).map(({ name, linear }) => {
        const read = (which: 'lora_A' | 'lora_B', shape: number[]) => {
          const key = peftKey(name, which);
          if (!file.has(key)) throw new TfvlmError(`${dir}/${ADAPTER_WEIGHTS_NAME}: missing ${key}`);
          const t = file.readTensor(key);
          if (t.shape.join(',') !== shape.join(',')) {
            t.dispose();
            throw new TfvlmError(`${dir}/${ADAPTER_WEIGHTS_NAME}: ${key} is [${t.shape}], expected [${shape}]`);
          }
          const v = tf.variable(t, true);
          t.dispose();
          return v;
        };
        return { name, linear, A: read('lora_A', [settings.r, linear.inFeatures]), B: read('lora_B', [linear.outFeatures, settings.r]) };
      });
      return new LoraAdapter(settings, modules);
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
    return tf.tidy(() => tf.add(base, tf.mul(tf.matMul(m.A, m.B, true, true), this.scaling)) as tf.Tensor2D);
  }

  /**
   * Points every adapted Linear at its adapted weight until the returned function is called.
   * Call inside tf.tidy / variableGrads (the adapted weights are intermediate tensors).
   */
  attach(): () => void {
    const saved = this.modules.map((m) => weightTOf(m.linear, 'LoRA'));
    this.modules.forEach((m, i) => { m.linear.weightT = this.adaptedT(m, saved[i]); });
    return () => this.modules.forEach((m, i) => { m.linear.weightT = saved[i]; });
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
