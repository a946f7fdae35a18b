// `--shard K/N`: a deterministic split of the items over N runs (machines, processes) by a stable hash
// of the id, so shard membership depends on the id alone, never on the input's order or size. An item
// belongs to shard K (1-based) when the first four bytes of SHA-256(UTF-8 id), read as a big-endian
// unsigned integer, are ≡ K - 1 (mod N).
import { createHash } from 'node:crypto';
import { TfvlmError } from '../errors.ts';

export interface Shard {
  /** 1-based: 1…count. */
  index: number;
  count: number;
}

/** "K/N" → { index: K, count: N }, with 1 ≤ K ≤ N. */
export function parseShard(spec: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index < 1 || index > count) {
    throw new TfvlmError(`--shard must be K/N with whole numbers 1 ≤ K ≤ N (e.g. 2/4: the second of four shards), got '${spec}'`);
  }
  return { index, count };
}

/** The 0-based shard (of `count`) an id falls in. */
export function shardOf(id: string, count: number): number {
  return createHash('sha256').update(id, 'utf8').digest().readUInt32BE(0) % count;
}

/** Whether the item with this id is in the shard (every id is, without one). */
export function inShard(id: string, shard: Shard | undefined): boolean {
  return shard === undefined || shard.count === 1 || shardOf(id, shard.count) === shard.index - 1;
}
