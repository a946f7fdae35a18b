// Shared by describe / ask / chat / generate: load, stream the answer to stdout, timings to stderr.
import { jsonLine } from './json-output.ts';
import { Vlm, type GenerateCallOptions, type VlmLoadOptions, type VlmRequest } from '../engine.ts';
import { jsonResult, timingsLine } from './generation-flags.ts';

export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
}

/** Exit status of a generation ended by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/**
 * While `run` is pending, the first Ctrl-C (SIGINT) fires the returned signal, so generation ends
 * cleanly with what it has; a second one quits at once.
 */
export async function abortOnSigint<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Streams the answer to stdout (timings to stderr); returns the exit status (130 when Ctrl-C ended it). */
export async function streamToStdout(vlm: Vlm, request: VlmRequest, options: GenerateCallOptions, flags: OutputFlags): Promise<number> {
  return abortOnSigint(async (signal) => {
    const it = vlm.stream(request, { ...options, signal });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        if (flags.json) process.stdout.write(jsonLine(jsonResult(r.value, vlm.loadMs)));
        else process.stdout.write('\n');
        if (!flags.quiet) process.stderr.write(`[${timingsLine(r.value, vlm.loadMs)}]\n`);
        return r.value.stopReason === 'aborted' ? EXIT_INTERRUPTED : 0;
      }
      if (!flags.json) process.stdout.write(r.value);
    }
  });
}

export async function withModel<T>(spec: string, run: (vlm: Vlm) => Promise<T>, options: VlmLoadOptions = {}): Promise<T> {
  const vlm = await Vlm.load(spec, options);
  try {
    return await run(vlm);
  } finally {
    vlm.dispose();
  }
}
