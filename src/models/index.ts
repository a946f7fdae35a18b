export { loadModel, architectureOf, findArchitecture, REGISTRY, type Architecture, type LoadedModel, type ProcessorFamily } from './registry.ts';
export {
  DecoderModel, type GenerativeModel, type PromptTensors, type ModelInputs, type ForwardOptions, type LoadedParts,
} from './decoder-model.ts';
export { resolveResidence, LOAD_DTYPES, DEFAULT_GROUP_SIZE, type ModelLoadOptions, type LoadDType } from './load-options.ts';
export { quantizeCheckpoint, type QuantizeCheckpointOptions, type QuantizedCheckpoint } from './quantize-checkpoint.ts';
export { checkModelFits, checkPromptFits, kvCacheBytes } from './fit.ts';
export { LlamaForCausalLM, llamaCausalLMWeights } from './llama/causal-lm.ts';
export { writeRandomCheckpoint, randomTensors, lazyRandomTensors, type RandomCheckpointOptions } from './random-weights.ts';
export { Capture } from './capture.ts';
export {
  weightSpec, checkpointTensors, toCheckpointLayout, fromCheckpointLayout, disposeTree,
  type WeightSource, type WeightSpec, type ParamSlot, type SlotLayout, type WeightsResidence, type MatrixKey, type MatrixKind,
} from './weights.ts';
export { loadWeights, checkCheckpoint, residentBytes, type LoadWeightsOptions, type LoadedWeights } from './load-weights.ts';
export { parseIdefics3Config, IDEFICS3_VISION_DEFAULTS, type Idefics3Config } from './idefics3/config.ts';
export { Idefics3Model, idefics3Weights, idefics3WeightSpec } from './idefics3/model.ts';
export { Idefics3VisionTransformer, visionPositionIds, patchMaskFromPixels } from './idefics3/vision.ts';
export { pixelShuffle, connectorForward, type Idefics3ConnectorWeights } from './idefics3/connector.ts';
export { parseLlamaConfig, type LlamaConfig } from './llama/config.ts';
export { LlamaDecoder, decoderLayer, llamaWeights, type DecoderInputs, type DecoderOptions } from './llama/model.ts';
export { parseSiglipVisionConfig, SIGLIP_VISION_DEFAULTS, type SiglipVisionConfig } from './siglip/config.ts';
export {
  siglipVisionWeights, patchEmbed, siglipEncoderLayer, siglipEncode, encoderLayersWeights, runEncoderLayers,
  type SiglipVisionWeights, type SiglipEncoderLayer, type EncoderDims, type EncoderRunOptions,
} from './siglip/encoder.ts';
export { mergeImageFeatures } from './image-merge.ts';
export {
  parseCLIPConfig, parseCLIPTextConfig, parseCLIPVisionConfig, CLIP_VISION_DEFAULTS,
  type CLIPConfig, type CLIPTextConfig, type CLIPVisionConfig,
} from './clip/config.ts';
export {
  CLIPVisionTransformer, clipVisionWeights, projectAndNormalize, type CLIPVisionWeights, type CLIPVisionRun,
} from './clip/vision.ts';
export { CLIPImageEncoder } from './clip-image-encoder.ts';
export { parseLlavaConfig, type LlavaConfig, type VisionFeatureSelectStrategy } from './llava/config.ts';
export {
  LlavaModel, llavaWeights, llavaWeightSpec, llavaKeyLayout, LLAVA_HF_LAYOUT, LLAVA_NEW_LAYOUT,
  type LlavaKeyLayout, type LlavaProjectorWeights,
} from './llava/model.ts';
export {
  forwardDump, forwardToDump, readModelInputs, parseCaptureList, MODEL_INPUT_NAMES,
  type ForwardDumpOptions, type ForwardDumpResult, type ModelInputTensors,
} from './forward-dump.ts';
