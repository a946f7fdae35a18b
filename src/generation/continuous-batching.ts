// Continuous batching (what vLLM, TGI and llama-server's slots do): the sequences of many requests
// decode together, one pass over the weights per step for all of them (GenerativeModel.decodeRows:
// the linears take [N, in] rows; attention stays per sequence, over its own KV cache). A request joins
// between steps once its own prefill is done, and leaves when it finishes, is aborted, or its consumer
// stops listening; its cache is freed then.
//
// Each sequence gets the tokens generateTokens would give it alone: the same prefill, the same sampler
// with its own seed, the same checks between tokens (a consumer's stop string is seen before the next
// step: a sequence takes part in a step only once its consumer has taken its last token), and on
// packed weights the same arithmetic per row (packedMatvecRows computes each of N rows as one alone).
import { tf, withComputeThreads } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { disposeKVCaches, type KVCache } from '../layers/kv-cache.ts';
import type { GenerativeModel } from '../models/decoder-model.ts';
import { Rng } from '../util/rng.ts';
import {
  checkSequencePrompt, pickTokens, prefillPrompt, type GenerationTimings, type PromptBatch, type RowSampler, type TokenLoopOptions,
  type TokenLoopResult, type TokenStep,
} from './generate.ts';
import type { SamplingOptions } from './sampler.ts';

/** What one sequence of a batcher takes: generateTokens' options for one unpadded prompt row. */
export type SequenceOptions = Omit<TokenLoopOptions, 'cache' | 'onLogits' | 'onProgress' | 'decodeThreads'>;

export interface BatcherOptions {
  /** Sequences decoding together (default 8). */
  maxBatch?: number;
  /** Sequences waiting for a place (default 64); past it, generate() throws QueueFullError. */
  maxQueue?: number;
  /** tfjs threads for decode steps (default $TFVLM_DECODE_THREADS, else 1; see TokenLoopOptions.decodeThreads). */
  decodeThreads?: number;
}

/** generate() while maxQueue sequences are already waiting. */
export class QueueFullError extends TfvlmError {
  override name = 'QueueFullError';
}

/** generate() after close(), or a waiting sequence that close() turned away. */
export class BatcherClosedError extends TfvlmError {
  override name = 'BatcherClosedError';
}

type Delivery = { step: TokenStep } | { result: TokenLoopResult } | { error: unknown };

/** One request's sequence: its prompt, sampler, cache and the hand-over to its consumer. */
class Sequence implements RowSampler {
  readonly history: number[];
  readonly generated: number[] = [];
  readonly rng: Rng;
  readonly eos: Set<number>;
  readonly pad: number;
  readonly maxNew: number;
  readonly timings: GenerationTimings;
  cache: KVCache[] | undefined;
  /** Set once the sequence has its result (or error): the batcher drops it. */
  ended = false;
  /** A token (or the end) handed over but not yet taken. */
  private mailbox: Delivery[] = [];
  private waiter: ((d: Delivery) => void) | undefined;

  constructor(readonly prompt: PromptBatch, readonly options: SequenceOptions, maxPositions: number) {
    const T = checkSequencePrompt(prompt, maxPositions);
    this.history = [...(prompt.input_ids[0] ?? [])];
    this.rng = new Rng(options.seed);
    this.eos = new Set(options.eosTokenIds);
    this.pad = options.padTokenId ?? options.eosTokenIds[0] ?? 0;
    this.maxNew = Math.min(options.maxNewTokens, maxPositions - T);
    this.timings = { embedMs: 0, prefillMs: 0, prefillTokens: T, decodeMs: 0, decodeTokens: 0 };
  }

  /** The last token, the next step's input. */
  get last(): number {
    return this.history[this.history.length - 1]!;
  }

  get sampling(): SamplingOptions {
    return this.options;
  }

  /** Ready for a step: its consumer took the last token and waits for the next. */
  get wantsStep(): boolean {
    return !this.ended && this.waiter !== undefined && this.mailbox.length === 0;
  }

  /** Next delivery for the consumer: what is in the mailbox, else the next one handed over. */
  take(): Promise<Delivery> {
    const next = this.mailbox.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  deliver(d: Delivery): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(d);
    else this.mailbox.push(d);
  }

