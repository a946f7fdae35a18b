// Multi-turn chat that keeps the KV cache of earlier turns: each turn re-renders the whole
// conversation with the chat template, reuses the cached prefix it shares with what was already
// fed to the model, and prefills only the rest (new images and videos included).
import { TfvlmError } from '../errors.ts';
import { disposeKVCaches, type KVCache } from '../layers/kv-cache.ts';
import type { Bitmap } from '../io/bitmap.ts';
import { parseMessages } from '../processing/messages.ts';
import type { ProcessedInputs } from '../processing/processor.ts';
import type { VideoClip } from '../processing/video-clip.ts';
import type { Vlm, GenerationOutput } from '../engine.ts';
import { checkCallOptions, type GenerateCallOptions } from './call-options.ts';
import { streamText } from './text-stream.ts';

export interface ConversationOptions {
  /** A system message put first. */
  system?: string;
  /** Folder that relative image paths in messages are resolved against. */
  baseDir?: string;
}

type Part = { type: 'text'; text: string } | { type: 'image' } | { type: 'video' };

export class Conversation {
  /** The messages so far, in the chat request format (images and videos as bare `{type:'image'}` / `{type:'video'}` parts). */
  readonly messages: { role: string; content: Part[] }[] = [];
  private readonly images: Bitmap[] = [];
  private readonly videos: VideoClip[] = [];
  private cache: KVCache[] | undefined;
  /** Token ids whose keys/values are in the cache. */
  private cachedIds: number[] = [];
  /** Images and videos (in prompt order) whose features are in the cache. */
  private cachedMedia = 0;
  /** Prompt tokens prefilled by the last turn (the rest came from the cache). */
  lastPrefillTokens = 0;
  private running = false;

  constructor(private readonly vlm: Vlm, private readonly options: ConversationOptions = {}) {
    for (const key of Object.keys(options ?? {})) {
      if (key !== 'system' && key !== 'baseDir') throw new TfvlmError(`conversation: unknown option "${key}" (options: system, baseDir)`);
    }
    if (options.system) this.messages.push({ role: 'system', content: [{ type: 'text', text: options.system }] });
  }

  /**
   * Sends a user turn (text, or parts with images and videos) and streams the assistant's answer. The turn
   * is kept only when it completes: leaving the stream early, an error or an abort (`options.signal`)
   * leaves the conversation exactly as before it (the partial answer of an abort is still returned). One
   * turn at a time: another `send` while one runs is refused before it touches anything.
   */
  async *send(content: string | unknown[], options: GenerateCallOptions = {}): AsyncGenerator<string, GenerationOutput> {
    checkCallOptions(options);
    if (this.running) throw new TfvlmError('conversation: a turn of this conversation is still running; finish or leave it before sending the next');
    this.running = true;
    let kept = false;
    try {
      const gen = this.vlm.generateOptions(options);
      const turn = await this.loadTurn(content, options);
      const messages = [...this.messages, turn.message];
      const images = [...this.images, ...turn.images];
      const videos = [...this.videos, ...turn.videos];
      const processor = this.vlm.processor;
      const prompt = processor.renderMessages(parseMessages(messages), { addGenerationPrompt: true });
      const full = processor.process([prompt], [images], options, [videos]);
      const ids = full.input_ids[0];
      const mediaTiles = full.mediaTiles[0];
      if (!ids || !mediaTiles) throw new TfvlmError('conversation: the processor returned no input row for the prompt');
      const shared = this.reuseCache(ids, processor.imageTokenId);
      this.cache ??= this.vlm.model.createCache();
      const inputs = { input_ids: [ids.slice(shared)], ...tilesAfter(full, mediaTiles, shared === 0 ? 0 : this.cachedMedia) };
      this.lastPrefillTokens = ids.length - shared;
      const result = yield* streamText(this.vlm.model, this.vlm.tokenizer, inputs, {
        ...gen,
        signal: options.signal,
        onLogits: options.onLogits,
        decodeThreads: options.decodeThreads,
        onProgress: options.onProgress,
        cache: this.cache,
        padTokenId: this.vlm.generationConfig.pad_token_id ?? undefined,
      });
      if (result.stopReason !== 'aborted') {
        this.messages.push(turn.message, { role: 'assistant', content: [{ type: 'text', text: result.text }] });
        this.images.push(...turn.images);
        this.videos.push(...turn.videos);
        // The last generated token was never fed to the model, so it is not in the cache.
        this.cachedIds = ids.concat(result.generatedIds.slice(0, -1));
        this.cachedMedia = mediaTiles.length;
        kept = true;
      }
      return { ...result, prompt, input_ids: ids };
    } finally {
      if (!kept) this.forgetUnkeptPositions();
      this.running = false;
    }
  }

