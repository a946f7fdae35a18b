import { initBackend } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { GenerateCallOptions } from '../engine.ts';
import { VlmBatcher } from '../vlm-batcher.ts';
import { IMAGE_EXTENSIONS, openInput } from '../batch/input.ts';
import { planBatch, planReport, plural } from '../batch/plan.ts';
import { formatDuration, batchProgress } from '../batch/progress.ts';
import { ResultsWriter } from '../batch/results-file.ts';
import { runBatch, type BatchSummary } from '../batch/run-batch.ts';
import { parseShard } from '../batch/shard.ts';
import { DEFAULT_CAPTION_PROMPT } from '../tasks/prompts.ts';
import { optionalNumber, requireString, type Command, type ParsedArgs } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions, loadOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { QUEUE_BATCH_HELP } from '../queue/defaults.ts';
import { abortOnSigint, EXIT_INTERRUPTED, withModel } from './run-generation.ts';

const { json: _json, ...BATCH_GENERATION_OPTIONS } = GENERATION_OPTIONS;

/** The shared generation help without what does not apply here (--json: the output is JSON lines already; Ctrl-C is said above). */
const GENERATION_HELP_HERE = GENERATION_HELP.split('\n').filter((l) => !/^\s+--json\b/.test(l)).join('\n').replace(/\nCtrl-C[\s\S]*$/, '');

/** Items being loaded or generated beyond the batch's rows: the next images are ready when a row frees up. */
const PREFETCH = 2;