  /** A new token: recorded, handed over, and the sequence ended if it was eos or the last allowed. */
  accept(token: number): void {
    this.generated.push(token);
    this.history.push(token);
    const finished = this.eos.has(token);
    this.deliver({ step: { step: this.generated.length - 1, tokens: [token], finished: [finished] } });
    if (finished) this.end('eos');
    else if (this.generated.length >= this.maxNew) this.end(this.maxNew < this.options.maxNewTokens ? 'context' : 'max_new_tokens');
  }

  end(stopReason: TokenLoopResult['stopReason']): void {
    if (this.ended) return;
    this.release();
    this.deliver({ result: { generated: [this.generated], timings: this.timings, stopReason } });
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.release();
    this.deliver({ error });
  }

  /** Frees the cache; the sequence takes no more steps. */
  release(): void {
    this.ended = true;
    if (this.cache) disposeKVCaches(this.cache);
    this.cache = undefined;
  }
}

/**
 * Runs many single-sequence generations over one model, batched step by step. Each generate() call is
 * an AsyncGenerator like generateTokens: leaving it early (break, return, throw) or aborting its
 * signal ends the sequence and frees its cache before the next step.
 */
export class ContinuousBatcher {
  readonly maxBatch: number;
  readonly maxQueue: number;
  private readonly decodeThreads: number;
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  /** Decode steps run, the tokens they made (rows), the most rows in one, and their milliseconds (for tests and the bench). */
  readonly stats = { steps: 0, rows: 0, maxRows: 0, decodeMs: 0 };

  constructor(private readonly model: GenerativeModel, options: BatcherOptions = {}) {
    this.maxBatch = options.maxBatch ?? 8;
    this.maxQueue = options.maxQueue ?? 64;
    for (const [name, v] of [['maxBatch', this.maxBatch], ['maxQueue', this.maxQueue]] as const) {
      if (!Number.isSafeInteger(v) || v < (name === 'maxBatch' ? 1 : 0)) throw new TfvlmError(`batcher: ${name} must be a whole number ≥ ${name === 'maxBatch' ? 1 : 0}, got ${v}`);
    }
    this.decodeThreads = options.decodeThreads ?? (Number(process.env.TFVLM_DECODE_THREADS) || 1);
  }

  /** Sequences decoding now / waiting for a place. */
  get load(): { running: number; waiting: number } {
    return { running: this.running.length, waiting: this.waiting.length };
  }

  /**
   * One prompt row's sequence; its tokens come as generateTokens yields them. It joins the queue at
   * the first next() (a generator never iterated holds nothing). Throws QueueFullError when
   * maxQueue sequences already wait (here, or at the first next() if the queue filled meanwhile),
   * and a TfvlmError for a prompt that cannot be generated from.
   */
  generate(prompt: PromptBatch, options: SequenceOptions): AsyncGenerator<TokenStep, TokenLoopResult> {
    const seq = new Sequence(prompt, options, this.model.maxPositions);
    this.checkRoom();
    return this.consume(seq);
  }

  /** Turns waiting sequences away, ends the running ones (stop reason `aborted`) and waits for the loop. */
  async close(): Promise<void> {
    this.closed = true;
    for (const seq of this.waiting.splice(0)) seq.fail(new BatcherClosedError('batcher: closed before this sequence started'));
    for (const seq of this.running.splice(0)) seq.end('aborted');
    this.nudge();
    await this.loop;
  }

  private checkRoom(): void {
    if (this.closed) throw new BatcherClosedError('batcher: closed');
    if (this.waiting.length >= this.maxQueue + Math.max(0, this.maxBatch - this.running.length)) {
      throw new QueueFullError(`batcher: ${this.running.length} sequences running and ${this.waiting.length} waiting (max_batch ${this.maxBatch}, max_queue ${this.maxQueue})`);
    }
  }

  private async *consume(seq: Sequence): AsyncGenerator<TokenStep, TokenLoopResult> {
    this.checkRoom();
    this.waiting.push(seq);
    const onAbort = () => this.nudge();
    seq.options.signal?.addEventListener('abort', onAbort, { once: true });
    this.start();
    try {
      for (;;) {
        this.nudge();
        const d = await seq.take();
        if ('error' in d) throw d.error;
        if ('result' in d) return d.result;
        yield d.step;
        // Between tokens, as generateTokens checks them: the caller's signal and stop condition.
        if (seq.options.signal?.aborted) seq.end('aborted');
        else if (seq.options.shouldStop?.()) seq.end('stopped');
      }
    } finally {
      seq.options.signal?.removeEventListener('abort', onAbort);
      if (!seq.ended) seq.release(); // the consumer left early
    }
  }

