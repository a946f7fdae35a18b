// Idefics3 / SmolVLM prompt expansion: each <image> marker becomes the image's token block.
// transformers models/idefics3/processing_idefics3.py and models/smolvlm/processing_smolvlm.py
// (get_image_prompt_string, _prompt_split_image, _prompt_single_image); both expand images identically.
import { host } from '../io/host.ts';
import { TfvlmError } from '../errors.ts';

export interface Idefics3PromptConfig {
  /** `<image>` tokens per tile (processor_config.json `image_seq_len`). */
  image_seq_len: number;
  image_token: string;
  fake_image_token: string;
  global_image_token: string;
  /** SmolVLMProcessor's video marker (`tokenizer.video_token`, else "<video>"). */
  video_token: string;
}

/** Token strings: Idefics3Processor hard-codes them; SmolVLMProcessor reads tokenizer attributes
 *  (tokenizer_config.json `extra_special_tokens`) with the same defaults. */
export function idefics3PromptTokens(extraSpecialTokens: Record<string, string> = {}, modelType = 'idefics3') {
  const smol = modelType === 'smolvlm';
  return {
    image_token: (smol && extraSpecialTokens.image_token) || '<image>',
    fake_image_token: (smol && extraSpecialTokens.fake_image_token) || '<fake_token_around_image>',
    global_image_token: (smol && extraSpecialTokens.global_image_token) || '<global-img>',
    video_token: (smol && extraSpecialTokens.video_token) || '<video>',
  };
}

/** The token block of one image: rows×cols tiles (a "\n" after each row) plus the global image, or only the
 *  global image when rows = cols = 0 (not split). */
export function imagePromptString(rows: number, cols: number, cfg: Idefics3PromptConfig): string {
  const run = cfg.image_token.repeat(cfg.image_seq_len);
  const global = `${cfg.fake_image_token}${cfg.global_image_token}${run}${cfg.fake_image_token}`;
  if (rows === 0 && cols === 0) return global;
  let s = '';
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) s += `${cfg.fake_image_token}<row_${r + 1}_col_${c + 1}>${run}`;
    s += '\n';
  }
  return `${s}\n${global}`;
}

function checkGrid(values: number[], name: string, n: number): void {
  if (!Array.isArray(values) || values.length !== n) {
    throw new TfvlmError(`prompt expansion: ${name} must list one entry per image (${n} images), got ${Array.isArray(values) ? values.length : typeof values}`);
  }
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0) throw new TfvlmError(`prompt expansion: ${name}[${i}] must be a non-negative integer, got ${v}`);
  });
}

/**
 * Replaces the k-th image marker of `prompt` with the block of image k (images in prompt order; with
 * several messages the images are consumed across messages in order). `rows`/`cols` come from the image
 * processor (0/0 = not split). The number of markers must equal the number of images.
 */
export function expandIdefics3Prompt(prompt: string, rows: number[], cols: number[], cfg: Idefics3PromptConfig): string {
  checkGrid(rows, 'rows', rows?.length ?? 0);
  checkGrid(cols, 'cols', rows.length);
  const parts = prompt.split(cfg.image_token);
  const markers = parts.length - 1;
  if (markers !== rows.length) {
    throw new TfvlmError(
      `prompt expansion: the prompt has ${markers} ${cfg.image_token} marker(s) but ${rows.length} image(s) were given; they must be equal`,
    );
  }
  let out = parts[0]!;
  for (let i = 0; i < rows.length; i++) out += imagePromptString(rows[i]!, cols[i]!, cfg) + parts[i + 1]!;
  return out;
}

/** The image and video markers of a rendered prompt, in the order they appear. */
export function mediaMarkers(prompt: string, cfg: Pick<Idefics3PromptConfig, 'image_token' | 'video_token'>): ('image' | 'video')[] {
  const out: ('image' | 'video')[] = [];
  for (let at = 0; ;) {
    const image = prompt.indexOf(cfg.image_token, at);
    const video = prompt.indexOf(cfg.video_token, at);
    if (image < 0 && video < 0) return out;
    const isImage = image >= 0 && (video < 0 || image < video);
    out.push(isImage ? 'image' : 'video');
    at = isImage ? image + cfg.image_token.length : video + cfg.video_token.length;
  }
}

/**
 * Reads the expansion settings of a model folder: processor_config.json `image_seq_len`; when absent, derived
 * from config.json as the processor docstring defines it: (image_size / patch_size)² / scale_factor².
 */
