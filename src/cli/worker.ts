// `tfvlm worker --queue redis://…`: one machine's share of a `tfvlm batch --queue` run. Loads the model
// once and processes the queue's jobs until stopped. BullMQ and ioredis are loaded only here and under
// `batch --queue`, so the other commands start as fast as before.
import { initBackend } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { QUEUE_DEFAULTS } from '../queue/defaults.ts';
import { parseRedisUrl } from '../queue/redis-url.ts';
import { optionalNumber, requireString, type Command, type ParsedArgs } from './command.ts';
import { loadOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { withModel } from './run-generation.ts';

const s = (ms: number) => ms / 1000;

/** After the grace period, how long closing may take before the worker quits anyway. */
const CLOSE_TIMEOUT_MS = 15_000;

export const workerCommand: Command = {
  name: 'worker',
  summary: 'process the jobs of a `tfvlm batch --queue` run (Redis + BullMQ), on any number of machines',
  usage: `Usage: tfvlm worker --queue redis://HOST[:PORT][/DB] [--model DIR|ID] [--concurrency N]
                    [--queue-name NAME] [--dtype …] [--lock-duration S] [--stalled-interval S]

Loads the model once and answers the jobs that \`tfvlm batch --queue URL --input … --output …\` enqueues,
each as the local \`tfvlm batch\` would (the prompt and generation options come with the job). Run one
per machine (or several), all with the same model; image paths in jobs are absolute paths on the
collector's machine, so the workers need the same files at the same paths (a shared filesystem).
  --queue URL            redis://[USER:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS)
  --queue-name NAME      the BullMQ queue (default ${QUEUE_DEFAULTS.queueName}), as given to tfvlm batch
  ${MODEL_OPTION_HELP}
  --weights, --dtype, --group-size, --adapter   how the model is loaded (as tfvlm batch)
  --concurrency N        jobs in flight, decoded together as one batch (default ${QUEUE_DEFAULTS.concurrency})
  --lock-duration S      a job's lock, renewed every S/2 while it runs (default ${s(QUEUE_DEFAULTS.lockDurationMs)});
                         raise it if one vision pass or prefill of your model can take longer than S/2
  --stalled-interval S   how often to look for jobs of dead workers (default ${s(QUEUE_DEFAULTS.stalledIntervalMs)})
                         A worker killed mid-job loses nothing: within lock-duration + stalled-interval
                         another worker takes its jobs over.
  --max-stalled N        worker deaths a job survives before it fails as an error line (default ${QUEUE_DEFAULTS.maxStalledCount})
  --grace S              on SIGTERM / Ctrl-C, how long the jobs in flight may finish before they go back
                         to the queue for another worker (default ${s(QUEUE_DEFAULTS.graceMs)}); a second signal gives them back at once, a third quits
  --name NAME            this worker's name, stored on the jobs it takes (default host:pid)
  -q, --quiet            only failures and Redis errors on stderr`,
  options: {
    queue: { type: 'string' }, 'queue-name': { type: 'string' }, model: { type: 'string' },
    weights: { type: 'string' }, dtype: { type: 'string' }, 'group-size': { type: 'string' }, adapter: { type: 'string' },
    concurrency: { type: 'string' }, 'lock-duration': { type: 'string' }, 'stalled-interval': { type: 'string' },
    'max-stalled': { type: 'string' }, grace: { type: 'string' }, name: { type: 'string' }, quiet: { type: 'boolean', short: 'q' },
  },
  async run(args) {
    const target = parseRedisUrl(requireString(args, 'queue', 'worker'));
    const queueName = (args.values['queue-name'] as string | undefined) ?? QUEUE_DEFAULTS.queueName;
    const concurrency = wholeNumber(args, 'concurrency', 1) ?? QUEUE_DEFAULTS.concurrency;
    const lockDurationMs = seconds(args, 'lock-duration', 0.1) ?? QUEUE_DEFAULTS.lockDurationMs;
    const stalledIntervalMs = seconds(args, 'stalled-interval', 0.1) ?? QUEUE_DEFAULTS.stalledIntervalMs;
    const maxStalledCount = wholeNumber(args, 'max-stalled', 0) ?? QUEUE_DEFAULTS.maxStalledCount;
    const graceMs = seconds(args, 'grace', 0) ?? QUEUE_DEFAULTS.graceMs;
    const name = args.values.name as string | undefined;
    const quiet = args.values.quiet === true;
    const load = loadOptions(args, 'worker');
    const say = (line: string) => process.stderr.write(`tfvlm worker: ${line}\n`);
    const important = (line: string) => quiet && !/failed|Redis|could not/.test(line) ? undefined : say(line);

    const { checkRedis } = await import('../queue/reach.ts');
    const version = await checkRedis(target);
    await initBackend(undefined, { syncReads: 'continuous batching' });
    return withModel(modelSpec(args), async (vlm) => {
      const { startQueueWorker } = await import('../queue/worker.ts');
      const worker = await startQueueWorker(vlm, {
        target, queueName, concurrency, lockDurationMs, stalledIntervalMs, maxStalledCount, log: important, ...(name ? { name } : {}),
      });
      if (!quiet) {
        say(`${worker.name}: model loaded in ${(vlm.loadMs / 1000).toFixed(2)} s; taking jobs from ${target.display} queue "${queueName}" ` +
          `(Redis ${version}, concurrency ${concurrency}, lock ${s(lockDurationMs)} s)`);
      }
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals === 1) {
          if (!quiet) say(`${signal}: taking no more jobs; the ones in flight have ${s(graceMs)} s to finish (again: give them back now)`);
          void worker.stop(graceMs);
          // Closing needs Redis (to hand jobs back, to close cleanly); without it, do not hang forever.
          setTimeout(() => {
            say(`could not close cleanly in ${s(graceMs + CLOSE_TIMEOUT_MS)} s (is Redis reachable?): quitting; the jobs' locks expire and other workers take them`);
            process.exit(1);
          }, graceMs + CLOSE_TIMEOUT_MS).unref();
        } else if (signals === 2) {
          if (!quiet) say(`${signal}: giving the jobs in flight back to the queue (again: quit at once)`);
          void worker.stop(0);
        } else {
          process.exit(130); // e.g. Redis unreachable while closing; the jobs' locks expire and others take them
        }
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await worker.closed;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      if (!quiet) say('stopped');
      return 0;
    }, load);
  },
};

function wholeNumber(args: ParsedArgs, flag: string, min: number): number | undefined {
  const n = optionalNumber(args, flag, 'worker');
  if (n !== undefined && (!Number.isSafeInteger(n) || n < min)) throw new TfvlmError(`tfvlm worker: --${flag} must be a whole number ≥ ${min}, got '${String(args.values[flag])}'`);
  return n;
}

function seconds(args: ParsedArgs, flag: string, min: number): number | undefined {
  const n = optionalNumber(args, flag, 'worker');
  if (n !== undefined && n < min) throw new TfvlmError(`tfvlm worker: --${flag} must be at least ${min} (seconds), got '${String(args.values[flag])}'`);
  return n === undefined ? undefined : Math.round(n * 1000);
}
