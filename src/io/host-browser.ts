// The browser host: a model folder fetched by URL. The loaders read synchronously (positioned reads
// into kernel arenas), so a folder is fetched before a load reads it: mount() gets the folder's small
// files whole (configs, tokenizer, chat template; a 404 means "not there") and every safetensors
// file in ranges (HTTP `Range: bytes=a-b`, CHUNK_BYTES each), never as one response. Ranges are
// kept in the Cache API when the page has it, so a second visit reads no weights from the network.
// A safetensors file's bytes are dropped once the loader closes it (the weights then live in the
// model), so a load holds the checkpoint in memory once, for its duration.
//
// Locations are absolute URLs; a folder is a URL ending in '/'. Package assets (the image codecs'
// .wasm) are fetched from `assetBase`, by default the folder of the bundle (dist-web/).
import { TfvlmError } from '../errors.ts';
import { hostError, type FileSink, type Host, type HostStat, type RandomAccessFile } from './host.ts';

/** The files of a model folder that loading may read, besides its safetensors. */
export const MODEL_FOLDER_FILES = [
  'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'added_tokens.json', 'chat_template.json', 'chat_template.jinja', 'preprocessor_config.json', 'processor_config.json',
  'video_preprocessor_config.json', 'spiece.model', 'model.safetensors.index.json', 'adapter_config.json',
];

/** Bytes per range request (and per Cache API entry). */
export const CHUNK_BYTES = 32 << 20;
const CACHE_NAME = 'tfvlm-model-ranges-v1';

export interface MountOptions {
  /** Keep fetched ranges in the Cache API and read them from there (default true when the page has `caches`). */
  cache?: boolean;
  /** Bytes of safetensors fetched so far (from the network or the cache) and in all. */
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
  /** Bytes per range request (default CHUNK_BYTES). */
  chunkBytes?: number;
}

