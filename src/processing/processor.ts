// The whole request → model inputs path, as transformers' Idefics3Processor / SmolVLMProcessor /
// LlavaProcessor do it: chat template → image and video processors → prompt expansion (image token
// blocks, SmolVLM2 video blocks) → tokenizer.
import { host } from '../io/host.ts';
import { TfvlmError } from '../errors.ts';
import { loadImage, type ImageSource } from '../io/image.ts';
import { architectureOf, type ProcessorFamily } from '../models/registry.ts';
import { PixelBudget } from '../io/pixel-budget.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';
import type { Bitmap } from '../io/bitmap.ts';
import { CLIPImageProcessor } from './clip-image-processor.ts';
import { Idefics3ImageProcessor, stackTiles, type PreparedTile } from './idefics3-image-processor.ts';
import { createImageProcessor, loadPreprocessorConfig } from './preprocessor-config.ts';
import {
  SMOLVLM_VIDEO_CHAT_TEMPLATE, expandIdefics3Prompt, expandSmolvlmVideoPrompt, hasVideoPart, loadIdefics3PromptConfig, mediaMarkers,
  type Idefics3PromptConfig,
} from './idefics3-prompt.ts';
import { LLAVA_15_CHAT_TEMPLATE, expandLlavaPrompt, loadLlavaPromptConfig, type LlavaPromptConfig } from './llava-prompt.ts';
import { imageSourceOf, parseMessages, toTemplateMessages, type MediaRef, type ParsedRequest } from './messages.ts';
import { SmolVLMVideoProcessor, loadVideoProcessorConfig } from './smolvlm-video-processor.ts';
import { VideoClip } from './video-clip.ts';

/** A video as requests give it: a path (video file, animated GIF or folder of frames) or an already loaded clip. */
export type VideoSource = string | VideoClip;

/**
 * A request as users write it: chat messages (parts `{type: "text" | "image" | "video"}`), or a raw prompt
 * with `<image>` (and, for SmolVLM-family models, `<video>`) markers. `images` / `videos` supply the media of
 * bare `{type: "image"}` / `{type: "video"}` parts, or of the prompt's markers, in order.
 */
export type VlmRequest =
  | { messages: unknown[]; baseDir?: string; images?: ImageSource[]; videos?: VideoSource[] }
  | { prompt: string; images?: ImageSource[]; videos?: VideoSource[] };

/** Model inputs for a batch of B prompts, as plain arrays (the engine turns them into tensors). */
export interface ProcessedInputs {
  /** Rendered prompts (chat template applied, `<image>` markers not yet expanded). */
  prompts: string[];
  /** The exact strings handed to the tokenizer. */
  promptsExpanded: string[];
  input_ids: number[][];
  attention_mask: number[][];
  /** Idefics3: `[B, tiles, 3, H, W]`; LLaVA: `[images, 3, H, W]`. Absent without images. */
  pixel_values?: Float32Array;
  pixelShape?: number[];
  /** Idefics3: `[B, tiles, H, W]`, 1 = real pixel. */
  pixel_attention_mask?: Uint8Array;
  /** Per image: tile rows / cols (0 = not split). */
  rows: number[];
  cols: number[];
  /** Per video (prompts in order, videos in prompt order): its frames' times and the clip's duration, in seconds. */
  videos: { timestamps: number[]; duration: number }[];
  /** Per prompt: how many tiles (Idefics3) or images (LLaVA) of `pixel_values` each image or video gave, in prompt order. */
  mediaTiles: number[][];
}

