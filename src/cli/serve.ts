// `tfvlm serve`: the model behind OpenAI's Chat Completions API (src/serve/), batching concurrent requests.
import { initBackend } from '../backend/index.ts';
import { Vlm } from '../engine.ts';
import { TfvlmError } from '../errors.ts';
import { DEFAULT_IMAGE_POLICY } from '../serve/image-url.ts';
import { SERVE_DEFAULTS, startServer } from '../serve/http-server.ts';
import { VlmBatcher } from '../vlm-batcher.ts';
import { optionalNumber, type Command, type ParsedArgs } from './command.ts';
import { imageSplitting, loadOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';

const DEFAULT_MAX_BATCH = 8;
const DEFAULT_MAX_QUEUE = 64;
const MIB = 1024 * 1024;
const s = (ms: number) => `${ms / 1000} s`;

export const serveCommand: Command = {
  name: 'serve',
  summary: 'an OpenAI-compatible HTTP server (chat completions, streaming, continuous batching)',
  usage: `Usage: tfvlm serve [--model DIR|ID] [--host ${SERVE_DEFAULTS.host}] [--port ${SERVE_DEFAULTS.port}] [options]

Serves the model with OpenAI's Chat Completions API; concurrent requests are batched (each decode
step runs every active sequence at once). Stops on Ctrl-C or SIGTERM.
  POST /v1/chat/completions  messages (roles system, developer, user, assistant; content a string or
                             parts {type:"text"} / {type:"image_url", image_url:{url}}), max_tokens or
                             max_completion_tokens, temperature (0 = greedy, > 0 = sampling, absent =
                             the model's generation_config.json), top_p, seed (absent when sampling: a
                             fresh random one), stop (up to 4), n (1), stream, stream_options.include_usage; also
                             top_k, min_p, repetition_penalty. Other OpenAI fields are accepted only at
                             values that change nothing (logprobs false, presence_penalty 0, …); unknown
                             fields and other values get 400 naming the field.
  GET  /v1/models, /v1/models/ID   the served model
  GET  /health               status and load (running, waiting, max_batch, max_queue)

  ${MODEL_OPTION_HELP}
  --model-id NAME     the model id /v1/models lists and responses carry (default: the model folder's name)
  --host HOST         address to listen on (default ${SERVE_DEFAULTS.host}; there is no authentication, so
                      listen on other addresses only on a network you trust)
  --port N            port (default ${SERVE_DEFAULTS.port}; 0 = a free port); the URL is printed on stderr
  --max-batch N       sequences decoding together (default ${DEFAULT_MAX_BATCH})
  --max-queue N       requests waiting for a place (default ${DEFAULT_MAX_QUEUE}); past it, 429
  --max-body-mb N     request body limit in MiB (default ${SERVE_DEFAULTS.maxBodyBytes / MIB}); past it, 413
  --allow-local-files     image_url may be a path on the server or a file:// URL (default: refused, 400)
  --allow-remote-images   image_url may be http(s): the server fetches it (default: refused, 400), at
                      most ${DEFAULT_IMAGE_POLICY.maxImageBytes / MIB} MiB in ${s(DEFAULT_IMAGE_POLICY.fetchTimeoutMs)}, following up to ${DEFAULT_IMAGE_POLICY.maxRedirects} redirects to http(s) only.
                      Clients can then make the server fetch any URL it can reach, its own network included
  --image-splitting on|off   override the checkpoint's do_image_splitting (off is faster on CPU)
  --weights stored|float32, --dtype auto|q8|q4, --group-size 32|64|128, --adapter DIR
                      how the model is loaded, as for tfvlm generate (see tfvlm generate --help)
  -q, --quiet         no load progress and no request log on stderr

Images may always be data: URIs (image/png, jpeg, gif, bmp or webp), each at most
${DEFAULT_IMAGE_POLICY.maxImageBytes / MIB} MiB and within the pixel limits ($TFVLM_MAX_IMAGE_PIXELS, $TFVLM_MAX_REQUEST_PIXELS).
Messages that cannot fit the model's context are refused before they are tokenized.
Limits: request headers must arrive within ${s(SERVE_DEFAULTS.headersTimeoutMs)} and the body within ${s(SERVE_DEFAULTS.requestTimeoutMs)} more (else 408); a
streaming client that reads nothing for ${s(SERVE_DEFAULTS.stallTimeoutMs)} is cut off; ${SERVE_DEFAULTS.maxConnections} connections at most. A client
that disconnects stops its generation. On SIGINT/SIGTERM the server stops accepting, stops the
generations in flight (their clients get 503) and frees the model.`,
  options: {
    model: { type: 'string' },
    'model-id': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'max-batch': { type: 'string' },
    'max-queue': { type: 'string' },
    'max-body-mb': { type: 'string' },
    'allow-local-files': { type: 'boolean' },
    'allow-remote-images': { type: 'boolean' },
    'image-splitting': { type: 'string' },
    weights: { type: 'string' },
    dtype: { type: 'string' },
    'group-size': { type: 'string' },
    adapter: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  },
  async run(args) {
    const port = wholeNumber(args, 'port', SERVE_DEFAULTS.port, 0, 65535);
    const maxBatch = wholeNumber(args, 'max-batch', DEFAULT_MAX_BATCH, 1);
    const maxQueue = wholeNumber(args, 'max-queue', DEFAULT_MAX_QUEUE, 0);
    const bodyMb = optionalNumber(args, 'max-body-mb', 'serve') ?? SERVE_DEFAULTS.maxBodyBytes / MIB;
    if (!(bodyMb > 0)) throw new TfvlmError(`tfvlm serve: --max-body-mb must be more than 0, got ${bodyMb}`);
    const host = args.values.host as string | undefined ?? SERVE_DEFAULTS.host;
    const quiet = !!args.values.quiet;
    const say = (line: string) => { if (!quiet) process.stderr.write(`tfvlm serve: ${line}\n`); };
    const spec = modelSpec(args);
    const splitting = imageSplitting(args, 'serve');
    const load = loadOptions(args, 'serve');

    await initBackend(undefined, { syncReads: 'continuous batching' });
    const vlm = await Vlm.load(spec, load);
    const batcher = new VlmBatcher(vlm, { maxBatch, maxQueue });
    try {
      const server = await startServer({
        vlm, batcher, host, port,
        modelId: args.values['model-id'] as string | undefined,
        maxBodyBytes: Math.floor(bodyMb * MIB),
        allowLocalFiles: !!args.values['allow-local-files'],
        allowRemoteImages: !!args.values['allow-remote-images'],
        imageSplitting: splitting,
        log: quiet ? undefined : (line) => process.stderr.write(`tfvlm serve: ${line}\n`),
      }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') throw new TfvlmError(`tfvlm serve: cannot listen on ${host}:${port} (${e.code})`);
        throw e;
      });
      // Always printed, --quiet or not: with --port 0 it is the only way to learn the port.
      process.stderr.write(`tfvlm serve: listening on ${server.url} (model ${vlm.dir}, max batch ${maxBatch}, max queue ${maxQueue}, loaded in ${(vlm.loadMs / 1000).toFixed(2)} s)\n`);
      const signal = await untilSignal();
      say(`${signal}: stopping`);
      await server.close();
    } finally {
      await batcher.close();
      vlm.dispose();
    }
    say('stopped');
    return 0;
  },
};

function wholeNumber(args: ParsedArgs, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = optionalNumber(args, name, 'serve') ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new TfvlmError(`tfvlm serve: --${name} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, got ${v}`);
  }
  return v;
}

/** Resolves at the first SIGINT or SIGTERM; a second one quits at once. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      const again = () => process.exit(130);
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
