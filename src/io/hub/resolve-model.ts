import path from 'node:path';
import { promises as fs } from 'node:fs';
import { TfvlmError } from '../../errors.ts';
import { cachedCommit, looksLikeHubId, parseHubId, repoFolder, snapshotDir } from './cache.ts';
import { downloadModel } from './download.ts';
import { missingModelFiles } from './model-files.ts';
import { resolveHubOptions, type HubOptions } from './options.ts';

async function statOrUndefined(p: string) {
  try {
    return await fs.stat(p);
  } catch {
    return undefined;
  }
}

/**
 * A model folder for `spec`: an existing local folder as is, or a hub id (`org/name[@revision]`) found in the
 * Hugging Face cache (refs/<revision> → snapshots/<commit>/) with no network, else downloaded unless offline.
 */
export async function resolveModel(spec: string, options: HubOptions = {}): Promise<string> {
  const local = await statOrUndefined(spec);
  if (local?.isDirectory()) return path.resolve(spec);
  if (local) throw new TfvlmError(`model "${spec}" is a file; expected a model folder or a hub id (org/name[@revision])`);
  if (!looksLikeHubId(spec)) {
    throw new TfvlmError(`model "${spec}": no such folder, and not a hub id (org/name or org/name@revision)`);
  }
  // org/name where org/ is a folder here reads as a path that does not exist, not as a hub id.
  const org = spec.slice(0, spec.indexOf('/'));
  if ((await statOrUndefined(org))?.isDirectory()) {
    throw new TfvlmError(`model "${spec}": no such folder (${org}/ is a folder here, so this is read as a path, not a hub id)`);
  }

  const ref = parseHubId(spec, options.revision);
  const opts = resolveHubOptions(options);
  const repoDir = repoFolder(opts.cacheDir, ref.repoId);
  const commit = await cachedCommit(repoDir, ref.revision);
  let missing: string[] | undefined;
  if (commit !== undefined) {
    const dir = snapshotDir(repoDir, commit);
    if ((await statOrUndefined(dir))?.isDirectory()) {
      missing = await missingModelFiles(dir);
      if (missing.length === 0) return dir;
    }
  }

  if (opts.offline) {
    const state =
      commit === undefined
        ? `no snapshot of revision "${ref.revision}" (no ${path.join(repoDir, 'refs', ref.revision)})`
        : missing === undefined
          ? `no snapshot folder ${snapshotDir(repoDir, commit)}`
          : `snapshot ${commit} lacks ${missing.join(', ')}`;
    throw new TfvlmError(
      `${ref.repoId}@${ref.revision} is not in the cache ${opts.cacheDir}: ${state}. ` +
        'Offline mode is on (HF_HUB_OFFLINE=1), so nothing is downloaded; unset it or run `tfvlm download` while online.',
    );
  }
  return (await downloadModel(spec, options)).dir;
}
