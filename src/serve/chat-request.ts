// An OpenAI Chat Completions request body → what the engine takes: the messages (image_url parts
// still as URLs, resolved by image-url.ts), the generation overrides, and how to answer (stream,
// include_usage). Fields tfvlm cannot honour are refused by name rather than ignored; documented
// OpenAI fields that change nothing at their default values are accepted at those values only.
import { randomInt } from 'node:crypto';
import type { GenerateOverrides } from '../generation/generation-config.ts';
import { badRequest } from './api-error.ts';

/** An image_url part, by position: its URL and the request field that holds it (for errors). */
export interface ImageUrlRef {
  url: string;
  /** `messages[i].content[j].image_url.url` */
  param: string;
}

/** A message as the engine takes it; an image part holds the index of its ImageUrlRef until the bytes are in. */
export interface PendingMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ({ type: 'text'; text: string } | { type: 'image'; image: number })[];
}

export interface ChatCompletionParams {
  messages: PendingMessage[];
  /** The image_url parts in prompt order. */
  images: ImageUrlRef[];
  overrides: GenerateOverrides;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with `choices: []` and the usage. */
  includeUsage: boolean;
  /** The `model` field as sent (any string is accepted; the served id is echoed). */
  model: string | undefined;
}

export interface ChatRequestOptions {
  /** Whether the model samples when the request sets no temperature (its generation_config.json do_sample). */
  sampleByDefault: boolean;
  /** A fresh seed for a sampled request without one (default: a random 32-bit integer). */
  randomSeed?: () => number;
}

/** The most stop sequences a request may give (OpenAI's limit). */
export const MAX_STOP_SEQUENCES = 4;

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isBool: Check = (v) => typeof v === 'boolean';
const equals = (d: unknown): Check => (v) => v === d;
const oneOf = (...ds: unknown[]): Check => (v) => ds.includes(v);
const emptyList: Check = (v) => Array.isArray(v) && v.length === 0;
const emptyObject: Check = (v) => isPlainObject(v) && Object.keys(v).length === 0;

/**
 * Documented OpenAI fields that change nothing at the values accepted here (null is always accepted
 * too); any other value is refused with 400 naming the field.
 */
const NO_OP_FIELDS: Record<string, { accepts: Check; what: string }> = {
  user: { accepts: isString, what: 'a string (ignored)' },
  safety_identifier: { accepts: isString, what: 'a string (ignored)' },
  prompt_cache_key: { accepts: isString, what: 'a string (ignored)' },
  metadata: { accepts: (v) => isPlainObject(v) && Object.values(v).every(isString), what: 'an object of strings (ignored)' },
  store: { accepts: equals(false), what: 'false' },
  logprobs: { accepts: equals(false), what: 'false' },
  top_logprobs: { accepts: equals(0), what: '0' },
  presence_penalty: { accepts: equals(0), what: '0' },
  frequency_penalty: { accepts: equals(0), what: '0' },
  logit_bias: { accepts: emptyObject, what: '{}' },
  response_format: { accepts: (v) => isPlainObject(v) && Object.keys(v).length === 1 && v.type === 'text', what: '{"type": "text"}' },
  service_tier: { accepts: oneOf('auto', 'default'), what: '"auto" or "default"' },
  modalities: { accepts: (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text', what: '["text"]' },
  tools: { accepts: emptyList, what: '[] (no tools)' },
  tool_choice: { accepts: oneOf('none', 'auto'), what: '"none" or "auto" (there are no tools)' },
  parallel_tool_calls: { accepts: isBool, what: 'true or false (there are no tools)' },
  functions: { accepts: emptyList, what: '[] (no functions)' },
  function_call: { accepts: oneOf('none', 'auto'), what: '"none" or "auto" (there are no functions)' },
  reasoning_effort: { accepts: () => false, what: 'null' },
  verbosity: { accepts: () => false, what: 'null' },
  audio: { accepts: () => false, what: 'null' },
  prediction: { accepts: () => false, what: 'null' },
  web_search_options: { accepts: () => false, what: 'null' },
};

/** Fields that carry meaning here (OpenAI's, and top_k / min_p / repetition_penalty as vLLM and llama-server take them). */
const FIELDS = new Set([
  'model', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop', 'n',
  'stream', 'stream_options', 'top_k', 'min_p', 'repetition_penalty',
  ...Object.keys(NO_OP_FIELDS),
]);

/** Assistant-message fields a client echoes back from a response, accepted at their empty values. */
const ECHOED_MESSAGE_FIELDS: Record<string, Check> = {
  refusal: () => false, // null only
  tool_calls: emptyList,
  function_call: () => false,
  annotations: emptyList,
  audio: () => false,
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return `${typeof v} ${s.length > 60 ? `${s.slice(0, 60)}…` : s}`;
}

function number(body: Record<string, unknown>, field: string, ok: (n: number) => boolean, what: string, integer = false): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v))) {
    throw badRequest(field, `expected ${integer ? 'an integer' : 'a number'}, got ${describe(v)}`, 'invalid_type');
  }
  if (!ok(v)) throw badRequest(field, `must be ${what}, got ${v}`);
  return v;
}

