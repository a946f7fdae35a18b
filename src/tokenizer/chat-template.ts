import { Template } from '@huggingface/jinja';
import { TfvlmError } from '../errors.ts';
import { SINGLE_SPECIAL_TOKEN_KEYS, type SpecialTokens } from './config.ts';

/** One chat message as the template sees it (transformers passes the user's dicts unchanged). */
export interface TemplateMessage {
  role: string;
  content: string | Array<Record<string, unknown>>;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Cut the rendering right after the last message's text so the model continues it. */
  continueFinalMessage?: boolean;
  tools?: Array<Record<string, unknown>>;
  documents?: Array<Record<string, unknown>>;
  /** A template name (from a named set) or a full template string; default: the checkpoint's. */
  chatTemplate?: string;
  /** Extra template variables; they override the special tokens of the same name. */
  variables?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();

/** Jinja's `capitalize` lower-cases the rest of the string (Python str.capitalize); @huggingface/jinja 0.5.11
 *  only upper-cases the first letter, so `| capitalize` is rewritten as `| lower | capitalize`. */
function patchFilters(source: string): string {
  return source.replace(/\|\s*capitalize\b/g, '| lower | capitalize');
}

function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      // @huggingface/jinja tokenizes with trim_blocks + lstrip_blocks and drops {% generation %} tags,
      // as transformers' ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, AssistantTracker) does.
      t = new Template(patchFilters(source));
    } catch (err) {
      throw new TfvlmError(`chat template: cannot parse (${(err as Error).message})`);
    }
    compiled.set(source, t);
  }
  return t;
}

/** transformers tokenization_utils_base.py get_chat_template: named set → 'tool_use' when tools are given, else 'default'. */
export function selectChatTemplate(templates: Record<string, string>, opts: ChatTemplateOptions): string {
  const names = Object.keys(templates);
  const requested = opts.chatTemplate;
  if (requested !== undefined) return templates[requested] ?? requested;
  if (names.length === 0) {
    throw new TfvlmError('chat template: the checkpoint has none (no chat_template.jinja, chat_template.json or tokenizer_config.json "chat_template"); pass a raw prompt instead');
  }
  if (opts.tools !== undefined && templates.tool_use !== undefined) return templates.tool_use;
  if (templates.default !== undefined) return templates.default;
  throw new TfvlmError(`chat template: the checkpoint has named templates (${names.join(', ')}) but no "default"; choose one by name`);
}

/** The special_tokens_map property: every special-token attribute that is set, as strings. */
export function specialTokenVariables(special: SpecialTokens): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const key of SINGLE_SPECIAL_TOKEN_KEYS) if (special[key]) vars[key] = special[key];
  if (special.additional_special_tokens.length > 0) vars.additional_special_tokens = [...special.additional_special_tokens];
  return vars;
}

/** Renders a conversation as transformers `apply_chat_template(..., tokenize=False)` does (4.47). */
export function renderChatTemplate(
  template: string,
  messages: TemplateMessage[],
  special: SpecialTokens,
  opts: ChatTemplateOptions = {},
): string {
  if (opts.continueFinalMessage && opts.addGenerationPrompt) {
    throw new TfvlmError('chat template: continueFinalMessage and addGenerationPrompt cannot both be set');
  }
  const vars: Record<string, unknown> = {
    ...specialTokenVariables(special),
    ...(opts.variables ?? {}),
    messages,
    tools: opts.tools ?? null,
    documents: opts.documents ?? null,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
  };
  let rendered: string;
  try {
    rendered = compile(template).render(vars);
  } catch (err) {
    if (err instanceof TfvlmError) throw err;
    throw new TfvlmError(`chat template: rendering failed (${(err as Error).message})`);
  }
  if (opts.continueFinalMessage) rendered = cutAfterFinalMessage(rendered, messages);
  return rendered;
}

function cutAfterFinalMessage(rendered: string, messages: TemplateMessage[]): string {
  const last = messages.at(-1);
  if (!last) return rendered;
  let text: unknown = last.content;
  if (Array.isArray(text)) text = text.at(-1)?.text;
  if (typeof text !== 'string') throw new TfvlmError('chat template: continueFinalMessage needs the last message to end in text');
  // Some templates strip messages before rendering, so transformers retries with the stripped text.
  for (const candidate of [text, text.trim()]) {
    const at = rendered.lastIndexOf(candidate);
    if (at >= 0) return rendered.slice(0, at + candidate.length);
  }
  throw new TfvlmError('chat template: continueFinalMessage could not find the final message in the rendered prompt');
}