  /** The user message of a turn, with its images decoded and videos loaded (nothing of the conversation changes). */
  private async loadTurn(content: string | unknown[], options: GenerateCallOptions) {
    const parsed = parseMessages([{ role: 'user', content }], { baseDir: this.options.baseDir });
    const [message] = parsed.messages;
    if (!message) throw new TfvlmError('conversation: the turn has no message');
    const given = message.content;
    const parts: Part[] = (typeof given === 'string' ? [{ type: 'text' as const, text: given }] : given)
      .map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: p.type }));
    const media = await this.vlm.processor.loadMedia(parsed, options, {}, `turn ${this.messages.length}`);
    return { message: { role: 'user', content: parts }, ...media };
  }

  /** After a turn that was not kept: the cache back to the positions of the kept history (or dropped). */
  private forgetUnkeptPositions(): void {
    if (!this.cache) return;
    const n = this.cachedIds.length;
    if (this.cache.every((c) => c.truncate)) {
      for (const c of this.cache) c.truncate!(n);
      if (this.cache.every((c) => c.offset === n)) return;
    }
    this.reset();
  }

  /**
   * Keeps the cached positions this turn's ids share with what was fed before and returns their
   * count. The re-rendered history can differ from the generated tokens (the template re-tokenises
   * the answer text); the cache is then cut back to the shared prefix — or dropped when the cut
   * would fall inside an image's tokens, whose features are only computed for whole images.
   */
  private reuseCache(ids: number[], imageTokenId: number): number {
    let shared = Math.min(commonPrefix(this.cachedIds, ids), ids.length - 1);
    const imageTokens = (xs: number[], n: number) => xs.slice(0, n).filter((id) => id === imageTokenId).length;
    const cutsImage = imageTokens(ids, shared) < imageTokens(this.cachedIds, this.cachedIds.length);
    if (shared < this.cachedIds.length && (cutsImage || !this.cache?.every((c) => c.truncate))) {
      this.reset();
      shared = 0;
    } else if (shared < this.cachedIds.length) {
      for (const c of this.cache!) c.truncate!(shared);
      this.cachedIds = this.cachedIds.slice(0, shared);
    }
    return shared;
  }

  /** Sends a turn and returns the whole answer. */
  async say(content: string | unknown[], options: GenerateCallOptions = {}): Promise<GenerationOutput> {
    const it = this.send(content, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** Starts over: no messages but the system message, no images or videos, no cache. */
  clear(): void {
    this.reset();
    this.messages.splice(this.options.system ? 1 : 0);
    this.images.length = 0;
    this.videos.length = 0;
  }

  /** Drops the KV cache (the messages stay; the next turn prefills everything). */
  reset(): void {
    if (this.cache) disposeKVCaches(this.cache);
    this.cache = undefined;
    this.cachedIds = [];
    this.cachedMedia = 0;
  }

  dispose(): void {
    this.reset();
  }
}

function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * The pixel inputs of the media after the first `skip` (one conversation: `pixel_values [1, tiles, C, H, W]`;
 * `mediaTiles`: the tiles of each image / video of that conversation).
 */
function tilesAfter(p: ProcessedInputs, mediaTiles: number[], skip: number): Pick<ProcessedInputs, 'pixel_values' | 'pixelShape' | 'pixel_attention_mask'> {
  if (!p.pixel_values || !p.pixelShape) return {};
  const [, tiles, C, H, W] = p.pixelShape;
  if (tiles === undefined || C === undefined || H === undefined || W === undefined) {
    throw new TfvlmError(`conversation: pixel values of shape [${p.pixelShape.join(', ')}], expected [1, tiles, C, H, W]`);
  }
  const first = mediaTiles.slice(0, skip).reduce((a, b) => a + b, 0);
  if (first === tiles) return {};
  return {
    pixel_values: p.pixel_values.subarray(first * C * H * W),
    pixelShape: [1, tiles - first, C, H, W],
    ...(p.pixel_attention_mask ? { pixel_attention_mask: p.pixel_attention_mask.subarray(first * H * W) } : {}),
  };
}