export async function loadIdefics3PromptConfig(dir: string, extraSpecialTokens: Record<string, string> = {}): Promise<Idefics3PromptConfig> {
  const read = async (name: string): Promise<Record<string, any> | undefined> => {
    const file = host().join(dir, name);
    let text: string;
    try {
      text = await host().readTextAsync(file);
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new TfvlmError(`${file}: not valid JSON (${(err as Error).message})`);
    }
  };
  const processor = await read('processor_config.json');
  const config = await read('config.json');
  let seq = processor?.image_seq_len;
  if (seq === undefined && config?.vision_config) {
    const v = config.vision_config;
    const s = config.scale_factor ?? 2;
    if (Number.isInteger(v.image_size) && Number.isInteger(v.patch_size)) seq = Math.floor((Math.floor(v.image_size / v.patch_size) ** 2) / (s * s));
  }
  if (!Number.isInteger(seq) || seq <= 0) {
    throw new TfvlmError(`${host().join(dir, 'processor_config.json')}: field "image_seq_len" missing or not a positive integer (and config.json cannot give it)`);
  }
  return { image_seq_len: seq, ...idefics3PromptTokens(extraSpecialTokens, config?.model_type) };
}

/** One video as SmolVLMProcessor.process_video sees it: frame times in seconds and the clip duration. */
export interface VideoPromptInfo {
  timestamps: number[];
  duration: number;
}

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
  'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** English cardinal as the `num2words` package writes it (0–999: "sixty-four", "one hundred and five"). */
export function numberToWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 999) throw new TfvlmError(`video prompt: frame count ${n} outside 0..999`);
  if (n < 20) return ONES[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)] + (n % 10 ? `-${ONES[n % 10]}` : '');
  const rest = n % 100;
  return `${ONES[Math.floor(n / 100)]} hundred${rest ? ` and ${numberToWords(rest)}` : ''}`;
}

/** Python str(timedelta(seconds=s)): "H:MM:SS", with "D day(s), " in front from one day on. */
function timedeltaString(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  const r = seconds - days * 86400;
  const hms = `${Math.floor(r / 3600)}:${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}:${String(r % 60).padStart(2, '0')}`;
  return days ? `${days} day${days === 1 ? '' : 's'}, ${hms}` : hms;
}

/**
 * SmolVLM (SmolVLM2) video expansion (processing_smolvlm.py expand_text_with_video_tokens): each video marker
 * becomes an intro naming the frame count and the duration, then per frame "\nFrame from MM:SS:" + the
 * single-image block, then "\n\n". `numFrames` is what transformers writes for every video of a call: the
 * frame count after padding (`pixel_values.shape[1]`), i.e. the largest frame count of the call's videos.
 */
export function expandSmolvlmVideoPrompt(prompt: string, videos: VideoPromptInfo[], numFrames: number, cfg: Idefics3PromptConfig): string {
  const parts = prompt.split(cfg.video_token);
  if (parts.length - 1 !== videos.length) {
    throw new TfvlmError(`prompt expansion: the prompt has ${parts.length - 1} ${cfg.video_token} marker(s) but ${videos.length} video(s) were given; they must be equal`);
  }
  let out = parts[0]!;
  videos.forEach((v, i) => {
    let block = `You are provided the following series of ${numberToWords(numFrames)} frames from a ${timedeltaString(Math.trunc(v.duration))} [H:MM:SS] video.\n`;
    for (const t of v.timestamps) block += `\nFrame from ${frameTimestamp(t)}:${imagePromptString(0, 0, cfg)}`;
    out += `${block}\n\n${parts[i + 1]}`;
  });
  return out;
}

/** "MM:SS" of a frame time as SmolVLM writes it: f"{int(t // 60):02d}:{int(t % 60):02d}". */
export function frameTimestamp(t: number): string {
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(Math.floor(t % 60)).padStart(2, '0')}`;
}

/** processing_smolvlm.py DEFAULT_CHAT_TEMPLATE: SmolVLMProcessor.apply_chat_template renders a conversation that has a
 *  video part with it (unless a template is named), since older checkpoint templates drop video parts. */
export const SMOLVLM_VIDEO_CHAT_TEMPLATE = "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

/** True when a message has a `{type: "video"}` part: SmolVLMProcessor then renders with SMOLVLM_VIDEO_CHAT_TEMPLATE. */
export function hasVideoPart(messages: Array<{ content: unknown }>): boolean {
  return messages.some((m) => Array.isArray(m.content) && m.content.some((p) => (p as { type?: unknown })?.type === 'video'));
}
