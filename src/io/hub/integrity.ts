import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * How a blob's etag names its content: LFS files carry their sha256, git-stored files their git blob sha1
 * (sha1 of "blob <size>\0" + bytes). huggingface_hub itself only checks the size; tfvlm checks the hash too.
 */
export type EtagKind = 'sha256' | 'git-sha1' | 'opaque';

export function etagKind(etag: string): EtagKind {
  if (/^[0-9a-f]{64}$/.test(etag)) return 'sha256';
  if (/^[0-9a-f]{40}$/.test(etag)) return 'git-sha1';
  return 'opaque';
}

/** The digest of a file in the form its etag uses, or undefined when the etag is not a content hash. */
export async function digestForEtag(file: string, size: number, etag: string): Promise<string | undefined> {
  const kind = etagKind(etag);
  if (kind === 'opaque') return undefined;
  const hash = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
  if (kind === 'git-sha1') hash.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
