// `image_url.url` → the image's bytes, under the server's policy: data: URIs always (an image media
// type, base64 or percent-encoded); local paths and file:// URLs only when local files are allowed;
// http(s) only when remote images are allowed, fetched with a byte limit (reading stops past it), a
// time limit, and redirects followed by hand so none leads off http(s). The engine never fetches.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDataUri } from '../io/image.ts';
import { ApiError, badRequest } from './api-error.ts';
import type { ImageUrlRef } from './chat-request.ts';

export interface ImagePolicy {
  /** Local paths and file:// URLs (default false). */
  allowLocalFiles: boolean;
  /** http:// and https:// URLs (default false). */
  allowRemoteImages: boolean;
  /** Bytes of one image, however it comes (default 20 MiB). */
  maxImageBytes: number;
  /** Time to fetch one remote image, redirects included (default 10 s). */
  fetchTimeoutMs: number;
  /** Redirects followed for one remote image (default 3). */
  maxRedirects: number;
}

export const DEFAULT_IMAGE_POLICY: ImagePolicy = {
  allowLocalFiles: false,
  allowRemoteImages: false,
  maxImageBytes: 20 * 1024 * 1024,
  fetchTimeoutMs: 10_000,
  maxRedirects: 3,
};

/** Media types of data: URIs, those tfvlm decodes (the bytes' format is then read from their header). */
const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/jpg', 'image/gif', 'image/bmp', 'image/x-ms-bmp', 'image/webp'];

const mib = (n: number) => `${+(n / 1024 / 1024).toFixed(2)} MiB`;

/** The bytes of one image_url; every refusal is a 400 naming ref.param. `signal`: the client went away. */
export async function imageBytes(ref: ImageUrlRef, policy: ImagePolicy, signal?: AbortSignal): Promise<Uint8Array> {
  const { url, param } = ref;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'data') return dataUriBytes(url, param, policy);
  if (scheme === 'http' || scheme === 'https') {
    if (!policy.allowRemoteImages) throw badRequest(param, 'http(s) image URLs are refused; send the image as a data: URI, or start the server with --allow-remote-images', 'url_not_allowed');
    return fetchBytes(url, param, policy, signal);
  }
  if (scheme === undefined || scheme === 'file') {
    if (!policy.allowLocalFiles) throw badRequest(param, 'local files are refused; send the image as a data: URI, or start the server with --allow-local-files', 'url_not_allowed');
    let file: string;
    try {
      file = scheme === 'file' ? fileURLToPath(url) : path.resolve(url);
    } catch (e) {
      throw badRequest(param, `not a local file URL (${(e as Error).message})`);
    }
    return fileBytes(file, param, policy);
  }
  throw badRequest(param, `unsupported URL scheme "${scheme}:"; expected data:, http(s):, file: or a path`);
}

function tooLarge(param: string, bytes: number | string, policy: ImagePolicy): ApiError {
  return badRequest(param, `the image is ${typeof bytes === 'number' ? `${bytes} bytes` : bytes}, over the ${mib(policy.maxImageBytes)} limit for one image`, 'image_too_large');
}

function dataUriBytes(uri: string, param: string, policy: ImagePolicy): Uint8Array {
  const comma = uri.indexOf(',');
  if (comma < 0) throw badRequest(param, 'malformed data: URI (no comma)');
  const meta = uri.slice(5, comma).toLowerCase();
  const mediaType = meta.split(';')[0]!.trim();
  if (!IMAGE_MEDIA_TYPES.includes(mediaType)) {
    throw badRequest(param, `data: URI media type ${mediaType ? `"${mediaType}"` : '(none)'} is not an image type tfvlm reads (${IMAGE_MEDIA_TYPES.join(', ')})`);
  }
  // base64 makes 3 bytes of 4 characters; refuse before decoding what could not fit anyway.
  if (((uri.length - comma - 1) * 3) / 4 > policy.maxImageBytes + 3) throw tooLarge(param, `about ${Math.floor(((uri.length - comma - 1) * 3) / 4)} bytes`, policy);
  let bytes: Uint8Array;
  try {
    bytes = parseDataUri(uri);
  } catch (e) {
    throw badRequest(param, (e as Error).message);
  }
  if (bytes.length === 0) throw badRequest(param, 'the data: URI holds no bytes');
  if (bytes.length > policy.maxImageBytes) throw tooLarge(param, bytes.length, policy);
  return bytes;
}

async function fileBytes(file: string, param: string, policy: ImagePolicy): Promise<Uint8Array> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw badRequest(param, code === 'ENOENT' ? `no such file: ${file}` : `cannot open ${file} (${code ?? (e as Error).message})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw badRequest(param, `${file} is not a file`);
    if (stat.size > policy.maxImageBytes) throw tooLarge(param, stat.size, policy);
    // Read at most the limit + 1, whatever the file became since the stat.
    const buf = new Uint8Array(Math.min(stat.size, policy.maxImageBytes) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    if (n > policy.maxImageBytes) throw tooLarge(param, `more than ${policy.maxImageBytes} bytes`, policy);
    return buf.subarray(0, n);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw badRequest(param, `cannot read ${file} (${(e as Error).message})`);
  } finally {
    await handle.close();
  }
}

async function fetchBytes(url: string, param: string, policy: ImagePolicy, clientSignal?: AbortSignal): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(policy.fetchTimeoutMs);
  const signal = clientSignal ? AbortSignal.any([timeout, clientSignal]) : timeout;
  const failed = (e: unknown): ApiError => {
    if (e instanceof ApiError) return e;
    if (timeout.aborted) return badRequest(param, `fetching the image took longer than ${policy.fetchTimeoutMs} ms`, 'image_fetch_timeout');
    if (clientSignal?.aborted) return new ApiError(499, 'the client closed the request');
    const cause = (e as { cause?: { message?: string; code?: string } }).cause;
    return badRequest(param, `could not fetch the image (${cause?.code ?? cause?.message ?? (e as Error).message})`, 'image_fetch_failed');
  };
  try {
    let current = new URL(url);
    for (let redirects = 0; ; redirects++) {
      const res = await fetch(current, { redirect: 'manual', signal, headers: { accept: 'image/*' } });
      if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
        await res.body?.cancel();
        if (redirects >= policy.maxRedirects) throw badRequest(param, `more than ${policy.maxRedirects} redirects`, 'image_fetch_failed');
        const next = new URL(res.headers.get('location')!, current);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw badRequest(param, `redirected to a ${next.protocol} URL; only http(s) is followed`, 'image_fetch_failed');
        current = next;
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw badRequest(param, `fetching the image answered HTTP ${res.status}`, 'image_fetch_failed');
      }
      const declared = Number(res.headers.get('content-length'));
      if (declared > policy.maxImageBytes) {
        await res.body?.cancel();
        throw tooLarge(param, declared, policy);
      }
      return await readLimited(res, param, policy);
    }
  } catch (e) {
    throw failed(e);
  }
}

/** The body, refused as soon as it passes the limit (the rest is never read). */
async function readLimited(res: Response, param: string, policy: ImagePolicy): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > policy.maxImageBytes) {
      await reader.cancel();
      throw tooLarge(param, `more than ${policy.maxImageBytes} bytes`, policy);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
