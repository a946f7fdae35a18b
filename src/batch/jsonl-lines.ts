// A text file read line by line, a chunk at a time (never whole), with each line's byte offsets: what
// the batch input (a JSONL of any size) and the results file (whose torn tail is cut at a line start)
// need.
import fs from 'node:fs/promises';

export interface FileLine {
  /** 1-based line number. */
  number: number;
  /** The line without its newline (and without a trailing '\r', so CRLF files read the same). */
  text: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line: past its '\n', or the end of the file for an unterminated last line. */
  end: number;
  /** Whether the line ends with '\n' (only a file's last line may not). */
  terminated: boolean;
}

const NEWLINE = 0x0a;

/** The lines of `file`, in order, read `chunkBytes` at a time. A UTF-8 byte-order mark on line 1 is dropped. */
export async function* readLines(file: string, chunkBytes = 1 << 16): AsyncGenerator<FileLine> {
  const handle = await fs.open(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(chunkBytes);
    let pending: Buffer[] = [];
    let lineStart = 0;
    let position = 0;
    let number = 0;
    const line = (bytes: Buffer, end: number, terminated: boolean): FileLine => {
      let text = bytes.toString('utf8');
      if (number === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.endsWith('\r')) text = text.slice(0, -1);
      return { number: ++number, text, start: lineStart, end, terminated };
    };
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunkBytes, position);
      if (bytesRead === 0) break;
      let from = 0;
      for (let nl = chunk.indexOf(NEWLINE, from); nl >= 0 && nl < bytesRead; nl = chunk.indexOf(NEWLINE, from)) {
        pending.push(chunk.subarray(from, nl));
        const end = position + nl + 1;
        const next = line(Buffer.concat(pending), end, true);
        pending = [];
        lineStart = end;
        from = nl + 1;
        yield next;
      }
      // The chunk buffer is reused by the next read: keep a copy of the unfinished line.
      if (from < bytesRead) pending.push(Buffer.from(chunk.subarray(from, bytesRead)));
      position += bytesRead;
    }
    if (pending.length > 0) yield line(Buffer.concat(pending), position, false);
  } finally {
    await handle.close();
  }
}