function boolean(body: Record<string, unknown>, field: string, where = field): boolean | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(where, `expected true or false, got ${describe(v)}`, 'invalid_type');
  return v;
}

/** Validates a Chat Completions body; every refusal is a 400 whose `param` names the field. */
export function parseChatRequest(body: unknown, options: ChatRequestOptions): ChatCompletionParams {
  if (!isPlainObject(body)) throw badRequest(null, `the request body must be a JSON object, got ${describe(body)}`, 'invalid_type');

  for (const [field, value] of Object.entries(body)) {
    if (!FIELDS.has(field)) throw badRequest(field, `unknown parameter "${field}"`, 'unknown_parameter');
    const noOp = NO_OP_FIELDS[field];
    if (noOp && value !== null && !noOp.accepts(value)) {
      throw badRequest(field, `${describe(value)} is not supported by tfvlm serve; accepted: ${noOp.what}`, 'unsupported_value');
    }
  }

  const model = body.model;
  if (model !== undefined && model !== null && typeof model !== 'string') throw badRequest('model', `expected a string, got ${describe(model)}`, 'invalid_type');

  const { messages, images } = parseMessages(body.messages);

  number(body, 'n', (v) => v === 1, '1 (tfvlm serve answers with one choice)', true);
  const maxTokens = number(body, 'max_tokens', (v) => v >= 1, 'at least 1', true);
  const maxCompletionTokens = number(body, 'max_completion_tokens', (v) => v >= 1, 'at least 1', true);
  if (maxTokens !== undefined && maxCompletionTokens !== undefined && maxTokens !== maxCompletionTokens) {
    throw badRequest('max_tokens', `max_tokens (${maxTokens}) and max_completion_tokens (${maxCompletionTokens}) disagree; give one`);
  }
  const maxNewTokens = maxTokens ?? maxCompletionTokens;
  const temperature = number(body, 'temperature', (v) => v >= 0 && v <= 2, 'between 0 and 2');
  const topP = number(body, 'top_p', (v) => v > 0 && v <= 1, 'in (0, 1]');
  const topK = number(body, 'top_k', (v) => v >= 0, '0 (off) or more', true);
  const minP = number(body, 'min_p', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  const repetitionPenalty = number(body, 'repetition_penalty', (v) => v > 0, 'greater than 0');
  let seed = number(body, 'seed', () => true, 'an integer', true);
  const stopStrings = parseStop(body.stop);

  const stream = boolean(body, 'stream') ?? false;
  let includeUsage = false;
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (!stream) throw badRequest('stream_options', 'only allowed when stream is true');
    if (!isPlainObject(so)) throw badRequest('stream_options', `expected an object, got ${describe(so)}`, 'invalid_type');
    for (const key of Object.keys(so)) {
      if (key !== 'include_usage' && key !== 'include_obfuscation') throw badRequest(`stream_options.${key}`, `unknown parameter "${key}"`, 'unknown_parameter');
    }
    includeUsage = boolean(so, 'include_usage', 'stream_options.include_usage') ?? false;
    if (so.include_obfuscation === true) throw badRequest('stream_options.include_obfuscation', 'true is not supported by tfvlm serve; accepted: false', 'unsupported_value');
    boolean(so, 'include_obfuscation', 'stream_options.include_obfuscation');
  }

  const sample = temperature === undefined ? options.sampleByDefault : temperature > 0;
  if (sample && seed === undefined) seed = (options.randomSeed ?? (() => randomInt(2 ** 32)))();
  const overrides: GenerateOverrides = {
    ...(temperature === undefined ? {} : temperature === 0 ? { doSample: false } : { doSample: true, temperature }),
    ...(maxNewTokens !== undefined ? { maxNewTokens } : {}),
    ...(topP !== undefined ? { topP } : {}),
    ...(topK !== undefined ? { topK } : {}),
    ...(minP !== undefined ? { minP } : {}),
    ...(repetitionPenalty !== undefined ? { repetitionPenalty } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(stopStrings.length ? { stopStrings } : {}),
  };
  return { messages, images, overrides, stream, includeUsage, model: typeof model === 'string' ? model : undefined };
}

/** Characters of text, messages and parts: each message and each part takes one token at least. */
export function messagesSize(params: Pick<ChatCompletionParams, 'messages'>): { chars: number; messages: number; parts: number } {
  let chars = 0;
  let parts = 0;
  for (const m of params.messages) {
    if (typeof m.content === 'string') {
      chars += m.content.length;
      continue;
    }
    parts += m.content.length;
    for (const p of m.content) if (p.type === 'text') chars += p.text.length;
  }
  return { chars, messages: params.messages.length, parts };
}

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw badRequest('stop', `expected a string or a list of strings, got ${describe(v)}`, 'invalid_type');
  if (list.length > MAX_STOP_SEQUENCES) throw badRequest('stop', `at most ${MAX_STOP_SEQUENCES} stop sequences, got ${list.length}`);
  return list.map((s, i) => {
    const param = typeof v === 'string' ? 'stop' : `stop[${i}]`;
    if (typeof s !== 'string') throw badRequest(param, `expected a string, got ${describe(s)}`, 'invalid_type');
    if (s.length === 0) throw badRequest(param, 'a stop sequence cannot be empty');
    return s;
  });
}

