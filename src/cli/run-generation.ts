// Shared by describe / ask / chat / generate: load, stream the answer to stdout, timings to stderr.
import { Vlm, type GenerateCallOptions, type VlmRequest } from '../engine.ts';
import { jsonResult, timingsLine } from './generation-flags.ts';

export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
}

export async function streamToStdout(vlm: Vlm, request: VlmRequest, options: GenerateCallOptions, flags: OutputFlags): Promise<void> {
  const it = vlm.stream(request, options);
  for (;;) {
    const r = await it.next();
    if (r.done) {
      if (flags.json) process.stdout.write(JSON.stringify(jsonResult(r.value, vlm.loadMs)) + '\n');
      else process.stdout.write('\n');
      if (!flags.quiet) process.stderr.write(`[${timingsLine(r.value, vlm.loadMs)}]\n`);
      return;
    }
    if (!flags.json) process.stdout.write(r.value);
  }
}

export async function withModel<T>(spec: string, run: (vlm: Vlm) => Promise<T>): Promise<T> {
  const vlm = await Vlm.load(spec);
  try {
    return await run(vlm);
  } finally {
    vlm.dispose();
  }
}
