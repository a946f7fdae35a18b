// The library's front door: a model folder (or hub id) → model + processor + generation settings,
// and the things users do with it: prepare inputs, generate (streamed or whole), forward with
// activation capture, multi-turn conversations.
import { initBackend } from './backend/index.ts';
import { TfvlmError } from './errors.ts';
import { resolveModel, type HubOptions } from './io/hub/index.ts';
import { host } from './io/host.ts';
import { loadModel, type LoadedModel } from './models/registry.ts';
import { isLoraAdapterFolder, mergeLoraAdapter } from './models/lora-adapter.ts';
import type { WeightsResidence } from './models/weights.ts';
import type { LoadDType } from './models/load-options.ts';
import type { ProgressListener } from './util/progress.ts';
import { VlmProcessor, type ProcessedInputs, type ProcessOptions, type VlmRequest } from './processing/processor.ts';
import { checkCallOptions, type GenerateCallOptions } from './generation/call-options.ts';
import type { Tokenizer } from './tokenizer/index.ts';
import {
  readGenerationConfig, resolveGenerateOptions, type GenerateOverrides, type GenerationConfigJson,
} from './generation/generation-config.ts';
import { streamText, type TextGenerationOptions, type TextGenerationResult } from './generation/text-stream.ts';
import { Conversation, type ConversationOptions } from './generation/conversation.ts';

export type { VlmRequest, GenerateCallOptions };

/** Where to find the model (hub options for `org/name` ids) and how to load it. */
export interface VlmLoadOptions extends HubOptions {
  /** 'stored' (default): weights in their checkpoint precision outside the tfjs heap; 'float32': widened tfjs tensors. */
  weights?: WeightsResidence;
  /** 'q8' / 'q4': quantize the language model's matrices while loading (MLX's affine format); 'auto' (default): as stored. */
  dtype?: LoadDType;
  /** Group size when quantizing at load: 32, 64 (default) or 128. */
  groupSize?: number;
  /** Receives 'load' progress (bytes of weights read). */
  onLoadProgress?: ProgressListener;
  /**
   * A LoRA adapter folder in peft's format (what `tfvlm train --trainable lora` saves), merged into
   * the weights at load: W + (lora_alpha / r)·B·A. Needs float32 weights (it implies weights 'float32').
   */
  adapter?: string;
}

export interface GenerationOutput extends TextGenerationResult {
  prompt: string;
  input_ids: number[];
}

/** The result of a call aborted before generation began. */
function abortedOutput(prompt: string, inputIds: number[]): GenerationOutput {
  return {
    text: '', generatedIds: [], stopReason: 'aborted', prompt, input_ids: inputIds,
    timings: { embedMs: 0, prefillMs: 0, prefillTokens: 0, decodeMs: 0, decodeTokens: 0 },
  };
}

/** The demo model shipped in the package (weights/tfvlm-demo): what Vlm.load() and the CLI use by default. */
export const DEMO_MODEL_DIR = host().fromUrl(new URL('../weights/tfvlm-demo/', import.meta.url));

/**
 * What Vlm.stream does around its token loop, for any loop (Vlm's own, a ContinuousBatcher's): checks
 * the options, resolves the generation settings, prepares the request (media loading stops on the
 * signal), then streams the text the loop `run` gives for the prepared inputs.
 */
export async function* streamRequest(
  vlm: Vlm,
  request: VlmRequest,
  options: GenerateCallOptions,
  run: (inputs: ProcessedInputs, loopOptions: TextGenerationOptions) => AsyncGenerator<string, TextGenerationResult>,
): AsyncGenerator<string, GenerationOutput> {
  checkCallOptions(options);
  const gen = vlm.generateOptions(options);
  const { signal } = options;
  if (signal?.aborted) return abortedOutput('', []);
  let inputs: ProcessedInputs;
  try {
    inputs = await vlm.prepare(request, options);
  } catch (e) {
    if (signal?.aborted) return abortedOutput('', []);
    throw e;
  }
  const result = yield* run(inputs, {
    ...gen,
    signal,
    onLogits: options.onLogits,
    decodeThreads: options.decodeThreads,
    onProgress: options.onProgress,
    padTokenId: vlm.generationConfig.pad_token_id ?? vlm.tokenizer.padTokenId ?? undefined,
  });
  // One request: one prompt row (the loop has generated from it).
  return { ...result, prompt: inputs.prompts[0]!, input_ids: inputs.input_ids[0]! };
}