const ROLES: Record<string, PendingMessage['role']> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };
const DETAILS = ['auto', 'low', 'high'];

function parseMessages(raw: unknown): { messages: PendingMessage[]; images: ImageUrlRef[] } {
  if (raw === undefined || raw === null) throw badRequest('messages', 'missing (a list of {role, content} messages)', 'missing_required_parameter');
  if (!Array.isArray(raw)) throw badRequest('messages', `expected a list of messages, got ${describe(raw)}`, 'invalid_type');
  if (raw.length === 0) throw badRequest('messages', 'the list is empty');
  const images: ImageUrlRef[] = [];
  const messages = raw.map((m, i): PendingMessage => {
    const at = `messages[${i}]`;
    if (!isPlainObject(m)) throw badRequest(at, `expected an object {role, content}, got ${describe(m)}`, 'invalid_type');
    if (typeof m.role !== 'string') throw badRequest(`${at}.role`, `expected a string, got ${describe(m.role)}`, 'invalid_type');
    const role = ROLES[m.role];
    if (!role) throw badRequest(`${at}.role`, `"${m.role}" is not supported; expected "system", "developer", "user" or "assistant"`);
    for (const [key, value] of Object.entries(m)) {
      if (key === 'role' || key === 'content') continue;
      if (key === 'name') {
        if (typeof value !== 'string') throw badRequest(`${at}.name`, `expected a string, got ${describe(value)}`, 'invalid_type');
        continue;
      }
      const echoed = role === 'assistant' ? ECHOED_MESSAGE_FIELDS[key] : undefined;
      if (!echoed) throw badRequest(`${at}.${key}`, `unknown message field "${key}"`, 'unknown_parameter');
      if (value !== null && !echoed(value)) throw badRequest(`${at}.${key}`, `${describe(value)} is not supported by tfvlm serve (only null or empty)`, 'unsupported_value');
    }
    const content = m.content;
    if (typeof content === 'string') return { role, content };
    if (content === undefined || content === null) throw badRequest(`${at}.content`, 'missing (a string or a list of parts)', 'missing_required_parameter');
    if (!Array.isArray(content)) throw badRequest(`${at}.content`, `expected a string or a list of parts, got ${describe(content)}`, 'invalid_type');
    if (content.length === 0) throw badRequest(`${at}.content`, 'the list of parts is empty');
    return {
      role,
      content: content.map((p, j) => {
        const pat = `${at}.content[${j}]`;
        if (!isPlainObject(p)) throw badRequest(pat, `expected an object with "type", got ${describe(p)}`, 'invalid_type');
        const onlyKeys = (keys: string[], where: string, o: Record<string, unknown>) => {
          for (const k of Object.keys(o)) if (!keys.includes(k)) throw badRequest(`${where}.${k}`, `unknown field "${k}"`, 'unknown_parameter');
        };
        if (p.type === 'text') {
          onlyKeys(['type', 'text'], pat, p);
          if (typeof p.text !== 'string') throw badRequest(`${pat}.text`, `expected a string, got ${describe(p.text)}`, 'invalid_type');
          return { type: 'text' as const, text: p.text };
        }
        if (p.type === 'image_url') {
          if (role !== 'user') throw badRequest(`${pat}.type`, `image_url parts are only allowed in user messages, not ${m.role}`);
          onlyKeys(['type', 'image_url'], pat, p);
          const iu = p.image_url;
          if (!isPlainObject(iu)) throw badRequest(`${pat}.image_url`, `expected an object {url, detail?}, got ${describe(iu)}`, 'invalid_type');
          onlyKeys(['url', 'detail'], `${pat}.image_url`, iu);
          if (typeof iu.url !== 'string' || iu.url.length === 0) throw badRequest(`${pat}.image_url.url`, `expected a non-empty string, got ${describe(iu.url)}`, 'invalid_type');
          if (iu.detail !== undefined && iu.detail !== null && !DETAILS.includes(iu.detail as string)) {
            throw badRequest(`${pat}.image_url.detail`, `expected "auto", "low" or "high", got ${describe(iu.detail)}`);
          }
          images.push({ url: iu.url, param: `${pat}.image_url.url` });
          return { type: 'image' as const, image: images.length - 1 };
        }
        throw badRequest(`${pat}.type`, `expected "text" or "image_url", got ${describe(p.type)}`);
      }),
    };
  });
  return { messages, images };
}
