// A video → the request SmolVLM2 sees (transformers models/smolvlm/processing_smolvlm.py
// expand_text_with_video_tokens): the user turn rendered with the SmolVLM video chat template, and the
// `<video>` marker replaced by
//   "You are provided the following series of {num2words(N)} frames from a {timedelta(duration)} [H:MM:SS] video.\n"
//   + per frame "\nFrame from MM:SS:" + the frame's single-image block + "\n\n".
// Each frame stands in the prompt as one `<image>` that the processor expands with splitting off
// (videos are never split), which yields exactly that string.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import type { Vlm, VlmRequest } from '../engine.ts';
import { gifTiming, loadVideo, type LoadVideoOptions, type SampledVideo, type VideoSampling } from '../io/video.ts';
import { numberToWords, SMOLVLM_VIDEO_CHAT_TEMPLATE } from '../processing/idefics3-prompt.ts';
import type { ProcessOptions } from '../processing/processor.ts';

export const DEFAULT_VIDEO_PROMPT = 'Describe this video.';

/** SmolVLM2's published `video_sampling` (fps 1, max_frames 64) when a folder does not say. */
export const DEFAULT_VIDEO_SAMPLING: VideoSampling = { fps: 1, max_frames: 64 };

const VIDEO_EXTENSIONS = new Set(['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.ogv', '.wmv', '.flv', '.3gp', '.ts']);

/** A folder, a video file by extension, or a GIF with more than one frame. */
export function isVideoInput(src: string): boolean {
  try {
    const stat = fs.statSync(src);
    if (stat.isDirectory()) return true;
    const ext = path.extname(src).toLowerCase();
    if (VIDEO_EXTENSIONS.has(ext)) return true;
    if (ext === '.gif') return gifTiming(new Uint8Array(fs.readFileSync(src)), src).starts.length > 1;
  } catch {
    return false;
  }
  return false;
}

/** `video_sampling` {fps, max_frames} from processor_config.json or preprocessor_config.json, else SmolVLM2's defaults. */
export function readVideoSampling(dir: string): VideoSampling {
  for (const name of ['processor_config.json', 'preprocessor_config.json', 'video_preprocessor_config.json']) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    let raw: { video_sampling?: { fps?: unknown; max_frames?: unknown } };
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new TfvlmError(`${file}: cannot parse (${(e as Error).message})`);
    }
    const v = raw.video_sampling;
    if (!v) continue;
    const fps = v.fps ?? DEFAULT_VIDEO_SAMPLING.fps;
    const max = v.max_frames ?? DEFAULT_VIDEO_SAMPLING.max_frames;
    if (typeof fps !== 'number' || !(fps > 0)) throw new TfvlmError(`${file}: video_sampling.fps must be a positive number, got ${JSON.stringify(fps)}`);
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new TfvlmError(`${file}: video_sampling.max_frames must be a positive integer, got ${JSON.stringify(max)}`);
    }
    return { fps, max_frames: max };
  }
  return { ...DEFAULT_VIDEO_SAMPLING };
}

/** Python str(timedelta(seconds=s)) for whole seconds: "H:MM:SS" ("D day(s), H:MM:SS" from one day). */
export function timedeltaString(seconds: number): string {
  const s = Math.trunc(seconds);
  const days = Math.floor(s / 86400);
  const r = s - days * 86400;
  const hms = `${Math.floor(r / 3600)}:${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}:${String(r % 60).padStart(2, '0')}`;
  return days ? `${days} day${days === 1 ? '' : 's'}, ${hms}` : hms;
}

/** "MM:SS" of a frame time as SmolVLM writes it: (int(t // 60), int(t % 60)), zero-padded. */
export function frameTimestamp(t: number): string {
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(Math.floor(t % 60)).padStart(2, '0')}`;
}

/** The text that replaces `<video>`, with `imageMarker` standing for each frame's image block. */
export function videoPromptBlock(timestamps: number[], duration: number, numFrames: number, imageMarker = '<image>'): string {
  let block = `You are provided the following series of ${numberToWords(numFrames)} frames from a ${timedeltaString(duration)} [H:MM:SS] video.\n`;
  for (const t of timestamps) block += `\nFrame from ${frameTimestamp(t)}:${imageMarker}`;
  return `${block}\n\n`;
}

export interface VideoRequest {
  request: VlmRequest;
  /** Processing options the request needs (frames are never split). */
  options: ProcessOptions;
  video: SampledVideo;
}

/**
 * Video path (file, animated GIF or folder of frames) + instruction → a request for `vlm.generate` /
 * `vlm.stream`: frames sampled at the checkpoint's video_sampling, the SmolVLM2 video prompt.
 */
export async function videoRequest(vlm: Vlm, src: string, text = DEFAULT_VIDEO_PROMPT,
  opts: LoadVideoOptions & { sampling?: VideoSampling } = {}): Promise<VideoRequest> {
  if (vlm.processor.family !== 'idefics3') {
    throw new TfvlmError(`${vlm.dir}: video input needs a SmolVLM (Idefics3 / SmolVLM2) checkpoint, this one is ${vlm.processor.family}`);
  }
  const video = await loadVideo(src, opts.sampling ?? readVideoSampling(vlm.dir), opts);
  // SmolVLMProcessor.apply_chat_template renders conversations with a video part with its default template.
  const rendered = vlm.tokenizer.applyChatTemplate(
    [{ role: 'user', content: [{ type: 'video' }, { type: 'text', text }] }],
    { addGenerationPrompt: true, chatTemplate: SMOLVLM_VIDEO_CHAT_TEMPLATE },
  );
  if (rendered.split('<video>').length !== 2) throw new TfvlmError('video chat template did not place exactly one <video> marker');
  const prompt = rendered.replace('<video>', videoPromptBlock(video.timestamps, video.metadata.duration, video.frames.length));
  return { request: { prompt, images: video.frames }, options: { imageSplitting: false }, video };
}
