// The chat request format (issue 4): [{role, content: string | [{type:'text',text} | {type:'image',...} | {type:'video',...}]}].
// Image/video sources are collected in prompt order; the chat template only sees types and text.
import { host } from '../io/host.ts';
import { TfvlmError } from '../errors.ts';
import type { TemplateMessage } from '../tokenizer/index.ts';
import { VideoClip } from './video-clip.ts';

/** An already-decoded image handed over through the API (row-major interleaved channels); the same shape as
 *  src/processing/image.ts `Bitmap` (whose `mode` the image loader checks). */
export interface DecodedBitmap {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
  mode?: string;
  channels?: number;
}

/** Where one image (or video) comes from. `none` = a bare `{type:'image'}` whose pixels the caller supplies
 *  separately, in order (the form transformers' processors use: messages for the template, images alongside). */
export type MediaRef =
  | { kind: 'path'; path: string }
  | { kind: 'url'; url: string }
  | { kind: 'data-uri'; uri: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'bitmap'; bitmap: DecodedBitmap }
  /** A video already sampled and resized by VlmProcessor.loadVideo. */
  | { kind: 'clip'; clip: VideoClip }
  | { kind: 'none' };

export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; source: MediaRef }
  | { type: 'video'; source: MediaRef };

export interface ChatMessage {
  role: string;
  content: string | ContentPart[];
  /** Any other fields of the message (name, tool_calls, ...), passed to the template unchanged. */
  extra: Record<string, unknown>;
}

export interface ParsedRequest {
  messages: ChatMessage[];
  /** Images in prompt order (message by message, part by part). */
  images: MediaRef[];
  videos: MediaRef[];
}

export interface ParseOptions {
  /** Folder that relative image paths are resolved against (default: the current directory). */
  baseDir?: string;
}

const SOURCE_KEYS = ['image', 'url', 'path'] as const;

function isBitmap(v: unknown): v is DecodedBitmap {
  if (typeof v !== 'object' || v === null) return false;
  const b = v as Record<string, unknown>;
  return Number.isInteger(b.width) && Number.isInteger(b.height) && (b.data instanceof Uint8Array || b.data instanceof Uint8ClampedArray);
}

