// A loaded model serving many requests at once: Vlm's stream / generate, with every request's tokens
// decoded together with the others' (ContinuousBatcher). What the server and `tfvlm batch` run on.
import { TfvlmError } from './errors.ts';
import { streamRequest, type GenerationOutput, type Vlm, type VlmRequest } from './engine.ts';
import type { GenerateCallOptions } from './generation/call-options.ts';
import { ContinuousBatcher, type BatcherOptions } from './generation/continuous-batching.ts';
import { textOfTokens } from './generation/text-stream.ts';

/** Call options a batched sequence cannot honour: they are per-step hooks of a loop of its own. */
const UNBATCHED_OPTIONS = ['onLogits', 'decodeThreads', 'onProgress'] as const;

export class VlmBatcher {
  private readonly batcher: ContinuousBatcher;

  constructor(readonly vlm: Vlm, private readonly options: BatcherOptions = {}) {
    this.batcher = new ContinuousBatcher(vlm.model, options);
  }

  /**
   * Vlm.stream through the batcher: text deltas, then the whole result. The answer is the one
   * vlm.stream gives the same request alone (greedy on packed weights: token for token). Leaving the
   * loop early or aborting `options.signal` ends the sequence and frees its cache. Throws
   * QueueFullError (from the first next()) when max_queue requests already wait.
   */
  stream(request: VlmRequest, options: GenerateCallOptions = {}): AsyncGenerator<string, GenerationOutput> {
    for (const key of UNBATCHED_OPTIONS) {
      if (options[key] !== undefined) throw new TfvlmError(`option "${key}" is not available through a batcher (use Vlm.stream)`);
    }
    return streamRequest(this.vlm, request, options, (inputs, loopOptions) =>
      textOfTokens(this.vlm.tokenizer, loopOptions.stopStrings ?? [], (stopped) =>
        this.batcher.generate(inputs, { ...loopOptions, shouldStop: stopped })));
  }

  /** The whole answer at once. */
  async generate(request: VlmRequest, options: GenerateCallOptions = {}): Promise<GenerationOutput> {
    const it = this.stream(request, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** Sequences decoding and waiting, and the limits. */
  get load(): { running: number; waiting: number; maxBatch: number; maxQueue: number } {
    return { ...this.batcher.load, maxBatch: this.batcher.maxBatch, maxQueue: this.batcher.maxQueue };
  }

  /** Decode steps run, the tokens they made, the most rows in one step, and their milliseconds. */
  get stats(): ContinuousBatcher['stats'] {
    return { ...this.batcher.stats };
  }

  /** Turns waiting requests away and ends running ones (stop reason `aborted`); the model stays loaded. */
  close(): Promise<void> {
    return this.batcher.close();
  }
}