export interface ProcessOptions {
  /** Add the assistant turn opener after the last message (default true). */
  addGenerationPrompt?: boolean;
  /** Overrides preprocessor_config.json `do_image_splitting` (Idefics3 only). */
  imageSplitting?: boolean;
  /** Padding side for batches (default: tokenizer_config.json `padding_side`, else right). */
  paddingSide?: 'left' | 'right';
  /** Frame rate assumed for a video given as a folder of frames (default 1). */
  videoFolderFps?: number;
  /** Stops loading media (a running ffmpeg is killed) once it fires. */
  signal?: AbortSignal;
  /** Pixels of one image or video frame (default TFVLM_MAX_IMAGE_PIXELS, else 89,478,485), checked before decoding. */
  maxImagePixels?: number;
  /** Pixels one request holds: images plus resized video frames (default TFVLM_MAX_REQUEST_PIXELS, else 4 × 89,478,485). */
  maxRequestPixels?: number;
}

/** Every ProcessOptions field (the compiler checks the list is complete). */
export const PROCESS_OPTION_KEYS = Object.keys({
  addGenerationPrompt: true, imageSplitting: true, paddingSide: true, videoFolderFps: true, signal: true,
  maxImagePixels: true, maxRequestPixels: true,
} satisfies Record<keyof ProcessOptions, true>) as (keyof ProcessOptions)[];


export class VlmProcessor {
  private constructor(
    readonly dir: string,
    readonly family: ProcessorFamily,
    readonly tokenizer: Tokenizer,
    /** Absent for a text-only model. */
    private readonly imageProcessor: Idefics3ImageProcessor | CLIPImageProcessor | undefined,
    private readonly promptConfig: Idefics3PromptConfig | LlavaPromptConfig | undefined,
    /** SmolVLM-family folders only: how video frames are sampled and resized. */
    readonly videoProcessor?: SmolVLMVideoProcessor,
  ) {}

  static async load(dir: string): Promise<VlmProcessor> {
    const family = architectureOf(dir).processor;
    const tokenizer = await loadTokenizer(dir);
    if (family === 'text') return new VlmProcessor(dir, family, tokenizer, undefined, undefined);
    const imageProcessor = createImageProcessor(loadPreprocessorConfig(dir));
    const extra = tokenizer.settings.extraSpecialTokens;
    if (family === 'idefics3') {
      if (!(imageProcessor instanceof Idefics3ImageProcessor)) {
        throw new TfvlmError(`${host().join(dir, 'preprocessor_config.json')}: an Idefics3 / SmolVLM model needs an Idefics3ImageProcessor or SmolVLMImageProcessor`);
      }
      const video = new SmolVLMVideoProcessor(loadVideoProcessorConfig(dir));
      return new VlmProcessor(dir, family, tokenizer, imageProcessor, await loadIdefics3PromptConfig(dir, extra), video);
    }
    if (!(imageProcessor instanceof CLIPImageProcessor)) {
      throw new TfvlmError(`${host().join(dir, 'preprocessor_config.json')}: llava needs a CLIPImageProcessor`);
    }
    return new VlmProcessor(dir, family, tokenizer, imageProcessor, await loadLlavaPromptConfig(dir, extra));
  }

  /** The id of the token that image features replace (-1 for a text-only model: no token is one). */
  get imageTokenId(): number {
    if (!this.promptConfig) return -1;
    const id = this.tokenizer.tokenToId(this.promptConfig.image_token);
    if (id === undefined || id === null) throw new TfvlmError(`${this.dir}: the tokenizer has no ${this.promptConfig.image_token} token`);
    return id;
  }

