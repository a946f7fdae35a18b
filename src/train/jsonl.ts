/**
 * JSON Lines of chat conversations, one per line, in the chat message format of transformers'
 * processors: {"messages":[{"role":"user","content":[{"type":"image","image":"images/000001.png"},
 * {"type":"text","text":"..."}]},{"role":"assistant","content":[{"type":"text","text":"..."}]}]}.
 * Image paths are relative to the folder of the JSONL file. Extra top-level fields (the shapes
 * dataset adds "kind" and "task") are kept and ignored by readers that do not know them.
 * These types are the on-disk form only; src/processing/messages.ts parses the same messages for
 * the processor (pass the JSONL folder as its baseDir).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';

export type DatasetPart = { type: 'image'; image: string } | { type: 'text'; text: string };

export interface DatasetMessage {
  role: 'system' | 'user' | 'assistant';
  content: DatasetPart[];
}

export interface Conversation {
  messages: DatasetMessage[];
  /** "caption" or "qa" in the shapes dataset. */
  kind?: string;
  /** The question type of a "qa" conversation in the shapes dataset ("count", "where", ...). */
  task?: string;
}

/** One JSON value per line, each line ending in "\n". */
export function toJsonl(records: readonly unknown[]): string {
  return records.map((r) => JSON.stringify(r) + '\n').join('');
}

/** Parses JSON Lines; blank lines are skipped and errors name the file and line. */
export function parseJsonl(text: string, file = '<jsonl>'): unknown[] {
  const out: unknown[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line.length === 0) continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new TfvlmError(`${file}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
  }
  return out;
}

export async function readJsonl(file: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TfvlmError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseJsonl(text, file);
}

/** Checks one parsed line against the chat message format; `where` names it in errors. */
export function validateConversation(value: unknown, where: string): Conversation {
  const fail = (why: string): never => {
    throw new TfvlmError(`${where}: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('expected an object with "messages"');
  const messages = (value as { messages?: unknown }).messages;
  if (!Array.isArray(messages) || messages.length === 0) fail('"messages" must be a non-empty array');
  (messages as unknown[]).forEach((m, i) => {
    const at = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) fail(`${at} must be an object`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (role !== 'system' && role !== 'user' && role !== 'assistant') {
      fail(`${at}.role must be "system", "user" or "assistant", got ${JSON.stringify(role)}`);
    }
    if (!Array.isArray(content)) fail(`${at}.content must be an array of parts`);
    (content as unknown[]).forEach((p, j) => {
      const part = p as { type?: unknown; image?: unknown; text?: unknown } | null;
      if (part?.type === 'image' && typeof part.image === 'string') return;
      if (part?.type === 'text' && typeof part.text === 'string') return;
      fail(`${at}.content[${j}] must be {"type":"image","image":<path>} or {"type":"text","text":<string>}`);
    });
  });
  return value as Conversation;
}

/** Reads and validates a JSONL file of conversations. */
export async function readConversations(file: string): Promise<Conversation[]> {
  return (await readJsonl(file)).map((v, i) => validateConversation(v, `${file}: conversation ${i + 1}`));
}

/** The absolute path of an image referenced from a JSONL file (relative to the file's folder). */
export function resolveImagePath(jsonlFile: string, image: string): string {
  return path.resolve(path.dirname(jsonlFile), image);
}

/** Image paths of a conversation, in order of appearance. */
export function conversationImages(conv: Conversation): string[] {
  return conv.messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'image' ? [p.image] : [])));
}

/** The text parts of one message joined by "" (the chat format's concatenation). */
export function messageText(message: DatasetMessage): string {
  return message.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
}