  private nudge(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private start(): void {
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
      if (this.waiting.length || this.running.length) this.start();
    });
  }

  private async run(): Promise<void> {
    // Started from a consumer's next(): let the caller (an HTTP handler, say) go on before the first prefill.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (;;) {
      this.dropEnded();
      // One prefill per round, then a step for the rest: running sequences keep streaming while a
      // burst of new requests joins, and each newcomer's first token goes out before the next one.
      const admitted = this.admitOne();
      const rows = this.running.filter((s) => s.wantsStep);
      if (rows.length > 0) this.decode(rows);
      if (admitted || rows.length > 0) {
        // Let consumers take their tokens (and a server write them) before the next round.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      if (this.running.length === 0 && this.waiting.length === 0) return;
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
  }

  private dropEnded(): void {
    for (const list of [this.waiting, this.running]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const seq = list[i]!;
        if (!seq.ended && seq.options.signal?.aborted) {
          if (list === this.waiting) seq.timings.prefillTokens = 0;
          seq.end('aborted');
        }
        if (seq.ended) list.splice(i, 1);
      }
    }
  }

  /**
   * Prefills the first waiting sequence if there is room: a place in the batch, and memory for its
   * cache and prefill (GenerativeModel.checkPromptFits) — while running sequences hold that memory it
   * waits; alone, it fails with the check's error. It gets its first token. Whether one was taken.
   */
  private admitOne(): boolean {
    if (this.running.length >= this.maxBatch) return false;
    const seq = this.waiting.shift();
    if (!seq) return false;
    if (seq.maxNew <= 0) {
      seq.end(seq.options.maxNewTokens === 0 ? 'max_new_tokens' : 'context');
      return true;
    }
    const T = seq.timings.prefillTokens;
    try {
      this.model.checkPromptFits({ batch: 1, promptTokens: T, cachedTokens: 0, newTokens: seq.maxNew });
    } catch (e) {
      // The running sequences' caches hold the room it needs: it waits, first in line, for one to end.
      if (this.running.length > 0) {
        this.waiting.unshift(seq);
        return false;
      }
      seq.fail(e);
      return true;
    }
    try {
      seq.cache = this.model.createCache(T + seq.maxNew);
      const t0 = performance.now();
      const { logits, embedMs } = prefillPrompt(this.model, seq.prompt, seq.cache);
      const [token] = pickTokens(logits, [seq], seq.pad);
      seq.timings.embedMs = embedMs;
      seq.timings.prefillMs = performance.now() - t0 - embedMs;
      seq.accept(token!);
    } catch (e) {
      seq.fail(e);
      return true;
    }
    if (!seq.ended) this.running.push(seq);
    return true;
  }

  /** One step for every sequence in rows: their last tokens in, one new token each out. */
  private decode(rows: Sequence[]): void {
    const t0 = performance.now();
    let tokens: number[];
    try {
      tokens = withComputeThreads(this.decodeThreads, () => {
        const ids = tf.tensor2d(rows.map((s) => s.last), [rows.length, 1], 'int32');
        const embeds = tf.tidy(() => this.model.embed({ input_ids: ids }));
        ids.dispose();
        let logits: tf.Tensor;
        try {
          logits = this.model.decodeRows(embeds, rows.map((s) => s.cache!));
        } finally {
          embeds.dispose();
        }
        return pickTokens(logits, rows, 0);
      });
    } catch (e) {
      for (const seq of rows) seq.fail(e);
      return;
    }
    const ms = performance.now() - t0;
    this.stats.steps++;
    this.stats.rows += rows.length;
    this.stats.maxRows = Math.max(this.stats.maxRows, rows.length);
    this.stats.decodeMs += ms;
    rows.forEach((seq, i) => {
      seq.timings.decodeMs += ms;
      seq.timings.decodeTokens++;
      seq.accept(tokens[i]!);
    });
  }
}
