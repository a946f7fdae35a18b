// One published-size model end to end, the way a user runs it (Vlm.load + one request), in its own
// process so peak RSS is this model's alone: load, vision (embedding + encoder + merge), prefill,
// time to first token and decode, on a random checkpoint with the published config. Run by
// bench/run.ts --big:
//   node --import tsx bench/lib/big.ts --dir CHECKPOINT --out RESULT.json [--tokens N] [--weights stored|float32] [--dtype auto|q8|q4]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Vlm } from '../../src/engine.ts';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { captionRequest, questionRequest } from '../../src/tasks/prompts.ts';
import type { WeightsResidence } from '../../src/models/weights.ts';
import type { LoadDType } from '../../src/models/load-options.ts';
import { image } from '../../test/helpers/paths.ts';
import { MB } from './measure.ts';

export interface BigResult {
  model: string;
  architecture: string;
  weights: WeightsResidence;
  /** 'auto': as stored; 'q8' / 'q4': quantized at load (groups of 64). */
  dtype: LoadDType;
  checkpoint_gb: number;
  parameters_b: number;
  load_ms: number;
  rss_mb_after_load: number;
  /** Images in the prompt × tiles per image (splitting off: 1). */
  images: number;
  prompt_tokens: number;
  /** Token embedding + vision encoder + connector/projector + merge, one image. */
  vision_ms: number;
  prefill_ms: number;
  time_to_first_token_ms: number;
  decode_tokens: number;
  decode_ms_per_token: number;
  decode_tok_s: number;
  peak_rss_mb: number;
  text: string;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' }, out: { type: 'string' }, tokens: { type: 'string', default: '8' },
      weights: { type: 'string', default: 'stored' }, question: { type: 'string' }, dtype: { type: 'string', default: 'auto' },
    },
  });
  if (!values.dir || !values.out) throw new Error('usage: big.ts --dir CHECKPOINT --out RESULT.json [--tokens N] [--weights stored|float32]');
  const weights = values.weights as WeightsResidence;
  const dtype = values.dtype as LoadDType;
  const checkpoint = Checkpoint.open(values.dir);
  const checkpointBytes = checkpoint.files.reduce((a, f) => a + fs.statSync(f).size, 0);
  const parameters = checkpoint.keys().reduce((a, k) => a + checkpoint.entry(k).shape.reduce((x, y) => x * y, 1), 0);
  checkpoint.close();

  const t0 = performance.now();
  const vlm = await Vlm.load(values.dir, { weights, dtype });
  const loadMs = performance.now() - t0;
  const rssAfterLoad = process.memoryUsage().rss / MB;
  const photo = image('astronaut.png');
  const request = values.question ? questionRequest([photo], values.question) : captionRequest([photo]);
  const tokens = Number(values.tokens);
  const t1 = performance.now();
  let firstTokenMs = NaN;
  const it = vlm.stream(request, { maxNewTokens: tokens, doSample: false, imageSplitting: false, stopStrings: [] });
  let r = await it.next();
  for (; !r.done; r = await it.next()) if (Number.isNaN(firstTokenMs)) firstTokenMs = performance.now() - t1;
  const out = r.value;
  const { timings } = out;
  const config = JSON.parse(fs.readFileSync(path.join(values.dir, 'config.json'), 'utf8')) as { architectures?: string[] };
  const result: BigResult = {
    model: path.basename(values.dir),
    architecture: config.architectures?.[0] ?? '?',
    weights,
    dtype,
    checkpoint_gb: checkpointBytes / 1e9,
    parameters_b: parameters / 1e9,
    load_ms: loadMs,
    rss_mb_after_load: rssAfterLoad,
    images: 1,
    prompt_tokens: out.input_ids.length,
    vision_ms: timings.embedMs,
    prefill_ms: timings.prefillMs,
    time_to_first_token_ms: firstTokenMs,
    decode_tokens: timings.decodeTokens,
    decode_ms_per_token: timings.decodeMs / timings.decodeTokens,
    decode_tok_s: (timings.decodeTokens / timings.decodeMs) * 1000,
    peak_rss_mb: (process.resourceUsage().maxRSS * 1024) / MB,
    text: out.text,
  };
  vlm.dispose();
  fs.writeFileSync(values.out, JSON.stringify(result, null, 2));
}

await main();