  /**
   * Renders chat messages (the request format of `--messages`) with the checkpoint's chat template;
   * a llava folder without one gets the LLaVA-1.5 `USER: … ASSISTANT:` format.
   */
  renderMessages(request: ParsedRequest, options: ProcessOptions = {}): string {
    const messages = toTemplateMessages(request.messages);
    let template: { chatTemplate?: string } = {};
    if (hasVideoPart(messages)) {
      this.videoProcessorOrThrow();
      // SmolVLMProcessor.apply_chat_template: conversations with a video use its default template (checkpoint
      // templates of SmolVLM v1 drop video parts).
      template = { chatTemplate: SMOLVLM_VIDEO_CHAT_TEMPLATE };
    } else if (this.family === 'llava' && !this.tokenizer.hasChatTemplate) {
      template = { chatTemplate: LLAVA_15_CHAT_TEMPLATE };
    }
    return this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: options.addGenerationPrompt ?? true, ...template });
  }

  private videoProcessorOrThrow(): SmolVLMVideoProcessor {
    if (!this.videoProcessor) {
      throw new TfvlmError(`${this.dir}: this ${this.family} checkpoint takes no video; video parts need a SmolVLM / SmolVLM2 (Idefics3-family) checkpoint`);
    }
    return this.videoProcessor;
  }

  /** Samples a video (file, animated GIF or folder of frames) at the checkpoint's video settings and resizes its frames. */
  async loadVideo(src: VideoSource, options: ProcessOptions = {}, budget = this.pixelBudget(options)): Promise<VideoClip> {
    const processor = this.videoProcessorOrThrow();
    if (src instanceof VideoClip) {
      const [h, w] = processor.frameSize;
      const bad = src.frames.find((f) => f.width !== w || f.height !== h || f.mode !== 'RGB');
      if (bad) throw new TfvlmError(`video: a VideoClip with ${bad.width}x${bad.height} ${bad.mode} frames was given to ${this.dir}, whose frames are ${w}x${h} RGB; load it with this model's processor`);
      return src;
    }
    if (typeof src !== 'string') throw new TfvlmError(`video: expected a path or a VideoClip, got ${src === null ? 'null' : typeof src}`);
    return processor.load(src, { folderFps: options.videoFolderFps, signal: options.signal, budget });
  }

  /** The pixel limits of one request. */
  pixelBudget(options: Pick<ProcessOptions, 'maxImagePixels' | 'maxRequestPixels'> = {}): PixelBudget {
    return new PixelBudget({ maxImagePixels: options.maxImagePixels, maxRequestPixels: options.maxRequestPixels });
  }

  /**
   * Decodes a parsed request's images and loads its videos, one at a time, each checked against the
   * request's pixel budget before it is decoded. Bare parts take `supplied` media in order.
   */
  async loadMedia(
    request: ParsedRequest, options: ProcessOptions = {}, supplied: { images?: ImageSource[]; videos?: VideoSource[] } = {}, where = 'request',
  ): Promise<{ images: Bitmap[]; videos: VideoClip[] }> {
    if (this.family === 'text' && (request.images.length || request.videos.length || supplied.images?.length || supplied.videos?.length)) {
      throw new TfvlmError(`${this.dir}: a text-only model takes no images or videos`);
    }
    const budget = this.pixelBudget(options);
    const given = new Supplied(where, supplied);
    const images: Bitmap[] = [];
    for (const [i, ref] of request.images.entries()) {
      options.signal?.throwIfAborted();
      images.push(await loadImage(ref.kind === 'none' ? given.take('image') : imageSourceOf(ref, `${where} image ${i}`) as ImageSource, undefined, budget));
    }
    const videos: VideoClip[] = [];
    for (const [i, ref] of request.videos.entries()) {
      videos.push(await this.loadVideo(ref.kind === 'none' ? given.take('video') : videoSourceOf(ref, `${where} video ${i}`), options, budget));
    }
    given.checkAllUsed();
    return { images, videos };
  }

  /** One request (messages or a raw prompt) → model inputs. */
  async fromRequest(request: VlmRequest, options: ProcessOptions = {}): Promise<ProcessedInputs> {
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      throw new TfvlmError('request must be an object: {messages: [...]} or {prompt: "...", images: [...]}');
    }
    if ('messages' in request) {
      if (!Array.isArray(request.messages)) throw new TfvlmError('request.messages must be an array of messages');
      return this.fromMessages(request.messages, {
        ...options,
        baseDir: request.baseDir,
        ...(request.images ? { images: [request.images] } : {}),
        ...(request.videos ? { videos: [request.videos] } : {}),
      });
    }
    return this.fromPrompt(request.prompt, request.images ?? [], options, request.videos ?? []);
  }

  /**
   * One conversation or a batch of conversations → model inputs. Images and videos come from the messages
   * (paths resolved against `baseDir`), or, for bare `{"type":"image"}` / `{"type":"video"}` parts, from
   * `images` / `videos` (one list per conversation, in order).
   */
  async fromMessages(
    conversations: unknown | unknown[][],
    options: ProcessOptions & { baseDir?: string; images?: ImageSource[][]; videos?: VideoSource[][] } = {},
  ): Promise<ProcessedInputs> {
    const batch = isBatch(conversations) ? conversations : [conversations];
    const prompts: string[] = [];
    const images: Bitmap[][] = [];
    const videos: VideoClip[][] = [];
    for (let b = 0; b < batch.length; b++) {
      const request = parseMessages(batch[b], { baseDir: options.baseDir });
      prompts.push(this.renderMessages(request, options));
      const media = await this.loadMedia(request, options, { images: options.images?.[b], videos: options.videos?.[b] }, `conversation ${b}`);
      images.push(media.images);
      videos.push(media.videos);
    }
    return this.process(prompts, images, options, videos);
  }

  /** Raw prompts with `<image>` (and SmolVLM `<video>`) markers, no template; one image (and video) list per prompt. */
  async fromPrompt(prompt: string | string[], images: ImageSource[] | ImageSource[][] = [], options: ProcessOptions = {},
    videos: VideoSource[] | VideoSource[][] = []): Promise<ProcessedInputs> {
    const prompts = Array.isArray(prompt) ? prompt : [prompt];
    const lists: ImageSource[][] = Array.isArray(prompt) ? (images as ImageSource[][]) : [images as ImageSource[]];
    const bad = prompts.findIndex((p) => typeof p !== 'string');
    if (bad >= 0) throw new TfvlmError(`prompt${Array.isArray(prompt) ? `[${bad}]` : ''} must be a string, got ${prompts[bad] === null ? 'null' : typeof prompts[bad]}`);
    if (!Array.isArray(lists) || !lists.every((l) => l === undefined || l === null || Array.isArray(l))) {
      throw new TfvlmError(`images must be a list of image sources${Array.isArray(prompt) ? ', one list per prompt' : ''}`);
    }
    if (lists.length !== prompts.length) {
      throw new TfvlmError(`${prompts.length} prompt(s) but ${lists.length} image list(s); give one image list per prompt`);
    }
    const decoded: Bitmap[][] = [];
    const budgets = prompts.map(() => this.pixelBudget(options));
    for (const [b, list] of lists.entries()) {
      const sample: Bitmap[] = [];
      for (const src of list ?? []) sample.push(await loadImage(src, undefined, budgets[b]));
      decoded.push(sample);
    }
    const videoLists: VideoSource[][] = Array.isArray(prompt) ? (videos as VideoSource[][]) : [videos as VideoSource[]];
    if (videoLists.length > 0 && videoLists.length !== prompts.length) {
      throw new TfvlmError(`${prompts.length} prompt(s) but ${videoLists.length} video list(s); give one video list per prompt`);
    }
    const clips: VideoClip[][] = [];
    for (const [b, list] of videoLists.entries()) {
      const loaded: VideoClip[] = [];
      for (const src of list ?? []) loaded.push(await this.loadVideo(src, options, budgets[b]));
      clips.push(loaded);
    }
    return this.process(prompts, decoded, options, clips);
  }

  /**
   * Rendered prompts + decoded images (+ loaded videos) → expanded prompts, token ids and pixels. Images and
   * videos are matched to their markers in prompt order; their tiles/frames stand in `pixel_values` in that order.
   */
  process(prompts: string[], images: Bitmap[][], options: ProcessOptions = {}, videos: VideoClip[][] = []): ProcessedInputs {
    const media = this.family === 'idefics3' ? this.idefics3Media(prompts, images, videos, options)
      : this.family === 'llava' ? this.llavaMedia(prompts, images, videos)
      : this.textOnly(prompts, images, videos);
    const encoded = this.tokenizer.encodeBatch(media.promptsExpanded, {
      padding: 'longest',
      ...(options.paddingSide ? { paddingSide: options.paddingSide } : {}),
    });
    return { prompts, ...media, ...encoded };
  }

  private idefics3Media(prompts: string[], images: Bitmap[][], videos: VideoClip[][], options: ProcessOptions) {
    const cfg = this.promptConfig as Idefics3PromptConfig;
    const imageProcessor = this.imageProcessor as Idefics3ImageProcessor;
    const luts = new Map<number, Float32Array>();
    const imageLut = (tile: Bitmap) => {
      const C = tile.data.length / (tile.width * tile.height);
      if (!luts.has(C)) luts.set(C, imageProcessor.normalization(C));
      return luts.get(C)!;
    };
    // transformers writes the padded frame count (the longest video of the call) in every video's intro.
    const frameCount = Math.max(0, ...videos.flat().map((v) => v.frames.length));
    const videoLut = frameCount > 0 ? this.videoProcessorOrThrow().normalization() : new Float32Array(0);
    const rows: number[] = [];
    const cols: number[] = [];
    const samples: PreparedTile[][] = [];
    const mediaTiles: number[][] = [];
    const promptsExpanded = prompts.map((p, b) => {
      const sampleImages = images[b] ?? [];
      const sampleVideos = videos[b] ?? [];
      const order = mediaMarkers(p, cfg);
      const nImages = order.filter((k) => k === 'image').length;
      const nVideos = order.length - nImages;
      if (nVideos === 0 && sampleVideos.length === 0 && nImages !== sampleImages.length) {
        throw new TfvlmError(`prompt expansion: the prompt has ${nImages} ${cfg.image_token} marker(s) but ${sampleImages.length} image(s) were given; they must be equal`);
      }
      if (nImages !== sampleImages.length || nVideos !== sampleVideos.length) {
        throw new TfvlmError(`prompt expansion: the prompt has ${nImages} ${cfg.image_token} and ${nVideos} ${cfg.video_token} marker(s) ` +
          `but ${sampleImages.length} image(s) and ${sampleVideos.length} video(s) were given; they must be equal`);
      }
      const tiles: PreparedTile[] = [];
      const counts: number[] = [];
      const sampleRows: number[] = [];
      const sampleCols: number[] = [];
      let i = 0;
      let v = 0;
      for (const kind of order) {
        if (kind === 'image') {
          const r = imageProcessor.processImage(sampleImages[i++]!, { do_image_splitting: options.imageSplitting });
          sampleRows.push(r.rows);
          sampleCols.push(r.cols);
          for (const tile of r.tiles) tiles.push({ tile, lut: imageLut(tile) });
          counts.push(r.tiles.length);
        } else {
          const clip = sampleVideos[v++]!;
          for (const tile of clip.frames) tiles.push({ tile, lut: videoLut });
          counts.push(clip.frames.length);
        }
      }
      rows.push(...sampleRows);
      cols.push(...sampleCols);
      samples.push(tiles);
      mediaTiles.push(counts);
      const withImages = expandIdefics3Prompt(p, sampleRows, sampleCols, cfg);
      return sampleVideos.length ? expandSmolvlmVideoPrompt(withImages, sampleVideos, frameCount, cfg) : withImages;
    });
    let pixels: Pick<ProcessedInputs, 'pixel_values' | 'pixelShape' | 'pixel_attention_mask'> = {};
    if (samples.some((s) => s.length > 0)) {
      if (samples.some((s) => s.length === 0)) {
        throw new TfvlmError('in a batch with images, every prompt needs at least one image or video (transformers Idefics3Processor requires it too)');
      }
      const out = stackTiles(samples, imageProcessor.config.do_pad, 'Idefics3ImageProcessor');
      pixels = { pixel_values: out.pixel_values, pixelShape: out.shape, pixel_attention_mask: out.pixel_attention_mask };
    }
    const videoInfo = videos.flat().map((v) => ({ timestamps: v.timestamps, duration: v.duration }));
    return { promptsExpanded, ...pixels, rows, cols, videos: videoInfo, mediaTiles };
  }

  private textOnly(prompts: string[], images: Bitmap[][], videos: VideoClip[][]) {
    if (images.some((list) => list.length > 0) || videos.some((list) => list.length > 0)) {
      throw new TfvlmError(`${this.dir}: a text-only model takes no images or videos`);
    }
    return { promptsExpanded: prompts, rows: [], cols: [], videos: [], mediaTiles: prompts.map(() => []) };
  }

  private llavaMedia(prompts: string[], images: Bitmap[][], videos: VideoClip[][]) {
    if (videos.some((list) => list.length > 0)) this.videoProcessorOrThrow();
    const cfg = this.promptConfig as LlavaPromptConfig;
    const flat = images.flat();
    let size = { height: 0, width: 0 };
    let pixels: Pick<ProcessedInputs, 'pixel_values' | 'pixelShape' | 'pixel_attention_mask'> = {};
    if (flat.length > 0) {
      const out = (this.imageProcessor as CLIPImageProcessor).preprocess(flat);
      pixels = { pixel_values: out.pixel_values, pixelShape: out.shape };
      size = { height: out.shape[2], width: out.shape[3] };
    }
    const promptsExpanded = prompts.map((p, b) => expandLlavaPrompt(p, (images[b] ?? []).length, size, cfg));
    return { promptsExpanded, ...pixels, rows: [], cols: [], videos: [], mediaTiles: images.map((list) => list.map(() => 1)) };
  }
}

