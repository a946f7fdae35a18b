// A model's weights: one model.safetensors, or shards listed by model.safetensors.index.json
// (transformers modeling_utils.py: SAFE_WEIGHTS_NAME / SAFE_WEIGHTS_INDEX_NAME, index = {metadata, weight_map}).
import { TfvlmError } from '../errors.ts';
import { host, type HostStat } from './host.ts';
import type { tf } from '../backend/index.ts';
import { ReadScratch, SafetensorsFile, type TensorArray, type TensorEntry } from './safetensors.ts';

export const SAFE_WEIGHTS_NAME = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';

export interface CheckpointStats {
  bytesRead: number;
  readMs: number;
  files: number;
}

export class Checkpoint {
  /** The file opened: a .safetensors file or the index JSON. */
  readonly source: string;
  /** `__metadata__` of a single file, or the index's `metadata` (string values only). */
  readonly metadata: Record<string, string>;
  private readonly shards: SafetensorsFile[];
  private readonly owner: Map<string, SafetensorsFile>;

  private constructor(source: string, metadata: Record<string, string>, shards: SafetensorsFile[],
    owner: Map<string, SafetensorsFile>) {
    this.source = source;
    this.metadata = metadata;
    this.shards = shards;
    this.owner = owner;
  }

  /**
   * dirOrFile: a directory (prefers model.safetensors.index.json, else model.safetensors, else its
   * single *.safetensors), a .safetensors file, or an index .json file.
   */
  static open(dirOrFile: string): Checkpoint {
    const h = host();
    let st: HostStat | undefined;
    try {
      st = h.stat(dirOrFile);
    } catch {
      st = undefined;
    }
    if (st === undefined) throw new TfvlmError(`checkpoint ${dirOrFile}: no such file or directory`);
    if (st.kind !== 'directory') {
      return dirOrFile.endsWith('.json') ? Checkpoint.fromIndex(dirOrFile) : Checkpoint.fromFile(dirOrFile);
    }
    const index = h.join(dirOrFile, SAFE_WEIGHTS_INDEX_NAME);
    if (h.exists(index)) return Checkpoint.fromIndex(index);
    const single = h.join(dirOrFile, SAFE_WEIGHTS_NAME);
    if (h.exists(single)) return Checkpoint.fromFile(single);
    const found = h.list(dirOrFile).filter((f) => f.endsWith('.safetensors')).sort();
    if (found.length === 1) return Checkpoint.fromFile(h.join(dirOrFile, found[0]!));
    throw new TfvlmError(
      `checkpoint ${dirOrFile}: looked for ${SAFE_WEIGHTS_INDEX_NAME}, ${SAFE_WEIGHTS_NAME}, or a single *.safetensors; ` +
      (found.length === 0 ? 'found none' : `found ${found.length} *.safetensors without an index: ${found.join(', ')}`),
    );
  }

  private static fromFile(file: string): Checkpoint {
    const f = SafetensorsFile.open(file);
    const owner = new Map<string, SafetensorsFile>();
    for (const k of f.keys()) owner.set(k, f);
    return new Checkpoint(file, f.metadata, [f], owner);
  }

  private static fromIndex(indexFile: string): Checkpoint {
    const fail = (what: string): never => {
      throw new TfvlmError(`checkpoint index ${indexFile}: ${what}`);
    };
    let index: unknown;
    try {
      index = JSON.parse(host().readText(indexFile));
    } catch (e) {
      return fail(`cannot read as JSON: ${(e as Error).message}`);
    }
    if (typeof index !== 'object' || index === null || Array.isArray(index)) fail('is not a JSON object');
    const { weight_map: weightMap, metadata: rawMeta } = index as Record<string, unknown>;
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
      fail(`'weight_map' is ${weightMap === undefined ? 'missing' : 'not an object'}`);
    }
    const map = weightMap as Record<string, unknown>;
    const h = host();
    const dir = h.dirname(indexFile);
    const shardNames: string[] = [];
    for (const [tensor, shard] of Object.entries(map)) {
      if (typeof shard !== 'string' || shard === '') fail(`weight_map['${tensor}'] is ${JSON.stringify(shard)}, not a file name`);
      if (!shardNames.includes(shard as string)) shardNames.push(shard as string);
    }
    const missing = shardNames.filter((s) => !h.exists(h.join(dir, s)));
    if (missing.length > 0) {
      const example = Object.keys(map).find((t) => map[t] === missing[0]);
      fail(`shard file${missing.length > 1 ? 's' : ''} not found in ${dir}: ${missing.join(', ')} (e.g. for tensor '${example}')`);
    }

    const shards: SafetensorsFile[] = [];
    const scratch = new ReadScratch();
    try {
      const byName = new Map<string, SafetensorsFile>();
      for (const s of shardNames) {
        const f = SafetensorsFile.open(h.join(dir, s), scratch);
        shards.push(f);
        byName.set(s, f);
      }
      const owner = new Map<string, SafetensorsFile>();
      const absent: string[] = [];
      for (const [tensor, shard] of Object.entries(map)) {
        const f = byName.get(shard as string)!;
        if (f.has(tensor)) owner.set(tensor, f);
        else absent.push(`'${tensor}' not in ${shard as string}`);
      }
      if (absent.length > 0) {
        fail(`weight_map names tensors their shard does not hold: ${absent.slice(0, 10).join('; ')}` +
          (absent.length > 10 ? `; … ${absent.length - 10} more` : ''));
      }
      const metadata: Record<string, string> = typeof rawMeta === 'object' && rawMeta !== null
        ? Object.fromEntries(Object.entries(rawMeta).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]))
        : {};
      return new Checkpoint(indexFile, metadata, shards, owner);
    } catch (e) {
      for (const f of shards) f.close();
      throw e;
    }
  }

  keys(): string[] {
    return [...this.owner.keys()];
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  entry(name: string): TensorEntry {
    return this.file(name).entry(name);
  }

  /** See SafetensorsFile.readArray (`out` lets one buffer serve many tensors). */
  readArray(name: string, out?: TensorArray): TensorArray {
    return this.file(name).readArray(name, out);
  }

  /** See SafetensorsFile.readBytesInto. */
  readBytesInto(name: string, dst: Uint8Array, start = 0): void {
    this.file(name).readBytesInto(name, dst, start);
  }

  readTensor(name: string): tf.Tensor {
    return this.file(name).readTensor(name);
  }

  /** Totals over every shard (headers included in bytesRead). */
  get stats(): CheckpointStats {
    let bytesRead = 0;
    let readMs = 0;
    for (const f of this.shards) {
      bytesRead += f.stats.bytesRead;
      readMs += f.stats.readMs;
    }
    return { bytesRead, readMs, files: this.shards.length };
  }

  /** Paths of the safetensors files behind this checkpoint. */
  get files(): string[] {
    return this.shards.map((f) => f.file);
  }

  close(): void {
    for (const f of this.shards) f.close();
  }

  private file(name: string): SafetensorsFile {
    const f = this.owner.get(name);
    if (!f) throw new TfvlmError(`checkpoint ${this.source}: no tensor '${name}' (it has ${this.owner.size} tensors)`);
    return f;
  }
}
