// Seeded input mutators for the fuzz tests: byte-level (bit flips, overwrites, truncation, splices)
// and JSON-level (replace / delete / retype a value somewhere in a parsed document).
import { Rng } from '../../src/util/rng.ts';

/** Runs per target: TFVLM_FUZZ_RUNS raises it locally; CI uses the default. */
export function fuzzRuns(fallback: number): number {
  const n = Number(process.env.TFVLM_FUZZ_RUNS);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** TFVLM_FUZZ_SEED explores other inputs locally; the default keeps CI deterministic. */
export const FUZZ_SEED = Number.isInteger(Number(process.env.TFVLM_FUZZ_SEED)) ? Number(process.env.TFVLM_FUZZ_SEED) : 20261127;

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x20, 0x22, 0x2c, 0x7b, 0x7d, 0x5b, 0x5d];

export class Mutator {
  readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  int(n: number): number {
    return Math.floor(this.rng.next() * n);
  }

  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new Error('Mutator.pick: empty list');
    return list[this.int(list.length)]!;
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  /** One to three byte-level edits; `focus` bytes at the start get half of the edits (headers live there). */
  bytes(src: Uint8Array, focus = 64): Uint8Array {
    let b: Uint8Array = Uint8Array.from(src);
    const edits = 1 + this.int(3);
    for (let e = 0; e < edits; e++) {
      const at = () => (b.length === 0 ? 0 : this.chance(0.5) ? this.int(Math.min(focus, b.length)) : this.int(b.length));
      switch (this.int(7)) {
        case 0: { // flip 1..8 bits
          if (b.length === 0) break;
          for (let k = 1 + this.int(8); k > 0; k--) b[at()]! ^= 1 << this.int(8);
          break;
        }
        case 1: { // interesting byte
          if (b.length > 0) b[at()] = this.pick(INTERESTING_BYTES);
          break;
        }
        case 2: { // random run of bytes
          if (b.length === 0) break;
          const start = at();
          const len = Math.min(1 + this.int(16), b.length - start);
          for (let i = 0; i < len; i++) b[start + i] = this.int(256);
          break;
        }
        case 3: // truncate
          b = b.subarray(0, this.int(b.length + 1));
          break;
        case 4: { // delete a span
          const start = at();
          const len = this.int(Math.min(64, b.length - start) + 1);
          b = concat(b.subarray(0, start), b.subarray(start + len));
          break;
        }
        case 5: { // duplicate a span
          const start = at();
          const len = this.int(Math.min(256, b.length - start) + 1);
          b = concat(b.subarray(0, start + len), b.subarray(start));
          break;
        }
        default: { // 16/32-bit integer field set to an extreme (sizes, lengths, offsets)
          if (b.length < 4) break;
          const o = this.int(Math.min(focus, b.length - 3));
          const v = this.pick([0, 1, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff, 0x10000, 65535 * 2]);
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          if (this.chance(0.5)) dv.setUint16(o, v & 0xffff, this.chance(0.5));
          else dv.setUint32(o, v >>> 0, this.chance(0.5));
        }
      }
    }
    return b;
  }

  /** A random JSON value of bounded depth. */
  jsonValue(depth = 2): unknown {
    switch (this.int(depth > 0 ? 10 : 7)) {
      case 0: return null;
      case 1: return this.chance(0.5);
      case 2: return this.pick([0, -1, 1, 2.5, 1e308, -1e308, 2 ** 53, 2 ** 31, 1e12, NaN]);
      case 3: return this.int(1000);
      case 4: return this.pick(['', 'a', 'BPE', 'F32', 'I64', '<s>', '\u0000', 'Ġ', '(', 'x'.repeat(300)]);
      case 5: return [];
      case 6: return {};
      case 7: return Array.from({ length: this.int(4) }, () => this.jsonValue(depth - 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(4); i > 0; i--) o[this.pick(['type', 'dtype', 'shape', 'data_offsets', 'vocab', 'merges', 'id', 'content', 'a', '__proto__'])] = this.jsonValue(depth - 1);
        return o;
      }
    }
  }

  /** One to three structural edits of a parsed JSON document (a fresh copy is returned). */
  json(doc: unknown): unknown {
    let root = structuredClone(doc);
    for (let e = 1 + this.int(3); e > 0; e--) {
      const slot = this.randomSlot(root);
      if (!slot) {
        root = this.jsonValue();
        continue;
      }
      const { parent, key } = slot;
      const action = this.int(4);
      if (action === 0 && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key as string];
      else if (action === 0) (parent as unknown[]).splice(key as number, 1);
      else if (action === 1) (parent as Record<string | number, unknown>)[key] = this.jsonValue();
      else if (action === 2) (parent as Record<string | number, unknown>)[key] = retype((parent as Record<string | number, unknown>)[key], this);
      else (parent as Record<string | number, unknown>)[key] = this.pick([null, '', 0, -1, [], {}]);
    }
    return root;
  }

  /** A random (parent, key) inside doc, walking down a random path (biased to stop at shallow levels). */
  private randomSlot(doc: unknown): { parent: object; key: string | number } | undefined {
    let node = doc;
    let slot: { parent: object; key: string | number } | undefined;
    for (let depth = 0; depth < 6; depth++) {
      if (node === null || typeof node !== 'object') break;
      const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
      if (keys.length === 0) break;
      const key = this.pick(keys);
      slot = { parent: node, key };
      if (this.chance(0.35)) break;
      node = (node as Record<string | number, unknown>)[key];
    }
    return slot;
  }
}

function retype(v: unknown, m: Mutator): unknown {
  if (typeof v === 'number') return m.pick([String(v), -v, v + 0.5, v * 1e9, [v], null]);
  if (typeof v === 'string') return m.pick([v.length, [v], { content: v }, v.slice(0, v.length >> 1), v + v]);
  if (Array.isArray(v)) return m.pick([v.length, v.slice(0, m.int(v.length + 1)), [...v, ...v], Object.fromEntries(v.map((x, i) => [i, x]))]);
  if (v && typeof v === 'object') return m.pick([Object.values(v), JSON.stringify(v), 1]);
  return m.jsonValue(1);
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