/** A safetensors file of a mounted folder: its size and the ranges fetched, CHUNK_BYTES each. */
interface RemoteFile {
  url: string;
  size: number;
  /** The server's ETag or Last-Modified, so a cached range of an older version is not reused. */
  version: string;
  chunkBytes: number;
  chunks: (Uint8Array | undefined)[];
  openCount: number;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function httpError(url: string, res: Response, what: string): Error {
  if (res.status === 404) return hostError('ENOENT', `${url}: not found (HTTP 404)`);
  return new TfvlmError(`${url}: ${what} failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
}

/** start and total of a `Content-Range: bytes a-b/total` header, or undefined. */
function contentRange(res: Response): { start: number; end: number; total: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  return m ? { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) } : undefined;
}

export class BrowserHost implements Host {
  readonly name = 'browser';
  /** Where readPackageAsset fetches from: the bundle's folder unless set. */
  assetBase: string = new URL('./', import.meta.url).href;
  private readonly files = new Map<string, Uint8Array>();
  private readonly remote = new Map<string, RemoteFile>();
  private readonly folders = new Map<string, Set<string>>();

  join(dir: string, ...names: string[]): string {
    let url = dir;
    for (const n of names) {
      const clean = n.replace(/^\/+/, '');
      url = withSlash(url) + clean;
    }
    return new URL(url).href;
  }

  dirname(location: string): string {
    return new URL('.', location.endsWith('/') ? location.slice(0, -1) : location).href.replace(/\/$/, '');
  }

  resolve(base: string, location: string): string {
    return new URL(location, withSlash(base)).href;
  }

  cwd(): string {
    const here = (globalThis as { location?: { href: string } }).location?.href;
    return here ? new URL('.', here).href : 'http://localhost/';
  }

  fromUrl(url: URL): string {
    return url.href;
  }

  stat(location: string): HostStat | undefined {
    const url = this.normal(location);
    const small = this.files.get(url);
    if (small) return { kind: 'file', size: small.length };
    const r = this.remote.get(url);
    if (r) return { kind: 'file', size: r.size };
    if (this.folders.has(withSlash(url))) return { kind: 'directory', size: 0 };
    return undefined;
  }

  exists(location: string): boolean {
    return this.stat(location) !== undefined;
  }

  readBytes(location: string): Uint8Array {
    const url = this.normal(location);
    const small = this.files.get(url);
    if (small) return small;
    if (this.folders.has(withSlash(url))) throw hostError('EISDIR', `${url} is a folder`);
    if (this.remote.has(url)) throw hostError('EIO', `${url}: a safetensors file is read in ranges (open it), not whole`);
    throw this.notFetched(url);
  }

  readText(location: string): string {
    return new TextDecoder().decode(this.readBytes(location));
  }

  async readTextAsync(location: string): Promise<string> {
    const url = this.normal(location);
    if (this.files.has(url) || this.folders.has(withSlash(url))) return this.readText(url);
    const res = await fetch(url);
    if (!res.ok) throw httpError(url, res, 'GET');
    return res.text();
  }

  list(dir: string): string[] {
    const names = this.folders.get(withSlash(this.normal(dir)));
    if (!names) throw this.notFetched(dir);
    return [...names].sort();
  }

  open(location: string): RandomAccessFile {
    const url = this.normal(location);
    const r = this.remote.get(url);
    if (!r) {
      if (this.files.has(url)) return memoryFile(this.files.get(url)!);
      if (this.folders.has(withSlash(url))) throw hostError('EISDIR', `${url} is a folder`);
      throw this.notFetched(url);
    }
    if (r.chunks.some((c, i) => c === undefined && i * r.chunkBytes < r.size)) {
      throw hostError('EIO', `${url}: its bytes were released after an earlier load; mount the folder again`);
    }
    r.openCount++;
    let open = true;
    return {
      size: r.size,
      read(dst, position) {
        if (!open) throw new Error('file is closed');
        let done = 0;
        while (done < dst.length && position + done < r.size) {
          const at = position + done;
          const i = Math.floor(at / r.chunkBytes);
          const chunk = r.chunks[i]!;
          const from = at - i * r.chunkBytes;
          const n = Math.min(dst.length - done, chunk.length - from);
          dst.set(chunk.subarray(from, from + n), done);
          done += n;
        }
        return done;
      },
      close() {
        if (!open) return;
        open = false;
        // The last reader gone: the weights are in the model now; drop the fetched bytes.
        if (--r.openCount === 0) r.chunks.fill(undefined);
      },
    };
  }

  create(location: string): FileSink {
    throw new TfvlmError(`cannot write ${location}: the browser host reads model folders, it does not write files`);
  }

  async readPackageAsset(specifier: string): Promise<Uint8Array<ArrayBuffer>> {
    const url = new URL(specifier.split('/').pop()!, withSlash(this.assetBase)).href;
    const res = await fetch(url);
    if (!res.ok) throw httpError(url, res, `GET of ${specifier}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  /**
   * Fetches a model folder by URL: its small files whole (those absent answer 404), its safetensors
   * (model.safetensors, or the shards model.safetensors.index.json names) in ranges. Returns the
   * folder's URL (ending in '/'), the location to load from.
   */
  async mount(folderUrl: string, options: MountOptions = {}): Promise<string> {
    const dir = withSlash(new URL(folderUrl, this.cwd()).href);
    const names = new Set<string>();
    const got = await Promise.all(MODEL_FOLDER_FILES.map(async (name) => {
      const url = dir + name;
      const res = await fetch(url, { signal: options.signal });
      if (res.status === 404) return undefined;
      if (!res.ok) throw httpError(url, res, 'GET');
      return [name, new Uint8Array(await res.arrayBuffer())] as const;
    }));
    for (const g of got) {
      if (!g) continue;
      this.files.set(dir + g[0], g[1]);
      names.add(g[0]);
    }
    if (!names.has('config.json')) {
      throw new TfvlmError(`${dir}config.json: not found (HTTP 404): ${dir} is not a model folder URL`);
    }
    let shards = ['model.safetensors'];
    const index = this.files.get(`${dir}model.safetensors.index.json`);
    if (index) {
      let map: unknown;
      try {
        map = (JSON.parse(new TextDecoder().decode(index)) as { weight_map?: unknown }).weight_map;
      } catch (e) {
        throw new TfvlmError(`${dir}model.safetensors.index.json: not valid JSON (${(e as Error).message})`);
      }
      if (typeof map !== 'object' || map === null) throw new TfvlmError(`${dir}model.safetensors.index.json: no weight_map object`);
      shards = [...new Set(Object.values(map as Record<string, unknown>).filter((v): v is string => typeof v === 'string'))];
    }
    const useCache = (options.cache ?? true) && typeof caches !== 'undefined';
    const cache = useCache ? await caches.open(CACHE_NAME) : undefined;
    const files: RemoteFile[] = [];
    for (const s of shards) files.push(await this.probe(dir + s, options.chunkBytes ?? CHUNK_BYTES, options.signal));
    const total = files.reduce((a, f) => a + f.size, 0);
    let loaded = 0;
    options.onProgress?.(0, total);
    for (const f of files) {
      for (let i = 0; i * f.chunkBytes < f.size; i++) {
        const start = i * f.chunkBytes;
        const end = Math.min(f.size, start + f.chunkBytes); // exclusive
        f.chunks[i] = await this.fetchRange(f, start, end, cache, options.signal);
        loaded += end - start;
        options.onProgress?.(loaded, total);
      }
      this.remote.set(f.url, f);
      names.add(f.url.slice(dir.length));
    }
    this.folders.set(dir, names);
    return dir;
  }

  /** Whether `folderUrl` is mounted with every safetensors byte still held (not yet read by a load). */
  isMounted(folderUrl: string): boolean {
    const dir = withSlash(new URL(folderUrl, this.cwd()).href);
    if (!this.folders.has(dir)) return false;
    for (const [url, r] of this.remote) {
      if (url.startsWith(dir) && r.chunks.some((c, i) => c === undefined && i * r.chunkBytes < r.size)) return false;
    }
    return true;
  }

  /** Drops what mount fetched for a folder. */
  unmount(folderUrl: string): void {
    const dir = withSlash(new URL(folderUrl, this.cwd()).href);
    for (const m of [this.files, this.remote]) for (const k of [...m.keys()]) if (k.startsWith(dir)) m.delete(k);
    this.folders.delete(dir);
  }

  /** The file's size, from a one-range request (`bytes=0-7`); refuses servers without range support. */
  private async probe(url: string, chunkBytes: number, signal: AbortSignal | undefined): Promise<RemoteFile> {
    const res = await fetch(url, { headers: { Range: 'bytes=0-7' }, signal });
    if (res.status === 404) throw new TfvlmError(`${url}: not found (HTTP 404)`);
    if (res.status === 200) {
      void res.body?.cancel();
      throw new TfvlmError(`${url}: the server ignored the HTTP Range header (answered 200, not 206); serve the model folder from a server with range requests (every static file server does)`);
    }
    if (res.status !== 206) throw httpError(url, res, 'range request');
    const range = contentRange(res);
    await res.arrayBuffer();
    if (!range) throw new TfvlmError(`${url}: a 206 answer without a Content-Range "bytes a-b/size" header`);
    const version = res.headers.get('etag') ?? res.headers.get('last-modified') ?? '';
    return { url, size: range.total, version, chunkBytes, chunks: [], openCount: 0 };
  }

  private async fetchRange(f: RemoteFile, start: number, end: number, cache: Cache | undefined, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const key = `${f.url}${f.url.includes('?') ? '&' : '?'}tfvlm-range=${start}-${end - 1}&size=${f.size}&version=${encodeURIComponent(f.version)}`;
    const hit = await cache?.match(key);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (bytes.length === end - start) return bytes;
    }
    const res = await fetch(f.url, { headers: { Range: `bytes=${start}-${end - 1}` }, signal });
    if (res.status !== 206) {
      void res.body?.cancel();
      if (res.status === 200) throw new TfvlmError(`${f.url}: the server ignored the HTTP Range header for bytes ${start}-${end - 1} (answered 200, not 206)`);
      throw httpError(f.url, res, `range request for bytes ${start}-${end - 1}`);
    }
    const range = contentRange(res);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (!range || range.start !== start || range.total !== f.size || bytes.length !== end - start) {
      throw new TfvlmError(`${f.url}: asked for bytes ${start}-${end - 1} of ${f.size}, got ${res.headers.get('content-range') ?? 'no Content-Range'} (${bytes.length} bytes); did the file change?`);
    }
    if (cache) {
      try {
        await cache.put(key, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
      } catch {
        // A full or unavailable cache only costs a refetch next time.
      }
    }
    return bytes;
  }

  private normal(location: string): string {
    return new URL(location, this.cwd()).href;
  }

  private notFetched(location: string): Error {
    return hostError('ENOENT', `${location}: not fetched (BrowserHost.mount fetches a model folder's files; this one is not among them or is absent)`);
  }
}

/** A whole in-memory file as a RandomAccessFile. */
function memoryFile(bytes: Uint8Array): RandomAccessFile {
  return {
    size: bytes.length,
    read(dst, position) {
      const n = Math.max(0, Math.min(dst.length, bytes.length - position));
      dst.set(bytes.subarray(position, position + n));
      return n;
    },
    close() {},
  };
}

/** Deletes every range the browser host kept in the Cache API. */
export async function clearModelCache(): Promise<boolean> {
  return typeof caches !== 'undefined' ? caches.delete(CACHE_NAME) : false;
}

export const browserHost = new BrowserHost();