function sourceFromString(s: string, where: string, baseDir: string): MediaRef {
  if (s.length === 0) throw new TfvlmError(`${where}: empty string is not an image source`);
  if (s.startsWith('data:')) return { kind: 'data-uri', uri: s };
  if (/^https?:\/\//i.test(s)) return { kind: 'url', url: s };
  if (s.startsWith('file://')) return { kind: 'path', path: new URL(s).pathname };
  return { kind: 'path', path: host().resolve(baseDir, s) };
}

function parseSource(part: Record<string, unknown>, where: string, baseDir: string, mediaKey: string): MediaRef {
  const keys = [mediaKey, ...SOURCE_KEYS.filter((k) => k !== 'image')].filter((k) => part[k] !== undefined && part[k] !== null);
  const [key] = keys;
  if (key === undefined) return { kind: 'none' };
  if (keys.length > 1) throw new TfvlmError(`${where}: give one of "${mediaKey}", "url", "path", not ${keys.map((k) => `"${k}"`).join(' and ')}`);
  const v = part[key];
  const at = `${where}.${key}`;
  if (typeof v === 'string') {
    const ref = sourceFromString(v, at, baseDir);
    if (key === 'url' && ref.kind === 'path') throw new TfvlmError(`${at}: expected an http(s) or data: URL, got ${JSON.stringify(v)}`);
    return ref;
  }
  if (key === 'video' && v instanceof VideoClip) return { kind: 'clip', clip: v };
  if (key === mediaKey && mediaKey === 'image') {
    if (v instanceof Uint8Array) {
      if (v.length === 0) throw new TfvlmError(`${at}: image bytes are empty`);
      return { kind: 'bytes', bytes: v };
    }
    if (v instanceof ArrayBuffer) return parseSource({ [mediaKey]: new Uint8Array(v) }, where, baseDir, mediaKey);
    if (isBitmap(v)) {
      if (v.mode !== undefined) return { kind: 'bitmap', bitmap: v }; // the image loader validates moded bitmaps
      const ch = v.channels ?? v.data.length / Math.max(1, v.width * v.height);
      if (v.width <= 0 || v.height <= 0 || !Number.isInteger(ch) || ch < 1 || ch > 4 || v.data.length !== v.width * v.height * ch) {
        throw new TfvlmError(`${at}: bitmap ${v.width}x${v.height} has ${v.data.length} bytes, not width*height*channels (1-4 channels)`);
      }
      return { kind: 'bitmap', bitmap: v };
    }
  }
  const alternatives = key !== mediaKey ? '' : mediaKey === 'image' ? ', bytes or a decoded bitmap {width, height, data}' : ' or a VideoClip';
  throw new TfvlmError(`${at}: expected a file path, URL or data: URI string${alternatives}, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Validates a chat request and collects its images/videos in order. Accepts the list of messages or an
 * object `{messages: [...]}`. `content` is a string or a list of parts; errors name the message index and field.
 */
export function parseMessages(raw: unknown, opts: ParseOptions = {}): ParsedRequest {
  const baseDir = opts.baseDir ?? host().cwd();
  let list = raw;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'messages' in raw) list = (raw as { messages: unknown }).messages;
  if (!Array.isArray(list)) throw new TfvlmError(`messages: expected a list of {role, content} messages, got ${describe(list)}`);
  if (list.length === 0) throw new TfvlmError('messages: the list is empty');

  const messages: ChatMessage[] = [];
  const images: MediaRef[] = [];
  const videos: MediaRef[] = [];
  list.forEach((m, i) => {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new TfvlmError(`${where}: expected an object {role, content}, got ${describe(m)}`);
    const { role, content, ...extra } = m as Record<string, unknown>;
    if (typeof role !== 'string' || role.length === 0) throw new TfvlmError(`${where}.role: expected a non-empty string, got ${describe(role)}`);
    if (typeof content === 'string') {
      messages.push({ role, content, extra });
      return;
    }
    if (content === undefined || content === null) {
      // Assistant messages that only carry tool_calls may omit content.
      if ('tool_calls' in extra) { messages.push({ role, content: [], extra }); return; }
      throw new TfvlmError(`${where}.content: missing (expected a string or a list of parts)`);
    }
    if (!Array.isArray(content)) throw new TfvlmError(`${where}.content: expected a string or a list of parts, got ${describe(content)}`);
    const parts: ContentPart[] = content.map((p, j) => {
      const at = `${where}.content[${j}]`;
      if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new TfvlmError(`${at}: expected an object with "type", got ${describe(p)}`);
      const part = p as Record<string, unknown>;
      switch (part.type) {
        case 'text':
          if (typeof part.text !== 'string') throw new TfvlmError(`${at}.text: expected a string, got ${describe(part.text)}`);
          return { type: 'text', text: part.text };
        case 'image': {
          const source = parseSource(part, at, baseDir, 'image');
          images.push(source);
          return { type: 'image', source };
        }
        case 'video': {
          const source = parseSource(part, at, baseDir, 'video');
          videos.push(source);
          return { type: 'video', source };
        }
        default:
          throw new TfvlmError(`${at}.type: expected "text", "image" or "video", got ${describe(part.type)}`);
      }
    });
    messages.push({ role, content: parts, extra });
  });
  return { messages, images, videos };
}

/**
 * Reads `--messages M.json`. Relative image/video paths are resolved against the folder of the JSON file
 * (not the current directory), so a request and its images can be moved together.
 */
export async function readMessagesFile(file: string): Promise<ParsedRequest> {
  let text: string;
  try {
    text = await host().readTextAsync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TfvlmError(`${file}: messages file not found`);
    if (code === 'EISDIR') throw new TfvlmError(`${file}: is a directory, expected a messages JSON file`);
    throw new TfvlmError(`${file}: cannot read (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TfvlmError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  try {
    return parseMessages(raw, { baseDir: host().dirname(host().resolve(host().cwd(), file)) });
  } catch (err) {
    if (err instanceof TfvlmError) throw new TfvlmError(`${file}: ${err.message}`);
    throw err;
  }
}

/**
 * The messages as the chat template sees them: parts keep `type` and `text` (and string sources), binary
 * sources are left out. A plain-string content is turned into one text part when `stringContentAsParts`
 * (default true): the VLM templates (SmolVLM, llava-hf) iterate parts and would drop a bare string.
 */
export function toTemplateMessages(messages: ChatMessage[], opts: { stringContentAsParts?: boolean } = {}): TemplateMessage[] {
  const asParts = opts.stringContentAsParts ?? true;
  return messages.map((m) => {
    let content: TemplateMessage['content'];
    if (typeof m.content === 'string') content = asParts ? [{ type: 'text', text: m.content }] : m.content;
    else {
      content = m.content.map((p) => {
        if (p.type === 'text') return { type: 'text', text: p.text };
        const s = p.source;
        const out: Record<string, unknown> = { type: p.type };
        if (s.kind === 'path') out.path = s.path;
        else if (s.kind === 'url') out.url = s.url;
        return out;
      });
    }
    return { ...m.extra, role: m.role, content };
  });
}

/** The value the image loader (src/io/image.ts loadImage) takes for a source: a path or data: URI string, bytes or
 *  a bitmap. URLs must be fetched first and bare `{type:'image'}` parts need their pixels from the caller. */
export function imageSourceOf(ref: MediaRef, where = 'image'): string | Uint8Array | DecodedBitmap {
  switch (ref.kind) {
    case 'path': return ref.path;
    case 'data-uri': return ref.uri;
    case 'bytes': return ref.bytes;
    case 'bitmap': return ref.bitmap;
    case 'clip': throw new TfvlmError(`${where}: a VideoClip is a video, not an image`);
    case 'url': throw new TfvlmError(`${where}: ${ref.url} is a URL; download it first (tfvlm reads local files, data: URIs, bytes or bitmaps)`);
    case 'none': throw new TfvlmError(`${where}: the message has a bare {"type": "image"} and no image was supplied for it`);
  }
}
