import path from 'node:path';
import { promises as fs } from 'node:fs';
import { TfvlmError } from '../../errors.ts';
import { blobPath, isFile, linkSnapshotFile, markMissing, parseHubId, tagCacheDir, repoFolder, snapshotDir, writeRef, type HubRef } from './cache.ts';
import { fetchRevision, hubError, hubFetch, hubHeaders, resolveUrl, type RepoFile } from './http.ts';
import { withFileLock } from './lock.ts';
import { MODEL_FILES, selectModelFiles, shardsOfIndex, WEIGHTS_INDEX_FILE } from './model-files.ts';
import { resolveHubOptions, type HubOptions } from './options.ts';
import { ProgressTracker } from './progress.ts';
import { downloadBlob, type Job } from './transfer.ts';

export interface DownloadResult {
  repoId: string;
  revision: string;
  commit: string;
  /** The snapshot folder: snapshots/<commit>/ in the cache, holding links to the blobs. */
  dir: string;
  /** Repo paths of every file the snapshot now holds for tfvlm. */
  files: string[];
  /** Bytes received over the network by this call. */
  bytesDownloaded: number;
}

/**
 * Fetch the files tfvlm needs from `id` (`org/name` or `org/name@revision`) into the Hugging Face cache,
 * laid out as huggingface_hub does (blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>, refs/<revision>),
 * so transformers and huggingface-cli read it as their own and vice versa.
 */
export async function downloadModel(id: string, options: HubOptions = {}): Promise<DownloadResult> {
  const ref = parseHubId(id, options.revision);
  const opts = resolveHubOptions(options);
  if (opts.offline) {
    throw new TfvlmError(`cannot download ${ref.repoId}@${ref.revision}: offline mode is on (HF_HUB_OFFLINE=1)`);
  }
  const client = opts.client;
  const listing = await fetchRevision(client, ref, opts.metadataTimeoutMs);
  const repoDir = repoFolder(opts.cacheDir, ref.repoId);
  await tagCacheDir(opts.cacheDir);
  await writeRef(repoDir, ref.revision, listing.commit);
  const job: Job = { ref, commit: listing.commit, repoDir, client, opts, received: 0 };

  const byPath = new Map(listing.files.map((f) => [f.path, f]));
  const where = `${ref.repoId}@${ref.revision} at ${client.endpoint}`;
  const files = selectModelFiles([...byPath.keys()], where);
  // lets transformers, offline, tell "absent from the repo" from "not downloaded"
  await markMissing(repoDir, job.commit, MODEL_FILES.filter((f) => !byPath.has(f)));
  if (files.includes(WEIGHTS_INDEX_FILE)) {
    const index = await ensureFile(job, byPath.get(WEIGHTS_INDEX_FILE)!, undefined);
    for (const shard of shardsOfIndex(await fs.readFile(index, 'utf8'), `${WEIGHTS_INDEX_FILE} of ${where}`)) {
      if (!byPath.has(shard)) throw new TfvlmError(`${WEIGHTS_INDEX_FILE} of ${where} names shard "${shard}", which the repo does not have`);
      if (!files.includes(shard)) files.push(shard);
    }
  }

  const entries = files.map((f) => byPath.get(f)!);
  const sizes = entries.map((e) => e.size);
  const total = sizes.every((s) => s !== undefined) ? sizes.reduce((a: number, s) => a + s!, 0) : undefined;
  const tracker = new ProgressTracker(ref.repoId, total, opts.onProgress);
  for (const entry of entries) await ensureFile(job, entry, tracker);
  if (job.received > 0) tracker.finish();

  return { repoId: ref.repoId, revision: ref.revision, commit: job.commit, dir: snapshotDir(repoDir, job.commit), files, bytesDownloaded: job.received };
}

/** Puts one repo file in the snapshot (download, or link an existing blob) and returns its snapshot path. */
async function ensureFile(job: Job, entry: RepoFile, tracker: ProgressTracker | undefined): Promise<string> {
  const pointer = path.join(snapshotDir(job.repoDir, job.commit), ...entry.path.split('/'));
  if (await isFile(pointer)) {
    tracker?.skip(entry.size ?? 0);
    return pointer;
  }
  const { etag, size } = entry.etag ? { etag: entry.etag, size: entry.size } : await fetchFileMetadata(job, entry.path);
  if (!/^[\w.-]+$/.test(etag) || etag === '.' || etag === '..') {
    throw new TfvlmError(`${entry.path} of ${job.ref.repoId}: the hub's etag "${etag}" is not usable as a blob name`);
  }
  const blob = blobPath(job.repoDir, etag);
  if (await isFile(blob)) {
    tracker?.skip(size ?? 0);
  } else {
    await fs.mkdir(path.dirname(blob), { recursive: true });
    // file_download.py locks <cache>/.locks/models--org--name/<etag>.lock the same way
    const lock = path.join(job.opts.cacheDir, '.locks', path.basename(job.repoDir), `${etag}.tfvlm.lock`);
    await withFileLock(lock, async () => {
      if (await isFile(blob)) tracker?.skip(size ?? 0); // another process finished it while we waited
      else await downloadBlob(job, entry.path, blob, etag, size, tracker);
    });
  }
  return linkSnapshotFile(job.repoDir, job.commit, entry.path, etag);
}

// file_download.py: get_hf_file_metadata — HEAD without following redirects; X-Linked-* describe the LFS target
async function fetchFileMetadata(job: Job, file: string): Promise<{ etag: string; size?: number }> {
  const url = resolveUrl(job.client, job.ref.repoId, job.commit, file);
  const res = await hubFetch(job.client, url, {
    method: 'HEAD',
    redirect: 'manual',
    headers: hubHeaders(job.client, { 'Accept-Encoding': 'identity' }),
    signal: AbortSignal.timeout(job.opts.metadataTimeoutMs),
  }, file);
  if (res.status >= 400) throw hubError(res, job.client, job.ref, file);
  const rawEtag = res.headers.get('x-linked-etag') ?? res.headers.get('etag');
  if (!rawEtag) throw new TfvlmError(`${url}: the hub sent no ETag, so the download cannot be checked`);
  // a redirect's own Content-Length is that of the redirect body, not of the file
  const sizeHeader = res.headers.get('x-linked-size') ?? (res.status >= 300 ? null : res.headers.get('content-length'));
  const size = sizeHeader === null ? NaN : Number(sizeHeader);
  return { etag: normalizeEtag(rawEtag), size: Number.isSafeInteger(size) && size >= 0 ? size : undefined };
}

// file_download.py: _normalize_etag — W/"x" and "x" → x
export const normalizeEtag = (etag: string) => etag.replace(/^W\//, '').replace(/^"|"$/g, '');
