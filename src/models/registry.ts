// config.json → architecture. One row per architecture: what it is called in config.json, how it
// loads, how its processor turns images into tokens, and which of its weights are the projector
// (`tfvlm train --trainable projector`). Adding an architecture = its folder + one row here.
import { TfvlmError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { SAME_NAMES, type MlxNaming } from './checkpoint-layout.ts';
import { parseIdefics3Config } from './idefics3/config.ts';
import { IDEFICS3_MLX_NAMES } from './idefics3/mlx-names.ts';
import { Idefics3Model, idefics3Weights, idefics3WeightSpec } from './idefics3/model.ts';
import { LlamaForCausalLM, llamaCausalLMWeights } from './llama/causal-lm.ts';
import { parseLlamaConfig } from './llama/config.ts';
import { parseLlavaConfig } from './llava/config.ts';
import { llavaMlxNames } from './llava/mlx-names.ts';
import { LlavaModel, llavaKeyLayout, llavaWeights, llavaWeightSpec } from './llava/model.ts';
import type { ModelLoadOptions } from './load-options.ts';
import { readConfigJson } from './read-config.ts';
import { weightSpec, type WeightSource, type WeightSpec } from './weights.ts';

/** Any model loadModel returns; narrow with instanceof. */
export type LoadedModel = Idefics3Model | LlavaModel | LlamaForCausalLM;

/**
 * How a processor turns images (and videos) into prompt tokens: Idefics3 tiles + image blocks, LLaVA
 * feature tokens, or none (a text-only model).
 */
export type ProcessorFamily = 'idefics3' | 'llava' | 'text';

export interface Architecture {
  /** config.json `model_type` values handled. */
  modelTypes: string[];
  /** config.json `architectures` values handled. */
  architectures: string[];
  load: (dir: string, options?: ModelLoadOptions) => Promise<LoadedModel>;
  /** Every checkpoint key and shape a config.json (parsed JSON) implies, in the order transformers saves them. */
  weightSpec: (rawConfig: unknown) => WeightSpec;
  processor: ProcessorFamily;
  /** Checkpoint keys of the vision → text projector. */
  isProjectorKey: (key: string) => boolean;
  /** The build function loadWeights runs for this config and checkpoint (its keys in the checkpoint's layout). */
  weightBuild: (rawConfig: unknown, checkpoint: Checkpoint) => (w: WeightSource) => unknown;
  /** How mlx-vlm names the keys of a checkpoint with this layout. */
  mlxNames: (checkpoint: Checkpoint) => MlxNaming;
  /** Keys mlx-vlm's tree has that a tied transformers checkpoint shares: [source key, copy key] (both transformers names). */
  mlxTiedCopies?: (rawConfig: unknown) => [string, string][];
}

export const REGISTRY: Architecture[] = [
  {
    // SmolVLM2 checkpoints use model_type 'smolvlm' with the same layers (SmolVLMForConditionalGeneration).
    modelTypes: ['idefics3', 'smolvlm'],
    architectures: ['Idefics3ForConditionalGeneration', 'SmolVLMForConditionalGeneration'],
    load: (dir, options) => Idefics3Model.load(dir, options),
    weightSpec: (raw) => idefics3WeightSpec(parseIdefics3Config(raw)),
    processor: 'idefics3',
    isProjectorKey: (key) => key.startsWith('model.connector.'),
    weightBuild: (raw) => {
      const config = parseIdefics3Config(raw);
      return (w) => idefics3Weights(w, config);
    },
    mlxNames: () => IDEFICS3_MLX_NAMES,
    // mlx-vlm's idefics3 language model always has an lm_head.
    mlxTiedCopies: (raw) => (parseIdefics3Config(raw).tie_word_embeddings ? [['model.text_model.embed_tokens.weight', 'lm_head.weight']] : []),
  },
  {
    modelTypes: ['llava'],
    architectures: ['LlavaForConditionalGeneration'],
    load: (dir, options) => LlavaModel.load(dir, options),
    weightSpec: (raw) => llavaWeightSpec(parseLlavaConfig(raw)),
    processor: 'llava',
    isProjectorKey: (key) => key.startsWith('multi_modal_projector.') || key.startsWith('model.multi_modal_projector.'),
    weightBuild: (raw, checkpoint) => {
      const config = parseLlavaConfig(raw);
      const layout = llavaKeyLayout(checkpoint);
      return (w) => llavaWeights(w, config, layout);
    },
    mlxNames: (checkpoint) => llavaMlxNames(llavaKeyLayout(checkpoint)),
  },
  {
    // Text-only Llama checkpoints (SmolLM2, Vicuna, TinyLlama) on the same decoder.
    modelTypes: ['llama'],
    architectures: ['LlamaForCausalLM'],
    load: (dir, options) => LlamaForCausalLM.load(dir, options),
    weightSpec: (raw) => {
      const config = parseLlamaConfig(raw);
      return weightSpec((w) => llamaCausalLMWeights(w, config));
    },
    processor: 'text',
    isProjectorKey: () => false,
    weightBuild: (raw) => {
      const config = parseLlamaConfig(raw);
      return (w) => llamaCausalLMWeights(w, config);
    },
    mlxNames: () => SAME_NAMES,
  },
];

/** Model types tfvlm runs as dual encoders (tasks/dual-encoder.ts), not as generative models. */
const DUAL_ENCODERS = ['clip', 'siglip'];

export function findArchitecture(config: { model_type?: unknown; architectures?: unknown }): Architecture | undefined {
  const archs = Array.isArray(config.architectures) ? (config.architectures as unknown[]) : [];
  return REGISTRY.find((e) => e.modelTypes.includes(String(config.model_type)))
    ?? REGISTRY.find((e) => archs.some((a) => e.architectures.includes(String(a))));
}

/** The architecture of the model folder `dir`, from its config.json; a named error when none matches. */
export function architectureOf(dir: string): Architecture {
  const { raw, path } = readConfigJson(dir);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TfvlmError(`${path}: must be a JSON object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  const config = raw as { model_type?: unknown; architectures?: unknown };
  const entry = findArchitecture(config);
  if (!entry && DUAL_ENCODERS.includes(String(config.model_type))) {
    throw new TfvlmError(
      `${path}: model_type '${String(config.model_type)}' is a dual encoder (image and text embeddings, ranking); ` +
      'it does not generate text: use `tfvlm embed` or `tfvlm retrieve` (DualEncoder, Retriever in the library)',
    );
  }
  if (!entry) {
    const known = REGISTRY.flatMap((e) => e.modelTypes).join(', ');
    throw new TfvlmError(
      `${path}: model_type '${String(config.model_type)}' / architectures ${JSON.stringify(config.architectures)} ` +
      `is not supported (supported model_type: ${known})`,
    );
  }
  return entry;
}

/** Loads the model in `dir` (config.json + safetensors), choosing the architecture from its config. */
export async function loadModel(dir: string, options: ModelLoadOptions = {}): Promise<LoadedModel> {
  return architectureOf(dir).load(dir, options);
}
