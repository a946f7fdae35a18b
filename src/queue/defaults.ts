// The defaults of `tfvlm batch --queue` and `tfvlm worker`, in one place (no Redis client loaded here).
export const QUEUE_DEFAULTS = {
  /** The BullMQ queue (its Redis keys are `bull:<name>:…`); one batch at a time per name and database. */
  queueName: 'tfvlm-batch',
  /** Jobs a worker runs at once = its batcher's rows. */
  concurrency: 4,
  /**
   * A job's lock, renewed every half of it while the job runs. Long, because renewal needs the event
   * loop and one vision pass or prefill of a big model holds it for seconds; a dead worker's job is
   * taken over after at most lockDuration + stalledInterval (2.5 min).
   */
  lockDurationMs: 120_000,
  stalledIntervalMs: 30_000,
  /** Worker deaths a job survives; one more and it fails (an error line), so an item that kills its worker cannot kill them all. */
  maxStalledCount: 2,
  /** On SIGTERM / SIGINT, how long the jobs in flight may finish before they are given back (under the usual 30 s before SIGKILL). */
  graceMs: 20_000,
  /** The collector looks for finished jobs this often when none came last time. */
  pollMs: 500,
} as const;

/** `tfvlm batch` flags that belong to the workers under --queue (the collector loads no model). */
export const WORKER_FLAGS = ['model', 'weights', 'dtype', 'group-size', 'adapter', 'max-batch'] as const;

/** The `--queue` part of `tfvlm batch --help`. */
export const QUEUE_BATCH_HELP = `Many machines (Redis + BullMQ): with --queue, this command loads no model. It enqueues each item
still to do as a job, which \`tfvlm worker --queue URL\` processes on any number of machines, and
writes the lines the workers return (same input, output, resume and --shard rules; the instruction
and generation options travel with the jobs). Killed, the same command resumes and also collects
what finished meanwhile; each job stays in Redis until its line is on disk.
  --queue URL         redis://[USER:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS)
  --queue-name NAME   the BullMQ queue (default ${QUEUE_DEFAULTS.queueName}); the workers take the same
Image paths are sent as absolute paths: the workers must see the same files at the same paths (a shared
filesystem). --model, --dtype and --max-batch are the workers' flags.`;
