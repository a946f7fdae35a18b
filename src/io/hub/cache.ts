import path from 'node:path';
import { promises as fs } from 'node:fs';
import { TfvlmError } from '../../errors.ts';

/** A model repository on the hub and the revision asked for (branch, tag or commit hash). */
export interface HubRef {
  repoId: string;
  revision: string;
}

export const DEFAULT_REVISION = 'main';
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

// huggingface_hub utils/_validators.py: validate_repo_id (namespace/name of word chars . -, each
// starting and ending with a word char as its \b…\b regex has it; no '--' or '..'). So ./x, ../x
// and .hidden/x are paths, never ids.
const REPO_ID = /^\w(?:[\w.-]*\w)?\/\w(?:[\w.-]*\w)?$/;

export function looksLikeHubId(spec: string): boolean {
  const at = spec.indexOf('@');
  return REPO_ID.test(at < 0 ? spec : spec.slice(0, at));
}

/** `org/name` or `org/name@revision` → {repoId, revision}. */
export function parseHubId(spec: string, revision?: string): HubRef {
  const at = spec.indexOf('@');
  const repoId = at < 0 ? spec : spec.slice(0, at);
  const inlineRevision = at < 0 ? undefined : spec.slice(at + 1);
  if (!REPO_ID.test(repoId) || repoId.includes('--') || repoId.includes('..') || repoId.length > 96) {
    throw new TfvlmError(`"${spec}" is not a hub model id: expected org/name or org/name@revision`);
  }
  if (inlineRevision !== undefined && revision !== undefined && inlineRevision !== revision) {
    throw new TfvlmError(`"${spec}" names revision "${inlineRevision}" but --revision says "${revision}"`);
  }
  const rev = inlineRevision ?? revision ?? DEFAULT_REVISION;
  checkRelativePath(rev, `revision of ${repoId}`);
  return { repoId, revision: rev };
}

/** Refuses names that would escape the folder they are joined to (`..`, absolute, empty parts). */
export function checkRelativePath(name: string, what: string): void {
  const parts = name.split('/');
  if (name.length === 0 || name.includes('\\') || name.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new TfvlmError(`${what} "${name}" is not a safe relative path`);
  }
}

// huggingface_hub file_download.py: repo_folder_name → "models--org--name"
export const repoFolder = (cacheDir: string, repoId: string) =>
  path.join(cacheDir, `models--${repoId.split('/').join('--')}`);

export const snapshotDir = (repoDir: string, commit: string) => path.join(repoDir, 'snapshots', commit);
export const blobPath = (repoDir: string, etag: string) => path.join(repoDir, 'blobs', etag);
const refPath = (repoDir: string, revision: string) => path.join(repoDir, 'refs', ...revision.split('/'));

/** The commit a revision points to in the cache: the hash itself, or the content of refs/<revision>. */
export async function cachedCommit(repoDir: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const commit = (await fs.readFile(refPath(repoDir, revision), 'utf8')).trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

// file_download.py: _cache_commit_hash_for_specific_revision (no trailing newline, only for branch/tag names)
export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const file = refPath(repoDir, revision);
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    if ((await fs.readFile(file, 'utf8')) === commit) return;
  } catch {
    // no ref yet
  }
  await fs.writeFile(file, commit);
}

/** True when `file` exists, following symlinks (a dangling snapshot link counts as missing). */
export async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

// file_download.py: _create_symlink — relative link snapshots/<commit>/<file> → ../../blobs/<etag>
export async function linkSnapshotFile(repoDir: string, commit: string, filename: string, etag: string): Promise<string> {
  const pointer = path.join(snapshotDir(repoDir, commit), ...filename.split('/'));
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  const target = path.relative(path.dirname(pointer), blobPath(repoDir, etag));
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.symlink(target, pointer);
      return pointer;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // a concurrent download may have made the same link already
      if ((await fs.readlink(pointer).catch(() => undefined)) === target || attempt > 0) return pointer;
      await fs.rm(pointer, { force: true });
    }
  }
}

// file_download.py: _get_metadata_or_catch_error — .no_exist/<commit>/<file> records a file absent at that commit
export async function markMissing(repoDir: string, commit: string, filenames: readonly string[]): Promise<void> {
  for (const f of filenames) {
    const marker = path.join(repoDir, '.no_exist', commit, ...f.split('/'));
    await fs.mkdir(path.dirname(marker), { recursive: true });
    await (await fs.open(marker, 'a')).close();
  }
}

// huggingface_hub writes this tag at the cache root so backup tools skip the folder (https://bford.info/cachedir/)
const CACHEDIR_TAG =
  'Signature: 8a477f597d28d172789f06886806bc55\n' +
  '# This file is a cache directory tag created by huggingface_hub.\n' +
  '# For information about cache directory tags, see:\n' +
  '#\thttps://bford.info/cachedir/\n';

export async function tagCacheDir(cacheDir: string): Promise<void> {
  await fs.mkdir(cacheDir, { recursive: true });
  try {
    await fs.writeFile(path.join(cacheDir, 'CACHEDIR.TAG'), CACHEDIR_TAG, { flag: 'wx' });
  } catch {
    // already tagged
  }
}
