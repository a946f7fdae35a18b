// The output of `tfvlm batch`: one JSON line per item, `{id, …, text, …}` or `{id, …, error}`, appended
// as items finish. Each line goes to the file in one write (its newline included), so a crash can
// leave at most one torn line, the last: readResults detects it (no newline, or not a result line),
// cuts the file back to the line before, and leaves that item to be redone.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { fsyncFolder, temporaryPathFor } from '../io/atomic-write.ts';
import { readLines } from './jsonl-lines.ts';

/** Whether an id's line is a result or an error (a later line for the same id wins). */
export type LineStatus = 'ok' | 'error';

export interface ResultsState {
  /** Every id with a line in the file. */
  done: Map<string, LineStatus>;
  /** Complete lines in the file (after any repair). */
  lines: number;
  /** The torn last line that was cut off: its line number and bytes; undefined when the file ended cleanly. */
  repaired?: { line: number; bytes: number };
}

/** A parsed result line's id and status, or undefined when the text is not a result line. */
export function parseResultLine(text: string): { id: string; status: LineStatus } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  if (typeof o.id !== 'string') return undefined;
  if (typeof o.error === 'string') return { id: o.id, status: 'error' };
  if (typeof o.text === 'string') return { id: o.id, status: 'ok' };
  return undefined;
}

/**
 * Reads the ids already in the results file (none if it does not exist). A torn last line (no
 * trailing newline, or not a result line) is cut off, the file truncated to the end of the line
 * before it; a bad line anywhere else is an error naming file:line (tfvlm did not write it).
 */
export async function readResults(file: string): Promise<ResultsState> {
  const done = new Map<string, LineStatus>();
  if (!fs.existsSync(file)) return { done, lines: 0 };
  let lines = 0;
  let bad: { line: number; start: number; end: number; why: string } | undefined;
  for await (const line of readLines(file)) {
    if (bad) {
      throw new TfvlmError(`${file}:${bad.line}: ${bad.why}; only the last line can be torn by a crash, so this file was not written by tfvlm batch alone: fix or remove the line`);
    }
    if (line.text.trim() === '' && line.terminated) continue;
    const parsed = line.terminated ? parseResultLine(line.text) : undefined;
    if (!parsed) {
      bad = { line: line.number, start: line.start, end: line.end, why: line.terminated ? 'not a result line ({"id", "text"} or {"id", "error"})' : 'no newline at the end' };
      continue;
    }
    done.set(parsed.id, parsed.status);
    lines++;
  }
  if (!bad) return { done, lines };
  // The torn tail: cut back to the start of that line, durably, before anything is appended.
  fs.truncateSync(file, bad.start);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { done, lines, repaired: { line: bad.line, bytes: bad.end - bad.start } };
}

/**
 * Rewrites the results file without the error lines of the ids `drop` selects (for --retry-errors,
 * so each id keeps one line), streamed into a temporary sibling that replaces the file in one rename.
 * Returns how many lines were dropped.
 */
export async function dropErrorLines(file: string, drop: (id: string) => boolean): Promise<number> {
  const tmp = temporaryPathFor(file);
  let dropped = 0;
  const fd = fs.openSync(tmp, 'w');
  try {
    for await (const line of readLines(file)) {
      const parsed = parseResultLine(line.text);
      if (parsed?.status === 'error' && drop(parsed.id)) {
        dropped++;
        continue;
      }
      writeWhole(fd, `${line.text}\n`);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  if (dropped === 0) {
    fs.rmSync(tmp, { force: true });
    return 0;
  }
  fs.renameSync(tmp, file);
  fsyncFolder(path.dirname(path.resolve(file)));
  return dropped;
}

/** Writes all of `text` (a short write goes on where it stopped). */
function writeWhole(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
}

/** Appends result lines, each in one write of its JSON and newline, so each is whole in the file before the next starts. */
export class ResultsWriter {
  private fd: number | undefined;

  private constructor(readonly file: string, fd: number) {
    this.fd = fd;
  }

  /** Opens (creating it and its folder if needed) `file` for appending. */
  static open(file: string): ResultsWriter {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    return new ResultsWriter(file, fs.openSync(file, 'a'));
  }

  /** One line: JSON.stringify escapes newlines inside strings, so the object is one line. */
  append(line: object): void {
    if (this.fd === undefined) throw new TfvlmError(`${this.file}: results writer is closed`);
    writeWhole(this.fd, `${JSON.stringify(line)}\n`);
  }

  /** fsyncs and closes the file. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}
