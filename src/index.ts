// tfvlm's public API. Layers are also importable alone from 'tfvlm/layers'.
export { Vlm, DEMO_MODEL_DIR, type VlmRequest, type VlmLoadOptions, type GenerateCallOptions, type GenerationOutput } from './engine.ts';
export { Conversation, type ConversationOptions } from './generation/conversation.ts';
export { initBackend, backendInfo, activeBackend, tf, type BackendName, type BackendInfo } from './backend/index.ts';
export { TfvlmError } from './errors.ts';

// Models, activation capture, forward dumps
export * from './models/index.ts';

// MLX's affine quantization, and which layers tfvlm quantizes
export { quantizeRows, dequantizeRows, type QuantizeOptions, type QuantizedRows, type MlxQuantization } from './quant/mlx-affine.ts';
export { packCodes, unpackCodes } from './quant/mlx-pack.ts';
export { parseQuantizationConfig, type QuantizationLookup } from './quant/mlx-config.ts';
export { quantizationFor, VISION_BITS } from './quant/recipe.ts';

// Generation building blocks
export { generateTokens, prefillPositions, type PromptBatch, type TokenStep, type GenerationTimings } from './generation/generate.ts';
export { streamText, type TextGenerationOptions, type TextGenerationResult } from './generation/text-stream.ts';
export { sampleToken, GREEDY, type SamplingOptions } from './generation/sampler.ts';
export { Rng } from './util/rng.ts';
export { withProgress, withProgressAsync, reportProgress, type ProgressEvent, type ProgressListener, type ProgressStage } from './util/progress.ts';
export { StopStringMatcher } from './generation/stop-strings.ts';
export { resolveGenerateOptions, readGenerationConfig, type GenerateOptions } from './generation/generation-config.ts';

// Processing: tokenizer, images, prompts
export { VlmProcessor, type ProcessedInputs, type ProcessOptions, type VideoSource } from './processing/processor.ts';
export { loadTokenizer, Tokenizer, createStreamDecoder } from './tokenizer/index.ts';
export { loadImage, type ImageSource, type DecodedImage } from './io/image.ts';
export { resize, Resampling } from './processing/resample.ts';
export { Idefics3ImageProcessor } from './processing/idefics3-image-processor.ts';
export { CLIPImageProcessor } from './processing/clip-image-processor.ts';
export { SiglipImageProcessor } from './processing/siglip-image-processor.ts';
export { loadPreprocessorConfig, createImageProcessor } from './processing/preprocessor-config.ts';
export { parseMessages, readMessagesFile } from './processing/messages.ts';

// I/O: safetensors, hub
export { SafetensorsFile, writeSafetensors, type TensorEntry, type RawTensor } from './io/safetensors.ts';
export { Checkpoint } from './io/checkpoint.ts';
export { writeCheckpointWeights, type WriteCheckpointOptions } from './io/checkpoint-writer.ts';
export { resolveModel, downloadModel, type HubOptions } from './io/hub/index.ts';

// Retrieval (dual encoders and generative), video
export { CLIPModel, l2Normalize, similarityLogits } from './models/clip/model.ts';
export { CLIPTextTransformer, clipEosPositions } from './models/clip/text.ts';
export { SiglipModel, parseSiglipConfig, type SiglipConfig } from './models/siglip/model.ts';
export { SiglipTokenizer, SentencePieceUnigram, parseModelProto } from './tokenizer/sentencepiece-unigram.ts';
export { rank, Retriever, rankOrder, type RankResult, type RetrievalMethod } from './tasks/retrieve.ts';
export { DualEncoder, isDualEncoderFolder, type DualScores, type EmbeddingArray } from './tasks/dual-encoder.ts';
export { GenerativeRanker, type GenerativeScores, type GenerativeRankOptions } from './tasks/generative-rank.ts';
export { loadVideo, sampleFrameIndices, ffmpegAvailable, type SampledVideo, type VideoSampling, type VideoMetadata } from './io/video.ts';
export { captionRequest, questionRequest, videoRequest, userTurn, isVideoInput, DEFAULT_CAPTION_PROMPT, DEFAULT_VIDEO_PROMPT } from './tasks/prompts.ts';
export { SmolVLMVideoProcessor, loadVideoProcessorConfig, parseVideoProcessorConfig, type SmolVLMVideoProcessorConfig } from './processing/smolvlm-video-processor.ts';
export { VideoClip } from './processing/video-clip.ts';

// Continuous batching: many requests' tokens decoded together, each as it would be alone
export { VlmBatcher } from './vlm-batcher.ts';
export { ContinuousBatcher, QueueFullError, BatcherClosedError, type BatcherOptions, type SequenceOptions } from './generation/continuous-batching.ts';

// Serving: the OpenAI-compatible HTTP server (`tfvlm serve`)
export { startServer, SERVE_DEFAULTS, type ServerOptions, type RunningServer, type ServeBatcher } from './serve/http-server.ts';
export { parseChatRequest, type ChatCompletionParams, type ChatRequestOptions } from './serve/chat-request.ts';
export { DEFAULT_IMAGE_POLICY, type ImagePolicy } from './serve/image-url.ts';
export { ApiError } from './serve/api-error.ts';

// Batches: items (JSONL or a folder) → one result line each, resumable (`tfvlm batch`)
export { runBatch, type RunBatchOptions, type BatchSummary } from './batch/run-batch.ts';
export { runItem, itemRequest, resultLine, errorLine, type ItemGenerator, type ItemDefaults, type ResultLine, type ErrorLine } from './batch/item.ts';
export { openInput, inputItems, folderItems, parseItemLine, BatchInputError, type BatchItem, type BatchInput } from './batch/input.ts';
export { planBatch, type BatchPlan, type PlanOptions } from './batch/plan.ts';
export { readResults, dropErrorLines, parseResultLine, ResultsWriter, type ResultsState } from './batch/results-file.ts';
export { parseShard, shardOf, inShard, type Shard } from './batch/shard.ts';

// Many machines: the batch as BullMQ jobs on Redis (`tfvlm batch --queue`, `tfvlm worker`); bullmq loads on first use
export { runQueueBatch, type QueueBatchOptions } from './queue/batch-run.ts';
export { startQueueWorker, type QueueWorker, type QueueWorkerOptions, type QueueWorkerStats } from './queue/worker.ts';
export { parseRedisUrl, type RedisTarget } from './queue/redis-url.ts';
export { QUEUE_DEFAULTS } from './queue/defaults.ts';
