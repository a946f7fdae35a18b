// The file access the engine does, as one small interface with two implementations: host-node.ts
// (node:fs, the default under Node) and host-browser.ts (fetch of a model folder by URL, HTTP range
// reads for safetensors, the Cache API). Loading a model (config, tokenizer files, chat template,
// generation and processor configs, safetensors headers and tensor bytes) and the image codecs'
// wasm files go through host(); nothing else on that path touches the file system.
//
// A location is a path under Node and a URL in the browser; the host joins and splits them. Reads are
// synchronous because the loaders are (positioned reads into kernel arenas): the browser host serves
// them from what it fetched before the load began (BrowserHost.mount). Errors keep Node's shape:
// a missing file throws an Error whose `code` is 'ENOENT', a folder read as a file 'EISDIR'.
import { defaultHost } from './host-default.ts';

export interface HostStat {
  kind: 'file' | 'directory';
  /** Bytes (files). */
  size: number;
}

/** A file opened for positioned reads. */
export interface RandomAccessFile {
  readonly size: number;
  /** Reads up to dst.length bytes at `position` into dst; returns how many (0 at the end). */
  read(dst: Uint8Array, position: number): number;
  close(): void;
}

/** A file being written: bytes appended in order, then committed into place (or aborted). */
export interface FileSink {
  write(bytes: Uint8Array): void;
  /** Makes the file durable and puts it at its path. */
  commit(): void;
  /** Drops what was written (after a failure). */
  abort(): void;
}

export interface Host {
  /** 'node' or 'browser'. */
  readonly name: string;
  /** `dir` joined with names (node:path.join under Node, URL resolution in the browser). */
  join(dir: string, ...names: string[]): string;
  /** The folder holding `location`. */
  dirname(location: string): string;
  /** `location` made absolute against `base` (node:path.resolve; URL resolution in the browser). */
  resolve(base: string, location: string): string;
  /** Where relative locations start: the working directory (Node), the page's URL (browser). */
  cwd(): string;
  /** A URL (e.g. `new URL('…', import.meta.url)`) as this host's location: a path (Node), the URL itself (browser). */
  fromUrl(url: URL): string;
  /** What is at `location`, or undefined when nothing is; other failures (permissions) throw the host's error. */
  stat(location: string): HostStat | undefined;
  exists(location: string): boolean;
  readBytes(location: string): Uint8Array;
  readText(location: string): string;
  /** readText, without blocking where the host can (fs.promises under Node). */
  readTextAsync(location: string): Promise<string>;
  /** The names in a folder. */
  list(dir: string): string[];
  open(location: string): RandomAccessFile;
  /**
   * A file to write at `location`, made durable and renamed into place on commit (Node); hosts that
   * cannot write throw a TfvlmError saying so.
   */
  create(location: string): FileSink;
  /**
   * A file shipped in an npm package, e.g. '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm' (resolved
   * from node_modules under Node; fetched from the bundle's asset folder in the browser).
   */
  readPackageAsset(specifier: string): Promise<Uint8Array<ArrayBuffer>>;
}

let current: Host | undefined;

/** The host file access goes through: the one setHost installed, else the build's default (Node's under Node). */
export function host(): Host {
  return current ?? defaultHost();
}

/** Installs `h` (undefined: back to the default); returns the one it replaces. */
export function setHost(h: Host | undefined): Host | undefined {
  const previous = current;
  current = h;
  return previous;
}

/** An Error shaped like Node's fs errors (`code`), so callers handle both hosts alike. */
export function hostError(code: 'ENOENT' | 'EISDIR' | 'EIO' | 'ENOTSUP', message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}
