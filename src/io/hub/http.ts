import { TfvlmError } from '../../errors.ts';
import type { HubRef } from './cache.ts';

/** Where and as whom to talk to the hub. */
export interface HubClient {
  endpoint: string;
  token?: string;
}

/** One file of a repo at a commit, as the hub lists it. `etag` is the sha256 for LFS files, else the git blob sha1. */
export interface RepoFile {
  path: string;
  size?: number;
  etag?: string;
  lfs: boolean;
}

export interface RepoRevision {
  commit: string;
  files: RepoFile[];
}

export function hubHeaders(client: HubClient, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { 'User-Agent': `tfvlm; node/${process.versions.node}`, ...extra };
  if (client.token) headers.Authorization = `Bearer ${client.token}`;
  return headers;
}

// huggingface_hub file_download.py: hf_hub_url — revision quoted with safe="", file path quoted keeping '/'
export const resolveUrl = (client: HubClient, repoId: string, revision: string, file: string) =>
  `${client.endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;

export async function hubFetch(client: HubClient, url: string, init: RequestInit, what: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new TfvlmError(
      `cannot reach the hub at ${client.endpoint} for ${what} (${cause?.code ?? cause?.message ?? (e as Error).message}); ` +
        'check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the local cache',
    );
  }
}

/** A TfvlmError for a failed hub response, saying what was missing or forbidden and what to do. */
export function hubError(res: Response, client: HubClient, ref: HubRef, file?: string): TfvlmError {
  const code = res.headers.get('x-error-code');
  const serverSays = res.headers.get('x-error-message');
  const at = `at ${client.endpoint}`;
  const target = file ? `file "${file}" of ${ref.repoId}@${ref.revision}` : `${ref.repoId}@${ref.revision}`;
  const detail = serverSays ? ` (server: ${serverSays})` : '';
  switch (res.status) {
    case 404:
      if (code === 'RevisionNotFound') return new TfvlmError(`model or file not found: revision "${ref.revision}" of ${ref.repoId} does not exist ${at}${detail}`);
      if (code === 'EntryNotFound') return new TfvlmError(`model or file not found: ${target} does not exist ${at}${detail}`);
      return new TfvlmError(`model or file not found: ${target} ${at} (HTTP 404)${detail}`);
    case 401:
      if (code === 'RepoNotFound') {
        return new TfvlmError(
          `model or file not found: ${ref.repoId} ${at} (HTTP 401: no such repo, or it is private or gated — ` +
            `${client.token ? 'the token in use has no access to it' : 'set HF_TOKEN if it is'})${detail}`,
        );
      }
      return new TfvlmError(
        `${target} ${at}: HTTP 401 unauthorized — the repo is private or gated (or does not exist). ` +
          (client.token
            ? 'The token in use (HF_TOKEN or huggingface-cli login) was rejected; set HF_TOKEN to a valid token with access.'
            : 'Set HF_TOKEN to a token with access.') +
          detail,
      );
    case 403:
      return new TfvlmError(
        `${target} ${at}: HTTP 403 forbidden — the repo is gated or private and ` +
          (client.token
            ? 'the token in use (HF_TOKEN or huggingface-cli login) has no access; accept the terms on the model page or set HF_TOKEN to another token.'
            : 'needs a token; set HF_TOKEN.') +
          detail,
      );
    default:
      return new TfvlmError(`${target} ${at}: HTTP ${res.status} ${res.statusText}${detail}`);
  }
}

interface Sibling {
  rfilename?: unknown;
  size?: unknown;
  blobId?: unknown;
  lfs?: { sha256?: unknown; size?: unknown } | null;
}

const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

// huggingface_hub hf_api.py: model_info → GET {endpoint}/api/models/{repo_id}/revision/{revision}?blobs=true
export async function fetchRevision(client: HubClient, ref: HubRef, timeoutMs: number): Promise<RepoRevision> {
  const url = `${client.endpoint}/api/models/${ref.repoId}/revision/${encodeURIComponent(ref.revision)}?blobs=true`;
  const signal = AbortSignal.timeout(timeoutMs);
  const res = await hubFetch(client, url, { headers: hubHeaders(client), signal }, `${ref.repoId}@${ref.revision}`);
  if (!res.ok) throw hubError(res, client, ref);
  let info: { sha?: unknown; siblings?: unknown };
  try {
    info = (await res.json()) as typeof info;
  } catch (e) {
    throw new TfvlmError(`${url}: the file listing could not be read as JSON (${(e as Error).message})`);
  }
  const commit = str(info.sha);
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new TfvlmError(`${url}: the listing has no commit "sha"`);
  if (!Array.isArray(info.siblings)) throw new TfvlmError(`${url}: the listing has no "siblings" array`);
  const files: RepoFile[] = [];
  for (const s of info.siblings as Sibling[]) {
    const p = str(s?.rfilename);
    if (!p) continue;
    const lfsSha = str(s.lfs?.sha256);
    files.push({
      path: p,
      lfs: lfsSha !== undefined,
      etag: lfsSha ?? str(s.blobId),
      size: lfsSha !== undefined ? num(s.lfs?.size) ?? num(s.size) : num(s.size),
    });
  }
  return { commit, files };
}
