import { promises as fs } from 'node:fs';
import { TfvlmError } from '../../errors.ts';
import type { HubRef } from './cache.ts';
import { hubError, hubFetch, hubHeaders, resolveUrl, type HubClient } from './http.ts';
import { digestForEtag, etagKind } from './integrity.ts';
import type { ResolvedHubOptions } from './options.ts';
import type { ProgressTracker } from './progress.ts';

/** What one download needs to know: where the repo lives in the cache and on the hub. */
export interface Job {
  ref: HubRef;
  commit: string;
  repoDir: string;
  client: HubClient;
  opts: ResolvedHubOptions;
  received: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

/** `bytes START-END/TOTAL` → START and TOTAL. */
function parseContentRange(header: string | null): { start?: number; total?: number } {
  const m = header?.match(/^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/);
  if (!m) return {};
  return { start: m[1] !== undefined ? Number(m[1]) : undefined, total: m[2] !== '*' ? Number(m[2]) : undefined };
}

/** Aborts a request when no bytes arrive for `ms`; `touch()` after every chunk. */
function idleTimeout(ms: number) {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${ms / 1000} s`)), ms);
  };
  touch();
  return { signal: controller.signal, touch, clear: () => clearTimeout(timer) };
}

/**
 * How a response to a (possibly ranged) GET continues the partial file of `have` bytes:
 * 'append' (206 from `have`), 'restart' (200: the whole file again), 'complete' (416, the partial file is whole),
 * 'discard' (416, the partial file is longer than the file: drop it and ask again).
 */
async function acceptRange(res: Response, have: number, what: string, job: Job, file: string): Promise<'append' | 'restart' | 'complete' | 'discard'> {
  if (res.status === 416 && have > 0) {
    await res.body?.cancel();
    return parseContentRange(res.headers.get('content-range')).total === have ? 'complete' : 'discard';
  }
  if (!res.ok) throw hubError(res, job.client, job.ref, file);
  if (res.status !== 206) return 'restart';
  const range = parseContentRange(res.headers.get('content-range'));
  if (range.start !== have) {
    await res.body?.cancel();
    throw new TfvlmError(`${what}: asked for bytes from ${have} but the server sent range "${res.headers.get('content-range')}"`);
  }
  return 'append';
}

/** The file's full length as the response states it (X-Linked-Size, Content-Range total, or Content-Length of a 200). */
function announcedSize(res: Response): number | undefined {
  const header = res.headers.get('x-linked-size') ?? (res.status === 206 ? parseContentRange(res.headers.get('content-range')).total : res.headers.get('content-length'));
  const n = header === null || header === undefined ? NaN : Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Streams a file into <blob>.incomplete, resuming with a Range request from what is already there (left by an earlier
 * run, or by a connection cut mid-body), checks size and hash against the etag, then moves it to <blob>.
 */
// file_download.py: _download_to_tmp_and_move + http_get (resume_size, retries on a cut stream)
export async function downloadBlob(
  job: Job,
  file: string,
  blob: string,
  etag: string,
  expectedSize: number | undefined,
  tracker: ProgressTracker | undefined,
): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  const url = resolveUrl(job.client, job.ref.repoId, job.commit, file);
  const what = `${file} of ${job.ref.repoId}@${job.commit}`;
  let have = await fileSize(incomplete);
  if (expectedSize !== undefined && have > expectedSize) {
    await fs.rm(incomplete, { force: true });
    have = 0;
  }
  await (await fs.open(incomplete, 'a')).close(); // exists even for an empty file
  tracker?.startFile(file, expectedSize, have);
  let retriesLeft = job.opts.maxRetries;
  let size = expectedSize;

  for (;;) {
    if (size !== undefined && have === size) break;
    const headers = hubHeaders(job.client, { 'Accept-Encoding': 'identity' });
    if (have > 0) headers.Range = `bytes=${have}-`;
    const idle = idleTimeout(job.opts.idleTimeoutMs);
    let cut: unknown;
    try {
      let res: Response;
      try {
        res = await hubFetch(job.client, url, { headers, signal: idle.signal }, what);
      } catch (e) {
        // the hub went away between two attempts: retry like a cut stream, unless nothing came yet
        if (have === 0) throw e;
        cut = e;
      }
      if (cut === undefined) {
        const how = await acceptRange(res!, have, what, job, file);
        if (how === 'complete') break;
        if (how === 'restart' || how === 'discard') {
          await fs.truncate(incomplete, 0);
          tracker?.advance(-have);
          have = 0;
          if (how === 'discard') continue;
        }
        size ??= announcedSize(res!);
        const out = await fs.open(incomplete, 'a');
        try {
          const reader = res!.body!.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            idle.touch();
            if (size !== undefined && have + value.byteLength > size) {
              await reader.cancel();
              await fs.rm(incomplete, { force: true });
              throw new TfvlmError(`${what}: the server sent more than the ${size} bytes the hub announced; the partial download was removed`);
            }
            await out.write(value);
            have += value.byteLength;
            job.received += value.byteLength;
            tracker?.advance(value.byteLength);
            retriesLeft = job.opts.maxRetries;
          }
        } catch (e) {
          if (e instanceof TfvlmError) throw e;
          cut = e;
        } finally {
          await out.close();
        }
      }
    } finally {
      idle.clear();
    }
    if (cut === undefined && (size === undefined || have === size)) break;
    if (retriesLeft-- <= 0) {
      const reason = cut !== undefined ? ((cut as { cause?: Error }).cause?.message ?? (cut as Error).message) : 'the body ended early';
      throw new TfvlmError(
        `${what}: the transfer stopped at byte ${have}${size !== undefined ? ` of ${size}` : ''} (${reason}) ` +
          `after ${job.opts.maxRetries} attempts to resume; run again to resume from ${incomplete}`,
      );
    }
    await sleep(job.opts.retryDelayMs);
  }

  await verifyBlob(incomplete, what, etag, expectedSize ?? size);
  await fs.rename(incomplete, blob);
}

/** Size and content hash against what the hub announced; a mismatch removes the bytes and names the file. */
async function verifyBlob(incomplete: string, what: string, etag: string, expectedSize: number | undefined): Promise<void> {
  const actualSize = await fileSize(incomplete);
  if (expectedSize !== undefined && actualSize !== expectedSize) {
    await fs.rm(incomplete, { force: true });
    throw new TfvlmError(`${what}: corrupted download, ${actualSize} bytes instead of ${expectedSize}; the bad file was removed, run again`);
  }
  const digest = await digestForEtag(incomplete, actualSize, etag);
  if (digest !== undefined && digest !== etag) {
    await fs.rm(incomplete, { force: true });
    const kind = etagKind(etag) === 'sha256' ? 'sha256' : 'git blob sha1';
    throw new TfvlmError(`${what}: corrupted download, its ${kind} is ${digest} but the hub says ${etag}; the bad file was removed, run again`);
  }
}
