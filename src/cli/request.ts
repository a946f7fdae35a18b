// Building a request from the command line: --messages M.json, or --prompt TEXT --image FILE…
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import type { VlmRequest } from '../engine.ts';
import type { ParsedArgs } from './command.ts';
import { parseMessages } from '../processing/messages.ts';

export const REQUEST_OPTIONS = {
  messages: { type: 'string' },
  prompt: { type: 'string' },
  image: { type: 'string', multiple: true },
  video: { type: 'string', multiple: true },
} as const;

export const REQUEST_HELP = `Request (one of):
  --messages M.json      chat messages [{role, content:[{type:"image",image:"photo.jpg"},{type:"text",text:"…"}]}],
                         rendered with the checkpoint's chat template; image and video paths relative to
                         M.json; {type:"video",video:"clip.mp4"} takes a video file, animated GIF or folder
                         of frames (SmolVLM-family models)
  --prompt TEXT [--image FILE …] [--video FILE …]
                         a raw prompt with <image> (and <video>) markers, no template (LLaVA-1.5 style)`;

export function readMessagesJson(file: string): unknown[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TfvlmError(`cannot read --messages ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TfvlmError(`--messages ${file}: not valid JSON (${(e as Error).message})`);
  }
  const messages = Array.isArray(json) ? json : (json as { messages?: unknown })?.messages;
  if (!Array.isArray(messages)) throw new TfvlmError(`--messages ${file}: expected a JSON array of messages (or {"messages": [...]})`);
  try {
    parseMessages(messages); // schema only, so a wrong field is reported with the file's name
  } catch (e) {
    if (e instanceof TfvlmError) throw new TfvlmError(`--messages ${file}: ${e.message}`);
    throw e;
  }
  return messages;
}

export function requestFromArgs(args: ParsedArgs, cmd: string): VlmRequest {
  const images = (args.values.image as string[] | undefined) ?? [];
  const videos = (args.values.video as string[] | undefined) ?? [];
  if (typeof args.values.messages === 'string') {
    if (args.values.prompt !== undefined) throw new TfvlmError(`tfvlm ${cmd}: give --messages or --prompt, not both`);
    const file = args.values.messages;
    return {
      messages: readMessagesJson(file), baseDir: path.dirname(path.resolve(file)),
      ...(images.length ? { images } : {}), ...(videos.length ? { videos } : {}),
    };
  }
  if (typeof args.values.prompt === 'string') return { prompt: args.values.prompt, images, videos };
  throw new TfvlmError(`tfvlm ${cmd}: give --messages M.json or --prompt TEXT [--image FILE …]`);
}