function isBatch(x: unknown): x is unknown[][] {
  return Array.isArray(x) && x.length > 0 && Array.isArray(x[0]);
}

/** Hands out the images / videos a caller supplied for bare `{"type": "image"}` / `{"type": "video"}` parts, in order. */
class Supplied {
  private used = { image: 0, video: 0 };
  constructor(private readonly where: string, private readonly media: { images?: ImageSource[]; videos?: VideoSource[] }) {}

  take(kind: 'image'): ImageSource;
  take(kind: 'video'): VideoSource;
  take(kind: 'image' | 'video'): ImageSource | VideoSource {
    const list = (kind === 'image' ? this.media.images : this.media.videos) ?? [];
    const i = this.used[kind]++;
    if (i >= list.length) throw new TfvlmError(`${this.where}: more {"type":"${kind}"} parts than the ${list.length} ${kind}(s) supplied`);
    return list[i]!;
  }

  checkAllUsed(): void {
    for (const kind of ['image', 'video'] as const) {
      const n = (kind === 'image' ? this.media.images : this.media.videos)?.length ?? 0;
      if (this.used[kind] < n) {
        throw new TfvlmError(`${this.where}: ${n} ${kind}(s) supplied but only ${this.used[kind]} bare {"type":"${kind}"} part(s) to use them`);
      }
    }
  }
}

/** A video part's source as the video loader takes it. */
function videoSourceOf(ref: MediaRef, where: string): VideoSource {
  switch (ref.kind) {
    case 'path': return ref.path;
    case 'clip': return ref.clip;
    case 'url': throw new TfvlmError(`${where}: ${ref.url} is a URL; download it first (tfvlm reads video files, animated GIFs and folders of frames)`);
    default: throw new TfvlmError(`${where}: a video must be a file path (video file, animated GIF or folder of frames) or a VideoClip, not ${ref.kind === 'none' ? 'missing' : ref.kind}`);
  }
}
