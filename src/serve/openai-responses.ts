// The JSON the server answers with, in OpenAI's shapes: chat.completion, chat.completion.chunk (the
// first carries delta.role, the last finish_reason; with include_usage every chunk has usage: null
// and a last chunk with choices: [] carries it), the model list, and {error: {...}}.
import { randomBytes } from 'node:crypto';
import type { GenerationOutput } from '../engine.ts';
import type { ApiError } from './api-error.ts';

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** What every chunk and the completion of one request share. */
export interface CompletionMeta {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
}

export function completionMeta(model: string): CompletionMeta {
  return { id: `chatcmpl-${randomBytes(12).toString('hex')}`, created: Math.floor(Date.now() / 1000), model };
}

/** eos, a stop string or a stop condition → "stop"; max_tokens or the context's end → "length". */
export function finishReason(stopReason: GenerationOutput['stopReason']): FinishReason {
  return stopReason === 'max_new_tokens' || stopReason === 'context' ? 'length' : 'stop';
}

/** prompt_tokens: the prompt's ids (image tokens included); completion_tokens: the ids generated (an ending eos included). */
export function usageOf(out: GenerationOutput): Usage {
  const prompt = out.input_ids.length;
  const completion = out.generatedIds.length;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export function chatCompletion(meta: CompletionMeta, out: GenerationOutput) {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [{
      index: 0,
      message: { role: 'assistant', content: out.text, refusal: null },
      logprobs: null,
      finish_reason: finishReason(out.stopReason),
    }],
    usage: usageOf(out),
  };
}

export type ChunkDelta = { role: 'assistant'; content: string } | { content: string } | Record<string, never>;

/** One chat.completion.chunk with one choice; `usage: null` is added when the client asked for usage. */
export function chunk(meta: CompletionMeta, delta: ChunkDelta, finish: FinishReason | null, includeUsage: boolean) {
  return {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  };
}

/** The last chunk of a stream with include_usage: no choices, the usage of the whole request. */
export function usageChunk(meta: CompletionMeta, out: GenerationOutput) {
  return { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, choices: [], usage: usageOf(out) };
}

export function modelObject(id: string, created: number) {
  return { id, object: 'model', created, owned_by: 'tfvlm' };
}

export function modelList(id: string, created: number) {
  return { object: 'list', data: [modelObject(id, created)] };
}

export function errorBody(e: Pick<ApiError, 'message' | 'type' | 'param' | 'code'>) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** One server-sent event carrying JSON. */
export function sseData(json: unknown): string {
  return `data: ${JSON.stringify(json)}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';
