// A paged KV cache, for the bench only (the model uses PreallocatedKVCache): fixed-size pages per
// (batch, kv head); full pages are never touched again, only the last page grows; attention runs page
// by page with one softmax over all pages' scores. Kept to show what paging costs here against the
// preallocated buffers.
import { tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';

/** A cache that appends and attends in one call (the bench's common form for every strategy). */
export interface AttendingKVCache {
  readonly offset: number;
  update(k: tf.Tensor, v: tf.Tensor): void;
  /**
   * Appends k, v [B, Hkv, T, D] and returns softmax(q·kᵀ·scale + mask)·v [B, H, T, D] over all
   * stored positions, for q [B, H, T, D] and an additive mask [B|1, 1, T|1, offset+T] (or none).
   */
  appendAndAttend(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, scale: number): tf.Tensor;
  truncate?(length: number): void;
  dispose(): void;
}

interface Layout {
  B: number;
  Hkv: number;
  D: number;
}

function checkUpdate(k: tf.Tensor, v: tf.Tensor, layout: Layout | undefined, what: string): Layout {
  if (k.rank !== 4 || v.rank !== 4 || k.shape.some((d, i) => d !== v.shape[i])) {
    throw new TfvlmError(`${what} update: k and v must both be [B, Hkv, T, D], got [${k.shape}] and [${v.shape}]`);
  }
  const [B, Hkv, , D] = k.shape as [number, number, number, number];
  if (layout && (layout.B !== B || layout.Hkv !== Hkv || layout.D !== D)) {
    throw new TfvlmError(`${what} update: cache holds [${layout.B}, ${layout.Hkv}, *, ${layout.D}], got [${k.shape}]`);
  }
  return { B, Hkv, D };
}

function checkQuery(q: tf.Tensor, mask: tf.Tensor | undefined, layout: Layout, S: number, what: string): { H: number; T: number; groups: number } {
  const [B, H, T, D] = q.shape as [number, number, number, number]; // checked just below
  if (q.rank !== 4 || B !== layout.B || D !== layout.D || H % layout.Hkv !== 0) {
    throw new TfvlmError(`${what}: q must be [${layout.B}, k·${layout.Hkv}, T, ${layout.D}], got [${q.shape}]`);
  }
  if (mask && (mask.rank !== 4 || (mask.shape[0] !== B && mask.shape[0] !== 1) || mask.shape[1] !== 1
    || (mask.shape[2] !== T && mask.shape[2] !== 1) || mask.shape[3] !== S)) {
    throw new TfvlmError(`${what}: mask must be [${B}, 1, ${T} or 1, ${S}], got [${mask.shape}]`);
  }
  return { H, T, groups: H / layout.Hkv };
}

/**
 * Mask rows [B|1, 1, T|1, S] → per batch row [T|1, width], the columns past S masked with −∞ (not
 * finfo.min: a query row whose real keys are all masked must still spread its weight over those S
 * keys only, as the reference does).
 */
function maskRows(mask: tf.Tensor | undefined, S: number, width: number): tf.Tensor[] | undefined {
  if (!mask) {
    if (width === S) return undefined;
    const row = new Float32Array(width).fill(-Infinity, S);
    return [tf.tensor2d(row, [1, width])];
  }
  let m = tf.reshape(mask, [mask.shape[0], mask.shape[2] as number, S]);
  if (width > S) m = tf.pad(m, [[0, 0], [0, 0], [0, width - S]], -Infinity);
  return tf.unstack(m);
}

/** scores [groups·T, W] + mask rows [T|1, W], the same rows for every head of the group (broadcast, no tiling). */
function addGroupedMask(scores: tf.Tensor, mask: tf.Tensor, groups: number, T: number): tf.Tensor {
  const W = scores.shape[1] as number;
  return tf.reshape(tf.add(tf.reshape(scores, [groups, T, W]), mask), [groups * T, W]);
}

/** Grouped, scaled queries as [D, groups·T] per (batch, kv head): the small right-hand operand. */
function groupedQueriesT(q: tf.Tensor, scale: number, layout: Layout, groups: number, T: number): tf.Tensor[] {
  const { B, Hkv, D } = layout;
  return tf.unstack(tf.transpose(tf.reshape(tf.mul(q, scale), [B * Hkv, groups * T, D]), [0, 2, 1]));
}

interface Page {
  k: tf.Tensor; // [n, D]
  v: tf.Tensor; // [n, D]
}

export interface PagedKVCacheOptions {
  /** Positions per page. Default 256. */
  pageSize?: number;
}

export class PagedKVCache implements AttendingKVCache {
  readonly pageSize: number;
  private layout: Layout | undefined;
  /** Per (b, kv head): pages in order; all full except maybe the last. */
  private pages: Page[][] = [];
  private stored = 0;
  private returned: tf.Tensor[] = [];

  constructor(opts: PagedKVCacheOptions = {}) {
    this.pageSize = opts.pageSize ?? 256;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1) throw new TfvlmError(`PagedKVCache: page size must be a positive integer, got ${opts.pageSize}`);
  }

  get offset(): number {
    return this.stored;
  }

  get pageCount(): number {
    return this.pages[0]?.length ?? 0;
  }

  private append(k: tf.Tensor, v: tf.Tensor): void {
    const layout = checkUpdate(k, v, this.layout, 'PagedKVCache');
    const { B, Hkv, D } = layout;
    const T = k.shape[2] as number;
    if (!this.layout) {
      this.layout = layout;
      this.pages = Array.from({ length: B * Hkv }, () => []);
    }
    const P = this.pageSize;
    tf.tidy(() => {
      const ks = tf.unstack(tf.reshape(k, [B * Hkv, T, D]));
      const vs = tf.unstack(tf.reshape(v, [B * Hkv, T, D]));
      for (const [i, pages] of this.pages.entries()) {
        const ki = ks[i]!; // ks, vs: one [T, D] per (b, kv head), as pages
        const vi = vs[i]!;
        let t = 0;
        while (t < T) {
          const last = pages[pages.length - 1];
          const lastLen = last ? last.k.shape[0] : P;
          if (last && lastLen < P) {
            const n = Math.min(P - lastLen, T - t);
            const grown = {
              k: tf.keep(tf.concat([last.k, n === T ? ki : tf.slice(ki, [t, 0], [n, D])], 0)),
              v: tf.keep(tf.concat([last.v, n === T ? vi : tf.slice(vi, [t, 0], [n, D])], 0)),
            };
            tf.dispose([last.k, last.v]);
            pages[pages.length - 1] = grown;
            t += n;
          } else {
            const n = Math.min(P, T - t);
            pages.push({ k: tf.keep(tf.slice(ki, [t, 0], [n, D])), v: tf.keep(tf.slice(vi, [t, 0], [n, D])) });
            t += n;
          }
        }
      }
    });
    this.stored += T;
  }

  /** KVCache.update: appends, then returns the pages concatenated as [B, Hkv, offset, D] (copies). */
  update(k: tf.Tensor, v: tf.Tensor): { k: tf.Tensor; v: tf.Tensor } {
    this.append(k, v);
    tf.dispose(this.returned);
    const { B, Hkv, D } = this.layout!;
    const S = this.stored;
    const whole = (pick: (p: Page) => tf.Tensor) =>
      tf.reshape(tf.stack(this.pages.map((ps) => (ps.length === 1 ? tf.clone(pick(ps[0]!)) : tf.concat(ps.map(pick), 0)))), [B, Hkv, S, D]);
    const out = tf.tidy(() => ({ k: tf.keep(whole((p) => p.k)), v: tf.keep(whole((p) => p.v)) }));
    this.returned = [out.k, out.v];
    return out;
  }

  appendAndAttend(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, scale: number): tf.Tensor {
    this.append(k, v);
    const layout = this.layout!;
    const S = this.stored;
    const { H, T, groups } = checkQuery(q, mask, layout, S, 'PagedKVCache attention');
    const { B, Hkv, D } = layout;
    return tf.tidy(() => {
      const qTs = groupedQueriesT(q, scale, layout, groups, T);
      const masks = maskRows(mask, S, S);
      const outs: tf.Tensor[] = [];
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < Hkv; j++) {
          const i = b * Hkv + j;
          const pages = this.pages[i]!; // one page list per (b, kv head)
          const qT = qTs[i]!;
          // Scores page by page ([n, groups·T] each, keys on the left), one softmax over all.
          const scoresT = pages.map((p) => tf.matMul(p.k, qT));
          let scores = tf.transpose(scoresT.length === 1 ? scoresT[0]! : tf.concat(scoresT, 0)); // [groups·T, S]
          if (masks) scores = addGroupedMask(scores, masks[Math.min(b, masks.length - 1)]!, groups, T);
          const probs = tf.softmax(scores);
          const parts = pages.map((p, n) =>
            tf.matMul(pages.length === 1 ? probs : tf.slice(probs, [0, n * this.pageSize], [groups * T, p.k.shape[0]]), p.v));
          outs.push(parts.length === 1 ? parts[0]! : tf.addN(parts)); // [groups·T, D]
        }
      }
      return tf.reshape(tf.stack(outs), [B, H, T, D]);
    });
  }

  /** Forgets positions from `length` on: later pages are dropped, the new last page is cut. */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0) throw new TfvlmError(`PagedKVCache truncate: bad length ${length}`);
    if (length >= this.stored) return;
    if (length === 0) return this.dispose();
    const P = this.pageSize;
    const keepPages = Math.ceil(length / P);
    const lastLen = length - (keepPages - 1) * P;
    const D = this.layout!.D;
    for (const pages of this.pages) {
      for (const p of pages.splice(keepPages)) tf.dispose([p.k, p.v]);
      const last = pages[keepPages - 1]!; // 0 < length < stored: page keepPages - 1 exists
      if (last.k.shape[0] !== lastLen) {
        pages[keepPages - 1] = { k: tf.keep(tf.slice(last.k, [0, 0], [lastLen, D])), v: tf.keep(tf.slice(last.v, [0, 0], [lastLen, D])) };
        tf.dispose([last.k, last.v]);
      }
    }
    this.stored = length;
  }

  dispose(): void {
    tf.dispose([...this.pages.flat().flatMap((p) => [p.k, p.v]), ...this.returned]);
    this.pages = [];
    this.returned = [];
    this.stored = 0;
    this.layout = undefined;
  }
}