export class Vlm {
  private constructor(
    readonly dir: string,
    readonly model: LoadedModel,
    readonly processor: VlmProcessor,
    readonly generationConfig: GenerationConfigJson,
    /** Milliseconds spent loading weights, tokenizer and processor. */
    readonly loadMs: number,
  ) {}

  /**
   * Loads a model folder, or a hub id (`org/name[@revision]`) through the Hugging Face cache; with no
   * spec, the shipped demo model (DEMO_MODEL_DIR).
   */
  static async load(spec: string = DEMO_MODEL_DIR, options: VlmLoadOptions = {}): Promise<Vlm> {
    const h = host();
    if (spec === DEMO_MODEL_DIR && h.name === 'node' && !h.exists(h.join(DEMO_MODEL_DIR, 'config.json'))) {
      throw new TfvlmError(`Vlm.load(): no model given and the demo model is not at ${DEMO_MODEL_DIR}; pass a model folder or hub id`);
    }
    await initBackend();
    const t0 = performance.now();
    const { weights, dtype, groupSize, onLoadProgress, adapter, ...hub } = options;
    if (adapter !== undefined && (weights === 'stored' || (dtype !== undefined && dtype !== 'auto'))) {
      const given = weights === 'stored' ? '--weights stored' : `--dtype ${dtype}`;
      throw new TfvlmError(`an adapter is merged into float32 weights; ${given} does not go with --adapter (merge it once with \`tfvlm train --merge\` to quantize the result)`);
    }
    const dir = await resolveModel(spec, hub);
    const hasWeights = ['model.safetensors', 'model.safetensors.index.json'].some((f) => h.exists(h.join(dir, f)));
    if (isLoraAdapterFolder(dir) && !hasWeights) {
      throw new TfvlmError(`${dir} is a LoRA adapter, not a model: load its base model with --adapter ${dir} (Vlm.load(base, { adapter }))`);
    }
    if (!h.exists(h.join(dir, 'config.json'))) throw new TfvlmError(`${dir}: no config.json (not a model folder)`);
    if (adapter !== undefined && !isLoraAdapterFolder(adapter)) throw new TfvlmError(`--adapter ${adapter}: no adapter_config.json (not a LoRA adapter folder)`);
    // The weights are disposed if anything after them fails (tokenizer, processor files).
    const generationConfig = readGenerationConfig(dir);
    const model = await loadModel(dir, { weights: adapter !== undefined ? 'float32' : weights, dtype, groupSize, onProgress: onLoadProgress });
    try {
      if (adapter !== undefined) mergeLoraAdapter(model.slots, adapter);
      const processor = await VlmProcessor.load(dir);
      return new Vlm(dir, model, processor, generationConfig, performance.now() - t0);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  get tokenizer(): Tokenizer {
    return this.processor.tokenizer;
  }

  /** Request → model inputs (rendered prompt, ids, pixels) exactly as transformers' processor makes them. */
  prepare(request: VlmRequest, options: ProcessOptions = {}): Promise<ProcessedInputs> {
    return this.processor.fromRequest(request, options);
  }

  /** Resolved sampling/stopping settings: defaults ← generation_config.json ← overrides. */
  generateOptions(overrides: GenerateOverrides = {}) {
    const extraEos = [this.tokenizer.eosTokenId, this.tokenizer.tokenToId('<end_of_utterance>')]
      .filter((id): id is number => typeof id === 'number');
    return resolveGenerateOptions(this.generationConfig, overrides, extraEos);
  }

  /**
   * Streams the answer as text deltas; the iterator's return value is the whole result. Leaving the
   * loop early frees everything; `options.signal` ends it cleanly with stopReason `aborted`.
   */
  stream(request: VlmRequest, options: GenerateCallOptions = {}): AsyncGenerator<string, GenerationOutput> {
    return streamRequest(this, request, options, (inputs, loopOptions) => streamText(this.model, this.tokenizer, inputs, loopOptions));
  }

  /** The whole answer at once. */
  async generate(request: VlmRequest, options: GenerateCallOptions = {}): Promise<GenerationOutput> {
    const it = this.stream(request, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** A multi-turn chat that keeps the KV cache of earlier turns and prefills only the new turn. */
  conversation(options: ConversationOptions = {}): Conversation {
    return new Conversation(this, options);
  }

  dispose(): void {
    this.model.dispose();
  }
}
