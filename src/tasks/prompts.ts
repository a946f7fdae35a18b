// The chat requests behind the task commands: captioning and visual question answering are one
// user turn holding the images and videos, then an instruction.
import fs from 'node:fs';
import path from 'node:path';
import type { ImageSource } from '../io/image.ts';
import { gifTiming } from '../io/video.ts';
import type { VideoSource } from '../processing/processor.ts';
import { VideoClip } from '../processing/video-clip.ts';

export const DEFAULT_CAPTION_PROMPT = 'Describe this image.';
export const DEFAULT_VIDEO_PROMPT = 'Describe this video.';

const VIDEO_EXTENSIONS = new Set(['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.ogv', '.wmv', '.flv', '.3gp', '.ts']);

/** A folder (of frames), a video file by extension, or a GIF with more than one frame. */
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

/** A message part for a file: a video part for videos (isVideoInput), an image part otherwise. */
export function mediaPart(src: ImageSource | VideoSource): { type: 'image'; image: ImageSource } | { type: 'video'; video: VideoSource } {
  if (src instanceof VideoClip || (typeof src === 'string' && isVideoInput(src))) return { type: 'video', video: src };
  return { type: 'image', image: src as ImageSource };
}

/** One user turn: every image or video (in order), then the text. */
export function userTurn(media: (ImageSource | VideoSource)[], text: string): { messages: unknown[] } {
  return { messages: [{ role: 'user', content: [...media.map(mediaPart), { type: 'text', text }] }] };
}

/** Captioning: the media and an instruction (default "Describe this image.", or "Describe this video." for one video). */
export function captionRequest(media: (ImageSource | VideoSource)[], prompt?: string) {
  const only = media.length === 1 ? media[0] : undefined;
  const oneVideo = only !== undefined && mediaPart(only).type === 'video';
  return userTurn(media, prompt ?? (oneVideo ? DEFAULT_VIDEO_PROMPT : DEFAULT_CAPTION_PROMPT));
}

/** Visual question answering: the media and the question. */
export function questionRequest(media: (ImageSource | VideoSource)[], question: string) {
  return userTurn(media, question);
}

/** A video and an instruction (default "Describe this video."), prompted as SmolVLM2 is. */
export function videoRequest(video: VideoSource, text = DEFAULT_VIDEO_PROMPT): { messages: unknown[] } {
  return { messages: [{ role: 'user', content: [{ type: 'video', video }, { type: 'text', text }] }] };
}