export const batchCommand: Command = {
  name: 'batch',
  summary: 'caption or ask about many images, one answer per item, resumable (JSONL in, JSONL out)',
  usage: `Usage: tfvlm batch --input ITEMS.jsonl|DIR --output RESULTS.jsonl [--prompt P | --question Q]
                   [--max-batch N] [--shard K/N] [--retry-errors] [--model DIR|ID] [generation options]

One model load, one answer per item, the items' sequences decoded together (continuous batching).
  --input FILE|DIR    a JSONL file, one item per line: {"id": "a1", "image": "a1.jpg"} or
                      {"id": "a2", "images": ["x.png", "y.png"]}, optionally with its own "prompt"
                      (or "question"); paths are relative to the JSONL file's folder. Or a folder:
                      every image file under it (${[...IMAGE_EXTENSIONS].join(' ')}), recursively,
                      in name order, id = its path relative to the folder. Every line is checked
                      (duplicate ids too) before any work.
  --output FILE       one JSON line per item, appended as each finishes (in completion order):
                      {"id", "image" (or "images"), "text", "generated_tokens", "stop_reason", "timings"},
                      or {"id", "image", "error"} for an item that failed (missing or corrupt image,
                      image over the pixel budget): the run goes on.
  --prompt P          the instruction for every item (default "${DEFAULT_CAPTION_PROMPT}", as tfvlm describe)
  --question Q        ask Q about every item (as tfvlm ask); an item's own prompt wins over both
  --max-batch N       sequences decoding together (default 8; 1 = one at a time)
  --shard K/N         do only the K-th of N shards (1 ≤ K ≤ N): the items whose id hashes to K
                      (SHA-256 of the id, first 4 bytes mod N), whatever the input order; one output
                      file per shard
  --retry-errors      redo the items whose line is an error (their error lines are dropped first)
  ${MODEL_OPTION_HELP}

Resuming: a rerun reads the output first and skips the ids already in it; a torn last line (a crash
mid-write) is cut off and its item redone. The exit status is 0 once every item has a line, error
lines included (their number is said on stderr). Progress goes to stderr: a bar with the rate and ETA
on a terminal, a line every 10 s or 5% otherwise. Ctrl-C stops cleanly: the items in flight are
dropped (a rerun does them) and the exit status is 130.

${QUEUE_BATCH_HELP}

${GENERATION_HELP_HERE}`,
  options: {
    input: { type: 'string' }, output: { type: 'string' }, prompt: { type: 'string' }, question: { type: 'string' },
    model: { type: 'string' }, 'max-batch': { type: 'string' }, shard: { type: 'string' }, 'retry-errors': { type: 'boolean' },
    queue: { type: 'string' }, 'queue-name': { type: 'string' },
    ...BATCH_GENERATION_OPTIONS,
  },
  async run(args) {
    const input = requireString(args, 'input', 'batch');
    const output = requireString(args, 'output', 'batch');
    const prompt = args.values.prompt as string | undefined;
    const question = args.values.question as string | undefined;
    if (prompt !== undefined && question !== undefined) throw new TfvlmError('tfvlm batch: give --prompt or --question, not both');
    const shard = typeof args.values.shard === 'string' ? parseShard(args.values.shard) : undefined;
    const maxBatch = maxBatchOption(args);
    const generation: GenerateCallOptions = generationOptions(args, 'batch');
    delete generation.onProgress; // per-request vision/prefill progress: many requests run at once
    const load = loadOptions(args, 'batch');
    const quiet = args.values.quiet === true;
    const say = (line: string) => process.stderr.write(`tfvlm batch: ${line}\n`);
    if (args.values.queue !== undefined) { // many machines, Redis + BullMQ: src/queue/ (loaded only here)
      const { runQueueBatch } = await import('../queue/batch-run.ts');
      return runQueueBatch({
        url: String(args.values.queue), queueName: args.values['queue-name'] as string | undefined, input, output, prompt, question, shard,
        retryErrors: args.values['retry-errors'] === true, generation, quiet, say, flagsGiven: Object.keys(args.values).filter((k) => args.values[k] !== undefined),
      });
    }

    const plan = await planBatch({ input: openInput(input), output, shard, retryErrors: args.values['retry-errors'] === true });
    const report = planReport(plan, { input, output, shard });
    if (report.repaired) say(report.repaired);
    if (!quiet) for (const line of report.lines) say(line);
    if (report.nothingToDo) {
      if (!quiet) say(report.nothingToDo);
      return 0;
    }

    await initBackend(undefined, { syncReads: 'continuous batching' });
    return withModel(modelSpec(args), async (vlm) => {
      const batcher = new VlmBatcher(vlm, { maxBatch, maxQueue: maxBatch + PREFETCH });
      const writer = ResultsWriter.open(output);
      const progress = quiet ? undefined : batchProgress(plan.todo);
      const started = performance.now();
      let summary: BatchSummary;
      try {
        summary = await abortOnSigint((signal) => runBatch(batcher, plan.items(), (line) => writer.append(line), {
          prompt, question, generation, signal, maxInFlight: maxBatch + PREFETCH,
          onLine: (line) => progress?.item('error' in line),
        }));
      } finally {
        writer.close();
        await batcher.close();
      }
      progress?.finish(!summary.aborted);
      const ms = performance.now() - started;
      const failed = summary.failed > 0 ? `; ${summary.failed} failed (their lines hold the error; --retry-errors redoes them)` : '';
      if (summary.aborted) {
        say(`interrupted: ${summary.written} of ${plural(plan.todo)} written${failed}; rerun the same command to do the rest`);
        return EXIT_INTERRUPTED;
      }
      if (!quiet || summary.failed > 0) {
        say(`${plural(summary.written)} written to ${output} in ${formatDuration(ms)} (${((summary.written * 60_000) / ms).toFixed(1)} items/min)${failed}`);
      }
      return 0;
    }, load);
  },
};


function maxBatchOption(args: ParsedArgs): number {
  const n = optionalNumber(args, 'max-batch', 'batch') ?? 8;
  if (!Number.isSafeInteger(n) || n < 1) throw new TfvlmError(`tfvlm batch: --max-batch must be a whole number ≥ 1, got '${String(args.values['max-batch'])}'`);
  return n;
}

